"""The key code of 06_evaluation_and_comparison.ipynb gives the library's results (issue 12).

The notebook writes the classification of one extra note as a plain function
(``sounding_pitches`` + ``classify_extra_note``); run over every extra note, it must give the
kinds that :func:`pianolib.failures.extra_notes` computes all at once with numpy, on made-up
transcriptions of the sample clips whose errors produce every kind. (The notebook itself
asserts the same on the shipped models' transcriptions of the clips; loading the models here
would make this test take tens of seconds on a busy machine.)
"""

import os

import numpy as np
import pytest
from conftest import SAMPLE_DIR, notebook_key_code

from pianolib import failures
from pianolib.midi import midi_to_notes

NOTEBOOK = "06_evaluation_and_comparison.ipynb"
CLIPS = ("gen-sample-0", "m21-bach-bwv66_6", "m21-joplin-maple_leaf_rag")


@pytest.fixture(scope="module")
def key_code():
    return notebook_key_code(NOTEBOOK)


def notebook_kinds(key_code, ref, extra):
    return [key_code["classify_extra_note"](p, key_code["sounding_pitches"](t, ref))
            for t, _, p, _ in extra]


def test_constants_are_the_library_ones(key_code):
    assert key_code["WINDOW"] == failures.WINDOW
    assert key_code["HARMONIC_STEPS"] == failures.HARMONIC_STEPS
    # the steps are the partials: round(12 log2 k) for k = 2 ... 8
    steps = [s for v in key_code["HARMONIC_STEPS"].values() for s in v]
    assert steps == [round(12 * np.log2(k)) for k in range(2, 9)]


@pytest.mark.parametrize("name", CLIPS)
def test_classification_equals_the_library_on_made_up_errors(key_code, name):
    ref = midi_to_notes(os.path.join(SAMPLE_DIR, "midi", f"{name}.mid"))
    rng = np.random.default_rng(6)
    est = ref.copy()
    est[:, 2] += rng.choice([0, 0, 1, -1, 12, 19, 24, 28, 7, -12], len(est))
    est[:, 0] += rng.choice([0.0, 0.02, 0.07, 0.5, 3.0], len(est))
    est[:, 1] = np.maximum(est[:, 1], est[:, 0] + 0.05)
    est = est[(est[:, 2] >= 21) & (est[:, 2] <= 108)]
    found = failures.extra_notes(ref, est)
    ours = notebook_kinds(key_code, ref, found["extra"])
    assert ours == list(found["kind"])
    assert len(ours) >= 40
    assert {"repeat", "semitone", "octave", "twelfth", "below", "other"} <= set(ours)

"""The key code of 06_evaluation_and_comparison.ipynb gives the library's results (issue 12).

The notebook writes the classification of one extra note as a plain function
(``sounding_pitches`` + ``classify_extra_note``); run over every extra note, it must give the
kinds that :func:`pianolib.failures.extra_notes` computes all at once with numpy, on made-up
transcriptions of the sample clips whose errors produce every kind, and the known answers of
hand-made notes. (The notebook itself
asserts the same on the shipped models' transcriptions of the clips; loading the models here
would make this test take tens of seconds on a busy machine.)
"""

import os

import numpy as np
import pytest
from conftest import SAMPLE_DIR

from pianolib import failures
from pianolib.midi import midi_to_notes

NOTEBOOK = "06_evaluation_and_comparison.ipynb"
CLIPS = ("gen-sample-0", "m21-bach-bwv66_6", "m21-joplin-maple_leaf_rag")


def notebook_kinds(key_code, ref, found):
    return [key_code["classify_extra_note"](t, p, ref, found["missed"])
            for t, _, p, _ in found["extra"]]


def test_constants_are_the_library_ones(key_code):
    assert key_code["WINDOW"] == failures.WINDOW
    assert key_code["ONSET_OFF"] == failures.ONSET_OFF
    assert key_code["HARMONIC_STEPS"] == failures.HARMONIC_STEPS
    # the steps are the partials: round(12 log2 k) for k = 2 ... 8
    steps = [s for v in key_code["HARMONIC_STEPS"].values() for s in v]
    assert steps == [round(12 * np.log2(k)) for k in range(2, 9)]


def test_known_answers_on_hand_made_notes(key_code):
    # C3 held 0-2 s, a true C4 at 1.00 s (which the estimates below find late, early or twice)
    ref = np.array([[0.0, 2.0, 48, 80], [1.0, 1.5, 60, 80], [3.0, 3.5, 72, 80]])
    cases = [
        ([[0.93, 1.2, 60, 70]], ["onset off"]),                      # 70 ms early
        ([[1.07, 1.2, 60, 70]], ["onset off"]),                      # 70 ms late
        ([[1.00, 1.5, 60, 80], [1.07, 1.2, 60, 70]], ["re-onset"]),  # a second onset on it
        ([[1.00, 1.5, 60, 80], [1.01, 1.2, 72, 70]], ["octave"]),    # C4 + 12
        ([[1.00, 1.5, 60, 80], [1.01, 1.2, 61, 70]], ["semitone"]),
        ([[3.00, 3.5, 72, 80], [3.01, 3.3, 60, 70]], ["sub-octave"]),  # C5 - 12
        ([[3.00, 3.5, 72, 80], [3.01, 3.3, 40, 70]], ["below"]),
        ([[1.00, 1.5, 60, 80], [5.00, 5.2, 60, 70]], ["none sounding"]),
    ]
    for est, kinds in cases:
        found = failures.extra_notes(ref, np.array(est, dtype=float))
        assert notebook_kinds(key_code, ref, found) == kinds == list(found["kind"]), est
    # an extra C5 over a C4 + B4 chord: octave (a partial of C4) before semitone (from B4)
    chord = np.array([[0.0, 1.0, 60, 80], [0.0, 1.0, 71, 80]])
    assert key_code["classify_extra_note"](0.5, 72, chord, np.zeros((0, 4))) == "octave"


@pytest.mark.parametrize("name", CLIPS)
def test_classification_equals_the_library_on_made_up_errors(key_code, name):
    ref = midi_to_notes(os.path.join(SAMPLE_DIR, "midi", f"{name}.mid"))
    rng = np.random.default_rng(6)
    est = ref.copy()
    est[:, 2] += rng.choice([0, 0, 1, -1, 12, 19, 24, 28, 7, -12], len(est))
    est[:, 0] += rng.choice([0.0, 0.02, 0.07, 0.5, 3.0], len(est))
    est[:, 1] = np.maximum(est[:, 1], est[:, 0] + 0.05)
    again = ref[rng.random(len(ref)) < 0.15].copy()   # second onsets 60 ms into true notes
    again[:, 0] += 0.06
    est = np.vstack([est, again[again[:, 1] > again[:, 0]]])
    est = est[(est[:, 2] >= 21) & (est[:, 2] <= 108)]
    found = failures.extra_notes(ref, est)
    ours = notebook_kinds(key_code, ref, found)
    assert ours == list(found["kind"])
    assert len(ours) >= 40
    assert {"onset off", "re-onset", "semitone", "octave", "twelfth", "sub-octave", "below",
            "other"} <= set(ours)

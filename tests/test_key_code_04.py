"""The key code of 04_length_model.ipynb gives the library's results (issue 12).

The notebook writes the sustain-pedal rule as a plain loop over notes (``apply_sustain``);
here it must give exactly the note lists of :func:`pianolib.midi.apply_sustain` on the sample
clips' MIDI files, with their own pedal and with a made-up pedal that extends many notes.
"""

import os

import numpy as np
import pytest
from conftest import SAMPLE_DIR

from pianolib import midi

NOTEBOOK = "04_length_model.ipynb"
CLIPS = ("gen-sample-0", "m21-bach-bwv66_6", "m21-joplin-maple_leaf_rag")
#: A pedal pressed every 2 s and held 1.5 s: on every clip it extends dozens of notes.
MADE_UP_PEDAL = np.array([[t, t + 1.5] for t in np.arange(0.0, 30.0, 2.0)])


def clip_midi(name):
    return midi.load_midi(os.path.join(SAMPLE_DIR, "midi", f"{name}.mid"))


@pytest.mark.parametrize("name", CLIPS)
def test_apply_sustain_equals_the_library_on_the_sample_clips(key_code, name):
    pm = clip_midi(name)
    key_releases = midi.midi_to_notes(pm)
    for pedal in (midi.pedal_intervals(pm), MADE_UP_PEDAL):
        ours = key_code["apply_sustain"](key_releases, pedal)
        assert np.array_equal(ours, midi.apply_sustain(key_releases, pedal))
    # the clips' own pedal: the loop gives exactly the labels midi_to_notes(sustain=True) makes
    assert np.array_equal(key_code["apply_sustain"](key_releases, midi.pedal_intervals(pm)),
                          midi.midi_to_notes(pm, sustain=True))
    # the check is not empty: the made-up pedal lengthens many notes and shortens none
    extended = key_code["apply_sustain"](key_releases, MADE_UP_PEDAL)
    assert np.all(extended[:, 1] >= key_releases[:, 1])
    assert np.sum(extended[:, 1] > key_releases[:, 1]) >= 50


def test_the_real_pedal_of_the_etude_extends_notes_and_is_cut_by_a_restrike(key_code):
    pm = clip_midi("gen-sample-0")
    key_releases, pedal = midi.midi_to_notes(pm), midi.pedal_intervals(pm)
    ours = key_code["apply_sustain"](key_releases, pedal)
    longer = ours[:, 1] > key_releases[:, 1]
    assert longer.sum() >= 5
    # every extended note now ends at a pedal release or at the next strike of its key
    ends = set(np.round(pedal[:, 1], 9)) | set(np.round(key_releases[:, 0], 9))
    assert all(round(e, 9) in ends for e in ours[longer, 1])


def test_apply_sustain_by_hand(key_code):
    apply_sustain = key_code["apply_sustain"]
    toy = np.array([[0.0, 0.5, 60, 80],    # released under the pedal: rings to its release
                    [0.2, 0.4, 64, 80],    # released under the pedal, struck again at 1.0
                    [1.0, 1.2, 64, 80],
                    [2.5, 3.0, 67, 80],    # after the pedal: unchanged
                    [0.05, 0.1, 72, 80]])  # released exactly when the pedal goes down
    pedal = np.array([[0.1, 2.0]])
    got = apply_sustain(toy, pedal)
    assert np.array_equal(got, midi.apply_sustain(toy, pedal))
    by_pitch_onset = {(n[2], n[0]): n[1] for n in got}
    assert by_pitch_onset == {(60, 0.0): 2.0, (64, 0.2): 1.0, (64, 1.0): 2.0, (67, 2.5): 3.0,
                              (72, 0.05): 2.0}
    # no pedal, an empty note list, and an input that is not sorted
    assert np.array_equal(apply_sustain(toy, np.zeros((0, 2))), midi.sort_notes(toy))
    assert apply_sustain(np.zeros((0, 4)), pedal).shape == (0, 4)
    assert np.array_equal(apply_sustain(toy[::-1], pedal), got)
    # the input is not changed
    assert toy[1, 1] == 0.4

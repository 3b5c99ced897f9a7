"""Notebook 07's key code (its cells tagged ``key-code``) gives the library's results.

The functions a student reads in 07_velocity_and_pedal.ipynb - the velocity labels, a note's
velocity from the Velocity model, the pedal decoding and the key/pedal rule for note ends -
are run on the sample clips against ``pianolib``. No model is needed: label rolls plus noise
stand in for the models' probabilities.
"""

import os

import numpy as np
import pytest
from conftest import SAMPLE_DIR, sample_rows

from pianolib import decode, labels, midi
from pianolib.config import FPS, MIN_MIDI

NOTEBOOK = "07_velocity_and_pedal.ipynb"


@pytest.fixture(scope="module")
def clips():
    """Each sample clip: frames, played notes (key releases), pedal, stored (sounding) notes."""
    rows = sample_rows()
    out = []
    for row in rows:
        pm = midi.load_midi(os.path.join(SAMPLE_DIR, row["midi"]))
        with np.load(os.path.join(SAMPLE_DIR, row["features"])) as z:
            n_frames, stored = len(z["features"]), z["notes"].astype(np.float64)
        out.append({"name": row["item"], "n": n_frames, "notes": stored,
                    "raw": midi.midi_to_notes(pm), "pedal": midi.pedal_intervals(pm)})
    return out


def test_key_code_cells_define_the_functions(key_code):
    for name in ("velocity_roll", "velocity_at", "decode_pedal", "apply_sustain"):
        assert callable(key_code[name]), name


def test_velocity_roll_equals_library(key_code, clips):
    for c in clips:
        mine = key_code["velocity_roll"](c["notes"], c["n"])
        np.testing.assert_array_equal(mine, labels.velocity_roll(c["notes"], c["n"]))
        # values, not only shapes: the first onset frame of each note holds velocity / 127
        # (where no later note of the same key starts on the same frames)
        f = np.rint(c["notes"][:, 0] * FPS).astype(int)
        k = c["notes"][:, 2].astype(int) - MIN_MIDI
        hit = np.isclose(mine[f, k], c["notes"][:, 3] / 127)
        assert hit.mean() > 0.95, c["name"]
    # the corner cases the library handles: velocity 0 (a note-off), keys outside the piano,
    # a note before frame 0, a repeated key whose onset frames overlap (the later one wins)
    # (listed out of time order, as a merged MIDI file may be)
    odd = np.array([[0.48, 0.9, 60, 70], [0.50, 0.9, 60, 0], [0.10, 0.5, 20, 90],
                    [0.2, 0.6, 109, 90], [-0.02, 0.4, 64, 50], [1.02, 1.6, 67, 120],
                    [1.00, 1.5, 67, 40]])
    mine = key_code["velocity_roll"](odd, 300)
    np.testing.assert_array_equal(mine, labels.velocity_roll(odd, 300))
    assert np.count_nonzero(mine[:, 60 - MIN_MIDI] == np.float32(70 / 127)) == 4
    assert mine[102, 67 - MIN_MIDI] == np.float32(120 / 127)
    assert mine[101, 67 - MIN_MIDI] == np.float32(40 / 127)
    assert np.count_nonzero(mine[:, 64 - MIN_MIDI]) == 2  # frames -2..1 cut at frame 0


def test_velocity_at_equals_library(key_code, clips, rng):
    for c in clips:
        roll = labels.velocity_roll(c["raw"], c["n"])
        prob = np.clip(roll + rng.normal(0, 0.02, roll.shape), 0, 1).astype(np.float32)
        frames = np.rint(c["raw"][:, 0] * FPS).astype(int)
        keys = c["raw"][:, 2].astype(int) - MIN_MIDI
        frames = np.append(frames, c["n"] - 1)  # the last frame has no next one
        keys = np.append(keys, 40)
        mine = key_code["velocity_at"](prob, frames, keys)
        np.testing.assert_array_equal(mine, decode.velocity_at(prob, frames, keys))
        assert mine.min() >= 1 and mine.max() <= 127
        # from the clean labels, each note gets its own MIDI velocity back
        exact = key_code["velocity_at"](roll, frames[:-1], keys[:-1])
        assert np.mean(exact == c["raw"][:, 3]) > 0.95, c["name"]
        assert np.median(np.abs(mine[:-1] - c["raw"][:, 3])) <= 3


def test_velocity_at_gives_the_decoders_velocities(key_code, clips, rng):
    c = clips[1]
    onset, length = labels.notes_to_rolls(c["raw"], c["n"])
    vel = labels.velocity_roll(c["raw"], c["n"])
    noisy = [np.clip(r + rng.normal(0, 0.05, r.shape), 0, 1).astype(np.float32)
             for r in (onset, length, vel)]
    notes = decode.decode_notes(*noisy[:2], velocity_prob=noisy[2])
    assert len(notes) > 0.8 * len(c["raw"])
    frames = np.rint(notes[:, 0] * FPS).astype(int)
    keys = notes[:, 2].astype(int) - MIN_MIDI
    np.testing.assert_array_equal(key_code["velocity_at"](noisy[2], frames, keys), notes[:, 3])


def test_decode_pedal_equals_library(key_code, clips, rng):
    toy = np.zeros(200)
    toy[10:60], toy[62:90], toy[120:122], toy[150:] = 0.9, 0.8, 0.9, 0.7
    np.testing.assert_allclose(key_code["decode_pedal"](toy), decode.decode_pedal(toy))
    np.testing.assert_allclose(key_code["decode_pedal"](toy), [[0.1, 0.9], [1.5, 2.0]])
    assert key_code["decode_pedal"](np.zeros(50)).shape == (0, 2)
    # a random pedal with flickers, and the pedalled sample clip's labels plus noise
    walk = np.clip(0.5 + np.cumsum(rng.normal(0, 0.08, 3000)), 0, 1)
    c = next(c for c in clips if len(c["pedal"]))
    label = labels.pedal_roll(c["pedal"], c["n"])
    noisy = np.clip(label + rng.normal(0, 0.25, label.shape), 0, 1)
    for prob in (walk, noisy, label):
        for threshold in (0.2, 0.5, 0.8):
            for min_frames in (1, 5, 12):
                mine = key_code["decode_pedal"](prob, threshold, min_frames)
                lib = decode.decode_pedal(prob, threshold, min_frames)
                assert mine.shape == lib.shape, (threshold, min_frames)
                np.testing.assert_allclose(mine, lib)
    # the noise made flickers that the minimum durations remove; the labels come back
    assert len(key_code["decode_pedal"](noisy, 0.5, 1)) > 10 * len(key_code["decode_pedal"](noisy))
    np.testing.assert_allclose(key_code["decode_pedal"](label, 0.5, 1), c["pedal"], atol=0.006)


def test_apply_sustain_equals_library(key_code, clips, rng):
    extended = 0
    for c in clips:
        mine = key_code["apply_sustain"](c["raw"], c["pedal"])
        np.testing.assert_array_equal(mine, midi.apply_sustain(c["raw"], c["pedal"]))
        extended += np.count_nonzero(mine[:, 1] > midi.sort_notes(c["raw"])[:, 1] + 1e-9)
    assert extended >= 5  # the pedalled clip's notes released under the pedal ring on
    # random notes on few keys (many re-strikes), ends exactly at pedal presses and lifts
    on = np.round(rng.uniform(0, 20, 300), 2)
    notes = np.stack([on, on + np.round(rng.uniform(0.05, 2, 300), 2),
                      rng.integers(60, 66, 300), rng.integers(1, 128, 300)], axis=1)
    pedal = np.array([[1.0, 2.5], [3.0, 3.2], [6.0, 9.0], [12.0, 18.0]])
    notes[:4, 1] = [1.0, 2.5, 3.0, 9.0]
    mine = key_code["apply_sustain"](notes, pedal)
    np.testing.assert_array_equal(mine, midi.apply_sustain(notes, pedal))
    np.testing.assert_array_equal(key_code["apply_sustain"](notes, np.zeros((0, 2))),
                                  midi.sort_notes(notes))
    toy = np.array([[0.1, 0.3, 60, 80], [0.5, 0.6, 64, 70], [1.0, 1.2, 60, 90],
                    [2.2, 2.6, 67, 60]])
    assert key_code["apply_sustain"](toy, [[0.2, 1.8]])[:, 1].tolist() == [1.0, 1.8, 1.8, 2.6]


def test_apply_sustain_is_the_transcribers_key_pedal_rule(key_code, clips, rng):
    """``Transcriber.decode_all`` with a key-release Length model and ``note_ends="sounding"``
    (``sustain_from_pedal``) gives the key code's sounding ends with the decoded pedal."""
    from pianolib.transcribe import DEFAULT_MODELS, Transcriber

    tr = Transcriber(DEFAULT_MODELS)
    tr.length_labels, tr.note_ends = "key", "sounding"
    assert tr.sustain_from_pedal
    c = next(c for c in clips if len(c["pedal"]))
    onset, length = labels.notes_to_rolls(c["raw"], c["n"])
    pedal = labels.pedal_roll(c["pedal"], c["n"])
    probs = {k: np.clip(r + rng.normal(0, 0.05, r.shape), 0, 1).astype(np.float32)
             for k, r in (("onset", onset), ("length", length), ("pedal", pedal),
                          ("velocity", labels.velocity_roll(c["raw"], c["n"])))}
    notes, est_pedal = tr.decode_all(probs)
    key_notes = tr.decode(probs["onset"], probs["length"], probs["velocity"])
    decoded_pedal = key_code["decode_pedal"](probs["pedal"], tr.pedal_threshold)
    mine = key_code["apply_sustain"](key_notes, decoded_pedal)
    np.testing.assert_array_equal(notes, mine)
    assert np.count_nonzero(notes[:, 1] > key_notes[:, 1]) > 0

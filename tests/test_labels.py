import numpy as np
import pytest

from pianolib.chunks import chunk_index, make_chunks, unchunk
from pianolib.labels import note_frames, notes_to_rolls


def rolls(notes, n):
    return notes_to_rolls(np.array(notes, dtype=float).reshape(-1, 4), n)


def test_single_note_onset_is_four_frames_and_length_covers_note():
    on, ln = rolls([[0.10, 0.50, 60, 80]], 60)
    k = 60 - 21
    assert np.flatnonzero(on[:, k]).tolist() == [10, 11, 12, 13]
    assert np.flatnonzero(ln[:, k]).tolist() == list(range(10, 50))
    assert on.sum() == 4 and ln.sum() == 40
    assert on.dtype == np.float32 and on.shape == (60, 88)


def test_rounding_to_nearest_frame():
    on, off = note_frames(np.array([[0.014, 0.016, 60, 1], [0.015 + 1e-9, 0.0349, 61, 1]]))
    assert on.tolist() == [1, 2] and off.tolist() == [2, 3]  # every note >= 1 frame


def test_very_short_note_still_gets_one_length_frame_and_four_onset_frames():
    on, ln = rolls([[0.200, 0.203, 40, 80]], 30)
    assert np.flatnonzero(ln[:, 19]).tolist() == [20]
    assert np.flatnonzero(on[:, 19]).tolist() == [20, 21, 22, 23]


def test_notes_at_edges_are_cut():
    on, ln = rolls([[-0.05, 0.03, 21, 80], [0.28, 0.60, 108, 80]], 30)
    assert np.flatnonzero(ln[:, 0]).tolist() == [0, 1, 2]  # starts before the file
    assert on[:, 0].sum() == 0  # its onset frames -5..-2 lie before the file
    assert np.flatnonzero(ln[:, 87]).tolist() == [28, 29]  # ends after the file
    assert np.flatnonzero(on[:, 87]).tolist() == [28, 29]


def test_repeated_notes_same_key():
    on, ln = rolls([[0.0, 0.10, 60, 80], [0.10, 0.20, 60, 80], [0.30, 0.35, 60, 80]], 40)
    k = 39
    assert np.flatnonzero(ln[:, k]).tolist() == list(range(0, 20)) + list(range(30, 35))
    # onsets of the first two overlap in frames 10..13 but both starts are marked
    assert on[0, k] == 1 and on[10, k] == 1 and on[30, k] == 1
    assert np.flatnonzero(on[:, k]).tolist() == [0, 1, 2, 3, 10, 11, 12, 13, 30, 31, 32, 33]


def test_out_of_range_pitches_are_ignored_and_empty_ok():
    on, ln = rolls([[0.0, 0.1, 20, 80], [0.0, 0.1, 109, 80]], 10)
    assert on.sum() == 0 and ln.sum() == 0
    on, ln = rolls([], 0)
    assert on.shape == (0, 88)


def test_chunks_keep_track_of_piece_and_time():
    x = np.arange(250 * 2).reshape(250, 2)
    c = make_chunks(x, 100)
    assert c.shape == (3, 100, 2)
    assert np.all(c[2, 50:] == 0)
    np.testing.assert_array_equal(unchunk(c, 250), x)
    idx = chunk_index(["a", "b"], [250, 100], 100)
    assert idx["piece"].tolist() == [0, 0, 0, 1]
    assert idx["start"].tolist() == [0, 100, 200, 0]
    assert idx["time"].tolist() == pytest.approx([0, 1, 2, 0])

"""Notebook 05's key code: both decoding rules written as plain loops over keys and frames.

The loops must give exactly the notes of the vectorised library (``pianolib.decode``). The
probabilities are the sample clips' label rolls made noisy (wobbly onset bumps, spurious
peaks, a length roll that flickers around its threshold), so no model is needed.
"""

import csv
import os

import numpy as np
import pytest
from conftest import SAMPLE_DIR

from pianolib import decode
from pianolib.config import FPS
from pianolib.labels import notes_to_rolls
from pianolib.midi import midi_to_notes

NOTEBOOK = "05_midi_merge.ipynb"


@pytest.fixture(scope="module")
def sample_probs():
    """``(name, onset_prob, length_prob)`` of each sample clip: noisy label rolls, float32."""
    rng = np.random.default_rng(5)
    rows = list(csv.DictReader(open(os.path.join(SAMPLE_DIR, "manifest.csv"))))
    out = []
    for r in rows:
        notes = midi_to_notes(os.path.join(SAMPLE_DIR, r["midi"]))
        onset, length = notes_to_rolls(notes, int(np.ceil(float(r["duration"]) * FPS)))
        po = np.clip(0.8 * onset + rng.uniform(0, 0.45, onset.shape), 0, 1).astype(np.float32)
        pl = np.clip(0.7 * length + rng.uniform(0, 0.4, length.shape), 0, 1).astype(np.float32)
        out.append((r["item"], po, pl))
    assert len(out) == 3
    return out


@pytest.mark.parametrize("onset_threshold, length_threshold", [(0.5, 0.3), (0.3, 0.35)])
def test_loop_decode_series_equals_the_library(key_code, sample_probs, onset_threshold,
                                               length_threshold):
    for name, po, pl in sample_probs:
        mine = key_code["decode_series"](po, pl, onset_threshold, length_threshold)
        library = decode.decode_series(po, pl, onset_threshold, length_threshold)
        assert len(library) > 50, name  # a real note list, not an empty one
        assert np.array_equal(mine, library), name


@pytest.mark.parametrize("min_frames", [1, 3, 5])
@pytest.mark.parametrize("reonset", [False, True])
@pytest.mark.parametrize("partial_onset", [0.0, 0.8])
def test_loop_decode_notes_equals_the_library(key_code, sample_probs, min_frames, reonset,
                                              partial_onset):
    for name, po, pl in sample_probs:
        for onset_threshold in (0.3, 0.6):
            kw = dict(onset_threshold=onset_threshold, length_threshold=0.3,
                      min_frames=min_frames, reonset=reonset, clear_onset=0.95,
                      partial_onset=partial_onset)
            mine = key_code["decode_notes"](po, pl, **kw)
            library = decode.decode_notes(po, pl, **kw)
            assert len(library) > 50, name
            assert np.array_equal(mine, library), (name, kw)


def test_loop_partial_ghosts_equals_the_library(key_code, sample_probs):
    """The notebook's rule drops the same peaks as pianolib.decode.partial_ghosts, and some."""
    assert key_code["PARTIAL_KEYS"] == decode.PARTIAL_KEYS
    assert key_code["PARTIAL_FRAMES"] == decode.PARTIAL_FRAMES
    for name, po, _ in sample_probs:
        peak = po >= 0.3
        peak[1:] &= po[1:] > po[:-1]
        peak[:-1] &= po[:-1] >= po[1:]
        f, k = np.nonzero(peak)
        for partial_onset in (0.0, 0.7, 0.9):
            mine = key_code["partial_ghosts"](f.tolist(), k.tolist(), po[f, k].tolist(),
                                              partial_onset)
            library = decode.partial_ghosts(f, k, po[f, k], partial_onset)
            assert np.array_equal(mine, library), (name, partial_onset)
            assert (library.sum() > 10) == (partial_onset > 0), (name, partial_onset)


def test_loops_equal_the_library_on_random_rolls_with_ties(key_code):
    """Short random rolls, values rounded to 0.1 so that ties and exact thresholds occur."""
    for seed in range(60):
        rng = np.random.default_rng(seed)
        shape = (int(rng.integers(1, 30)), int(rng.integers(1, 30)))  # keys: partials too
        po = np.round(rng.uniform(0, 1, shape), 1)
        pl = np.round(rng.uniform(0, 1, shape), 1)
        assert np.array_equal(key_code["decode_series"](po, pl, 0.5, 0.3),
                              decode.decode_series(po, pl, 0.5, 0.3)), seed
        for min_frames in (0, 2):
            for reonset, partial_onset in ((False, 0.0), (True, 0.0), (False, 0.9),
                                           (True, 0.9)):
                kw = dict(min_frames=min_frames, reonset=reonset, clear_onset=0.8,
                          partial_onset=partial_onset)
                assert np.array_equal(key_code["decode_notes"](po, pl, 0.5, 0.3, **kw),
                                      decode.decode_notes(po, pl, 0.5, 0.3, **kw)), seed


def test_the_toy_roll_shows_what_the_notebook_says(key_code):
    onset, length = key_code["toy_roll"]()
    assert onset.shape == length.shape == (12, 88)
    assert sorted(key_code["TOY_KEYS"]) == [60, 64, 67, 72]
    series = key_code["decode_series"](onset, length, 0.5, 0.3)
    ours = key_code["decode_notes"](onset, length, 0.5, 0.3, min_frames=3)
    assert np.array_equal(series, decode.decode_series(onset, length, 0.5, 0.3))
    assert np.array_equal(ours, decode.decode_notes(onset, length, 0.5, 0.3, min_frames=3))
    frames = {}
    for label, notes in (("series", series), ("ours", ours)):
        for p in (60, 64, 67, 72):
            frames[label, p] = [(round(a * FPS), round(b * FPS)) for a, b, q, _ in notes
                                if q == p]
    assert frames["series", 60] == [(1, 10)]             # the repeated C4 merged
    assert frames["ours", 60] == [(1, 6), (6, 10)]       # ... and split
    assert frames["series", 64] == [] and frames["ours", 64] == [(3, 6)]  # the short E4
    assert frames["series", 67] == [(3, 12)] and frames["ours", 67] == [(5, 12)]  # wide bump
    assert frames["series", 72] == [] and frames["ours", 72] == [(8, 12)]  # late length
    reonset = key_code["decode_notes"](onset, length, 0.5, 0.3, min_frames=3, reonset=True)
    assert np.sum(reonset[:, 2] == 60) == 1  # the re-onset rule merges C4 again (no dip)

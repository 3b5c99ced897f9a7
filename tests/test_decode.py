import numpy as np
import pytest

from pianolib import decode
from pianolib.decode import decode_notes, decode_series, partial_ghosts


def roll(frames=100):
    return np.zeros((frames, 88), np.float32)


def test_series_rule_onset_then_length():
    on, ln = roll(), roll()
    k = 60 - 21
    on[10:14, k] = 0.9
    ln[10:40, k] = 0.8
    ln[40:45, k] = 0.25  # below 0.3: the note has ended
    notes = decode_series(on, ln)
    np.testing.assert_allclose(notes[:, :3], [[0.10, 0.40, 60]])


def test_series_rule_needs_length_at_onset_and_ignores_onset_inside_note():
    on, ln = roll(), roll()
    on[5, 0] = 0.9  # no length there: no note
    on[20, 1], on[30, 1] = 0.9, 0.9  # second onset while the key is held: same note
    ln[20:50, 1] = 0.9
    notes = decode_series(on, ln)
    assert notes[:, 2].tolist() == [22]
    np.testing.assert_allclose(notes[0, :2], [0.20, 0.50])


def test_ours_splits_repeated_notes():
    on, ln = roll(), roll()
    on[[19, 20, 21], 5] = [0.6, 0.9, 0.7]  # one bump = one onset at its peak
    on[[39, 40, 41], 5] = [0.6, 0.8, 0.6]
    ln[20:60, 5] = 0.9
    notes = decode_notes(on, ln)
    np.testing.assert_allclose(notes[:, :3], [[0.20, 0.40, 26], [0.40, 0.60, 26]])
    assert decode_series(on, ln).shape[0] == 1  # the series' rule merges them


def test_ours_minimum_length_and_no_length_model_needed_at_onset():
    on, ln = roll(), roll()
    on[10, 3] = 0.9  # the length model misses this short note entirely
    on[50:53, 4] = [0.95, 0.3, 0.9]  # two peaks 2 frames apart: the first note is too short
    notes = decode_notes(on, ln, min_frames=3)
    assert notes[:, 2].tolist() == [24, 25]
    np.testing.assert_allclose(notes[:, :2], [[0.10, 0.13], [0.52, 0.55]])
    assert decode_notes(on, ln, min_frames=1)[:, 2].tolist() == [24, 25, 25]


def test_velocity_follows_onset_strength_and_empty_inputs():
    on, ln = roll(), roll()
    on[10, 0], on[10, 1] = 0.55, 1.0
    v = decode_notes(on, ln)[:, 3]
    assert v[0] < v[1] <= 127
    assert decode_notes(roll(0), roll(0)).shape == (0, 4)
    assert decode_series(roll(), roll()).shape == (0, 4)


def test_note_running_to_the_end_of_the_roll():
    on, ln = roll(50), roll(50)
    on[45, 10] = 0.9
    ln[45:, 10] = 0.9
    np.testing.assert_allclose(decode_notes(on, ln)[:, :2], [[0.45, 0.50]])
    np.testing.assert_allclose(decode_series(on, ln)[:, :2], [[0.45, 0.50]])


def test_reonset_rule_drops_a_double_onset_but_keeps_a_real_repeat():
    from pianolib.decode import decode_notes

    n = 60
    on, ln = np.zeros((n, 88)), np.zeros((n, 88))
    ln[5:50, 40] = 0.9                          # one long held note on key 40 ...
    on[5, 40], on[9, 40] = 0.9, 0.6             # ... with a second, weaker bump 40 ms later
    ln[5:20, 50], ln[30:45, 50] = 0.9, 0.9      # key 50: played twice, silent in between
    on[5, 50], on[30, 50] = 0.9, 0.6
    ln[5:50, 60] = 0.9                          # key 60: struck again, clearly, while held
    on[5, 60], on[25, 60] = 0.9, 0.95
    plain = decode_notes(on, ln, 0.5, 0.3, 3)
    rule = decode_notes(on, ln, 0.5, 0.3, 3, reonset=True)
    count = lambda notes, key: int(np.sum(notes[:, 2] == key + 21))  # noqa: E731
    assert [count(plain, k) for k in (40, 50, 60)] == [2, 2, 2]
    assert [count(rule, k) for k in (40, 50, 60)] == [1, 2, 2]
    long_note = rule[rule[:, 2] == 61][0]
    assert long_note[1] - long_note[0] == pytest.approx(0.45)  # the merged note lasts


def test_partial_rule_drops_a_weak_octave_ghost_but_keeps_a_clear_octave():
    on, ln = roll(), roll()
    c4 = 60 - 21
    on[20, c4] = 0.95  # a struck C4 ...
    on[21, c4 + 12] = 0.6  # ... and a weak peak on its octave partial, one frame later
    on[20, c4 + 19] = 0.97  # a twelfth stronger than C4: not a partial of it
    on[60, c4] = 0.9
    on[60, c4 + 12] = 0.85  # a played octave with a clear onset of its own
    on[80, c4 + 24] = 0.6  # a weak note with nothing below it
    ln[:, :] = 0.9
    pitches = lambda notes: sorted(notes[:, 2].astype(int).tolist())  # noqa: E731
    assert pitches(decode_notes(on, ln, partial_onset=0.8)) == [60, 60, 72, 79, 84]
    assert pitches(decode_notes(on, ln)) == [60, 60, 72, 72, 79, 84]  # off by default
    # the weak octave 3 frames away is another attack: kept
    on2 = on.copy()
    on2[21, c4 + 12], on2[23, c4 + 12] = 0.0, 0.6
    assert pitches(decode_notes(on2, ln, partial_onset=0.8)) == [60, 60, 72, 72, 79, 84]


def test_partial_ghosts_looks_at_octave_twelfth_and_double_octave_only():
    for step, dropped in [(12, True), (19, True), (24, True), (7, False), (11, False)]:
        f, k = np.array([10, 11]), np.array([30, 30 + step])
        p = np.array([0.9, 0.5])
        assert partial_ghosts(f, k, p, 0.8).tolist() == [False, dropped]
        assert not partial_ghosts(f, k, p, 0.0).any()
        assert not partial_ghosts(f, k, np.array([0.5, 0.9]), 0.8).any()  # stronger above


def test_partial_rule_looks_both_ways_in_time_and_matches_the_training_offsets():
    from pianolib.models import PARTIALS

    assert decode.PARTIAL_KEYS == PARTIALS  # the decoder's rule and the loss's hard negatives
    for dt, dropped in [(-2, True), (-1, True), (0, True), (1, True), (2, True), (3, False),
                        (-3, False)]:
        f, k = np.array([10, 10 + dt]), np.array([30, 42])  # the stronger one first or after
        assert partial_ghosts(f, k, np.array([0.9, 0.5]), 0.8).tolist() == [False, dropped]

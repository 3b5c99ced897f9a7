"""Merging the Onset and Length models' outputs into notes, and notes into MIDI.

Two decoders, both vectorised over frames and keys (no Python loop over the roll):

* :func:`decode_series` - the original series' rule: a note starts where the onset
  probability reaches 0.5 (and the length model agrees the key sounds there) and lasts while
  the length probability stays at or above 0.3;
* :func:`decode_notes` - our improved rule: onsets are *peaks* of the onset probability, a new
  onset inside a held note ends that note (repeated notes), the length model only decides
  how long a note lasts, notes shorter than a minimum are dropped, and the velocity comes from
  the onset strength.

Notebook: 05_midi_merge.ipynb
"""

from __future__ import annotations

import numpy as np

from .config import FPS, MIN_MIDI
from .midi import empty_notes, sort_notes


def _next_below(length_prob: np.ndarray, threshold: float, frames: np.ndarray,
                keys: np.ndarray) -> np.ndarray:
    """For each ``(frame, key)`` query, the first frame at or after it where ``length < threshold``
    (``len(length_prob)`` if there is none).

    One binary search per query among the key's below-threshold frames: memory is one column
    at a time (an hour of audio has 360,000 frames x 88 keys), and the work is vectorised per
    key - a loop over the 88 keys, never over frames.
    """
    n = len(length_prob)
    out = np.full(len(frames), n, dtype=np.int64)
    for key in np.unique(keys):
        sel = keys == key
        below = np.flatnonzero(length_prob[:, key] < threshold)
        pos = np.searchsorted(below, frames[sel])
        found = pos < len(below)
        out[np.flatnonzero(sel)[found]] = below[pos[found]]
    return out


#: Key offsets of a note's loudest partials (octave, twelfth, double octave); also the hard
#: negatives of the onset loss (:data:`pianolib.models.PARTIALS`). Defined here: decoding must
#: not load Keras, nor :mod:`pianolib.failures` (mir_eval).
PARTIAL_KEYS = (12, 19, 24)
#: Frames either side within which a lower peak counts as the same attack (20 ms).
PARTIAL_FRAMES = 2


def partial_ghosts(f: np.ndarray, k: np.ndarray, p: np.ndarray, partial_onset: float,
                   n_keys: int = 88) -> np.ndarray:
    """Which onset peaks look like a partial of a stronger note: True = drop.

    A peak at key ``k`` is dropped when a *stronger* peak lies an octave, a twelfth or two
    octaves below it (:data:`PARTIAL_KEYS`) within :data:`PARTIAL_FRAMES` frames and the peak
    itself stays below ``partial_onset``: a played octave needs a clear onset of its own. The
    stronger peak may be dropped itself (a partial of a partial is a partial: over a loud C3, a
    weak G4 and a weaker G5 both go). Our own rule, not a library's: it is the decoder side of
    the hard negatives of :class:`pianolib.models.WeightedBCE` (``data/bench/extra-notes.md``:
    the octave is where we invent most notes). Vectorised over peaks: a sorted code
    ``frame * 88 + key`` per peak, looked up for each offset and frame shift (15 look-ups, no
    loop over peaks).

    Notebook: 05_midi_merge.ipynb

    Args:
        f, k, p: Frames, keys and probabilities of the onset peaks.
        partial_onset: Probability a peak over a stronger partial-parent needs (0: keep all).
        n_keys: Keys per frame.

    Returns:
        Boolean array, one per peak.
    """
    drop = np.zeros(len(f), bool)
    if partial_onset <= 0 or len(f) < 2:
        return drop
    code = f.astype(np.int64) * n_keys + k
    order = np.argsort(code)
    code_sorted, p_sorted = code[order], p[order]
    weak = p < partial_onset
    for step in PARTIAL_KEYS:
        for dt in range(-PARTIAL_FRAMES, PARTIAL_FRAMES + 1):
            ok = weak & (k >= step) & ~drop  # (peaks already dropped need no second look)
            q = (f[ok].astype(np.int64) + dt) * n_keys + k[ok] - step
            pos = np.minimum(np.searchsorted(code_sorted, q), len(code_sorted) - 1)
            found = (code_sorted[pos] == q) & (p_sorted[pos] > p[ok])
            drop[np.flatnonzero(ok)[found]] = True
    return drop


def velocity_at(velocity_prob: np.ndarray, frames: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """MIDI velocities (1-127) of notes starting at ``frames`` on ``keys``.

    The Velocity model predicts ``velocity / 127`` on onset frames; each note takes the mean of
    its first two frames (the decoded onset peak mostly sits on the label's second or third frame,
    measured in notebook 07; the model was trained on the first four).

    Notebook: 07_velocity_and_pedal.ipynb
    """
    frames = np.asarray(frames, dtype=np.int64)
    nxt = np.minimum(frames + 1, len(velocity_prob) - 1)
    v = 0.5 * (velocity_prob[frames, keys] + velocity_prob[nxt, keys])
    return np.clip(np.rint(127 * v), 1, 127)


def decode_pedal(pedal_prob: np.ndarray, threshold: float = 0.5, min_frames: int = 5,
                 fps: float = FPS) -> np.ndarray:
    """Sustain-pedal down/up intervals from the Pedal model's per-frame probability.

    The pedal is down where the probability reaches ``threshold``; ups shorter than
    ``min_frames`` are bridged (a flicker is not a pedal change; a pianist's quickest
    re-pedalling lifts for a little longer: in the 1,000 performances of our data 5.5 % of pedal
    ups last under 50 ms, the median 139 ms) and downs shorter than ``min_frames`` dropped.
    Vectorised with ``np.diff`` over the frames.

    Notebook: 07_velocity_and_pedal.ipynb

    Args:
        pedal_prob: ``(frames,)`` or ``(frames, 1)`` probabilities.
        threshold: Probability at which the pedal counts as down.
        min_frames: Shortest pedal up and pedal down kept, in frames.
        fps: Frames per second.

    Returns:
        ``(k, 2)`` down/up times in seconds (the format of :func:`pianolib.midi.pedal_intervals`).
    """
    down = np.asarray(pedal_prob).reshape(-1) >= threshold
    change = np.diff(np.concatenate([[0], down.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(change == 1), np.flatnonzero(change == -1)
    if len(starts) == 0:
        return np.zeros((0, 2))
    # bridge short ups: a new interval starts only after a gap of min_frames or more
    gap_ok = np.concatenate([[True], starts[1:] - stops[:-1] >= min_frames])
    starts = starts[gap_ok]
    stops = stops[np.concatenate([gap_ok[1:], [True]])]
    keep = stops - starts >= min_frames
    return np.stack([starts[keep], stops[keep]], axis=1) / fps


def _notes_from(frames, keys, ends, strength, fps, velocity_prob=None) -> np.ndarray:
    if len(frames) == 0:
        return empty_notes()
    if velocity_prob is not None:
        vel = velocity_at(velocity_prob, frames, keys)
    else:  # no Velocity model: the onset strength stands in (the series used 100)
        vel = np.clip(np.rint(20 + 107 * strength), 1, 127)
    notes = np.stack([frames / fps, ends / fps, keys + MIN_MIDI, vel], axis=1).astype(float)
    return sort_notes(notes)


def decode_series(
    onset_prob: np.ndarray, length_prob: np.ndarray, onset_threshold: float = 0.5,
    length_threshold: float = 0.3, fps: float = FPS, velocity_prob: np.ndarray | None = None,
) -> np.ndarray:
    """The series' merge rule (the reference decoder).

    A note starts on each frame where the onset probability rises to ``onset_threshold`` and
    the length probability is at least ``length_threshold``; it ends on the first later frame
    where the length probability falls below ``length_threshold``. A second onset while the key
    is held does not start a new note.

    Notebook: 05_midi_merge.ipynb

    Args:
        onset_prob: ``(frames, 88)`` onset probabilities.
        length_prob: ``(frames, 88)`` length probabilities.
        onset_threshold: Onset threshold (0.5 in the series).
        length_threshold: Length threshold (0.3 in the series).
        fps: Frames per second.

    Returns:
        Note list ``(n, 4)``: onset s, offset s, MIDI pitch, velocity.
    """
    on = onset_prob >= onset_threshold
    rising = on & ~np.vstack([np.zeros((1, on.shape[1]), bool), on[:-1]])
    active = length_prob >= length_threshold
    start = rising & active
    # drop onsets that fall inside a note already held since an earlier start
    held_before = np.vstack([np.zeros((1, on.shape[1]), bool), active[:-1]])
    run_id = np.cumsum(~held_before, axis=0)  # frames of one continuous held run share an id
    f, k = np.nonzero(start)
    if len(f) == 0:
        return empty_notes()
    first = np.ones(len(f), bool)
    order = np.lexsort((f, k))
    f, k = f[order], k[order]
    same_run = (k[1:] == k[:-1]) & (run_id[f[1:], k[1:]] == run_id[f[:-1], k[:-1]])
    first[1:] = ~same_run
    f, k = f[first], k[first]
    ends = _next_below(length_prob, length_threshold, f, k)
    return _notes_from(f, k, ends, onset_prob[f, k], fps, velocity_prob)


def decode_notes(
    onset_prob: np.ndarray, length_prob: np.ndarray, onset_threshold: float = 0.5,
    length_threshold: float = 0.3, min_frames: int = 3, fps: float = FPS,
    reonset: bool = False, clear_onset: float = 0.9, velocity_prob: np.ndarray | None = None,
    partial_onset: float = 0.0,
) -> np.ndarray:
    """Our decoder: peak-picked onsets, repeated notes split, minimum length, velocity.

    Onsets are the local maxima (over time, per key) of the onset probability that reach
    ``onset_threshold`` - one note per onset bump, even when the bump is several frames wide.
    A note then lasts while the length probability stays at or above ``length_threshold``,
    at least ``min_frames`` frames and never past the next onset on the same key. Notes
    shorter than ``min_frames`` (where the next onset comes sooner) are dropped.

    Notebook: 05_midi_merge.ipynb

    Args:
        onset_prob: ``(frames, 88)`` onset probabilities.
        length_prob: ``(frames, 88)`` length probabilities.
        onset_threshold: Minimum peak onset probability.
        length_threshold: Length probability below which a note ends.
        min_frames: Minimum note length in frames.
        fps: Frames per second.
        reonset: The re-onset rule (as in Onsets and Frames): a key that is still sounding
            restarts only if its length probability dipped below ``length_threshold`` since
            the previous onset peak, or if the new peak is clear (``>= clear_onset``);
            otherwise the second peak is a double onset on one attack and is dropped.
        clear_onset: Onset probability that restarts a sounding key without a dip.
        velocity_prob: ``(frames, 88)`` output of the Velocity model (notebook 07); without
            it, velocities come from the onset strength.
        partial_onset: A peak over a stronger one an octave, twelfth or double octave below
            needs this probability (:func:`partial_ghosts`; 0: the rule is off).

    Returns:
        Note list ``(n, 4)``.
    """
    n = len(onset_prob)
    if velocity_prob is not None and np.shape(velocity_prob) != np.shape(onset_prob):
        raise ValueError(f"velocity_prob has shape {np.shape(velocity_prob)}, onset_prob "
                         f"{np.shape(onset_prob)}: they must come from the same frames")
    if n == 0:
        return empty_notes()
    # local maxima over time: above the previous frame, at least the next one (in place, so
    # only one boolean roll is ever allocated)
    peak = onset_prob >= onset_threshold
    peak[1:] &= onset_prob[1:] > onset_prob[:-1]
    peak[:-1] &= onset_prob[:-1] >= onset_prob[1:]
    f, k = np.nonzero(peak)
    if len(f) == 0:
        return empty_notes()
    if partial_onset > 0:
        ghost = partial_ghosts(f, k, onset_prob[f, k], partial_onset, onset_prob.shape[1])
        f, k = f[~ghost], k[~ghost]
    order = np.lexsort((f, k))
    f, k = f[order], k[order]
    if reonset and len(f) > 1:
        # frames below the length threshold, counted per key: a dip between two peaks shows
        # as a difference of the running count (vectorised, no loop over frames)
        below = np.cumsum(length_prob < length_threshold, axis=0, dtype=np.int32)
        same = k[1:] == k[:-1]
        dipped = below[np.maximum(f[1:] - 1, 0), k[1:]] > below[f[:-1], k[:-1]]
        clear = onset_prob[f[1:], k[1:]] >= clear_onset
        drop = np.concatenate([[False], same & ~dipped & ~clear])
        f, k = f[~drop], k[~drop]
    next_onset = np.full(len(f), n)
    same = k[1:] == k[:-1]
    next_onset[:-1][same] = f[1:][same]
    # the note sounds from its onset; the length model ends it after the first min_frames
    probe = np.minimum(f + min_frames, n - 1)
    ends = np.where(f + min_frames >= n, n, _next_below(length_prob, length_threshold, probe, k))
    ends = np.minimum(np.maximum(ends, f + min_frames), next_onset)
    ends = np.minimum(ends, n)
    keep = ends - f >= max(min_frames, 1)
    return _notes_from(f[keep], k[keep], ends[keep], onset_prob[f[keep], k[keep]], fps,
                       velocity_prob)


def notes_to_roll(notes: np.ndarray, n_frames: int, fps: float = FPS) -> np.ndarray:
    """Binary ``(n_frames, 88)`` roll of where decoded notes sound (for frame metrics, plots)."""
    from .labels import notes_to_rolls

    return notes_to_rolls(notes, n_frames, fps=fps)[1]


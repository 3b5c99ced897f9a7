"""Onset and length piano rolls on the 88-key, 100-frames-per-second grid.

Frame rounding (the convention of the whole project): frame ``i`` is centred at ``i / FPS``
seconds (the CQT's centred frames). A note from ``t_on`` to ``t_off`` starts on frame
``on = round(t_on * FPS)`` and ends *before* frame ``off = max(round(t_off * FPS), on + 1)``:

* the **length** roll is 1 on frames ``on .. off - 1`` (every note covers at least one frame);
* the **onset** roll is 1 on frames ``on .. on + 3`` (the first 4 frames of the note, as in the
  original series), even when the note itself is shorter;
* anything outside ``0 .. n_frames - 1`` is cut off (notes before 0 or after the end).

Two notes on the same key touch in the length roll; their onsets stay distinct in the onset
roll, which is why the decoder needs the onset model to split repeated notes.

Notebook: 01_data_and_preprocessing.ipynb
"""

from __future__ import annotations

import numpy as np

from .config import FPS, MIN_MIDI, N_KEYS, ONSET_FRAMES


def note_frames(notes: np.ndarray, fps: float = FPS) -> tuple[np.ndarray, np.ndarray]:
    """Start and end frames (end exclusive) of each note, by the rounding rule above."""
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 4)
    on = np.rint(notes[:, 0] * fps).astype(np.int64)
    off = np.maximum(np.rint(notes[:, 1] * fps).astype(np.int64), on + 1)
    return on, off


def _interval_roll(start: np.ndarray, stop: np.ndarray, key: np.ndarray, n_frames: int):
    """Roll that is 1 on ``[start, stop)`` of ``key``; vectorised with a difference array."""
    start = np.clip(start, 0, n_frames)
    stop = np.clip(stop, 0, n_frames)
    keep = stop > start
    diff = np.zeros((n_frames + 1, N_KEYS), dtype=np.int32)
    np.add.at(diff, (start[keep], key[keep]), 1)
    np.add.at(diff, (stop[keep], key[keep]), -1)
    return (np.cumsum(diff[:-1], axis=0) > 0).astype(np.float32)


def notes_to_rolls(
    notes: np.ndarray, n_frames: int, onset_frames: int = ONSET_FRAMES, fps: float = FPS
) -> tuple[np.ndarray, np.ndarray]:
    """Onset and length rolls of a note list.

    Notebook: 01_data_and_preprocessing.ipynb

    Args:
        notes: Note list ``(n, 4)`` (onset s, offset s, MIDI pitch, velocity).
        n_frames: Number of frames of the roll (usually the CQT's).
        onset_frames: Frames marked at the start of each note.
        fps: Frames per second.

    Returns:
        ``(onset_roll, length_roll)``, each float32 ``(n_frames, 88)`` of 0/1.
    """
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 4)
    key = notes[:, 2].astype(np.int64) - MIN_MIDI
    valid = (key >= 0) & (key < N_KEYS)
    on, off = note_frames(notes[valid], fps)
    key = key[valid]
    onset_roll = _interval_roll(on, on + onset_frames, key, n_frames)
    length_roll = _interval_roll(on, off, key, n_frames)
    return onset_roll, length_roll


def velocity_roll(
    notes: np.ndarray, n_frames: int, onset_frames: int = ONSET_FRAMES, fps: float = FPS
) -> np.ndarray:
    """Velocity targets: ``velocity / 127`` on each note's onset frames, 0 everywhere else.

    The Velocity model is trained only where this roll is non-zero (a MIDI velocity is at
    least 1), as in Onsets and Frames: how hard a key was struck is heard at its onset, and
    "no note" has no velocity. Where two onsets of one key overlap, the later note wins.

    Notebook: 07_velocity_and_pedal.ipynb

    Args:
        notes: Note list ``(n, 4)`` (onset s, offset s, MIDI pitch, velocity 1-127).
        n_frames: Number of frames of the roll.
        onset_frames: Frames marked at the start of each note (as the onset roll).
        fps: Frames per second.

    Returns:
        float32 ``(n_frames, 88)`` in ``[0, 1]``.
    """
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 4)
    key = notes[:, 2].astype(np.int64) - MIN_MIDI
    valid = (key >= 0) & (key < N_KEYS) & (notes[:, 3] > 0)
    notes, key = notes[valid], key[valid]
    on, _ = note_frames(notes, fps)
    order = np.argsort(on, kind="stable")  # later notes written last: they win overlaps
    frames = on[order, None] + np.arange(onset_frames)[None, :]
    keys = np.repeat(key[order, None], onset_frames, axis=1)
    values = np.repeat(np.clip(notes[order, 3], 1, 127)[:, None] / 127.0, onset_frames, axis=1)
    inside = (frames >= 0) & (frames < n_frames)
    roll = np.zeros((n_frames, N_KEYS), dtype=np.float32)
    roll[frames[inside], keys[inside]] = values[inside]
    return roll


def pedal_roll(pedal: np.ndarray, n_frames: int, fps: float = FPS) -> np.ndarray:
    """Sustain-pedal targets: 1 on every frame the pedal is down, shape ``(n_frames, 1)``.

    Same rounding as notes: a pedal pressed at ``t_on`` and lifted at ``t_off`` covers frames
    ``round(t_on * fps) .. max(round(t_off * fps), on + 1) - 1``.

    Notebook: 07_velocity_and_pedal.ipynb

    Args:
        pedal: Down/up intervals ``(k, 2)`` in seconds (:func:`pianolib.midi.pedal_intervals`).
        n_frames: Number of frames.
        fps: Frames per second.
    """
    pedal = np.asarray(pedal, dtype=np.float64).reshape(-1, 2)
    on = np.clip(np.rint(pedal[:, 0] * fps).astype(np.int64), 0, n_frames)
    off = np.clip(np.maximum(np.rint(pedal[:, 1] * fps).astype(np.int64), on + 1), 0, n_frames)
    diff = np.zeros(n_frames + 1, dtype=np.int32)
    np.add.at(diff, on, 1)
    np.add.at(diff, off, -1)
    return (np.cumsum(diff[:-1]) > 0).astype(np.float32)[:, None]

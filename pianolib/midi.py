"""Reading and writing MIDI as note lists, with the sustain pedal.

A *note list* is a float array of shape ``(n, 4)`` with columns
``onset_s, offset_s, midi_pitch, velocity``, sorted by onset then pitch.

Notebook: 01_data_and_preprocessing.ipynb
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pretty_midi

from .config import MAX_MIDI, MIN_MIDI
from .errors import MidiError
from .files import atomic_write

SUSTAIN_CC = 64


def empty_notes() -> np.ndarray:
    """An empty note list, shape ``(0, 4)``."""
    return np.zeros((0, 4), dtype=np.float64)


def sort_notes(notes: np.ndarray) -> np.ndarray:
    """Sort a note list by onset, then pitch."""
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 4)
    return notes[np.lexsort((notes[:, 2], notes[:, 0]))]


def load_midi(path: str | os.PathLike) -> pretty_midi.PrettyMIDI:
    """Read a MIDI file, turning any parser failure into a :class:`MidiError` naming the file.

    Notebook: 01_data_and_preprocessing.ipynb
    """
    path = Path(path)
    if not path.is_file():
        raise MidiError(f"{path}: MIDI file not found")
    if path.stat().st_size == 0:
        raise MidiError(f"{path}: empty MIDI file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:
        raise MidiError(f"{path}: not a readable MIDI file ({type(exc).__name__}: {exc})") from None


def pedal_intervals(pm: pretty_midi.PrettyMIDI) -> np.ndarray:
    """Sustain-pedal (CC64 >= 64) down/up times of all non-drum instruments, shape ``(k, 2)``.

    Pedals of several instruments are merged (a pedal is down if any instrument holds it).
    """
    ivs = []
    end = pm.get_end_time()
    for inst in pm.instruments:
        if inst.is_drum:
            continue
        # by time only (a stable sort): two messages on one tick keep the file's order
        ccs = sorted(((c.time, c.value) for c in inst.control_changes
                      if c.number == SUSTAIN_CC), key=lambda c: c[0])
        if not ccs:
            continue
        t = np.array([c[0] for c in ccs])
        down = np.array([c[1] >= 64 for c in ccs], dtype=np.int8)
        change = np.diff(np.concatenate([[0], down, [0]]))
        t_ext = np.concatenate([t, [max(end, t[-1])]])
        starts = t_ext[np.flatnonzero(change == 1)]
        stops = t_ext[np.flatnonzero(change == -1)]
        ivs.append(np.stack([starts, stops], axis=1))
    iv = np.concatenate(ivs) if ivs else np.zeros((0, 2))
    if len(iv) == 0:  # no pedal, or pedal messages that never press it
        return np.zeros((0, 2))
    iv = iv[np.argsort(iv[:, 0])]
    # merge overlapping intervals (vectorised: a new group starts past the running max end)
    run_end = np.maximum.accumulate(iv[:, 1])
    new_group = np.concatenate([[True], iv[1:, 0] > run_end[:-1]])
    gid = np.cumsum(new_group) - 1
    starts = iv[new_group, 0]
    stops = np.zeros(gid[-1] + 1)
    np.maximum.at(stops, gid, iv[:, 1])
    return np.stack([starts, stops], axis=1)


def apply_sustain(notes: np.ndarray, pedal: np.ndarray) -> np.ndarray:
    """Extend note ends while the sustain pedal is down (the MAESTRO-model convention).

    A note released while the pedal is down sounds until the pedal is lifted, or until the
    same key is struck again, whichever comes first.

    Notebook: 04_length_model.ipynb

    Args:
        notes: Note list ``(n, 4)``.
        pedal: Pedal down/up intervals ``(k, 2)`` that do not overlap (as from
            :func:`pedal_intervals` or :func:`pianolib.decode.decode_pedal`).

    Returns:
        A new note list with extended offsets.
    """
    notes = sort_notes(notes).copy()
    pedal = np.asarray(pedal, dtype=np.float64).reshape(-1, 2)
    if len(notes) == 0 or len(pedal) == 0:
        return notes
    pedal = pedal[np.argsort(pedal[:, 0], kind="stable")]  # by press time (not overlapping)
    off = notes[:, 1]
    idx = np.searchsorted(pedal[:, 0], off, side="right") - 1
    held = (idx >= 0) & (pedal[np.maximum(idx, 0), 1] > off)
    sustained = np.where(held, pedal[np.maximum(idx, 0), 1], off)
    # next onset of the same key
    order = np.lexsort((notes[:, 0], notes[:, 2]))
    p, on = notes[order, 2], notes[order, 0]
    nxt = np.full(len(notes), np.inf)
    same = p[1:] == p[:-1]
    nxt[:-1][same] = on[1:][same]
    next_onset = np.empty(len(notes))
    next_onset[order] = nxt
    notes[:, 1] = np.maximum(off, np.minimum(sustained, next_onset))
    return notes


def midi_to_notes(
    pm: pretty_midi.PrettyMIDI | str | os.PathLike, sustain: bool = False
) -> np.ndarray:
    """All non-drum notes of a MIDI file as one piano note list.

    Notes outside the piano range (MIDI 21-108) are dropped with a warning.

    Notebook: 01_data_and_preprocessing.ipynb

    Args:
        pm: A ``PrettyMIDI`` object or a path to a MIDI file.
        sustain: Extend note ends with the sustain pedal (see :func:`apply_sustain`).

    Returns:
        Note list ``(n, 4)``: onset, offset, pitch, velocity.
    """
    source = ""
    if not isinstance(pm, pretty_midi.PrettyMIDI):
        source = f"{pm}: "
        pm = load_midi(pm)
    rows = [
        (n.start, n.end, n.pitch, n.velocity)
        for inst in pm.instruments
        if not inst.is_drum
        for n in inst.notes
    ]
    notes = np.array(rows, dtype=np.float64).reshape(-1, 4)
    in_range = (notes[:, 2] >= MIN_MIDI) & (notes[:, 2] <= MAX_MIDI)
    if not np.all(in_range):
        warnings.warn(
            f"{source}dropped {np.count_nonzero(~in_range)} notes outside the piano range "
            f"{MIN_MIDI}-{MAX_MIDI}",
            stacklevel=2,
        )
        notes = notes[in_range]
    notes = notes[notes[:, 1] > notes[:, 0]]
    if sustain:
        notes = apply_sustain(notes, pedal_intervals(pm))
    return sort_notes(notes)


def notes_to_midi(notes: np.ndarray, program: int = 0,
                  pedal: np.ndarray | None = None) -> pretty_midi.PrettyMIDI:
    """A one-track ``PrettyMIDI`` (acoustic grand piano by default) from a note list.

    Notebooks: 05_midi_merge.ipynb, 07_velocity_and_pedal.ipynb

    Args:
        notes: Note list ``(n, 4)``.
        program: General MIDI program.
        pedal: Sustain-pedal down/up intervals ``(k, 2)`` in seconds, written as CC64 127 / 0
            (read back by :func:`pedal_intervals`); None or empty: no pedal messages.
    """
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(program=program, name="Piano")
    if pedal is not None:
        for down, up in np.asarray(pedal, dtype=np.float64).reshape(-1, 2):
            inst.control_changes += [pretty_midi.ControlChange(SUSTAIN_CC, 127, float(down)),
                                     pretty_midi.ControlChange(SUSTAIN_CC, 0, float(up))]
    for on, off, pitch, vel in sort_notes(notes):
        inst.notes.append(
            pretty_midi.Note(
                velocity=int(np.clip(round(vel), 1, 127)),
                pitch=int(pitch),
                start=float(on),
                end=float(off),
            )
        )
    pm.instruments.append(inst)
    return pm


def write_midi(
    pm: pretty_midi.PrettyMIDI, path: str | os.PathLike, force: bool = False
) -> Path:
    """Write a MIDI file atomically; refuses to overwrite unless ``force``.

    Notebook: 05_midi_merge.ipynb
    """
    path = Path(path)
    with atomic_write(path, force) as tmp:
        pm.write(str(tmp))
    return path

"""Labelled recordings: pair audio with its labels, read and check the labels, build a dataset.

A folder of real (or sampled-piano) recordings with note labels is the best training material
there is: the features come from real piano sound, the labels from the TSV or MIDI file. Two
layouts are understood, and the pairing is always by *relative path inside one folder*, never
by file name across the tree (two ``a.wav`` in different subfolders never share a label):

* MAPS: ``flac/NAME.flac`` + ``tsv/NAME.tsv`` (onset s, offset s, MIDI note, velocity), or the
  two files side by side;
* audio + same-stem MIDI: ``x.wav`` + ``x.mid`` side by side, or ``audio/x.wav`` +
  ``midi/x.mid`` (sustain pedal applied to the MIDI notes).

Notebook: 01_data_and_preprocessing.ipynb
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from .config import FPS, MAX_MIDI, MIN_MIDI, SEED, SR
from .errors import PianolibError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
LABEL_SUFFIXES = (".tsv", ".mid", ".midi")
#: Folder names that hold audio, and where their labels live instead (MAPS-like layouts).
AUDIO_FOLDERS = ("flac", "wav", "audio", "ogg", "mp3")
LABEL_FOLDERS = ("tsv", "midi", "labels", "mid")
#: MAPS instrument codes: the piano is the last ``_``-separated part of a MAPS file stem.
MAPS_PIANOS = ("AkPnBcht", "AkPnBsdf", "AkPnCGdD", "AkPnStgb", "SptkBGAm", "SptkBGCl",
               "ENSTDkCl", "ENSTDkAm", "StbgTGd2")


class LabelError(PianolibError):
    """A label file that is missing, empty, unparsable or out of range."""


def read_tsv_labels(path: str | os.PathLike) -> np.ndarray:
    """Notes of a MAPS-style TSV (onset s, offset s, MIDI note[, velocity]), checked line by line.

    Lines starting with ``#`` and a header line of words are skipped. Every other line must have
    3 or 4 numbers, a note inside the piano (21-108), an offset after its onset and a velocity
    of 1-127 (64 when absent).

    Notebook: 01_data_and_preprocessing.ipynb

    Raises:
        LabelError: Naming the file and the first bad line.
    """
    from .midi import sort_notes

    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise LabelError(f"{path}: label file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"{path}: cannot read labels ({exc})") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = re.split(r"[\t,; ]+", s)
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            if not rows and n <= 1:  # a header line of column names
                continue
            raise LabelError(f"{path}:{n}: not numbers: {s[:60]!r}") from None
        if len(vals) not in (3, 4):
            raise LabelError(f"{path}:{n}: expected onset, offset, note[, velocity]; "
                             f"got {len(vals)} fields")
        on, off, note = vals[:3]
        vel = vals[3] if len(vals) == 4 else 64.0
        if not np.isfinite(vals).all():
            raise LabelError(f"{path}:{n}: non-finite value")
        if note != int(note) or not MIN_MIDI <= note <= MAX_MIDI:
            raise LabelError(f"{path}:{n}: note {note:g} outside the piano ({MIN_MIDI}-{MAX_MIDI})")
        if on < 0 or off <= on:
            raise LabelError(f"{path}:{n}: offset {off:g} s is not after onset {on:g} s")
        if not 0 < vel <= 127:
            raise LabelError(f"{path}:{n}: velocity {vel:g} outside 1-127")
        rows.append((on, off, note, vel))
    if not rows:
        raise LabelError(f"{path}: no notes (empty label file)")
    return sort_notes(np.array(rows, dtype=np.float64))


def read_labels(path: str | os.PathLike, sustain: bool = True) -> np.ndarray:
    """Reference notes of a TSV file or a MIDI file (sustain pedal applied), checked.

    Notebook: 05_midi_merge.ipynb

    Raises:
        LabelError: A missing, empty, unparsable or out-of-range label file.
    """
    from .errors import MidiError
    from .midi import midi_to_notes

    path = Path(path)
    if path.suffix.lower() in (".tsv", ".txt"):
        return read_tsv_labels(path)
    if not path.is_file():
        raise LabelError(f"{path}: label file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            notes = midi_to_notes(path, sustain=sustain)
    except MidiError as exc:
        raise LabelError(str(exc)) from None
    if len(notes) == 0:
        raise LabelError(f"{path}: no notes")
    bad = (notes[:, 2] < MIN_MIDI) | (notes[:, 2] > MAX_MIDI)
    if bad.any():
        raise LabelError(f"{path}: note {int(notes[bad][0, 2])} at {notes[bad][0, 0]:.2f} s "
                         f"outside the piano ({MIN_MIDI}-{MAX_MIDI})")
    return notes


def label_candidates(audio: Path, root: Path) -> list[Path]:
    """Where the labels of ``audio`` may be: next to it, or in a sibling label folder."""
    out = [audio.with_suffix(s) for s in LABEL_SUFFIXES]
    if audio.parent != root and audio.parent.name.lower() in AUDIO_FOLDERS:
        for d in LABEL_FOLDERS:
            out += [audio.parent.parent / d / (audio.stem + s) for s in LABEL_SUFFIXES]
    return out


def find_pairs(folder: str | os.PathLike, report=None) -> list[tuple[Path, Path]]:
    """(audio, labels) pairs of a folder, matched by relative path (see the module docstring).

    Notebook: 05_midi_merge.ipynb

    Args:
        folder: The folder, searched recursively.
        report: Called with a one-line message for each audio file without labels and each
            label file without audio (default: ``warnings.warn``).

    Raises:
        PianolibError: The folder is missing or holds no pair at all.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PianolibError(f"{folder}: " + ("is not a folder" if folder.exists()
                                             else "folder not found"))
    report = report or (lambda msg: warnings.warn(msg, stacklevel=3))
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    used: set[Path] = set()
    pairs = []
    for a in files:
        if a.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        label = next((c for c in label_candidates(a, folder) if c.is_file()), None)
        if label is None:
            report(f"{a}: no labels (.tsv/.mid with the same name beside it or in tsv/, midi/)")
            continue
        used.add(label)
        pairs.append((a, label))
    for p in files:
        if p.suffix.lower() in LABEL_SUFFIXES and p not in used:
            report(f"{p}: labels without audio")
    if not pairs:
        raise PianolibError(f"{folder}: no audio files with matching .mid/.tsv labels")
    return pairs


def piano_and_piece(stem: str) -> tuple[str, str]:
    """``(instrument, piece)`` of a recording's file stem.

    A MAPS stem ``MAPS_MUS-alb_se3_AkPnBcht`` is the piece ``alb_se3`` on the piano
    ``AkPnBcht``; any other stem is its own piece on the instrument ``recording``.

    Notebook: 01_data_and_preprocessing.ipynb
    """
    parts = stem.split("_")
    if len(parts) > 1 and parts[-1] in MAPS_PIANOS:
        piece = "_".join(parts[:-1])
        piece = re.sub(r"^MAPS_[A-Z]+-", "", piece)
        return parts[-1], piece
    return "recording", stem


def labelled_features(audio: str | os.PathLike, label: str | os.PathLike,
                      max_seconds: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """``(features, notes, seconds)`` of one recording and its labels: the per-file work of
    every labelled-recording build (dataset folders here, shards in :mod:`pianolib.pipeline`).

    Reads the labels (:func:`read_labels`), decodes and resamples the audio, keeps the first
    ``max_seconds``, cuts the notes at the end of the audio, and computes the series' CQT.

    Notebook: 01_data_and_preprocessing.ipynb

    Raises:
        LabelError: Bad labels (naming the file and line).
        AudioError: Unreadable audio.
        PianolibError: Audio shorter than 1 s.
    """
    from .audio import load_audio
    from .features import compute_features

    notes = read_labels(label)
    y = load_audio(audio)
    if max_seconds:
        y = y[: int(max_seconds * SR)]
    if len(y) < SR:
        raise PianolibError(f"{audio}: shorter than 1 s")
    end = len(y) / SR
    notes = notes[notes[:, 0] < end]
    notes[:, 1] = np.minimum(notes[:, 1], end)
    return compute_features(y), notes, end


def _recording_task(args) -> dict | str:
    """Worker: read the labels and the audio of one pair, write its features. Row or warning."""
    from .datasets import write_features
    from .midi import notes_to_midi, write_midi

    audio, label, item, out, max_seconds = args
    try:
        feats, notes, seconds = labelled_features(audio, label, max_seconds)
    except PianolibError as exc:  # LabelError, AudioError, too short
        return f"skipped {Path(audio).name}: {exc}"
    out = Path(out)
    feat_path = out / "features" / f"{item}.npz"
    midi_path = out / "midi" / f"{item}.mid"
    try:
        write_features(feat_path, feats, notes)
        write_midi(notes_to_midi(notes), midi_path, force=True)
    except OSError as exc:
        return f"skipped {audio}: cannot write features ({exc.strerror})"
    return {
        "item": item, "duration": round(seconds, 3), "n_notes": len(notes),
        "min_pitch": int(notes[:, 2].min()), "max_pitch": int(notes[:, 2].max()),
        "audio": str(Path(audio).resolve()), "midi": f"midi/{item}.mid",
        "features": f"features/{item}.npz", "frames": len(feats), "fps": FPS,
    }


def build_from_recordings(
    folders: list[str | os.PathLike],
    out: str | os.PathLike,
    holdout: tuple[str, ...] = (),
    seed: int = SEED,
    force: bool = False,
    workers: int | None = None,
    max_seconds: float | None = None,
    progress: bool = True,
) -> Path:
    """A dataset folder (same layout as the rendered corpus) from labelled recordings.

    Features are computed from the recordings; labels come from their TSV/MIDI files. Splits
    are decided per *piece* (:func:`pianolib.datasets.split_of`), and a piece is the file stem
    without its MAPS piano suffix, so one piece played on several pianos stays in one split.
    Every recording of a ``holdout`` instrument goes to the split ``holdout``, and every other
    recording of a piece that the held-out instrument plays is left out, so the held-out score
    is that of an unheard piano *and* unheard pieces. The manifest refers to the original audio
    files (they are not copied). Bad items are skipped with a warning naming the file.

    Notebook: 01_data_and_preprocessing.ipynb

    Args:
        folders: Folders of audio + labels (see :func:`find_pairs`).
        out: Output dataset folder.
        holdout: Instruments (e.g. ``"SptkBGCl"``) held out of training.
        seed: Seed of the split.
        force: Replace an existing ``out``.
        workers: Processes (default: all cores).
        max_seconds: Keep only the first seconds of each recording.
        progress: Print a summary line.

    Returns:
        The output folder.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from .datasets import split_of, write_manifest
    from .files import build_folder

    msgs: list[str] = []
    pairs = [p for f in folders for p in find_pairs(f, report=msgs.append)]
    for m in msgs:
        warnings.warn(m, stacklevel=2)
    meta = []
    for audio, label in pairs:
        piano, piece = piano_and_piece(audio.stem)
        meta.append((audio, label, piano, piece))
    held_pieces = {piece for _, _, piano, piece in meta if piano in holdout}
    tasks, info = [], []
    seen: set[str] = set()
    for audio, label, piano, piece in meta:
        if piano not in holdout and piece in held_pieces:
            continue
        item = re.sub(r"[^A-Za-z0-9_.-]+", "-", audio.stem)
        while item in seen:
            item += "-2"
        seen.add(item)
        split = "holdout" if piano in holdout else split_of(f"rec-{piece}", seed)
        tasks.append((audio, label, item, None, max_seconds))
        info.append({"piece": f"rec-{piece}", "source": "recording", "title": audio.stem,
                     "soundfont": piano, "program": "", "transpose": 0, "tempo": 1.0,
                     "room": "", "split": split})
    skipped = len(pairs) - len(tasks)
    rows = []
    with build_folder(out, force) as tmp:
        tasks = [t[:3] + (str(tmp),) + t[4:] for t in tasks]
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers or os.cpu_count() or 1, mp_context=ctx) as pool:
            for res, extra in zip(pool.map(_recording_task, tasks), info):
                if isinstance(res, str):
                    warnings.warn(res, stacklevel=2)
                    continue
                rows.append({**extra, **res})
        if not rows:
            raise PianolibError(f"{', '.join(map(str, folders))}: no usable recordings")
        rows.sort(key=lambda r: r["item"])
        write_manifest(tmp / "manifest.csv", rows)
    bad = len(tasks) - len(rows)
    if progress:
        hours = sum(r["duration"] for r in rows) / 3600
        print(f"built {out}: {len(rows)} recordings, {hours:.2f} h; {bad} skipped for bad "
              f"labels or audio, {skipped} left out (pieces of the held-out instrument)")
    return Path(out)

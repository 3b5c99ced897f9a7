"""Where the music of the locally built dataset comes from.

Three kinds of *pieces*, each turned into a note list and sustain-pedal intervals:

* ``music21``: real scores of the music21 corpus (Bach chorales, Beethoven, Mozart and Haydn
  quartets, Chopin, Joplin, Schoenberg, ...), all parts merged onto one piano, with
  humanised dynamics and timing (scores have flat velocities and a metronomic pulse);
* ``midi``: any folder of MIDI files, e.g. real human performances from the MAESTRO MIDI-only
  archive (timing, dynamics and pedal as played);
* ``generated``: material that scores miss: all 88 keys, dense chords, fast repeated notes,
  very short and very long notes, the whole velocity range, pedal.

Notebook: 01_data_and_preprocessing.ipynb
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import MAX_MIDI, MIN_MIDI
from .errors import PianolibError
from .midi import empty_notes, load_midi, midi_to_notes, pedal_intervals, sort_notes

#: music21 corpus composers whose works fit a piano once merged.
MUSIC21_COMPOSERS = (
    "bach", "beethoven", "mozart", "haydn", "chopin", "joplin", "schoenberg", "handel",
    "corelli", "schubert", "beach", "monteverdi", "weber",
)
_SCORE_SUFFIXES = {".mxl", ".xml", ".musicxml", ".krn"}
MIDI_SUFFIXES = {".mid", ".midi"}


@dataclass(frozen=True)
class PieceSpec:
    """A piece to render: where it comes from and how to load it.

    Attributes:
        piece_id: Stable id of the *composition*; the train/valid/test split is decided on it,
            so several performances of one piece never straddle two splits.
        source: ``music21``, ``midi`` or ``generated``.
        ref: Path of the score or MIDI file, or the seed of a generated piece.
        title: Human-readable title.
        name: Unique name of this file when it differs from ``piece_id``.
    """

    piece_id: str
    source: str
    ref: str
    title: str
    name: str = ""

    @property
    def item_base(self) -> str:
        """Unique name of this file (several performances may share one ``piece_id``)."""
        return self.name or self.piece_id


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")[:60]


def music21_specs(composers: tuple[str, ...] = MUSIC21_COMPOSERS) -> list[PieceSpec]:
    """The music21 corpus scores of ``composers``, sorted by path.

    Notebook: 01_data_and_preprocessing.ipynb
    """
    from music21 import corpus

    specs = []
    for composer in composers:
        for path in sorted(str(p) for p in corpus.getComposer(composer)):
            p = Path(path)
            if p.suffix.lower() not in _SCORE_SUFFIXES:
                continue
            rel = "_".join(p.parts[-2:])
            specs.append(PieceSpec(f"m21-{composer}-{_slug(rel)}", "music21", path,
                                   f"{composer}: {p.parent.name}/{p.name}"))
    return specs


def midi_dir_specs(folder: str | Path, exclude: tuple[str, ...] = ()) -> list[PieceSpec]:
    """Every MIDI file under ``folder`` (recursively), sorted by path.

    Files in a subfolder share that subfolder as their piece (e.g. ASAP's
    ``Composer/Work/Piece/Performer.mid``: all performances of a piece go to one split);
    files at the top level are pieces of their own. Paths containing any string of
    ``exclude`` are left out (e.g. compositions of an evaluation set).

    Notebook: 01_data_and_preprocessing.ipynb
    """
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES
                   and not any(x in str(p.relative_to(folder)) for x in exclude))
    specs = []
    for p in files:
        rel = p.relative_to(folder)
        group = rel.parent if rel.parent != Path(".") else rel.with_suffix("")
        specs.append(PieceSpec(f"midi-{_slug(str(group))}", "midi", str(p), str(rel),
                               name=f"midi-{_slug(str(rel.with_suffix('')))}"))
    return specs


def generated_specs(n: int, seed: int = 0) -> list[PieceSpec]:
    """``n`` generated technical pieces (see :func:`generate_piece`)."""
    return [PieceSpec(f"gen-{seed}-{i:04d}", "generated", str(seed * 100_000 + i),
                      f"generated etude {i}") for i in range(n)]


def humanize(notes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Give a flat-velocity, metronomic score phrase dynamics and small timing deviations."""
    notes = np.array(notes, dtype=np.float64)
    if len(notes) == 0:
        return notes
    t = notes[:, 0]
    period = rng.uniform(6, 20)
    base = rng.uniform(50, 95) + rng.uniform(10, 30) * np.sin(2 * np.pi * t / period
                                                              + rng.uniform(0, 6.3))
    notes[:, 3] = np.clip(base + rng.normal(0, 8, len(notes)), 15, 127)
    jitter = rng.normal(0, 0.008, len(notes))
    notes[:, 0] = np.maximum(notes[:, 0] + jitter, 0)
    notes[:, 1] = np.maximum(notes[:, 1] + jitter * 0.5, notes[:, 0] + 0.03)
    # detach legato notes a little, like a pianist's finger release
    notes[:, 1] -= np.minimum(0.03, 0.2 * (notes[:, 1] - notes[:, 0]))
    return notes


def generate_piece(seed: int, duration: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
    """A technical etude covering what scores miss, as ``(notes, pedal)``.

    Sections in random order: a chromatic sweep over all 88 keys, dense chords, fast repeated
    notes, and a free melody with very short to very long notes and the whole velocity range.
    Some sections are played with the sustain pedal.

    Notebook: 01_data_and_preprocessing.ipynb
    """
    rng = np.random.default_rng(seed)
    rows: list[np.ndarray] = []
    pedal: list[tuple[float, float]] = []
    t = 0.0
    while t < duration:
        kind = rng.integers(4)
        start = t
        if kind == 0:  # sweep over all keys, random direction, step and speed
            keys = np.arange(MIN_MIDI + rng.integers(0, 3), MAX_MIDI + 1, rng.integers(1, 4))
            keys = keys[::-1] if rng.random() < 0.5 else keys
            step = rng.uniform(0.05, 0.15)
            on = t + step * np.arange(len(keys))
            dur = step * rng.uniform(0.5, 3.0)
            vel = rng.integers(20, 128, len(keys))
            rows.append(np.stack([on, on + dur, keys, vel], 1))
            t = on[-1] + dur
        elif kind == 1:  # dense chords anywhere on the keyboard
            for _ in range(rng.integers(4, 10)):
                size = rng.integers(2, 9)
                centre = rng.integers(MIN_MIDI + 12, MAX_MIDI - 12)
                keys = np.unique(np.clip(centre + rng.integers(-14, 15, size), MIN_MIDI, MAX_MIDI))
                dur = rng.choice([0.1, 0.25, 0.5, 1.0, 2.0])
                vel = np.clip(rng.normal(rng.uniform(30, 110), 10, len(keys)), 10, 127)
                rows.append(np.stack([np.full(len(keys), t), np.full(len(keys), t + dur),
                                      keys, vel], 1))
                t += dur + rng.uniform(0.0, 0.3)
        elif kind == 2:  # fast repeated notes on one or two keys
            keys = rng.integers(MIN_MIDI, MAX_MIDI + 1, rng.integers(1, 3))
            rate = rng.uniform(4, 12)
            n = rng.integers(6, 20)
            on = t + np.arange(n) / rate
            for k in keys:
                vel = rng.integers(30, 120, n)
                rows.append(np.stack([on, on + 0.6 / rate, np.full(n, k), vel], 1))
            t = on[-1] + 1 / rate
        else:  # free melody, notes from 30 ms to 3 s
            n = rng.integers(8, 24)
            centre = rng.integers(MIN_MIDI + 6, MAX_MIDI - 6)
            keys = np.clip(centre + np.cumsum(rng.integers(-5, 6, n)), MIN_MIDI, MAX_MIDI)
            dur = np.exp(rng.uniform(np.log(0.03), np.log(3.0), n))
            gap = np.exp(rng.uniform(np.log(0.05), np.log(0.6), n))
            on = t + np.concatenate([[0], np.cumsum(gap)[:-1]])
            vel = rng.integers(5, 128, n)
            rows.append(np.stack([on, on + dur, keys, vel], 1))
            t = float(np.max(on + np.minimum(dur, 1.0)))
        if rng.random() < 0.3:
            pedal.append((start, t + rng.uniform(0.1, 0.5)))
        t += rng.uniform(0.2, 0.8)
    notes = sort_notes(np.concatenate(rows)) if rows else empty_notes()
    return notes, np.array(pedal, dtype=np.float64).reshape(-1, 2)


class SourceError(PianolibError):
    """A piece whose file cannot be read: its item is skipped, the build goes on."""


def load_piece(spec: PieceSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Load the note list and sustain-pedal intervals of a piece (raises on a bad file).

    Notebook: 01_data_and_preprocessing.ipynb
    """
    if spec.source == "generated":
        return generate_piece(int(spec.ref))
    if spec.source == "midi":
        pm = load_midi(spec.ref)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            notes = midi_to_notes(pm)
        return notes, pedal_intervals(pm)
    if spec.source == "music21":
        import music21
        import pretty_midi

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cached = _cache_path(spec.ref)
            try:
                if cached.is_file():
                    data = cached.read_bytes()
                else:  # parsing a score takes 0.1-10 s: keep its MIDI for the next build
                    score = music21.corpus.parse(spec.ref)
                    data = music21.midi.translate.streamToMidiFile(score).writestr()
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
                    tmp.write_bytes(data)
                    os.replace(tmp, cached)
                pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
            except (music21.exceptions21.Music21Exception, ValueError, EOFError, IndexError,
                    KeyError, OSError) as exc:  # a score music21 or pretty_midi cannot read
                raise SourceError(f"{spec.ref}: cannot be read ({type(exc).__name__}: "
                                  f"{exc})") from None
            notes = midi_to_notes(pm)
        notes = humanize(notes, rng)
        return sort_notes(notes), np.zeros((0, 2))
    raise SourceError(f"{spec.ref}: unknown source {spec.source!r}")


def _cache_path(score_path: str) -> Path:
    """Where the MIDI of a parsed music21 score is cached (``$PIANOLIB_CACHE`` or ~/.cache)."""
    import hashlib

    root = Path(os.environ.get("PIANOLIB_CACHE", Path.home() / ".cache" / "pianolib"))
    p = Path(score_path)
    stamp = f"{p}:{p.stat().st_mtime_ns if p.exists() else 0}"
    return root / "music21" / f"{hashlib.sha1(stamp.encode()).hexdigest()}.mid"


def crop(notes: np.ndarray, pedal: np.ndarray, start: float, length: float):
    """Notes starting inside ``[start, start + length)`` and the pedal there, shifted to 0."""
    keep = (notes[:, 0] >= start) & (notes[:, 0] < start + length)
    out = notes[keep].copy()
    out[:, :2] -= start
    ped = pedal.copy()
    ped = ped[(ped[:, 1] > start) & (ped[:, 0] < start + length)] - start
    ped = np.clip(ped, 0, None)
    if len(out):
        ped[:, 1] = np.minimum(ped[:, 1], out[:, 1].max())
    return out, ped[ped[:, 1] > ped[:, 0]]

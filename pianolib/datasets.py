"""Building, splitting and loading the locally rendered piano dataset.

Layout of a built dataset folder::

    manifest.csv          one row per rendered item (written last: no manifest, not complete)
    audio/<item>.flac     16 kHz mono audio
    midi/<item>.mid       the notes and pedal that were rendered
    features/<item>.npz   ``features`` (frames, 264) float16 log-CQT, ``notes`` (n, 4) labels

Notebook: 01_data_and_preprocessing.ipynb
"""

from __future__ import annotations

import csv
import errno
import hashlib
import multiprocessing
import os
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
import pretty_midi

from .audio import write_audio
from .augment import ROOM_AUGMENTS, transform_notes
from .chunks import chunk_index, make_chunks
from .config import SEED, SEQ_LEN, SR
from .errors import PianolibError
from .features import compute_features
from .files import atomic_write, build_folder, write_csv
from .labels import notes_to_rolls
from .midi import apply_sustain, notes_to_midi, write_midi
from .sources import (
    PieceSpec,
    crop,
    generated_specs,
    load_piece,
    midi_dir_specs,
    music21_specs,
)
from .synth import PIANO_PROGRAMS, available_soundfonts

MANIFEST_FIELDS = [
    "item", "piece", "source", "title", "soundfont", "program", "transpose", "tempo",
    "room", "duration", "n_notes", "min_pitch", "max_pitch", "split", "audio", "midi",
    "features",
]
SPLITS = ("train", "valid", "test")
#: Splits a dataset may also have: recordings of an instrument held out of training.
EXTRA_SPLITS = ("holdout",)


def split_of(piece_id: str, seed: int = SEED, fractions=(0.8, 0.1, 0.1)) -> str:
    """Train/valid/test split of a *piece* (never of a chunk), stable under a seed.

    The split depends only on the piece id and the seed, so every rendering of a piece (other
    soundfont, transposition, tempo) lands in the same split and adding pieces never moves
    others.

    Notebook: 01_data_and_preprocessing.ipynb
    """
    h = hashlib.sha1(f"{seed}:{piece_id}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    if u < fractions[0]:
        return "train"
    return "valid" if u < fractions[0] + fractions[1] else "test"


def save_item(
    out: Path, item: str, y: np.ndarray, notes: np.ndarray, pedal: np.ndarray,
    sustain_labels: bool = True,
) -> dict:
    """Write one item's audio, MIDI and features atomically; return its manifest fields."""
    pm = notes_to_midi(notes)
    for s, e in pedal:
        pm.instruments[0].control_changes += [
            pretty_midi.ControlChange(64, 127, float(s)), pretty_midi.ControlChange(64, 0, float(e))
        ]
    label_notes = apply_sustain(notes, pedal) if sustain_labels else notes
    feats = compute_features(y)
    paths = {k: out / k / f"{item}.{ext}" for k, ext in
             (("audio", "flac"), ("midi", "mid"), ("features", "npz"))}
    write_audio(paths["audio"], y, force=True)
    write_midi(pm, paths["midi"], force=True)
    write_features(paths["features"], feats, label_notes)
    return {
        "duration": round(len(y) / SR, 3),
        "n_notes": len(notes),
        "min_pitch": int(notes[:, 2].min()) if len(notes) else "",
        "max_pitch": int(notes[:, 2].max()) if len(notes) else "",
        **{k: str(p.relative_to(out)) for k, p in paths.items()},
    }


def _render_task(args) -> dict | str:
    """Worker: load, crop, augment, render and save one item. Returns a row or a warning."""
    spec, item, soundfont, program, seed, max_seconds, room, out, room_kind = args
    from .synth import render_notes

    rng = np.random.default_rng(seed)
    try:
        notes, pedal = load_piece(spec, rng)
    except PianolibError as exc:  # a file that cannot be read: skip it, the build goes on
        return f"skipped {item}: {exc}"
    if len(notes) == 0:
        return f"skipped {spec.ref}: no piano notes"
    if max_seconds and notes[-1, 0] > max_seconds:
        start = float(rng.uniform(0, notes[-1, 0] - max_seconds))
        notes, pedal = crop(notes, pedal, start, max_seconds)
    info = {"tempo": 1.0, "transpose": 0}
    if spec.source != "generated":
        notes, pedal, info = transform_notes(notes, pedal, rng)
    y = render_notes(notes, soundfont, pedal, program)
    room_info = {}
    if room:
        y, room_info = ROOM_AUGMENTS[room_kind](y, rng)
    try:
        row = save_item(Path(out), item, y, notes, pedal)
    except OSError as exc:  # e.g. a file name the file system refuses; disk full is fatal
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise
        return f"skipped {item}: cannot save ({exc.strerror}: {exc.filename})"
    row.update(
        item=item, piece=spec.piece_id, source=spec.source, title=spec.title,
        soundfont=soundfont, program=program, transpose=info["transpose"],
        tempo=round(info["tempo"], 3), room=";".join(f"{k}={v}" for k, v in room_info.items()),
    )
    return row


def _interleave(groups: list[tuple[list[PieceSpec], float]], rng) -> list[PieceSpec]:
    """Shuffle each group, then merge them so each keeps roughly its weight along the list."""
    keyed = []
    for specs, weight in groups:
        order = rng.permutation(len(specs))
        for rank, i in enumerate(order):
            keyed.append(((rank + rng.random()) / weight, specs[i]))
    keyed.sort(key=lambda kv: kv[0])
    return [s for _, s in keyed]


def plan_pieces(
    midi_dirs: list[str | Path] = (), seed: int = SEED, use_music21: bool = True,
    generated: int = 400,
    exclude: tuple[str, ...] = (),
    composers: tuple[str, ...] | None = None,
) -> list[PieceSpec]:
    """The ordered list of pieces a build draws from until it has enough hours.

    Without MIDI folders: 80 % music21 scores, 20 % generated etudes (by count). With MIDI
    folders (real performances): 60 % performances, 25 % scores, 15 % generated.
    """
    rng = np.random.default_rng(seed)
    midi = [s for d in midi_dirs for s in midi_dir_specs(d, tuple(exclude))]
    scores = (music21_specs(composers) if composers else music21_specs()) if use_music21 else []
    gen = generated_specs(generated, seed)
    if midi:
        groups = [(midi, 0.6), (scores, 0.25), (gen, 0.15)]
    else:
        groups = [(scores, 0.8), (gen, 0.2)]
    return _interleave([(s, w) for s, w in groups if s], rng)


def build_corpus(
    out: str | Path,
    hours: float = 0.5,
    midi_dirs: list[str | Path] = (),
    soundfonts: list[str] | None = None,
    renditions: int = 1,
    max_seconds: float = 60.0,
    room: float = 0.5,
    seed: int = SEED,
    workers: int | None = None,
    force: bool = False,
    use_music21: bool = True,
    generated: int = 400,
    exclude: tuple[str, ...] = (),
    composers: tuple[str, ...] | None = None,
    progress: bool = True,
    room_kind: str = "recorded",
) -> Path:
    """Render a labelled piano dataset of about ``hours`` hours into ``out``.

    Pieces are drawn (see :func:`plan_pieces`) until the audio adds up to ``hours``; each is
    rendered ``renditions`` times with different soundfonts, piano programs, tempo,
    transposition and (with probability ``room``) room/microphone augmentation. The build
    goes to a temporary folder that is renamed to ``out`` only when complete.

    Notebook: 01_data_and_preprocessing.ipynb

    Args:
        out: Output folder; must not exist unless ``force``.
        hours: Target hours of audio.
        midi_dirs: Folders of MIDI files (e.g. real performances) to draw from.
        soundfonts: Soundfont names; default all available.
        renditions: Renderings per piece (each with another soundfont where possible).
        max_seconds: Longest excerpt taken from one piece (a random window).
        room: Probability of room/microphone augmentation per item.
        seed: Seed of everything random in the build.
        workers: Processes (default: all cores).
        force: Replace an existing ``out``.
        use_music21: Draw from the music21 corpus.
        generated: Number of generated etudes to draw from.
        exclude: Leave out MIDI files whose path (inside its folder) contains one of these.
        composers: music21 composers to draw from (default: all of ``MUSIC21_COMPOSERS``).
        progress: Show a progress bar.
        room_kind: ``"recorded"`` (pyroomacoustics + pedalboard, the default) or
            ``"synthetic"`` (the first hand-written version, kept for the ablation).

    Returns:
        The output folder.
    """
    if room_kind not in ROOM_AUGMENTS:
        raise PianolibError(f"room_kind {room_kind!r}: use one of {sorted(ROOM_AUGMENTS)}")
    out = Path(out)
    if out.exists() and not force:
        raise PianolibError(f"{out}: already exists; pass --force to rebuild it")
    soundfonts = list(soundfonts or available_soundfonts())
    if not soundfonts:
        from .synth import find_soundfont

        find_soundfont("FluidR3_GM")  # raises with the package to install
    with build_folder(out, force) as tmp:
        n, skipped, elapsed, workers = _build_into(
            tmp, hours, midi_dirs, soundfonts, renditions, max_seconds, room, seed, workers,
            use_music21, generated, exclude, composers, progress, room_kind)
    if progress:
        total = dataset_summary(out)["all"]["hours"] * 3600
        print(f"built {out}: {n} items, {total / 3600:.2f} h of audio in {elapsed:.0f} s "
              f"({total / max(elapsed, 1e-9):.0f}x real time with {workers} workers); "
              f"{skipped} items skipped")
    return out


def _build_into(tmp, hours, midi_dirs, soundfonts, renditions, max_seconds, room, seed,
                workers, use_music21, generated, exclude, composers, progress, room_kind):
    """Render items into ``tmp`` (a private folder of :func:`build_corpus`); write its manifest."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    pieces = plan_pieces(midi_dirs, seed, use_music21, generated, exclude, composers)
    target = hours * 3600.0
    workers = workers or os.cpu_count() or 1

    def tasks():
        order = 0
        for spec in pieces:
            fonts = rng.permutation(soundfonts)
            for r in range(renditions):
                item = f"{spec.item_base}-r{r}"
                yield order, (spec, item, str(fonts[r % len(fonts)]),
                              int(rng.choice(PIANO_PROGRAMS)), int(rng.integers(2**31)),
                              max_seconds, bool(rng.random() < room), str(tmp), room_kind)
                order += 1

    rows: list[dict] = []
    total, skipped = 0.0, 0
    t0 = time.perf_counter()
    bar = tqdm(total=round(target), unit="s audio", disable=not progress)
    task_iter = tasks()
    # "spawn": forking a process that has already started TensorFlow's or BLAS's threads
    # (a notebook, a test session) can deadlock the child
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init) as pool:
        pending = set()
        exhausted = False
        while True:
            while not exhausted and total < target and len(pending) < 2 * workers:
                try:
                    order, task = next(task_iter)
                    fut = pool.submit(_render_task, task)
                    fut.order = order
                    pending.add(fut)
                except StopIteration:
                    exhausted = True
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                res = fut.result()
                if isinstance(res, str):
                    warnings.warn(res, stacklevel=2)
                    skipped += 1
                    continue
                res["order"] = fut.order
                rows.append(res)
                total += res["duration"]
                bar.update(round(res["duration"]))
    bar.close()
    elapsed = time.perf_counter() - t0
    rows = _deterministic_prefix(rows, target, tmp)
    for row in rows:
        row["split"] = split_of(row["piece"], seed)
    rows.sort(key=lambda r: r["item"])
    if not rows:
        raise PianolibError("no item could be rendered (see the warnings above)")
    write_manifest(tmp / "manifest.csv", rows)
    return len(rows), skipped, elapsed, workers


def _deterministic_prefix(rows: list[dict], target: float, folder: Path) -> list[dict]:
    """Keep the shortest prefix, in task order, that reaches ``target`` seconds.

    Workers finish in an order that depends on timing; the tasks are submitted in a fixed
    order, so cutting by task order makes the built set depend only on the seed. The files of
    the extra items are removed.
    """
    rows = sorted(rows, key=lambda r: r["order"])
    total, keep = 0.0, len(rows)
    for i, r in enumerate(rows):
        total += r["duration"]
        if total >= target:
            keep = i + 1
            break
    for r in rows[keep:]:
        for k in ("audio", "midi", "features"):
            (folder / r[k]).unlink(missing_ok=True)
    return rows[:keep]


def _worker_init() -> None:
    warnings.simplefilter("ignore")


def write_manifest(path: Path, rows: list[dict]) -> None:
    """Write the manifest CSV atomically."""
    write_csv(path, rows, MANIFEST_FIELDS, force=True)


def write_features(path: Path, features: np.ndarray, notes: np.ndarray) -> None:
    """Write one item's features (float16) and label notes atomically, as the loaders expect."""
    with atomic_write(path, force=True) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, features=features.astype(np.float16), notes=notes.astype(np.float32))


def as_folders(data: str | Path | list) -> list[Path]:
    """A dataset folder or a list of them, as a list of paths."""
    return [Path(data)] if isinstance(data, (str, Path)) else [Path(d) for d in data]


def read_manifest(folder: str | Path) -> list[dict]:
    """Rows of a built dataset's manifest.

    Notebook: 01_data_and_preprocessing.ipynb
    """
    path = Path(folder) / "manifest.csv"
    if not path.is_file():
        raise PianolibError(f"{folder}: no manifest.csv; build it with `python -m pianolib data`")
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def load_items(folder: str | Path, split: str | None = None) -> list[dict]:
    """Features and label notes of the items of one split (or all).

    Notebook: 03_onset_model.ipynb

    Returns:
        Dicts with ``item``, ``piece``, ``features`` (frames, 264) float32 and ``notes``.
    """
    folder = Path(folder)
    items = []
    for row in read_manifest(folder):
        if split and row["split"] != split:
            continue
        with np.load(folder / row["features"]) as z:
            items.append({**row, "features": z["features"].astype(np.float32),
                          "notes": z["notes"].astype(np.float64)})
    return items


def key_release_notes(notes: np.ndarray, raw: np.ndarray, tolerance: float = 0.02) -> np.ndarray:
    """The label notes with each end moved back to its key's release (no sustain extension).

    A built item stores its notes with the sustain pedal applied (the sounding ends); its MIDI
    file holds the played notes (key releases) and the pedal. Each stored note is matched to
    the played note of the same pitch with the nearest onset (within ``tolerance`` s: MIDI
    ticks round the times); its end becomes the earlier of the two ends. Unmatched notes keep
    their end. Vectorised: one ``searchsorted`` over (pitch, onset) keys.

    Notebook: 07_velocity_and_pedal.ipynb

    Args:
        notes: Stored label notes ``(n, 4)`` (sustained ends).
        raw: Notes of the item's MIDI without sustain, ``(m, 4)``.
        tolerance: Largest onset difference of a match, in seconds.
    """
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 4).copy()
    raw = np.asarray(raw, dtype=np.float64).reshape(-1, 4)
    if not len(notes) or not len(raw):
        return notes
    span = max(notes[:, 0].max(), raw[:, 0].max()) + 10.0  # keys: pitch * span + onset
    rk = raw[:, 2] * span + raw[:, 0]
    order = np.argsort(rk)
    rk, raw = rk[order], raw[order]
    nk = notes[:, 2] * span + notes[:, 0]
    hi = np.clip(np.searchsorted(rk, nk), 0, len(rk) - 1)
    lo = np.clip(hi - 1, 0, len(rk) - 1)
    best = np.where(np.abs(rk[lo] - nk) < np.abs(rk[hi] - nk), lo, hi)
    match = (raw[best, 2] == notes[:, 2]) & (np.abs(raw[best, 0] - notes[:, 0]) <= tolerance)
    ends = np.minimum(notes[:, 1], raw[best, 1])
    notes[match, 1] = np.maximum(ends[match], notes[match, 0] + 1e-3)
    return notes


def with_key_release_labels(folder: str | Path, items: list[dict]) -> list[dict]:
    """Items whose notes end at key release (:func:`key_release_notes`), for a Length model
    that learns the key and leaves the pedal to the Pedal model.

    Recordings labelled by TSV note lists (MAPS) keep their notes: their labels say nothing
    about the pedal.

    Notebook: 07_velocity_and_pedal.ipynb
    """
    from .midi import midi_to_notes

    out = []
    for it in items:
        if it.get("source") != "recording" and it.get("midi"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                raw = midi_to_notes(Path(folder) / it["midi"], sustain=False)
            it = {**it, "notes": key_release_notes(it["notes"], raw)}
        out.append(it)
    return out


def make_training_arrays(items: list[dict], seq_len: int = SEQ_LEN):
    """Chunk items into model-ready arrays.

    Notebook: 03_onset_model.ipynb

    Returns:
        ``(X, onset, length, index)``: X ``(n, seq_len, 264)``, the two label arrays
        ``(n, seq_len, 88)`` and the chunk index (piece, start frame, time).
    """
    xs, ons, lens = [], [], []
    for it in items:
        feats = it["features"]
        onset_roll, length_roll = notes_to_rolls(it["notes"], len(feats))
        xs.append(make_chunks(feats, seq_len))
        ons.append(make_chunks(onset_roll, seq_len))
        lens.append(make_chunks(length_roll, seq_len))
    index = chunk_index([it["item"] for it in items], [len(it["features"]) for it in items],
                        seq_len)
    if not xs:
        raise PianolibError("no items to make training arrays from")
    return np.concatenate(xs), np.concatenate(ons), np.concatenate(lens), index


def dataset_summary(folder: str | Path) -> dict:
    """Hours, pieces, items, notes and pitch range per split of a built dataset."""
    rows = read_manifest(folder)
    out = {}
    present = {r["split"] for r in rows}
    for split in SPLITS + tuple(s for s in EXTRA_SPLITS if s in present) + ("all",):
        sel = [r for r in rows if split == "all" or r["split"] == split]
        pitches = [int(r[k]) for r in sel for k in ("min_pitch", "max_pitch") if r[k] != ""]
        out[split] = {
            "items": len(sel),
            "pieces": len({r["piece"] for r in sel}),
            "hours": round(sum(float(r["duration"]) for r in sel) / 3600, 3),
            "notes": sum(int(r["n_notes"]) for r in sel),
            "pitch_range": (min(pitches), max(pitches)) if pitches else None,
        }
    return out


#: The committed sample clips: (piece spec, soundfont, program, room augmentation).
SAMPLE_CLIPS = (
    (PieceSpec("m21-bach-bwv66_6", "music21", "bach/bwv66.6", "Bach: chorale BWV 66.6"),
     "FluidR3_GM", 0, False),
    (PieceSpec("m21-joplin-maple_leaf_rag", "music21", "joplin/maple_leaf_rag",
               "Joplin: Maple Leaf Rag"), "MuseScore_General", 0, True),
    (PieceSpec("gen-sample-0", "generated", "777", "generated etude"), "TimGM6mb", 1, False),
)


def build_samples(out: str | Path = "data/sample", seconds: float = 20.0, seed: int = SEED,
                  force: bool = False) -> Path:
    """Render the short sample clips committed in ``data/sample`` (a tiny dataset folder).

    Notebook: 01_data_and_preprocessing.ipynb
    """
    out = Path(out)
    if out.exists() and not force:
        raise PianolibError(f"{out}: sample clips already exist; pass --force to rebuild them")
    from music21 import corpus

    with build_folder(out, force) as tmp:
        rows = []
        for i, (spec, font, program, room) in enumerate(SAMPLE_CLIPS):
            if spec.source == "music21":
                spec = PieceSpec(spec.piece_id, spec.source, str(corpus.getWork(spec.ref)),
                                 spec.title)
            row = _render_task((spec, spec.piece_id, font, program, seed + i, seconds, room,
                                str(tmp), "recorded"))
            if isinstance(row, str):  # every sample clip is needed: no partial set
                raise PianolibError(row)
            row["split"] = "test"
            rows.append(row)
        write_manifest(tmp / "manifest.csv", rows)
    return out

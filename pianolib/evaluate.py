"""Scoring transcriptions the way the field does, with ``mir_eval``.

* **note F1**: a note is correct when its pitch matches and its onset is within 50 ms
  (``mir_eval.transcription``, ``offset_ratio=None``);
* **note-with-offset F1**: also its offset within 20 % of the note's length or 50 ms,
  whichever is larger;
* **frame F1**: per 10-ms frame, which keys sound (the ``mir_eval.multipitch`` definition,
  computed with a vectorised comparison of rolls; a test checks they agree).

Scores are computed per piece and averaged over pieces.

Notebook: 05_midi_merge.ipynb
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import mir_eval
import numpy as np

from .config import FPS, HOP_LENGTH, MIN_MIDI, SR
from .errors import PianolibError
from .files import write_csv
from .labels import notes_to_rolls
from .midi import sort_notes
from .recordings import AUDIO_SUFFIXES, LabelError, find_pairs, read_labels, read_tsv_labels  # noqa: F401

METRICS = ("note_precision", "note_recall", "note_f1", "note_offset_f1", "frame_precision",
           "frame_recall", "frame_f1")


def _roll_to_mir(roll: np.ndarray):
    times = np.arange(len(roll)) / FPS
    freqs = [mir_eval.util.midi_to_hz(np.flatnonzero(r) + MIN_MIDI) for r in roll]
    return times, freqs


def note_intervals(notes: np.ndarray) -> np.ndarray:
    """``(onset, offset)`` of a note list for ``mir_eval``, which needs positive lengths."""
    iv = notes[:, :2].copy()
    iv[:, 1] = np.maximum(iv[:, 1], iv[:, 0] + 1e-3)
    return iv


def folder_pairs(folder: str | os.PathLike, split: str = "test"):
    """``(audio, labels)`` pairs and names of a built dataset's split or of a folder.

    Notebook: 05_midi_merge.ipynb

    Raises:
        PianolibError: An unknown split, or nothing to evaluate.
    """
    if (Path(folder) / "manifest.csv").is_file():
        pairs, names = dataset_pairs(folder, split)
    else:
        pairs, names = find_pairs(folder), None
    if not pairs:
        raise PianolibError(f"{folder}: nothing to evaluate in split {split!r}")
    return pairs, names


def evaluate_notes(ref: np.ndarray, est: np.ndarray, n_frames: int | None = None) -> dict:
    """Note, note-with-offset and frame scores of estimated notes against reference notes.

    Notebook: 05_midi_merge.ipynb

    Args:
        ref: Reference note list ``(n, 4)``.
        est: Estimated note list ``(m, 4)``.
        n_frames: Frames of the frame-level comparison (default: to the last note end).

    Returns:
        A dict with the keys of :data:`METRICS`.
    """
    ref, est = sort_notes(ref), sort_notes(est)
    out = {}
    ri, rp = note_intervals(ref), mir_eval.util.midi_to_hz(ref[:, 2])
    ei, ep = note_intervals(est), mir_eval.util.midi_to_hz(est[:, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(ref) and len(est):
            p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
                ri, rp, ei, ep, offset_ratio=None)
            _, _, fo, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep)
        else:
            p = r = f = fo = float(len(ref) == len(est))  # both empty: perfect
        out.update(note_precision=p, note_recall=r, note_f1=f, note_offset_f1=fo)
        if n_frames is None:
            ends = np.concatenate([ref[:, 1], est[:, 1], [0]])
            n_frames = int(np.ceil(ends.max() * FPS)) + 1
        ref_roll = notes_to_rolls(ref, n_frames)[1] > 0
        est_roll = notes_to_rolls(est, n_frames)[1] > 0
        fp_, fr_, ff_ = frame_scores(ref_roll, est_roll)
        out.update(frame_precision=fp_, frame_recall=fr_, frame_f1=ff_)
    return {k: float(v) for k, v in out.items()}


def frame_scores(ref_roll: np.ndarray, est_roll: np.ndarray) -> tuple[float, float, float]:
    """Frame precision, recall and F1 of two boolean ``(frames, 88)`` rolls.

    The same numbers as ``mir_eval.multipitch.metrics`` (precision = correct key-frames /
    estimated key-frames, recall = correct / reference, pooled over all frames) on our
    semitone grid, computed with one vectorised comparison instead of a loop over frames
    (a test checks the two agree).

    Notebook: 05_midi_merge.ipynb
    """
    tp = float(np.sum(ref_roll & est_roll))
    n_est, n_ref = float(np.sum(est_roll)), float(np.sum(ref_roll))
    if n_est == 0 and n_ref == 0:
        return 1.0, 1.0, 1.0
    p = tp / n_est if n_est else 0.0
    r = tp / n_ref if n_ref else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


# Label files and pairing live in pianolib.recordings; these names stay importable from here.
read_tsv_notes = read_tsv_labels


def evaluate_pairs(transcriber, pairs: list[tuple[Path, Path]], names: list[str] | None = None,
                   progress: bool = False, report=None) -> list[dict]:
    """Transcribe each audio file and score it; one dict per piece (with timing).

    All labels are read and checked first, so a bad label file is found before any model runs.
    A pair whose labels or audio cannot be read is reported (one line, naming the file) and
    skipped; the others are scored.

    Notebook: 05_midi_merge.ipynb

    Args:
        transcriber: A :class:`pianolib.transcribe.Transcriber`.
        pairs: ``(audio, labels)`` paths.
        names: Piece names (default: the audio file stems).
        progress: Print one line per piece.
        report: Called with a message for each skipped pair (default: ``warnings.warn``).
    """
    from .audio import load_audio
    from .errors import AudioError

    report = report or (lambda msg: warnings.warn(msg, stacklevel=3))
    names = names or [Path(a).stem for a, _ in pairs]
    refs = []
    for (audio, label), name in zip(pairs, names):
        try:
            refs.append((audio, read_labels(label), name))
        except LabelError as exc:
            report(f"skipped {audio}: {exc}")
    rows = []
    for audio, ref, name in refs:
        try:
            y = load_audio(audio)
        except AudioError as exc:
            report(f"skipped: {exc}")
            continue
        t0 = time.perf_counter()
        est = transcriber.transcribe_audio(y)
        seconds = time.perf_counter() - t0
        n_frames = int(len(y) / HOP_LENGTH) + 1
        row = {"piece": name, "duration": len(y) / SR, "seconds": seconds,
               "n_ref": len(ref), "n_est": len(est), **evaluate_notes(ref, est, n_frames)}
        rows.append(row)
        if progress:
            print(f"{row['piece'][:40]:40s} note F1 {row['note_f1']:.3f}  "
                  f"offset F1 {row['note_offset_f1']:.3f}  frame F1 {row['frame_f1']:.3f}")
    return rows


def dataset_pairs(folder: str | os.PathLike, split: str | None = "test"):
    """(audio, MIDI) pairs of a built dataset's split, and their item names.

    Notebook: 05_midi_merge.ipynb

    Raises:
        PianolibError: ``split`` is not a split of this dataset (naming those it has).
    """
    from .datasets import read_manifest

    folder = Path(folder)
    manifest = read_manifest(folder)
    present = sorted({r["split"] for r in manifest})
    if split not in (None, "all") and split not in present:
        raise PianolibError(f"{folder}: no split {split!r}; it has {', '.join(present)} (or all)")
    rows = [r for r in manifest if split in (None, "all") or r["split"] == split]
    return [(folder / r["audio"], folder / r["midi"]) for r in rows], [r["item"] for r in rows]


def summarize(rows: list[dict]) -> dict:
    """Mean of each metric over pieces, plus total audio seconds and speed."""
    if not rows:
        return {}
    out = {k: float(np.mean([r[k] for r in rows])) for k in METRICS}
    dur = sum(r["duration"] for r in rows)
    out.update(pieces=len(rows), audio_seconds=dur,
               speed_x=dur / max(sum(r["seconds"] for r in rows), 1e-9))
    return out


def evaluate_folder(folder: str | os.PathLike, transcriber=None, split: str = "test",
                    out_csv: str | os.PathLike | None = None, progress: bool = True,
                    force: bool = False, models: str | os.PathLike | None = None,
                    decoder: str | None = None, reonset: bool = False) -> dict:
    """Score a transcriber on a built dataset's split or on a folder of audio + labels.

    Notebook: 05_midi_merge.ipynb

    Args:
        folder: A built dataset (with ``manifest.csv``) or a folder of audio + labels.
        transcriber: Default: the shipped models.
        split: The split of a built dataset (``all`` for every item).
        out_csv: Write per-piece scores here (atomically).
        progress: Print one line per piece.
        force: Overwrite an existing ``out_csv``.
        models: Model folder of the default transcriber (default: the shipped models); the
            models are loaded only after the folder, split and output have been checked.
        decoder: ``"ours"`` or ``"series"`` for the default transcriber.
        reonset: Decode with the re-onset rule (default transcriber).

    Returns:
        :func:`summarize` of the per-piece scores.

    Raises:
        PianolibError: A missing folder, an unknown split, an existing ``out_csv`` without
            ``force``, or no piece that could be scored.
    """
    from .files import check_writable

    if out_csv:
        check_writable(out_csv, force)
    pairs, names = folder_pairs(folder, split)
    if transcriber is None:
        from .transcribe import DEFAULT_MODELS, Transcriber

        transcriber = Transcriber(models or DEFAULT_MODELS, reonset=reonset or None)
        if decoder:
            transcriber.use_decoder(decoder)
    rows = evaluate_pairs(transcriber, pairs, names, progress)
    if not rows:
        raise PianolibError(f"{folder}: no piece could be scored (see the warnings above)")
    if out_csv:
        write_csv(out_csv, rows, force=force)
    return summarize(rows)


def average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Average precision of frame-level scores against 0/1 targets (threshold-free).

    Useful early in training, when no probability reaches the decoder's thresholds yet but
    the ranking of frames already shows what the model has learned.

    Notebook: 02_architecture_cnn_rnn_lstm.ipynb
    """
    t = np.asarray(y_true).ravel() > 0.5
    s = np.asarray(y_score, dtype=np.float64).ravel()
    if not t.any():
        return float("nan")
    order = np.argsort(-s, kind="stable")
    hits = t[order]
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    return float(np.sum(precision[hits]) / hits.sum())


def matched_reference_notes(ref: np.ndarray, est: np.ndarray) -> np.ndarray:
    """Which reference notes (sorted by :func:`pianolib.midi.sort_notes`) an estimate found.

    Onset within 50 ms and the same pitch, ``mir_eval``'s onset-only matching: the reference
    side of :func:`pianolib.failures.match`.

    Notebook: 06_evaluation_and_comparison.ipynb
    """
    from .failures import match

    return match(sort_notes(ref), sort_notes(est))[0]


def note_context(ref: np.ndarray) -> dict:
    """Per reference note: pitch, polyphony at its onset, and local note rate (notes/s).

    Polyphony counts the notes sounding at the onset (including the note); the note rate
    counts onsets within ±1 s. Used to ask *where* a transcriber fails.

    Notebook: 06_evaluation_and_comparison.ipynb
    """
    ref = sort_notes(ref)
    on, off = ref[:, 0], ref[:, 1]
    poly = np.sum((on[None, :] <= on[:, None] + 1e-9) & (off[None, :] > on[:, None]), axis=1)
    rate = np.sum(np.abs(on[None, :] - on[:, None]) <= 1.0, axis=1) / 2.0
    return {"pitch": ref[:, 2].astype(int), "polyphony": poly, "notes_per_s": rate}

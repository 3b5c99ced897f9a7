"""Where note ends and velocities go wrong: measurements before building models for them.

Onset-only note F1 is 0.83 on our rendered test split while note-with-offset F1 is 0.49, and
our MIDI velocities come from the onset model's confidence. Before adding models (a key/pedal
split, an Offset head, a Velocity model), measure:

* :func:`offset_deviations` - for every note whose onset was found (same pitch, onset within
  50 ms, ``mir_eval``'s matching), how far its end is from the true end, in seconds;
* :func:`offset_report` - by register, the median deviation and the share of ends that are
  too early / right / too late under ``mir_eval``'s offset rule (within 20 % of the note's
  length or 50 ms, whichever is larger);
* :func:`velocity_scores` - ``mir_eval.transcription_velocity`` note F1 with velocity
  (onset-only and with offsets); it rescales our velocities to the reference's by linear
  regression, so the scale of ours does not matter, only their order.

``python -m pianolib note-ends FOLDER`` prints and writes the report.

Notebook: 06_evaluation_and_comparison.ipynb
"""

from __future__ import annotations

import warnings

import mir_eval
import numpy as np

from .config import MAX_MIDI, MIN_MIDI
from .evaluate import note_intervals
from .midi import sort_notes

#: Registers of the report, by MIDI pitch (low end inclusive).
REGISTERS = {"low (A0-B2)": (MIN_MIDI, 48), "middle (C3-B4)": (48, 72),
             "high (C5-C8)": (72, MAX_MIDI + 1)}


def offset_deviations(ref: np.ndarray, est: np.ndarray) -> np.ndarray:
    """``(pitch, reference length s, estimated end - reference end s)`` per onset-matched note.

    Notebook: 06_evaluation_and_comparison.ipynb
    """
    ref, est = sort_notes(ref), sort_notes(est)
    if not len(ref) or not len(est):
        return np.zeros((0, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pairs = mir_eval.transcription.match_notes(
            note_intervals(ref), mir_eval.util.midi_to_hz(ref[:, 2]), note_intervals(est),
            mir_eval.util.midi_to_hz(est[:, 2]), offset_ratio=None)
    if not pairs:
        return np.zeros((0, 3))
    r, e = np.array(pairs).T
    return np.stack([ref[r, 2], ref[r, 1] - ref[r, 0], est[e, 1] - ref[r, 1]], axis=1)


def offset_report(deviations: np.ndarray) -> dict:
    """Per register and overall: notes, median deviation (ms), shares early / right / late.

    Notebook: 06_evaluation_and_comparison.ipynb
    """
    dev = np.asarray(deviations, dtype=float).reshape(-1, 3)
    out = {}
    for name, (lo, hi) in {"all": (0, 128), **REGISTERS}.items():
        d = dev[(dev[:, 0] >= lo) & (dev[:, 0] < hi)]
        if not len(d):
            continue
        tol = np.maximum(0.05, 0.2 * d[:, 1])
        out[name] = {
            "notes": int(len(d)),
            "median_ms": round(float(np.median(d[:, 2])) * 1000, 1),
            "early": round(float(np.mean(d[:, 2] < -tol)), 3),
            "right": round(float(np.mean(np.abs(d[:, 2]) <= tol)), 3),
            "late": round(float(np.mean(d[:, 2] > tol)), 3),
        }
    return out


def velocity_scores(ref: np.ndarray, est: np.ndarray) -> dict:
    """Note F1 with velocity, onset-only and with offsets (``mir_eval.transcription_velocity``).

    Notebook: 06_evaluation_and_comparison.ipynb
    """
    ref, est = sort_notes(ref), sort_notes(est)
    if not len(ref) or not len(est):
        same = float(len(ref) == len(est))
        return {"note_velocity_f1": same, "note_offset_velocity_f1": same}
    args = (note_intervals(ref), mir_eval.util.midi_to_hz(ref[:, 2]), ref[:, 3],
            note_intervals(est), mir_eval.util.midi_to_hz(est[:, 2]), est[:, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, _, f, _ = mir_eval.transcription_velocity.precision_recall_f1_overlap(
            *args, offset_ratio=None)
        _, _, fo, _ = mir_eval.transcription_velocity.precision_recall_f1_overlap(*args)
    return {"note_velocity_f1": float(f), "note_offset_velocity_f1": float(fo)}


def note_ends_report(folder, split: str = "test", models=None, progress: bool = False) -> dict:
    """Transcribe a dataset split or folder and report note ends and velocities.

    Notebook: 06_evaluation_and_comparison.ipynb

    Returns:
        ``{"pieces", "velocity": {mean scores}, "offsets": offset_report}``.
    """
    from pathlib import Path

    from .evaluate import folder_pairs, read_labels
    from .transcribe import DEFAULT_MODELS, Transcriber

    pairs, _ = folder_pairs(folder, split)
    refs = [(audio, read_labels(label)) for audio, label in pairs]
    tr = Transcriber(models or DEFAULT_MODELS)
    devs, vel = [], []
    for audio, ref in refs:
        est = tr.transcribe_file(audio)
        devs.append(offset_deviations(ref, est))
        vel.append(velocity_scores(ref, est))
        if progress:
            print(f"{Path(audio).stem[:40]:40s} velocity F1 {vel[-1]['note_velocity_f1']:.3f}")
    return {"pieces": len(refs),
            "velocity": {k: round(float(np.mean([v[k] for v in vel])), 4) for k in vel[0]},
            "offsets": offset_report(np.concatenate(devs))}

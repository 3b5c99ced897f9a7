"""Where note ends, velocities and the sustain pedal go wrong: measurements of the models.

Onset-only note F1 is 0.83 on our rendered test split while note-with-offset F1 is 0.49, and
our MIDI velocities come from the onset model's confidence. Before adding models (a key/pedal
split, an Offset head, a Velocity model), measure:

* :func:`offset_deviations` - for every note whose onset was found (same pitch, onset within
  50 ms, ``mir_eval``'s matching), how far its end is from the true end, in seconds;
* :func:`offset_report` - by register, the median deviation and the share of ends that are
  too early / right / too late under ``mir_eval``'s offset rule (within 20 % of the note's
  length or 50 ms, whichever is larger);
* :func:`velocity_scores` - ``mir_eval.transcription_velocity`` note F1 with velocity
  (onset-only and with offsets): the reference velocities are min-max normalised per piece,
  ours are mapped onto them by a least-squares line fitted on the matched notes, and a note
  counts when the two are within 0.1; so our scale and offset do not matter, but the order
  and the linearity of our velocities do;
* :func:`pedal_scores` - pedal *press* F1 (a press found within 50 ms, the issue's measure),
  the pedal-interval F1 of Kong et al.'s released evaluation (each pedal interval scored as a
  note by ``mir_eval.transcription``: press within 200 ms, release within 20 % of the
  interval or 50 ms) and the pedal frame F1, for pieces whose labels say where the pedal is
  (MIDI files; MAPS TSVs carry no pedal).

``python -m pianolib note-ends FOLDER`` prints and writes the report.

Notebooks: 06_evaluation_and_comparison.ipynb, 07_velocity_and_pedal.ipynb
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

    None for both when every reference note has the same velocity (nothing to score).

    Notebook: 06_evaluation_and_comparison.ipynb
    """
    ref, est = sort_notes(ref), sort_notes(est)
    if len(ref) and np.ptp(ref[:, 3]) == 0:
        # one velocity for every note (e.g. labels without velocities): mir_eval's min-max
        # normalisation would then accept any estimate; there is nothing to score
        return {"note_velocity_f1": None, "note_offset_velocity_f1": None}
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


#: A pedal press counts as found within this many seconds: our own, stricter measure (Kong et
#: al.'s released evaluation uses a 200 ms press tolerance, see the interval F1 below).
PEDAL_WINDOW = 0.05


def pedal_scores(ref: np.ndarray, est: np.ndarray, n_frames: int) -> dict:
    """Pedal press F1, Kong et al.'s pedal-interval F1, and pedal frame F1 of one piece.

    * press F1: presses (pedal down) within :data:`PEDAL_WINDOW` of a true press
      (``mir_eval.onset.f_measure``); releases are not looked at;
    * interval F1: Kong et al.'s released evaluation (``calculate_score_for_paper.py`` of
      bytedance/piano_transcription): each pedal interval is a note of one pitch for
      ``mir_eval.transcription.precision_recall_f1_overlap`` with a 200 ms press tolerance and
      a release within 20 % of the interval or 50 ms;
    * frame F1: 2 x frames down in both / (frames down in the truth + frames down in ours).

    Notebook: 07_velocity_and_pedal.ipynb

    Args:
        ref, est: Down/up intervals ``(k, 2)`` in seconds.
        n_frames: Frames of the piece (for the frame F1).

    Returns:
        ``{"pedal_event_f1", "pedal_event_precision", "pedal_event_recall",
        "pedal_interval_f1", "pedal_frame_f1"}`` (1.0 where both are empty).
    """
    from .labels import pedal_roll

    ref = np.asarray(ref, dtype=float).reshape(-1, 2)
    est = np.asarray(est, dtype=float).reshape(-1, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mir_eval warns about empty event lists
        if len(ref) and len(est):
            f, p, r = mir_eval.onset.f_measure(ref[:, 0], est[:, 0], window=PEDAL_WINDOW)
            one = np.full(len(ref), 100.0), np.full(len(est), 100.0)
            _, _, fi, _ = mir_eval.transcription.precision_recall_f1_overlap(
                ref, one[0], est, one[1], onset_tolerance=0.2, offset_ratio=0.2,
                offset_min_tolerance=0.05)
        else:
            f = p = r = fi = float(len(ref) == len(est))
    a, b = pedal_roll(ref, n_frames)[:, 0] > 0, pedal_roll(est, n_frames)[:, 0] > 0
    both = np.count_nonzero(a & b)
    total = np.count_nonzero(a) + np.count_nonzero(b)
    frame_f1 = 2 * both / total if total else 1.0
    return {"pedal_event_f1": float(f), "pedal_event_precision": float(p),
            "pedal_event_recall": float(r), "pedal_interval_f1": float(fi),
            "pedal_frame_f1": float(frame_f1)}


def mean_scores(rows: list[dict]) -> dict:
    """Mean of each score over the pieces where it is defined (None: defined nowhere)."""
    if not rows:
        return {}
    vals = {k: [r[k] for r in rows if r[k] is not None] for k in rows[0]}
    return {k: round(float(np.mean(v)), 4) if v else None for k, v in vals.items()}


def note_ends_report(folder, split: str = "test", models=None, progress: bool = False) -> dict:
    """Transcribe a dataset split or folder; report note ends, velocities and the pedal.

    Notebooks: 06_evaluation_and_comparison.ipynb, 07_velocity_and_pedal.ipynb

    Returns:
        ``{"pieces", "notes": {mean note/offset F1}, "velocity": {mean scores},
        "offsets": offset_report, "pedal": {mean scores over pieces with pedal, "pieces",
        "pedal_free_pieces", "pedal_free_down_share"}}``: the last two count the MIDI-labelled
        pieces played without pedal and the share of their frames where we put the pedal
        down (false alarms). ``pedal`` is empty without a Pedal model or MIDI labels.
    """
    from pathlib import Path

    from .datasets import read_manifest
    from .evaluate import evaluate_notes, folder_pairs, read_labels
    from .midi import load_midi, pedal_intervals
    from .train import has_pedal_labels
    from .transcribe import DEFAULT_MODELS, Transcriber

    pairs, names = folder_pairs(folder, split)
    # which labels say where the pedal is: not those made from a TSV note list (MAPS)
    rows = {r["item"]: r for r in read_manifest(folder)} if names else {}
    knows_pedal = [has_pedal_labels(rows.get(n, {})) for n in (names or [None] * len(pairs))]
    refs = [(audio, label, read_labels(label)) for audio, label in pairs]
    tr = Transcriber(models or DEFAULT_MODELS)
    from . import labels

    devs, vel, notes, ped, free = [], [], [], [], []
    for (audio, label, ref), pedal_known in zip(refs, knows_pedal):
        probs = tr.predict_file(audio)
        est, est_pedal = tr.decode_all(probs)
        devs.append(offset_deviations(ref, est))
        vel.append(velocity_scores(ref, est))
        scores = evaluate_notes(ref, est)
        notes.append({k: scores[k] for k in ("note_f1", "note_offset_f1")})
        if (est_pedal is not None and pedal_known
                and Path(label).suffix.lower() in (".mid", ".midi")):
            ref_pedal = pedal_intervals(load_midi(label))
            n = len(probs["onset"])
            if len(ref_pedal):
                ped.append(pedal_scores(ref_pedal, est_pedal, n))
            else:  # a piece played without pedal: how much pedal do we invent?
                free.append(float(labels.pedal_roll(est_pedal, n).mean()) if n else 0.0)
        if progress:
            print(f"{Path(audio).stem[:40]:40s} velocity F1 {vel[-1]['note_velocity_f1']:.3f}")

    pedal = {**mean_scores(ped), "pieces": len(ped)} if ped else {}
    if free:
        pedal.update(pedal_free_pieces=len(free),
                     pedal_free_down_share=round(float(np.mean(free)), 4))
    return {"pieces": len(refs), "notes": mean_scores(notes), "velocity": mean_scores(vel),
            "offsets": offset_report(np.concatenate(devs)), "pedal": pedal}


#: The sets of the README's velocity/pedal/note-ends table: name -> (folder, split).
TABLE_SETS = {
    "rendered test": ("data/corpus", "test"),
    "performances test": ("data/corpus-perf-synthetic", "test"),
    "held-out piano": ("data/maps-synth", "holdout"),
    "maps-dev": ("../shared/data/maps-dev", "test"),
}


def peer_report(folder, split: str = "test") -> dict:
    """Basic Pitch's note, offset and velocity scores on a set (it writes no pedal).

    Notebook: 07_velocity_and_pedal.ipynb
    """
    from .bench import BasicPitch
    from .evaluate import evaluate_notes, folder_pairs, read_labels

    peer = BasicPitch()
    pairs, _ = folder_pairs(folder, split)
    notes, vel = [], []
    for audio, label in pairs:
        ref = read_labels(label)
        est = peer.transcribe_file(audio)
        scores = evaluate_notes(ref, est)
        notes.append({k: scores[k] for k in ("note_f1", "note_offset_f1")})
        vel.append(velocity_scores(ref, est))

    return {"pieces": len(pairs), "notes": mean_scores(notes), "velocity": mean_scores(vel),
            "pedal": {}}


def velocity_pedal_table(systems: dict, sets: dict | None = None, peer: bool = True,
                         progress: bool = True) -> list[dict]:
    """One row per set and system: note F1, note-with-offset F1, note F1 with velocity
    (onset only / with offsets), pedal event and frame F1 (pieces with pedal).

    Notebook: 07_velocity_and_pedal.ipynb

    Args:
        systems: ``{name: model folder}`` of our model folders to compare.
        sets: ``{name: (folder, split)}`` (default :data:`TABLE_SETS`; missing folders are
            skipped with a notice).
        peer: Add Basic Pitch (when installed).
    """
    import sys
    from pathlib import Path

    rows = []
    for set_name, (folder, split) in (sets or TABLE_SETS).items():
        if not Path(folder).exists():
            print(f"notice: {folder} not found; set {set_name!r} skipped", file=sys.stderr)
            continue
        reports = {name: note_ends_report(folder, split, models)
                   for name, models in systems.items()}
        if peer:
            try:
                reports["basic-pitch"] = peer_report(folder, split)
            except ImportError as exc:
                print(f"notice: Basic Pitch not installed ({exc}); `make peer` adds it",
                      file=sys.stderr)
        for name, r in reports.items():
            rows.append({"set": set_name, "system": name, "pieces": r["pieces"],
                         **r["notes"], **r["velocity"],
                         "pedal_pieces": r["pedal"].get("pieces", 0),
                         "pedal_event_f1": r["pedal"].get("pedal_event_f1"),
                         "pedal_interval_f1": r["pedal"].get("pedal_interval_f1"),
                         "pedal_frame_f1": r["pedal"].get("pedal_frame_f1"),
                         "pedal_free_pieces": r["pedal"].get("pedal_free_pieces", 0),
                         "pedal_free_down_share": r["pedal"].get("pedal_free_down_share")})
            if progress:
                print(rows[-1], flush=True)
    return rows


def table_markdown(rows: list[dict]) -> str:
    """The table of :func:`velocity_pedal_table` in Markdown ("no pedal" for Basic Pitch)."""
    def f(v):
        return "-" if v is None else f"{v:.3f}"

    lines = ["| set | system | pieces | note F1 | note-with-offset F1 | note F1 with velocity "
             "(onset / with offsets) | pedal press F1 (50 ms) | pedal interval F1 (Kong) | "
             "pedal frame F1 | pedal down on pedal-free pieces |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        if r["system"] == "basic-pitch":
            pedal = ["no pedal"] * 4
        else:
            pedal = [f(r.get(k)) for k in ("pedal_event_f1", "pedal_interval_f1",
                                           "pedal_frame_f1", "pedal_free_down_share")]
            for i, key in ((0, "pedal_pieces"), (3, "pedal_free_pieces")):
                if r.get(key):
                    pedal[i] += f" ({r[key]} piece{'s' if r[key] > 1 else ''})"
        lines.append(f"| {r['set']} | {r['system']} | {r['pieces']} | {f(r['note_f1'])} | "
                     f"{f(r['note_offset_f1'])} | {f(r['note_velocity_f1'])} / "
                     f"{f(r['note_offset_velocity_f1'])} | " + " | ".join(pedal) + " |")
    return "\n".join(lines) + "\n"

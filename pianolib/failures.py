"""Failure analysis: the notes a transcriber invents (extra notes), by register and interval.

Going from rendered to real piano recordings, our precision falls more than twice as far as our
recall: the real piano makes us write notes nobody played. An **extra note** is an estimated
note that ``mir_eval``'s matching pairs with no reference note
(``mir_eval.transcription.match_notes`` with ``offset_ratio=None``: same pitch within a quarter
tone, onset within 50 ms, each note used at most once). A **missed note** is a reference note
paired with no estimate.

Each extra note is classified (:func:`classify_extra_note`) first by the missed notes, then by
its interval to the reference notes whose key is down within :data:`WINDOW` (50 ms) of its
onset (:func:`sounding_pitches`), tested in this order:

* ``onset off``: a missed note of the same pitch starts within :data:`ONSET_OFF` (150 ms) of
  it, either way, or is held at its onset: a true note written at the wrong time;
* ``re-onset``: a sounding note has the same pitch (and was found: a second onset on it);
* ``octave`` (+12), ``twelfth`` (+19), ``double octave`` (+24): a sounding note lies that far
  *below* the extra note, which then sits on its 2nd, 3rd or 4th partial;
* ``other harmonic``: the 5th to 8th partial (+28, +31, +34, +36 semitones);
* ``sub-octave`` (-12): a sounding note lies an octave *above* (its partials are all partials
  of the extra note);
* ``semitone``: a sounding note is a semitone away (above or below);
* ``below``: the extra note is lower than every sounding note;
* ``other``: above a sounding note, at an interval no low partial explains;
* ``none sounding``: no key is down within 50 ms of its onset.

"Sounding" means the key is down: MAPS labels end at the key release, while a string may ring
on under the sustain pedal, so the partial kinds are a lower bound.

:func:`extra_notes` finds and classifies the extra notes of one piece (vectorised over notes),
:func:`piece_counts` counts them by register, :func:`extra_notes_report` runs systems over
folders, and ``python -m pianolib extra-notes FOLDER...`` writes the counts as JSON and
Markdown (``data/bench/extra-notes.{json,md,png}``).

Notebook: 06_evaluation_and_comparison.ipynb
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import mir_eval
import numpy as np

from .config import MAX_MIDI, MIN_MIDI
from .errors import PianolibError

#: A reference note "sounds near" an onset t if its key is down somewhere in [t - WINDOW,
#: t + WINDOW].
WINDOW = 0.05
#: A missed reference note of the same pitch whose onset is at most this far (s) from an extra
#: note's makes that extra note ``onset off``.
ONSET_OFF = 0.15
#: Kinds of extra notes, in the order they are tested (``none sounding`` excludes every
#: interval kind).
KINDS = ("onset off", "re-onset", "octave", "twelfth", "double octave", "other harmonic",
         "sub-octave", "semitone", "below", "other", "none sounding")
#: Semitones from a note up to its partials: 2nd (octave), 3rd (twelfth), 4th, then 5th-8th
#: (``round(12 * log2(k))``).
HARMONIC_STEPS = {"octave": (12,), "twelfth": (19,), "double octave": (24,),
                  "other harmonic": (28, 31, 34, 36)}
#: Registers by MIDI pitch (low end inclusive), as in the recall analysis of notebook 06.
REGISTERS = {"A0-B2": (MIN_MIDI, 48), "C3-B3": (48, 60), "C4-B4": (60, 72),
             "C5-B5": (72, 84), "C6-C8": (84, MAX_MIDI + 1)}
#: Extra notes shorter than this (s) are also counted (``short``).
SHORT = 0.1


def match(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which reference and which estimated notes ``mir_eval`` pairs (onsets within 50 ms).

    Notebook: 06_evaluation_and_comparison.ipynb

    Args:
        ref: Reference note list ``(n, 4)``: onset s, offset s, MIDI pitch, velocity.
        est: Estimated note list ``(m, 4)``.

    Returns:
        ``(ref_matched, est_matched)``: boolean arrays of lengths ``n`` and ``m``.
    """
    from .evaluate import note_intervals

    ref = np.asarray(ref, dtype=float).reshape(-1, 4)
    est = np.asarray(est, dtype=float).reshape(-1, 4)
    ref_hit, est_hit = np.zeros(len(ref), bool), np.zeros(len(est), bool)
    if len(ref) and len(est):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pairs = mir_eval.transcription.match_notes(
                note_intervals(ref), mir_eval.util.midi_to_hz(ref[:, 2]), note_intervals(est),
                mir_eval.util.midi_to_hz(est[:, 2]), offset_ratio=None)
        if pairs:
            r, e = np.array(pairs).T
            ref_hit[r], est_hit[e] = True, True
    return ref_hit, est_hit


def sounding_pitches(onset: float, ref: np.ndarray, window: float = WINDOW) -> np.ndarray:
    """Pitches of the reference notes whose key is down within ``window`` seconds of ``onset``.

    Notebook: 06_evaluation_and_comparison.ipynb
    """
    ref = np.asarray(ref, dtype=float).reshape(-1, 4)
    near = (ref[:, 0] <= onset + window) & (ref[:, 1] >= onset - window)
    return ref[near, 2]


def classify_extra_note(onset: float, pitch: float, ref: np.ndarray, missed: np.ndarray,
                        window: float = WINDOW, onset_off: float = ONSET_OFF) -> str:
    """The kind (:data:`KINDS`) of one extra note.

    The readable one-note version of :func:`extra_note_kinds` (a test checks they agree).

    Notebook: 06_evaluation_and_comparison.ipynb

    Args:
        onset: Onset (s) of the extra note.
        pitch: Its MIDI pitch.
        ref: Reference note list ``(n, 4)``.
        missed: The reference notes paired with no estimate (``extra_notes(...)["missed"]``).
        window: See :data:`WINDOW`.
        onset_off: See :data:`ONSET_OFF`.
    """
    ref = np.asarray(ref, dtype=float).reshape(-1, 4)
    missed = np.asarray(missed, dtype=float).reshape(-1, 4)
    same = missed[missed[:, 2] == pitch]
    if np.any(np.abs(same[:, 0] - onset) <= onset_off) or len(sounding_pitches(onset, same,
                                                                               window)):
        return "onset off"
    steps = pitch - sounding_pitches(onset, ref, window)  # semitones above each sounding note
    if len(steps) == 0:
        return "none sounding"
    if np.any(steps == 0):
        return "re-onset"
    for kind, harmonic in HARMONIC_STEPS.items():
        if np.any(np.isin(steps, harmonic)):
            return kind
    if np.any(steps == -12):
        return "sub-octave"
    if np.any(np.abs(steps) == 1):
        return "semitone"
    if np.all(steps < 0):
        return "below"
    return "other"


def extra_note_kinds(extra: np.ndarray, ref: np.ndarray, missed: np.ndarray,
                     window: float = WINDOW, onset_off: float = ONSET_OFF,
                     block: int = 2048) -> np.ndarray:
    """:func:`classify_extra_note` for many notes at once: one index into :data:`KINDS` each.

    One ``(extra notes, reference notes)`` comparison per block of ``block`` extra notes, so
    memory stays bounded on long pieces.

    Notebook: 06_evaluation_and_comparison.ipynb
    """
    extra = np.asarray(extra, dtype=float).reshape(-1, 4)
    ref = np.asarray(ref, dtype=float).reshape(-1, 4)
    missed = np.asarray(missed, dtype=float).reshape(-1, 4)
    out = np.zeros(len(extra), np.int8)
    for s in range(0, len(extra), block):
        x = extra[s: s + block]
        t, p = x[:, :1], x[:, 2:3]
        near = (ref[None, :, 0] <= t + window) & (ref[None, :, 1] >= t - window)
        steps = p - ref[None, :, 2]
        off = (missed[None, :, 2] == p) & (
            (np.abs(missed[None, :, 0] - t) <= onset_off)
            | ((missed[None, :, 0] <= t + window) & (missed[None, :, 1] >= t - window)))

        def some(mask, near=near):
            return np.any(near & mask, axis=1)

        tests = [off.any(axis=1), ~near.any(axis=1), some(steps == 0)]
        tests += [some(np.isin(steps, h)) for h in HARMONIC_STEPS.values()]
        tests += [some(steps == -12), some(np.abs(steps) == 1)]
        tests += [~some(steps > 0)]  # every sounding note is above the extra note
        kinds = ["onset off", "none sounding", "re-onset", *HARMONIC_STEPS, "sub-octave",
                 "semitone", "below"]
        out[s: s + block] = np.select(tests, [KINDS.index(k) for k in kinds],
                                      default=KINDS.index("other"))
    return out


def extra_notes(ref: np.ndarray, est: np.ndarray, window: float = WINDOW) -> dict:
    """The extra and missed notes of one piece, each extra note with its kind.

    Notebook: 06_evaluation_and_comparison.ipynb

    Args:
        ref: Reference note list ``(n, 4)``.
        est: Estimated note list ``(m, 4)``.
        window: See :data:`WINDOW`.

    Returns:
        ``{"extra": (k, 4) notes, "kind": (k,) names of KINDS, "missed": (j, 4) notes}``.
    """
    ref = np.asarray(ref, dtype=float).reshape(-1, 4)
    est = np.asarray(est, dtype=float).reshape(-1, 4)
    ref_hit, est_hit = match(ref, est)
    extra, missed = est[~est_hit], ref[~ref_hit]
    kind = np.array(KINDS, dtype=object)[extra_note_kinds(extra, ref, missed, window)]
    return {"extra": extra, "kind": kind.astype(str), "missed": missed}


def _register_of(pitch: np.ndarray) -> np.ndarray:
    names = np.array(list(REGISTERS), dtype=object)
    edges = [lo for lo, _ in REGISTERS.values()][1:]
    return names[np.searchsorted(edges, np.asarray(pitch), side="right")]


def piece_counts(ref: np.ndarray, est: np.ndarray, window: float = WINDOW) -> dict:
    """Counts of one piece, overall (``"all"``) and by register (:data:`REGISTERS`).

    Each entry has ``n_ref``, ``n_est``, ``n_missed``, ``n_extra``, ``short`` (extra notes
    shorter than :data:`SHORT`) and one count per kind of :data:`KINDS`. A note belongs to the
    register of its own pitch. Counts add up over pieces (:func:`pool_counts`).

    Notebook: 06_evaluation_and_comparison.ipynb
    """
    ref = np.asarray(ref, dtype=float).reshape(-1, 4)
    est = np.asarray(est, dtype=float).reshape(-1, 4)
    found = extra_notes(ref, est, window)
    extra, kind, missed = found["extra"], found["kind"], found["missed"]
    reg = {"ref": _register_of(ref[:, 2]), "est": _register_of(est[:, 2]),
           "extra": _register_of(extra[:, 2]), "missed": _register_of(missed[:, 2])}
    out = {}
    for name in ("all", *REGISTERS):
        def inside(which, name=name):
            return np.ones(len(reg[which]), bool) if name == "all" else reg[which] == name

        x = inside("extra")
        out[name] = {"n_ref": int(inside("ref").sum()), "n_est": int(inside("est").sum()),
                     "n_missed": int(inside("missed").sum()), "n_extra": int(x.sum()),
                     "short": int(np.sum(x & (extra[:, 1] - extra[:, 0] < SHORT))),
                     **{k: int(np.sum(x & (kind == k))) for k in KINDS}}
    return out


def pool_counts(counts: list[dict]) -> dict:
    """The sum of several :func:`piece_counts`, with pooled ``precision`` and ``recall``.

    ``precision`` = 1 - extra / written notes and ``recall`` = 1 - missed / reference notes,
    pooled over all notes (not averaged per piece as in the benchmark's table).

    Notebook: 06_evaluation_and_comparison.ipynb
    """
    out = {}
    for name in ("all", *REGISTERS):
        total = {k: sum(c[name][k] for c in counts) for k in counts[0][name]} if counts else {}
        if not total:
            continue
        total["precision"] = (round(1 - total["n_extra"] / total["n_est"], 4)
                              if total["n_est"] else None)
        total["recall"] = (round(1 - total["n_missed"] / total["n_ref"], 4)
                           if total["n_ref"] else None)
        out[name] = total
    return out


def error_times(ref: np.ndarray, est: np.ndarray) -> np.ndarray:
    """Sorted onset times (s) of the extra and the missed notes of one piece.

    Notebook: 06_evaluation_and_comparison.ipynb
    """
    found = extra_notes(ref, est)
    return np.sort(np.concatenate([found["extra"][:, 0], found["missed"][:, 0]]))


def worst_window(ref: np.ndarray, est: np.ndarray, seconds: float = 5.0) -> tuple[float, int]:
    """The ``seconds``-long window with the most errors (extra + missed note onsets).

    Some best window starts at an error, so only those starts are tried: for each error, the
    errors in ``[t, t + seconds)`` are counted with one ``searchsorted``. Ties go to the
    earliest window.

    Notebook: 06_evaluation_and_comparison.ipynb

    Returns:
        ``(start s, number of errors)``; ``(0.0, 0)`` without errors.
    """
    t = error_times(ref, est)
    if not len(t):
        return 0.0, 0
    counts = np.searchsorted(t, t + seconds, side="left") - np.arange(len(t))
    i = int(np.argmax(counts))
    return float(t[i]), int(counts[i])


def _systems(systems: dict, peer: str | None) -> list[tuple[str, object]]:
    """``(name, transcribe_file)`` of each model folder, plus Basic Pitch as asked."""
    from .transcribe import Transcriber

    out = [(name, Transcriber(Path(models)).transcribe_file) for name, models in systems.items()]
    if peer != "none":
        from .bench import PEER_INSTALL, BasicPitch

        try:
            out.append(("basic-pitch", BasicPitch().transcribe_file))
        except ImportError as exc:
            if peer == "basic-pitch":  # asked for by name: an error, not a notice
                raise PianolibError(f"Basic Pitch is not installed ({exc}): {PEER_INSTALL}") \
                    from None
            print(f"notice: Basic Pitch is not installed ({exc}); running without it "
                  f"({PEER_INSTALL})", file=sys.stderr)
    return out


def extra_notes_report(folders: list[str | os.PathLike], systems: dict | None = None,
                       peer: str | None = None, split: str = "test",
                       progress: bool = True) -> dict:
    """Transcribe folders with each system; count extra and missed notes by register and kind.

    Every folder and every label file is read and checked before any model is loaded.

    Notebook: 06_evaluation_and_comparison.ipynb

    Args:
        folders: Built datasets (``split`` is used) or folders of audio + ``.tsv``/``.mid``
            labels (MAPS layout: ``flac/`` + ``tsv/``).
        systems: ``{name: model folder}`` (default: the shipped models as ``pianolib``).
        peer: ``"basic-pitch"`` (required), ``"none"``, or None: Basic Pitch if installed.
        split: The split of a built dataset.
        progress: Print one line per piece and system.

    Returns:
        ``{"window_s", "onset_off_s", "kinds", "registers", "sets": {set name: {"pieces", "audio_s",
        "systems": {system: pool_counts}}}}``.

    Raises:
        PianolibError: A missing folder, a folder without pairs, a bad label file, a bad
            model folder, or Basic Pitch asked for and not installed.
    """
    import soundfile as sf

    from .evaluate import folder_pairs, read_labels
    from .transcribe import DEFAULT_MODELS

    sets = []
    for folder in folders:
        pairs, _ = folder_pairs(folder, split)
        name = Path(folder).resolve().name
        sets.append((name, [(audio, read_labels(label)) for audio, label in pairs]))
    names = [n for n, _ in sets]
    if len(set(names)) < len(names):
        raise PianolibError(f"two folders have the same name ({', '.join(names)}): "
                            "the sets of the report are named by their folder")
    runners = _systems(systems or {"pianolib": DEFAULT_MODELS}, peer)
    report = {"window_s": WINDOW, "onset_off_s": ONSET_OFF, "kinds": list(KINDS),
              "registers": list(REGISTERS), "sets": {}}
    for name, items in sets:
        counts: dict[str, list] = {s: [] for s, _ in runners}
        for audio, ref in items:
            for system, transcribe_file in runners:
                est = transcribe_file(audio)
                counts[system].append(piece_counts(ref, est))
                if progress:
                    c = counts[system][-1]["all"]
                    print(f"  {name:12s} {system:12s} {Path(audio).stem[:40]:40s} "
                          f"{c['n_est']:5d} notes, {c['n_extra']:5d} extra, "
                          f"{c['n_missed']:5d} missed", flush=True)
        audio_s = sum(sf.info(str(a)).duration for a, _ in items)
        report["sets"][name] = {"pieces": len(items), "audio_s": round(audio_s, 1),
                                "systems": {s: pool_counts(c) for s, c in counts.items()}}
    return report


def _num(v) -> str:
    return "-" if v is None else str(v)


def _pct(part: int, whole: int) -> str:
    return f"{part} ({100 * part / whole:.1f} %)" if whole else str(part)


def report_markdown(report: dict) -> str:
    """The report of :func:`extra_notes_report` as Markdown: kinds, then registers, per set.

    Notebook: 06_evaluation_and_comparison.ipynb
    """
    kinds = report["kinds"]
    lines = []
    if "command" in report:
        lines += [f"Measured {report['measured']} ({report['cpu_cores']} CPU cores) with "
                  f"`{report['command']}`. An extra note is an estimated note that "
                  "`mir_eval.transcription.match_notes` (onset within 50 ms, same pitch) pairs "
                  "with no reference note. Its kind is `onset off` if a missed reference note "
                  "of the same pitch starts within "
                  f"{int(report.get('onset_off_s', ONSET_OFF) * 1000)} ms of it (or is held at "
                  "its onset), else its interval to the reference notes whose key is down "
                  f"within {int(report['window_s'] * 1000)} ms of its onset "
                  "(`pianolib/failures.py`). Precision and recall are pooled over all notes.", ""]
    for name, s in report["sets"].items():
        lines += [f"### {name} ({s['pieces']} pieces, {s['audio_s']} s of audio)", "",
                  "| system | notes written | extra notes | precision | recall | "
                  + " | ".join(kinds) + " | extra < 100 ms |",
                  "|---|---:|---:|---:|---:|" + "---:|" * (len(kinds) + 1)]
        for system, c in s["systems"].items():
            a = c["all"]
            lines.append(f"| {system} | {a['n_est']} | {_pct(a['n_extra'], a['n_est'])} | "
                         f"{_num(a['precision'])} | {_num(a['recall'])} | "
                         + " | ".join(_pct(a[k], a['n_extra']) for k in kinds)
                         + f" | {_pct(a['short'], a['n_extra'])} |")
        lines += ["", "| register | system | reference notes | recall | notes written | "
                      "extra notes | precision | commonest kinds of extra note |",
                  "|---|---|---:|---:|---:|---:|---:|---|"]
        for reg in report["registers"]:
            for system, c in s["systems"].items():
                r = c.get(reg)
                if r is None:
                    continue
                top = sorted(kinds, key=lambda k: -r[k])[:2]
                common = ", ".join(f"{k} {_pct(r[k], r['n_extra'])}" for k in top if r[k])
                lines.append(f"| {reg} | {system} | {r['n_ref']} | {_num(r['recall'])} | "
                             f"{r['n_est']} | {r['n_extra']} | {_num(r['precision'])} | "
                             f"{common or '-'} |")
        lines.append("")
    return "\n".join(lines)


def plot_extra_notes(report: dict, set_name: str, axes=None):
    """Two panels for one set: extra notes by kind, and by register, one bar per system.

    Notebook: 06_evaluation_and_comparison.ipynb

    Returns:
        The figure.
    """
    import matplotlib.pyplot as plt

    s = report["sets"][set_name]
    systems = list(s["systems"])
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(14, 3.8), constrained_layout=True,
                               gridspec_kw={"width_ratios": [len(report["kinds"]), 5]})
    width = 0.8 / len(systems)
    for j, system in enumerate(systems):
        c = s["systems"][system]
        label = f"{system}: {c['all']['n_extra']} extra of {c['all']['n_est']} notes"
        x = np.arange(len(report["kinds"]))
        axes[0].bar(x + j * width, [c["all"][k] for k in report["kinds"]], width, label=label)
        regs = [r for r in report["registers"] if r in c]
        x = np.arange(len(regs))
        axes[1].bar(x + j * width, [c[r]["n_extra"] for r in regs], width, label=system)
    axes[0].set_xticks(np.arange(len(report["kinds"])) + 0.4 - width / 2)
    axes[0].set_xticklabels(report["kinds"], rotation=30, ha="right")
    axes[0].set(ylabel="extra notes",
                xlabel="kind: a mistimed or second onset, or the interval to a true note sounding",
                title=f"{set_name}: what the extra notes are")
    axes[0].legend(fontsize=8)
    axes[1].set_xticks(np.arange(len(report["registers"])) + 0.4 - width / 2)
    axes[1].set_xticklabels(report["registers"])
    axes[1].set(ylabel="extra notes", xlabel="register of the extra note (note names)",
                title=f"{set_name}: extra notes by register")
    axes[1].legend(fontsize=8)
    return axes[0].figure


def write_report(report: dict, out: str | os.PathLike, force: bool = False) -> list[Path]:
    """Write ``OUT.json``, ``OUT.md`` and ``OUT.png`` (one row of panels per set), atomically.

    Notebook: 06_evaluation_and_comparison.ipynb
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .files import atomic_write, write_json, write_text

    out = Path(out)
    paths = [out.with_name(out.name + s) for s in (".json", ".md", ".png")]
    write_json(paths[0], report, force=force)
    write_text(paths[1], report_markdown(report), force=force)
    sets = list(report["sets"])
    fig, axes = plt.subplots(len(sets), 2, figsize=(14, 3.8 * len(sets)), squeeze=False,
                             constrained_layout=True,
                             gridspec_kw={"width_ratios": [len(report["kinds"]), 5]})
    for row, name in zip(axes, sets):
        plot_extra_notes(report, name, row)
    with atomic_write(paths[2], force=force) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return paths

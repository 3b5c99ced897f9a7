"""The ablation of real piano sound: which training data closes the gap on real recordings.

Each *arm* is a model folder trained by a named recipe of :mod:`pianolib.configs` with the same
architecture and training budget; each is scored on the same *sets*: the real Disklavier
(``maps-dev``, measure only, never trained or tuned on), the held-out sampled piano (the
``holdout`` split of ``data/maps-synth``), the sampled pianos' test split, and our rendered
test split. Per-piece scores are kept as CSV next to the table, so the table can be rebuilt
without running the models again (``--rerun`` scores everything anew).

Notebook: 06_evaluation_and_comparison.ipynb
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .errors import PianolibError

#: Arm name -> (model folder, what it adds). Arm a is the first shipped models.
ARMS = {
    "a": ("data/runs/shipped-v1", "three GM soundfonts, hand-written room augmentation"),
    "b": ("data/runs/maps-synth", "a + five sampled MAPS pianos (2.1 h)"),
    "b2": ("data/runs/maps-synth-continued",
           "b trained 48 more minutes from its weights (same data, learning rates halved)"),
    "c+d": ("data/runs/salamander-room",
            "b + performances re-rendered 40 % on the Salamander grand, "
            "pyroomacoustics/pedalboard rooms and microphones"),
    "b+key": ("data/runs/shipped-v2", "b's onset model with the key-release Length model "
              "(the models shipped before this version)"),
    "b+key+rule": ("data/runs/shipped-partial", "b+key, decoder re-tuned on validation with "
                   "the partial rule (decode.partial_ghosts)"),
    "b-replay": ("data/runs/b-replay", "b's onset recipe replayed today for 4 epochs (b's "
                 "count) on the rebuilt data: the control of e and f; b+key's Length model"),
    "e": ("data/runs/partials", "b's data and 4 epochs, onset loss with hard negatives at "
          "the octave, twelfth and double octave (x4); b+key's Length model"),
    "e@shipped": ("data/runs/partials-shipped-decoder", "e's models with the shipped decoder "
                  "settings (onset 0.6, partial rule 0.8) instead of its own (0.5, 0.7)"),
    "f": ("data/runs/harmonic", "e on the harmonic stack of the CQT (hcrnn); b+key's Length "
          "model"),
    "g": ("data/runs/contrast", "the shipped onset recipe on the log-CQT minus its moving mean "
          "per bin (lcrnn: blind to level and microphone colour); b+key's Length model"),
    "shipped": ("data/runs/shipped", "the recipe `shipped` run 2026-12-01 (= b-replay, weights "
                "equal): the shipped models, partial rule 0.8 tuned on validation"),
}
#: Set name -> (folder, split).
SETS = {
    "maps-dev": ("../shared/data/maps-dev", None),
    "held-out piano": ("data/maps-synth", "holdout"),
    "sampled test": ("data/maps-synth", "test"),
    "rendered test": ("data/corpus", "test"),
}
COLUMNS = ("note_precision", "note_recall", "note_f1", "note_offset_f1", "frame_f1")


def _slug(name: str) -> str:
    return name.replace(" ", "-").replace("+", "")


def run_ablation(arms: dict = ARMS, sets: dict = SETS, out: str | Path = "data/ablation",
                 rerun: bool = False, progress: bool = True) -> list[dict]:
    """Score every arm on every set; write ``results.csv`` and ``results.md`` in ``out``.

    Notebook: 06_evaluation_and_comparison.ipynb

    Args:
        arms: Arm name -> (model folder, description).
        sets: Set name -> (folder, split or None).
        out: Where the per-piece CSVs and the table go.
        rerun: Score again even where a per-piece CSV exists.
        progress: Print each result.

    Returns:
        One row per (arm, set): the mean scores over pieces.
    """
    from .evaluate import evaluate_folder
    from .files import atomic_write, write_csv

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for arm, (model_dir, what) in arms.items():
        for set_name, (folder, split) in sets.items():
            csv_path = out / f"{_slug(arm)}-{_slug(set_name)}.csv"
            if rerun or not csv_path.is_file():
                if not Path(model_dir, "onset.keras").is_file() or not Path(folder).is_dir():
                    continue
                evaluate_folder(folder, split=split or "all", out_csv=csv_path, force=True,
                                models=model_dir, progress=False)
            with open(csv_path, newline="") as fh:
                pieces = list(csv.DictReader(fh))
            if not pieces:
                raise PianolibError(f"{csv_path}: no pieces")
            row = {"arm": arm, "training data": what, "set": set_name, "pieces": len(pieces)}
            row.update({k: round(float(np.mean([float(p[k]) for p in pieces])), 4)
                        for k in COLUMNS})
            rows.append(row)
            if progress:
                print(f"{arm:>4} {set_name:>15}: note F1 {row['note_f1']:.3f} "
                      f"(P {row['note_precision']:.3f}, R {row['note_recall']:.3f}), "
                      f"offset F1 {row['note_offset_f1']:.3f}")
    if rows:
        write_csv(out / "results.csv", rows, force=True)
        with atomic_write(out / "results.md", force=True) as tmp:
            tmp.write_text(results_markdown(rows))
    return rows


def results_markdown(rows: list[dict]) -> str:
    """The ablation as a markdown table: one line per arm, one column group per set."""
    sets = list(dict.fromkeys(r["set"] for r in rows))
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    head = "| arm | training data | " + " | ".join(
        f"{s}: note P / R / F1, offset F1" for s in sets) + " |"
    lines = [head, "|" + "---|" * (2 + len(sets))]
    for arm in arms:
        cells = []
        for s in sets:
            r = next((r for r in rows if r["arm"] == arm and r["set"] == s), None)
            cells.append("—" if r is None else
                         f"{r['note_precision']:.3f} / {r['note_recall']:.3f} / "
                         f"**{r['note_f1']:.3f}**, {r['note_offset_f1']:.3f}")
        what = next(r["training data"] for r in rows if r["arm"] == arm)
        lines.append(f"| {arm} | {what} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

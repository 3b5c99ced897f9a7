"""Choosing the decoder's thresholds on the validation split (never on the test split).

Notebook: 05_midi_merge.ipynb
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from .evaluate import evaluate_notes


def tune_decoder(model_dir: str | Path, data: str | Path | list, split: str = "valid",
                 onset_thresholds=(0.3, 0.4, 0.5, 0.6), length_thresholds=(0.3, 0.4, 0.5),
                 min_frames=(1, 3, 5), write: bool = True, force: bool = False) -> dict:
    """Grid-search decoder settings for the best mean note-with-offset + note F1.

    The models run once per piece; only the cheap, vectorised decoder runs per setting.
    The best settings are written (atomically) to ``<model_dir>/decoder.json``, which
    :class:`pianolib.transcribe.Transcriber` reads; an existing one is replaced only with
    ``force``. The models start from default settings, not from an existing ``decoder.json``,
    but for ``length_labels`` (what the Length model learnt), which is kept. Notes are decoded
    as transcription does (:meth:`~pianolib.transcribe.Transcriber.decode_all`: velocity,
    and the pedal's sustain for a key-release Length model).

    Notebook: 05_midi_merge.ipynb
    """
    from .datasets import as_folders, load_items
    from .transcribe import Transcriber

    tr = Transcriber(Path(model_dir), reonset=False)  # the grid sets the other settings
    items = [it for folder in as_folders(data) for it in load_items(folder, split)]
    cached = [(it["notes"], tr.predict(it["features"])) for it in items]
    best, best_score = None, -1.0
    grid = [("series", o, ln, 0) for o in onset_thresholds for ln in length_thresholds]
    grid += [("ours", o, ln, m) for o, ln, m in itertools.product(onset_thresholds,
                                                                   length_thresholds, min_frames)]
    for decoder, o, ln, m in grid:
        tr.decoder, tr.onset_threshold, tr.length_threshold, tr.min_frames = decoder, o, ln, m
        scores = [evaluate_notes(ref, tr.decode_all(p)[0], len(p["onset"])) for ref, p in cached]
        score = float(np.mean([s["note_f1"] + s["note_offset_f1"] for s in scores]))
        if score > best_score:
            best_score = score
            best = {"decoder": decoder, "onset_threshold": o, "length_threshold": ln,
                    "min_frames": m, "length_labels": tr.length_labels,
                    "valid_note_f1": float(np.mean([s["note_f1"] for s in scores])),
                    "valid_note_offset_f1": float(np.mean([s["note_offset_f1"] for s in scores]))}
    if write:
        from .files import write_json

        write_json(Path(model_dir) / "decoder.json", best, force=force)
    return best

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
                 min_frames=(1, 3, 5), write: bool = True, force: bool = False,
                 partial_onsets=(0.7, 0.8, 0.9)) -> dict:
    """Grid-search decoder settings for the best mean note-with-offset + note F1.

    After the grid, the partial rule (``partial_onsets``, :func:`pianolib.decode.partial_ghosts`)
    is tried on the best settings and kept only if it scores better.

    The models run once per piece; only the cheap, vectorised decoder runs per setting.
    The best settings are written (atomically) to ``<model_dir>/decoder.json``, which
    :class:`pianolib.transcribe.Transcriber` reads; an existing one is replaced only with
    ``force``. The models start from default settings, not from an existing ``decoder.json``,
    but for ``length_labels`` (what the Length model learnt), which is kept. Notes are decoded
    as transcription does (:meth:`~pianolib.transcribe.Transcriber.decode_all`: velocity,
    and the pedal's sustain for a key-release Length model); for a key-release Length model
    with a Pedal model the grid also chooses ``note_ends`` (key releases, or the key/pedal
    rule).

    Notebook: 05_midi_merge.ipynb
    """
    from .datasets import as_folders, load_items
    from .transcribe import Transcriber

    tr = Transcriber(Path(model_dir), reonset=False)  # the grid sets the other settings
    items = [it for folder in as_folders(data) for it in load_items(folder, split)]
    cached = [(it["notes"], tr.predict(it["features"])) for it in items]
    best, best_score = None, -1.0
    # a key-release Length model with a Pedal model: key releases, or the key/pedal rule?
    ends = (("key", "sounding") if tr.length_labels == "key" and "pedal" in tr.outputs
            else (tr.note_ends,))
    grid = [("series", o, ln, 0, e) for o in onset_thresholds for ln in length_thresholds
            for e in ends]
    grid += [("ours", o, ln, m, e) for o, ln, m, e in itertools.product(
        onset_thresholds, length_thresholds, min_frames, ends)]

    def score_all() -> tuple[float, dict]:
        """The grid's score of the transcriber's settings, and the mean F1s it is made of."""
        scores = [evaluate_notes(ref, tr.decode_all(p)[0], len(p["onset"])) for ref, p in cached]
        means = {"valid_note_f1": float(np.mean([s["note_f1"] for s in scores])),
                 "valid_note_offset_f1": float(np.mean([s["note_offset_f1"] for s in scores]))}
        return float(np.mean([s["note_f1"] + s["note_offset_f1"] for s in scores])), means

    tr.partial_onset = 0.0
    for decoder, o, ln, m, e in grid:
        tr.decoder, tr.onset_threshold, tr.length_threshold, tr.min_frames = decoder, o, ln, m
        tr.note_ends = e
        score, means = score_all()
        if score > best_score:
            best_score = score
            best = {"decoder": decoder, "onset_threshold": o, "length_threshold": ln,
                    "min_frames": m, "length_labels": tr.length_labels,
                    "pedal_threshold": tr.pedal_threshold, "note_ends": e,
                    "partial_onset": 0.0, **means}
    if best["decoder"] == "ours":
        # then the partial rule (pianolib.decode.partial_ghosts) on the best settings: off (0)
        # stays unless a threshold scores better on validation
        tr.decoder, tr.onset_threshold = best["decoder"], best["onset_threshold"]
        tr.length_threshold, tr.min_frames = best["length_threshold"], best["min_frames"]
        tr.note_ends = best["note_ends"]
        for po in partial_onsets:
            tr.partial_onset = po
            score, means = score_all()
            if score > best_score:
                best_score = score
                best.update(partial_onset=po, **means)
    if write:
        from .files import write_json

        write_json(Path(model_dir) / "decoder.json", best, force=force)
    return best


def tune_pedal(model_dir: str | Path, data: str | Path | list, split: str = "valid",
               thresholds=(0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5), write: bool = True) -> dict:
    """Choose the pedal-down threshold on the validation split; store it in ``decoder.json``.

    Scored on the items whose labels say where the pedal is (rendered items): the mean of
    pedal press F1 and pedal frame F1 over pieces played with pedal, minus the share of frames
    put down in pieces played without it. The Pedal model runs once per piece; only the
    threshold changes. The other settings of an existing ``decoder.json`` are kept.

    Notebook: 07_velocity_and_pedal.ipynb

    Returns:
        ``{"pedal_threshold", "valid_pedal_event_f1", "valid_pedal_frame_f1"}``.
    """
    import json

    from .datasets import as_folders, load_items
    from .decode import decode_pedal
    from .errors import PianolibError
    from .labels import pedal_roll
    from .midi import load_midi, pedal_intervals
    from .noteends import pedal_scores
    from .train import has_pedal_labels
    from .transcribe import Transcriber

    tr = Transcriber(Path(model_dir), velocity=False)
    if "pedal" not in tr.outputs:
        raise PianolibError(f"{model_dir}: no pedal model to tune")
    cached = []
    for folder in as_folders(data):
        for it in load_items(folder, split):
            if has_pedal_labels(it):
                ref = pedal_intervals(load_midi(Path(folder) / it["midi"]))
                cached.append((ref, tr.predict(it["features"])["pedal"]))
    best, best_score = None, -np.inf
    for t in thresholds:
        with_pedal, free = [], []
        for ref, prob in cached:
            est = decode_pedal(prob, t)
            if len(ref):
                with_pedal.append(pedal_scores(ref, est, len(prob)))
            else:
                free.append(float(pedal_roll(est, len(prob)).mean()) if len(prob) else 0.0)
        ev = float(np.mean([s["pedal_event_f1"] for s in with_pedal])) if with_pedal else 0.0
        fr = float(np.mean([s["pedal_frame_f1"] for s in with_pedal])) if with_pedal else 0.0
        score = (ev + fr) / 2 - (float(np.mean(free)) if free else 0.0)
        if score > best_score:
            best_score = score
            best = {"pedal_threshold": t, "valid_pedal_event_f1": ev, "valid_pedal_frame_f1": fr}
    if write:
        from .files import write_json

        path = Path(model_dir) / "decoder.json"
        settings = json.loads(path.read_text()) if path.is_file() else {}
        settings.update(best)
        write_json(path, settings, force=True)
    return best

"""Comparing architectures on the same data with the same budget, and looking inside them.

Notebook: 02_architecture_cnn_rnn_lstm.ipynb
"""

from __future__ import annotations

import time

import numpy as np

from .chunks import unchunk
from .decode import decode_notes
from .evaluate import evaluate_notes
from .models import build_model
from .train import train_model


def score_chunks(onset_model, length_model, x: np.ndarray, ref_notes: list[np.ndarray],
                 n_frames: list[int], onset_thresholds=(0.5,), length_thresholds=(0.3,),
                 onset_roll=None, length_roll=None) -> dict:
    """Scores of two models on the chunks of several pieces.

    ``x`` holds the chunks of the pieces one after another (as made by
    :func:`pianolib.datasets.make_training_arrays`); they are glued back per piece. Note and
    frame scores are means over pieces, at the best of the given decoder thresholds. With the
    label rolls, also the threshold-free average precision of onset and length frames.
    """
    from .evaluate import average_precision
    from .models import inference_function

    po = inference_function(onset_model)(x.astype("float32")).numpy()
    pl = inference_function(length_model)(x.astype("float32")).numpy()
    best: dict = {}
    for o in onset_thresholds:
        for ln in length_thresholds:
            scores, start = [], 0
            for notes, n in zip(ref_notes, n_frames):
                k = -(-n // x.shape[1])
                est = decode_notes(unchunk(po[start:start + k], n),
                                   unchunk(pl[start:start + k], n), o, ln)
                scores.append(evaluate_notes(notes, est, n))
                start += k
            mean = {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}
            if not best or mean["note_f1"] + mean["frame_f1"] > best["note_f1"] + best["frame_f1"]:
                best = {**mean, "onset_threshold": o, "length_threshold": ln}
    if onset_roll is not None:
        best["onset_ap"] = average_precision(onset_roll, po)
    if length_roll is not None:
        best["length_ap"] = average_precision(length_roll, pl)
    return best


def compare_architectures(train_items: list[dict], valid_items: list[dict],
                          kinds=("cnn", "rnn", "lstm", "bilstm"), epochs: int = 5,
                          batch_size: int = 8, units: int = 128, onset_lr: float = 2e-3,
                          length_lr: float = 2e-3, onset_pos_weight: float = 5.0,
                          seed: int = 1234) -> list[dict]:
    """Train an onset and a length model of each architecture with the same budget; score them.

    Notebook: 02_architecture_cnn_rnn_lstm.ipynb

    Returns:
        One row per architecture: parameters, training seconds, validation average precision
        of onset and length frames (threshold-free), note F1, note-with-offset F1 and frame F1
        (at the best of a few decoder thresholds), and the trained models (``models``).
    """
    from .config import set_seed
    from .datasets import make_training_arrays

    x, on, ln, _ = make_training_arrays(train_items)
    xv, onv, lnv, _ = make_training_arrays(valid_items)
    refs = [it["notes"] for it in valid_items]
    frames = [len(it["features"]) for it in valid_items]
    rows = []
    for kind in kinds:
        set_seed(seed)
        t0 = time.perf_counter()
        models = {}
        for target, y, yv, lr, pw in (("onset", on, onv, onset_lr, onset_pos_weight),
                                      ("length", ln, lnv, length_lr, 1.0)):
            m = build_model(kind, units=units, name=f"{target}_{kind}")
            hist = train_model(m, x, y, xv, yv, lr=lr, pos_weight=pw, epochs=epochs,
                               batch_size=batch_size, patience=epochs, verbose=0)
            models[target] = (m, hist.history)
        seconds = time.perf_counter() - t0
        s = score_chunks(models["onset"][0], models["length"][0], xv, refs, frames,
                         onset_thresholds=(0.1, 0.2, 0.3, 0.5), length_thresholds=(0.2, 0.3, 0.5),
                         onset_roll=onv, length_roll=lnv)
        rows.append({"architecture": kind, "parameters": models["onset"][0].count_params(),
                     "train_seconds": round(seconds, 1), "onset_ap": s["onset_ap"],
                     "length_ap": s["length_ap"], "note_f1": s["note_f1"],
                     "note_offset_f1": s["note_offset_f1"], "frame_f1": s["frame_f1"],
                     "models": models})
    return rows


def gradient_norms_through_time(model, x: np.ndarray) -> np.ndarray:
    """How much the *last* frame's output depends on each earlier input frame.

    Returns ``||d sum(output[:, -1]) / d input[:, t]||`` for every frame ``t``: for a plain
    RNN it shrinks roughly geometrically going back in time (vanishing gradients); an LSTM's
    gated memory lets it reach further back.

    Notebook: 02_architecture_cnn_rnn_lstm.ipynb
    """
    from .config import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    xt = tf.convert_to_tensor(x.astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = model(xt, training=False)
        target = tf.reduce_sum(y[:, -1, :])
    g = tape.gradient(target, xt).numpy()
    return np.linalg.norm(g, axis=(0, 2))


def piece_scores(model, items: list[dict], target: str = "onset", threshold: float = 0.5):
    """Average precision, precision and recall (at ``threshold``) of one model on whole pieces.

    Each piece runs through the model in one go (as in transcription), and its frames are
    compared with the ``target`` roll (``onset`` or ``length``).

    Notebook: 03_onset_model.ipynb
    """
    from .evaluate import average_precision
    from .labels import notes_to_rolls
    from .transcribe import predict_windows

    probs, truth = [], []
    for it in items:
        p = predict_windows(model, it["features"])
        rolls = notes_to_rolls(it["notes"], len(p))
        probs.append(p)
        truth.append(rolls[0] if target == "onset" else rolls[1])
    p, t = np.concatenate(probs), np.concatenate(truth) > 0.5
    hit = p >= threshold
    tp = float(np.sum(hit & t))
    return {"ap": average_precision(t, p), "precision": tp / max(hit.sum(), 1),
            "recall": tp / max(t.sum(), 1), "max_prob": float(p.max()) if p.size else 0.0}

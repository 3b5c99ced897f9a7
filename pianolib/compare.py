"""Comparing architectures on the same data with the same budget, and looking inside them.

Notebook: 02_architecture_cnn_rnn_lstm.ipynb
"""

from __future__ import annotations

import time

import numpy as np

from .chunks import unchunk
from .decode import decode_notes
from .models import build_model
from .train import train_model


def evaluate_notes_fast(ref: np.ndarray, est: np.ndarray, n_frames: int) -> dict:
    """:func:`pianolib.evaluate.evaluate_notes`, fast when ``est`` holds many hopeless notes.

    A briefly trained model decoded at a low threshold can give thousands of notes a minute,
    and ``mir_eval`` compares every estimated note with every reference note. A note whose
    key has no reference note starting within 50 ms can never be matched, so dropping it
    first changes no match, only the counts: the number of matches is read off the scores of
    the kept notes and divided by the full count. The result equals ``evaluate_notes``.

    Notebook: 02_architecture_cnn_rnn_lstm.ipynb
    """
    from .evaluate import evaluate_notes, frame_scores
    from .labels import notes_to_rolls

    if len(ref) == 0 or len(est) == 0:
        return evaluate_notes(ref, est, n_frames)
    # the only notes mir_eval can match: a reference note on the same key starts within
    # 50 ms (plus a margin for mir_eval's rounding); found key by key with a binary search
    keep = np.zeros(len(est), dtype=bool)
    for key in np.unique(est[:, 2]):
        onsets = np.sort(ref[np.abs(ref[:, 2] - key) < 0.5, 0])
        if len(onsets) == 0:
            continue
        idx = np.flatnonzero(est[:, 2] == key)
        pos = np.searchsorted(onsets, est[idx, 0])
        before = onsets[np.maximum(pos - 1, 0)]
        after = onsets[np.minimum(pos, len(onsets) - 1)]
        gap = np.minimum(np.abs(est[idx, 0] - before), np.abs(after - est[idx, 0]))
        keep[idx] = gap <= 0.05 + 1e-3
    if keep.all():
        return evaluate_notes(ref, est, n_frames)
    n_ref, n_est, n_kept = len(ref), len(est), int(keep.sum())
    if n_kept:
        kept = evaluate_notes(ref, est[keep], n_frames)
        matches = round(kept["note_recall"] * n_ref)
        offset_matches = round(kept["note_offset_f1"] * (n_ref + n_kept) / 2)
    else:
        matches = offset_matches = 0
    out = {"note_precision": matches / n_est, "note_recall": matches / n_ref,
           "note_f1": 2 * matches / (n_ref + n_est),
           "note_offset_f1": 2 * offset_matches / (n_ref + n_est)}
    fp, fr, ff = frame_scores(notes_to_rolls(ref, n_frames)[1] > 0,
                              notes_to_rolls(est, n_frames)[1] > 0)
    out.update(frame_precision=fp, frame_recall=fr, frame_f1=ff)
    return {k: float(v) for k, v in out.items()}


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
                scores.append(evaluate_notes_fast(notes, est, n))
                start += k
            mean = {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}
            if not best or mean["note_f1"] + mean["frame_f1"] > best["note_f1"] + best["frame_f1"]:
                best = {**mean, "onset_threshold": o, "length_threshold": ln}
    if onset_roll is not None:
        best["onset_ap"] = average_precision(onset_roll, po)
    if length_roll is not None:
        best["length_ap"] = average_precision(length_roll, pl)
    return best


#: The decoder thresholds :func:`compare_architectures` tries on the validation pieces.
ONSET_THRESHOLDS = (0.1, 0.2, 0.3, 0.5)
LENGTH_THRESHOLDS = (0.2, 0.3, 0.5)


def split_arrays(items: list[dict]) -> dict:
    """The chunks, label chunks, reference notes and frame counts of some pieces.

    Notebook: 02_architecture_cnn_rnn_lstm.ipynb

    Returns:
        ``{"x", "onset", "length", "notes", "frames"}``: what :func:`score_chunks` needs.
    """
    from .datasets import make_training_arrays

    x, on, ln, _ = make_training_arrays(items)
    return {"x": x, "onset": on, "length": ln, "notes": [it["notes"] for it in items],
            "frames": [len(it["features"]) for it in items]}


def score_valid_test(onset_model, length_model, valid_items: list[dict], test_items: list[dict],
                     onset_thresholds=ONSET_THRESHOLDS,
                     length_thresholds=LENGTH_THRESHOLDS) -> dict:
    """Pick the decoder thresholds on the validation pieces, then score on the test pieces.

    Choosing thresholds and scoring on the same pieces flatters every model a little (the
    best of 12 tries is partly luck); the test pieces played no part in any choice, so their
    scores are an honest estimate.

    Notebook: 02_architecture_cnn_rnn_lstm.ipynb

    Args:
        onset_model, length_model: Trained models.
        valid_items, test_items: Pieces (as from :func:`pianolib.datasets.load_items`), or
            the dicts of :func:`split_arrays` made from them.
        onset_thresholds, length_thresholds: The grid tried on the validation pieces.

    Returns:
        The test scores of :func:`score_chunks` (with ``onset_ap`` and ``length_ap``), the
        chosen ``onset_threshold`` and ``length_threshold``, and the validation scores at
        them as ``valid_note_f1`` and ``valid_frame_f1``.
    """
    valid = valid_items if isinstance(valid_items, dict) else split_arrays(valid_items)
    test = test_items if isinstance(test_items, dict) else split_arrays(test_items)
    v = score_chunks(onset_model, length_model, valid["x"], valid["notes"], valid["frames"],
                     onset_thresholds=onset_thresholds, length_thresholds=length_thresholds)
    t = score_chunks(onset_model, length_model, test["x"], test["notes"], test["frames"],
                     onset_thresholds=(v["onset_threshold"],),
                     length_thresholds=(v["length_threshold"],),
                     onset_roll=test["onset"], length_roll=test["length"])
    return {**t, "valid_note_f1": v["note_f1"], "valid_frame_f1": v["frame_f1"]}


#: The scores :func:`compare_architectures` averages over seeds.
SCORES = ("onset_ap", "length_ap", "note_f1", "note_offset_f1", "frame_f1", "train_seconds")


def compare_architectures(train_items: list[dict], valid_items: list[dict],
                          kinds=("cnn", "rnn", "lstm", "bilstm"), epochs: int = 5,
                          batch_size: int = 8, units: int = 128, onset_lr: float = 2e-3,
                          length_lr: float = 2e-3, onset_pos_weight: float = 5.0,
                          seed: int = 1234, test_items: list[dict] | None = None,
                          seeds=None, progress: bool = False) -> list[dict]:
    """Train an onset and a length model of each architecture with the same budget; score them.

    Notebook: 02_architecture_cnn_rnn_lstm.ipynb

    Args:
        train_items, valid_items: Pieces to train on and to validate on.
        kinds: Architectures (:func:`pianolib.models.build_model`).
        epochs: Epochs of each model (the same budget for all).
        batch_size: Chunks per batch.
        units: Recurrent units.
        onset_lr, length_lr: Adam learning rates of the onset and the length model.
        onset_pos_weight: Weight of the rare positive onset frames in the onset loss.
        seed: The seed (when ``seeds`` is not given).
        test_items: Pieces to score on. Given: the decoder thresholds are picked on
            ``valid_items`` and every score is measured on ``test_items``
            (:func:`score_valid_test`). Not given: thresholds picked and scores measured on
            ``valid_items`` (optimistic; the old behaviour).
        seeds: Several seeds: each architecture is trained once per seed, and each score is
            their mean, with the standard deviation as ``<score>_sd``.
        progress: Print one line per trained pair of models.

    Returns:
        One row per architecture: parameters, training seconds, average precision of onset
        and length frames (threshold-free), note F1, note-with-offset F1 and frame F1 (at the
        chosen decoder thresholds), each a mean over seeds with ``<score>_sd`` beside it;
        ``runs`` (the scores and thresholds of each seed), ``scored_on`` (``"test"`` or
        ``"valid"``) and the trained models of the first seed (``models``).
    """
    from .config import set_seed
    from .datasets import make_training_arrays

    x, on, ln, _ = make_training_arrays(train_items)
    valid = split_arrays(valid_items)
    test = split_arrays(test_items) if test_items else None
    seeds = [seed] if seeds is None else list(seeds)
    rows = []
    for kind in kinds:
        runs, first_models, n_params = [], None, 0
        for s_ in seeds:
            set_seed(s_)
            t0 = time.perf_counter()
            models = {}
            for target, y, yv, lr, pw in (("onset", on, valid["onset"], onset_lr,
                                           onset_pos_weight),
                                          ("length", ln, valid["length"], length_lr, 1.0)):
                m = build_model(kind, units=units, name=f"{target}_{kind}")
                hist = train_model(m, x, y, valid["x"], yv, lr=lr, pos_weight=pw,
                                   epochs=epochs, batch_size=batch_size, patience=epochs,
                                   verbose=0)
                models[target] = (m, hist.history)
            seconds = time.perf_counter() - t0
            om, lm = models["onset"][0], models["length"][0]
            if test is not None:
                sc = score_valid_test(om, lm, valid, test)
            else:
                sc = score_chunks(om, lm, valid["x"], valid["notes"], valid["frames"],
                                  onset_thresholds=ONSET_THRESHOLDS,
                                  length_thresholds=LENGTH_THRESHOLDS,
                                  onset_roll=valid["onset"], length_roll=valid["length"])
            runs.append({**sc, "seed": s_, "train_seconds": round(seconds, 1)})
            if progress:
                print(f"{kind:7s} seed {s_}: {seconds:5.1f} s, note F1 {sc['note_f1']:.3f}")
            if first_models is None:
                first_models, n_params = models, om.count_params()
        row = {"architecture": kind, "parameters": n_params}
        for key in SCORES:
            values = np.array([r[key] for r in runs], dtype=float)
            row[key] = float(values.mean())
            row[f"{key}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        row.update(runs=runs, seeds=seeds, scored_on="test" if test is not None else "valid",
                   onset_lr=onset_lr, length_lr=length_lr, epochs=epochs, models=first_models)
        rows.append(row)
    return rows


def receptive_field(model) -> int | None:
    """How many input frames one output frame of ``model`` can see (None: unbounded).

    Walks the layers in order: a convolution of kernel ``k`` and dilation ``d`` widens the
    field by ``(k - 1) * d`` times the current stride ("jump") in time; a pooling or strided
    layer multiplies the jump. A recurrent layer carries a state through every frame, so its
    field is the whole sequence (None). Time is the first axis after the batch.

    Notebook: 02_architecture_cnn_rnn_lstm.ipynb
    """
    from keras import layers

    field, jump = 1, 1
    for layer in model.layers:
        if isinstance(layer, (layers.RNN, layers.Bidirectional)):
            return None
        if isinstance(layer, (layers.Conv1D, layers.Conv2D)):
            k, d, s = layer.kernel_size[0], layer.dilation_rate[0], layer.strides[0]
        elif isinstance(layer, (layers.MaxPooling1D, layers.MaxPooling2D,
                                layers.AveragePooling1D, layers.AveragePooling2D)):
            k, d, s = layer.pool_size[0], 1, layer.strides[0]
        else:
            continue
        field += (k - 1) * d * jump
        jump *= s
    return field


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

    Each piece runs through the model in 10-s windows with 0.5 s of context on each side (as in
    transcription: :func:`pianolib.transcribe.predict_windows`), and its frames are
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

"""Training the Onset, Length, Velocity and Pedal models: shuffled chunks or stateful streaming.

Notebooks: 03_onset_model.ipynb, 07_velocity_and_pedal.ipynb
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from .config import quiet_tensorflow

quiet_tensorflow()  # before Keras loads TensorFlow: no C++ start-up lines
import keras
import numpy as np

from .config import N_KEYS, SEED, SEQ_LEN, set_seed
from .errors import PianolibError
from .files import write_json
from .models import OnsetMSE, WeightedBCE, build_model

#: Starting points (Adam learning rates), class weights and values per frame of each model.
#: Onset and Length are the series' models; Velocity (a regression on onset frames) and Pedal
#: (one sustain-pedal output per frame) are notebook 07's.
TARGETS = {
    "onset": {"lr": 5e-4, "pos_weight": 1.0, "outputs": N_KEYS},
    "length": {"lr": 2e-3, "pos_weight": 1.0, "outputs": N_KEYS},
    "velocity": {"lr": 1e-3, "pos_weight": 1.0, "outputs": N_KEYS},
    "pedal": {"lr": 1e-3, "pos_weight": 1.0, "outputs": 1, "chunks": 5},
}
#: ``chunks``: the Pedal model learns from 5-s chunks (batches 5 times smaller): whether the
#: pedal is down is heard in how notes ring on after their keys are released, which takes
#: more than a second of context.


def get_strategy(device: str | None = None):
    """A ``tf.distribute`` strategy: all GPUs of the machine, or one named device.

    With several GPUs this is a ``MirroredStrategy`` (the same command trains on all of them);
    otherwise the default single-device strategy. ``device="/cpu:0"`` forces one device.

    Notebook: 03_onset_model.ipynb
    """
    import tensorflow as tf

    if device:
        return tf.distribute.OneDeviceStrategy(device)
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def train_model(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    out: str | Path | None = None,
    lr: float = 5e-4,
    pos_weight: float = 1.0,
    epochs: int = 30,
    batch_size: int = 32,
    patience: int = 5,
    verbose: int | str = "auto",
    strategy=None,
    minutes: float | None = None,
    loss=None,
) -> keras.callbacks.History:
    """Compile and fit one model on shuffled chunks with the series' callbacks.

    Checkpoint on validation loss (best model kept as ``<out>``), early stopping with
    ``patience`` (best weights restored), and a CSV log ``<out>.csv`` of the curves.

    Notebook: 03_onset_model.ipynb

    Args:
        model: A model from :func:`pianolib.models.build_model` (built under ``strategy``'s
            scope when a strategy is used).
        x_train, y_train: Chunks ``(n, T, 264)`` and targets ``(n, T, 88)``.
        x_valid, y_valid: Validation chunks.
        out: ``.keras`` path of the best model (None: keep in memory only).
        lr: Adam learning rate.
        pos_weight: Weight of positive targets in the loss (1 = plain BCE).
        epochs: Maximum epochs.
        batch_size: Chunks per batch.
        patience: Early-stopping patience in epochs.
        verbose: Keras verbosity (progress bar by default).
        strategy: A ``tf.distribute`` strategy whose scope the model was built in.
        minutes: Time budget: no epoch is started that would end past it (:class:`TimeBudget`).
        loss: A Keras loss (default: binary cross-entropy, weighted by ``pos_weight``).

    Returns:
        The Keras ``History``.
    """
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        if loss is None:
            loss = (WeightedBCE(pos_weight) if pos_weight != 1.0
                    else keras.losses.BinaryCrossentropy())
        model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss)
    callbacks = [keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)]
    if minutes:
        callbacks.append(TimeBudget(minutes))
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        callbacks += [
            keras.callbacks.ModelCheckpoint(str(out), monitor="val_loss", save_best_only=True),
            keras.callbacks.CSVLogger(str(out.with_suffix(".csv"))),
        ]
    return model.fit(
        x_train, y_train, validation_data=(x_valid, y_valid), epochs=epochs,
        batch_size=batch_size, shuffle=True, callbacks=callbacks, verbose=verbose,
    )


def load_split_arrays(data: str | Path | list, split: str, seq_len: int = SEQ_LEN,
                      length_labels: str = "sounding"):
    """``(X, onset, length)`` chunk arrays of one split of built datasets (X as float16).

    Args:
        data: A dataset folder or a list of them (their items are pooled).
        split: ``train``, ``valid`` or ``test``.
        seq_len: Frames per chunk.
        length_labels: ``"sounding"`` (notes extended by the sustain pedal, the default) or
            ``"key"`` (notes end at key release; :func:`pianolib.datasets.key_release_notes`).
    """
    from .datasets import as_folders, load_items, make_training_arrays, with_key_release_labels

    if length_labels not in ("sounding", "key"):
        raise PianolibError(f"length_labels must be 'sounding' or 'key', got {length_labels!r}")
    items = []
    for folder in as_folders(data):
        part = load_items(folder, split)
        items += with_key_release_labels(folder, part) if length_labels == "key" else part
    if not items:
        raise PianolibError(f"{data}: no items in split {split!r}")
    X, on, ln, _ = make_training_arrays(items, seq_len)
    return X.astype(np.float16), on, ln


def has_pedal_labels(item: dict) -> bool:
    """Whether an item's MIDI tells where the sustain pedal is.

    Rendered items (generated etudes, performances) are rendered from their MIDI, pedal
    included: no CC64 there means no pedal. Recordings labelled by a TSV note list (MAPS)
    carry no pedal information at all, so they cannot teach the Pedal model "pedal up".

    Notebook: 07_velocity_and_pedal.ipynb
    """
    return item.get("source") != "recording"


def load_target_arrays(data: str | Path | list, split: str, target: str,
                       seq_len: int = SEQ_LEN):
    """``(X, y)`` chunk arrays of one split for the Velocity or Pedal model (X as float16).

    Velocity targets come from the label notes (:func:`pianolib.labels.velocity_roll`);
    pedal targets from each item's MIDI file (:func:`pianolib.labels.pedal_roll`), for the
    items that have pedal labels (:func:`has_pedal_labels`).

    Notebook: 07_velocity_and_pedal.ipynb
    """
    from .chunks import make_chunks
    from .datasets import as_folders, load_items
    from .labels import pedal_roll, velocity_roll
    from .midi import load_midi, pedal_intervals

    xs, ys = [], []
    for folder in as_folders(data):
        for it in load_items(folder, split):
            n = len(it["features"])
            if target == "velocity":
                if len(it["notes"]) and np.ptp(it["notes"][:, 3]) == 0:
                    continue  # one velocity for every note: labels without velocities
                y = velocity_roll(it["notes"], n)
            elif target == "pedal":
                if not has_pedal_labels(it):
                    continue
                y = pedal_roll(pedal_intervals(load_midi(Path(folder) / it["midi"])), n)
            else:
                raise PianolibError(f"unknown target {target!r}")
            xs.append(make_chunks(it["features"], seq_len).astype(np.float16))
            ys.append(make_chunks(y, seq_len))
    if not xs:
        raise PianolibError(f"{data}: no items with {target} labels in split {split!r}")
    return np.concatenate(xs), np.concatenate(ys)


def train_transcriber(
    data: str | Path | list,
    out: str | Path,
    kind: str = "crnn",
    epochs: int = 30,
    batch_size: int = 32,
    seq_len: int = SEQ_LEN,
    onset_lr: float = TARGETS["onset"]["lr"],
    length_lr: float = TARGETS["length"]["lr"],
    onset_pos_weight: float = 1.0,
    length_pos_weight: float = 1.0,
    units: int = 128,
    patience: int = 5,
    max_minutes: float | None = None,
    seed: int = SEED,
    force: bool = False,
    verbose: int | str | None = None,
    targets: tuple[str, ...] = ("onset", "length"),
    init_from: str | Path | None = None,
    config: dict | None = None,
    velocity_lr: float = TARGETS["velocity"]["lr"],
    pedal_lr: float = TARGETS["pedal"]["lr"],
    length_labels: str = "sounding",
    onset_partial_weight: float = 1.0,
) -> dict:
    """Train the Onset, Length (and Velocity, Pedal) models on built datasets; write a report.

    Writes ``<out>/<target>.keras`` for each of ``targets``, their CSV logs and
    ``<out>/train.json`` (settings, epochs, minutes, best validation losses).
    ``length_labels="key"`` trains the Length model on key releases (see
    :func:`load_split_arrays`); ``onset_partial_weight`` makes hard negatives of the onset
    model's partial positions (:class:`pianolib.models.WeightedBCE`); ``targets``
    trains only some of them (e.g. ``("velocity", "pedal")`` beside existing onset and length
    models); ``init_from`` starts from the weights of the models in that folder.

    Notebooks: 03_onset_model.ipynb, 07_velocity_and_pedal.ipynb
    """
    import sys

    if verbose is None:  # Keras' progress bar on a terminal, one line per epoch in a log
        verbose = "auto" if sys.stdout.isatty() else 2
    out = Path(out)
    if any((out / f"{t}.keras").exists() for t in targets) and not force:
        raise PianolibError(f"{out}: models already exist; pass --force to retrain")
    unknown = set(targets) - set(TARGETS)
    if unknown:
        raise PianolibError(f"unknown targets {sorted(unknown)}; use some of {list(TARGETS)}")
    set_seed(seed)
    strategy = get_strategy()
    arrays = {}
    if {"onset", "length"} & set(targets):
        x_tr, on_tr, len_tr = load_split_arrays(data, "train", seq_len, length_labels)
        x_va, on_va, len_va = load_split_arrays(data, "valid", seq_len, length_labels)
        print(f"train {x_tr.shape}, valid {x_va.shape}, onset rate {on_tr.mean():.4f}, "
              f"length rate {len_tr.mean():.4f}")
        arrays["onset"] = (x_tr, on_tr, x_va, on_va)
        arrays["length"] = (x_tr, len_tr, x_va, len_va)
    old = out / "train.json"
    report: dict = json.loads(old.read_text()) if old.is_file() else {}
    from .datasets import as_folders

    if "length" in targets:  # what the folder's Length model learnt
        report["length_labels"] = length_labels
    report.update({"data": [str(d) for d in as_folders(data)], "kind": kind, "units": units,
                   "seq_len": seq_len, "batch_size": batch_size, "seed": seed,
                   "config": config or {"name": None}})
    report.setdefault("models", {})
    settings = {"onset": (onset_lr, onset_pos_weight), "length": (length_lr, length_pos_weight),
                "velocity": (velocity_lr, 1.0), "pedal": (pedal_lr, 1.0)}
    for target in TARGETS:
        if target not in targets:
            continue
        lr, pw = settings[target]
        if target in arrays:
            x_tr, y_tr, x_va, y_va = arrays[target]
        else:
            chunks = TARGETS[target].get("chunks", 1)
            x_tr, y_tr = load_target_arrays(data, "train", target, seq_len * chunks)
            x_va, y_va = load_target_arrays(data, "valid", target, seq_len * chunks)
            print(f"{target}: train {x_tr.shape}, valid {x_va.shape}, "
                  f"non-zero rate {(y_tr > 0).mean():.4f}")
        set_seed(seed)
        with strategy.scope():
            model = build_model(kind, units=units, name=f"{target}_{kind}", verbose=True,
                                outputs=TARGETS[target]["outputs"])
            if init_from:
                from .models import load_model

                model.set_weights(load_model(Path(init_from) / f"{target}.keras").get_weights())
        share = max_minutes / len(targets) if max_minutes else None
        loss = None
        if target == "velocity":
            loss = OnsetMSE()
        elif target == "onset" and onset_partial_weight != 1.0:
            loss = WeightedBCE(pw, partial_weight=onset_partial_weight)
        t0 = time.perf_counter()
        hist = train_model(model, x_tr, y_tr, x_va, y_va, out / f"{target}.keras", lr=lr,
                           pos_weight=pw, epochs=epochs,
                           batch_size=max(1, batch_size // TARGETS[target].get("chunks", 1)),
                           patience=patience, verbose=verbose, strategy=strategy,
                           minutes=share, loss=loss)
        previous = report["models"].get(target, {}) if init_from else {}
        report["models"][target] = {
            "continued_from": str(init_from) if init_from else None,
            "previous_epochs": previous.get("epochs_run", 0) + previous.get("previous_epochs", 0),
            "lr": lr, "pos_weight": pw, "epochs_run": len(hist.history["loss"]),
            **({"partial_weight": onset_partial_weight} if target == "onset" else {}),
            "best_val_loss": float(np.min(hist.history["val_loss"])),
            "minutes": round((time.perf_counter() - t0) / 60, 2),
            "params": model.count_params(),
        }
        # after each model, so that a cut run keeps its record (the run folder is ours)
        write_json(out / "train.json", report, force=True)
        arrays.pop(target, None)
        del x_tr, y_tr, x_va, y_va
    return report


class TimeBudget(keras.callbacks.Callback):
    """Stop training when the next epoch would not finish within ``minutes``.

    The time of the epochs run so far predicts the next one; an epoch is started if it is
    predicted to end within the budget (5 % slack). Measuring whole epochs is far steadier
    than timing a few steps up front, which swung between 2 and 4 epochs for the same data.

    Notebook: 03_onset_model.ipynb
    """

    def __init__(self, minutes: float, slack: float = 0.05):
        super().__init__()
        self.minutes, self.slack = minutes, slack
        self.t0 = time.perf_counter()

    def on_train_begin(self, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if next_epoch_over_budget(time.perf_counter() - self.t0, epoch + 1, self.minutes,
                                  self.slack):
            self.model.stop_training = True


def next_epoch_over_budget(elapsed: float, epochs_done: int, minutes: float,
                           slack: float = 0.05) -> bool:
    """Whether one more epoch, as long as the mean one so far, would end past ``minutes``
    (plus ``slack``): the rule of :class:`TimeBudget` and of the streamed training loop.

    Notebook: 03_onset_model.ipynb
    """
    return elapsed + elapsed / epochs_done > minutes * 60 * (1 + slack)


# ----------------------------------------------------------------------------------------------
# Stateful streaming: the original series' layout, done right.
# ----------------------------------------------------------------------------------------------


def streaming_batches(lengths: list[int], batch_size: int, seq_len: int = SEQ_LEN):
    """Lay pieces out in ``batch_size`` lanes so that row i of batch t+1 continues row i of t.

    Each lane plays its pieces one after another; a row is *reset* when a new piece starts in
    it. The original series instead cut batches of 10 consecutive 1-s chunks of one piece, so
    row i of the next batch was 10 s later (or another piece) while the state carried on.

    Notebook: 03_onset_model.ipynb

    Args:
        lengths: Number of chunks of each piece.
        batch_size: Lanes (rows per batch).
        seq_len: Frames per chunk (for documentation only).

    Returns:
        ``(chunk_ids, resets)``: ``chunk_ids`` ``(n_batches, batch_size)`` global chunk index
        (-1 for padding at the end of a lane), and ``resets`` ``(n_batches, batch_size)`` True
        where that row starts a new piece (its state must be zeroed first).
    """
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
    lanes: list[list[int]] = [[] for _ in range(batch_size)]
    lane_resets: list[list[bool]] = [[] for _ in range(batch_size)]
    for p in np.argsort(lengths)[::-1]:  # longest first into the shortest lane: balanced
        lane = min(range(batch_size), key=lambda i: len(lanes[i]))
        lanes[lane] += list(range(starts[p], starts[p] + lengths[p]))
        lane_resets[lane] += [True] + [False] * (lengths[p] - 1)
    n_batches = max(len(lane) for lane in lanes)
    ids = np.full((n_batches, batch_size), -1, dtype=np.int64)
    resets = np.ones((n_batches, batch_size), dtype=bool)
    for i, (lane, res) in enumerate(zip(lanes, lane_resets)):
        ids[: len(lane), i] = lane
        resets[: len(res), i] = res
    return ids, resets


def reset_rows(model: keras.Model, rows: np.ndarray) -> None:
    """Zero the recurrent state of the given batch rows of every stateful layer.

    Notebook: 03_onset_model.ipynb
    """
    keep = (~np.asarray(rows, dtype=bool)).astype("float32")[:, None]
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            for state in layer.states:
                state.assign(state * keep)


def series_batches(lengths: list[int], batch_size: int = 10):
    """The original series' layout: each batch holds ``batch_size`` consecutive chunks of a piece.

    With a stateful LSTM, row i of batch t+1 is chunk ``10(t+1) + i``: its state comes from
    chunk ``10t + i``, ten seconds earlier. States were reset only when a new file started
    (and, from a prefetching generator, not even reliably then). Returned in the same format as
    :func:`streaming_batches`, for comparison.

    Notebook: 03_onset_model.ipynb
    """
    ids, resets = [], []
    start = 0
    for n in lengths:
        for b in range(0, n, batch_size):
            row = np.arange(start + b, start + b + batch_size)
            ids.append(np.where(row < start + n, row, -1))
            resets.append(np.full(batch_size, b == 0))
        start += n
    return np.array(ids, dtype=np.int64), np.array(resets, dtype=bool)


def train_streaming(model: keras.Model, x: np.ndarray, y: np.ndarray, lengths: list[int],
                    epochs: int = 1, lr: float = 5e-4, layout: str = "streaming",
                    pos_weight: float = 1.0, verbose: bool = True) -> list[float]:
    """Train a stateful model batch by batch in a fixed order, resetting states where needed.

    ``layout="streaming"`` uses :func:`streaming_batches` (row i continues row i); rows that
    start a new piece have their state zeroed *in the training loop itself*, right before the
    batch - not in a prefetching generator, whose ``reset_states()`` calls run ahead of the
    batches actually being trained. ``layout="series"`` reproduces the original
    :func:`series_batches` (10 consecutive chunks per batch) for comparison.

    Notebook: 03_onset_model.ipynb

    Returns:
        Mean training loss per epoch.
    """
    batch_size = model.inputs[0].shape[0]
    if layout == "streaming":
        ids, resets = streaming_batches(lengths, batch_size)
    else:
        ids, resets = series_batches(lengths, batch_size)
    loss = WeightedBCE(pos_weight) if pos_weight != 1.0 else "binary_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss)
    losses = []
    for epoch in range(epochs):
        for layer in model.layers:
            if getattr(layer, "stateful", False):
                layer.reset_states()
        total = []
        for b in range(len(ids)):
            reset_rows(model, resets[b])
            idx = np.maximum(ids[b], 0)
            weight = np.repeat((ids[b] >= 0).astype("float32")[:, None], x.shape[1], axis=1)
            total.append(model.train_on_batch(x[idx], y[idx], sample_weight=weight))
        losses.append(float(np.mean(total)))
        if verbose:
            print(f"epoch {epoch + 1}: loss {losses[-1]:.4f}")
    return losses

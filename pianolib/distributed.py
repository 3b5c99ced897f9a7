"""Training on many devices and machines with ``tf.distribute``, streamed from shards.

Keras 3's ``Model.fit`` runs under ``MirroredStrategy`` (several GPUs of one machine) but not
under ``MultiWorkerMirroredStrategy`` (several machines): its per-replica outputs reach a
conversion that fails (keras-team/keras#20585, open). So the streamed path trains with the
custom loop that TensorFlow's distributed-training guide teaches: ``strategy.run`` of one
step on every replica, each replica's loss averaged over the *global* batch
(``tf.nn.compute_average_loss``), gradients all-reduced by the optimizer. The same loop runs
under the default strategy (one CPU or GPU), ``MirroredStrategy`` and
``MultiWorkerMirroredStrategy``.

**Several machines.** Every machine runs the same command with its own ``TF_CONFIG`` (the
same cluster, its own index; worker 0 writes the models)::

    # on machine a
    export TF_CONFIG='{"cluster": {"worker": ["a:12345", "b:12345"]},
                       "task": {"type": "worker", "index": 0}}'
    python -m pianolib train --config maestro --strategy multi-worker
    # on machine b
    export TF_CONFIG='{"cluster": {"worker": ["a:12345", "b:12345"]},
                       "task": {"type": "worker", "index": 1}}'
    python -m pianolib train --config maestro --strategy multi-worker

Both read the shards from storage they share (NFS, a mounted bucket). Every worker reads
every shard and keeps its part of each global batch (``tf.data``'s ``DATA`` auto-sharding), so
the workers see the batches one process would see.

**Batch size and learning rate.** ``batch_size`` is per replica; the global batch is
``batch_size x replicas``, so every device does the same work as alone. Adam's learning rate
is multiplied by ``sqrt(replicas)`` (the square-root rule for adaptive optimisers; Malladi
et al., 2022), not by ``replicas`` (the linear rule suits plain SGD, Goyal et al., 2017).
``scale_lr=False`` keeps the learning rate: the test that 2 workers match 1 process uses a fixed
global batch and learning rate, so the two runs differ only where a replica computes alone:
float rounding in the all-reduce, and BatchNormalization, whose batch statistics are each
replica's (4 crops per worker against 8 in one process).

Notebook: 08_scaling_up.ipynb
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from .config import FPS, SEED, SEQ_LEN, quiet_tensorflow, set_seed
from .errors import PianolibError

STRATEGIES = ("default", "mirrored", "multi-worker")


def make_strategy(kind: str = "default"):
    """A ``tf.distribute`` strategy by name: ``default``, ``mirrored`` or ``multi-worker``.

    ``multi-worker`` needs ``TF_CONFIG`` (see the module docstring) and must be made before
    TensorFlow runs anything else in the process.

    Notebook: 08_scaling_up.ipynb
    """
    quiet_tensorflow()
    import tensorflow as tf

    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    if kind == "multi-worker":
        if not os.environ.get("TF_CONFIG"):
            raise PianolibError("--strategy multi-worker needs TF_CONFIG: set it on every "
                                'machine, e.g. {"cluster": {"worker": ["a:12345", "b:12345"]}, '
                                '"task": {"type": "worker", "index": 0}}')
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise PianolibError(f"unknown strategy {kind!r}; use one of {STRATEGIES}")


def scale_for_replicas(batch_size: int, lr: float, replicas: int,
                       scale_lr: bool = True) -> tuple[int, float]:
    """``(global batch, learning rate)`` for ``replicas`` (see the module docstring).

    Notebook: 08_scaling_up.ipynb

    >>> scale_for_replicas(32, 1e-3, 4)
    (128, 0.002)
    """
    if replicas < 1 or batch_size < 1:
        raise PianolibError("batch_size and replicas must be at least 1")
    return batch_size * replicas, (lr * math.sqrt(replicas) if scale_lr else lr)


def is_chief() -> bool:
    """Whether this process writes the run's files (worker 0, or the only process)."""
    cfg = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = cfg.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    if "chief" in cfg.get("cluster", {}):  # a cluster with a chief task: it writes
        return kind == "chief"
    return kind in ("worker", "chief") and index == 0


def _distribute(strategy, ds):
    """``ds`` (global batches) split over the replicas: ``DATA`` auto-sharding, each worker
    keeps its part of every batch (the module docstring says why)."""
    import tensorflow as tf

    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(ds.with_options(opts))


def agreement(strategy):
    """A function ``agree(flag) -> bool``: True on every worker when any worker passes True.

    Workers of ``MultiWorkerMirroredStrategy`` must take the same decisions (stop, refuse to
    start): one that leaves while the others wait in an all-reduce hangs the run. A SUM
    all-reduce of 0/1 flags decides for all (``ReduceOp`` has no MAX).
    """
    import tensorflow as tf

    @tf.function
    def reduce(flag):
        return strategy.reduce(tf.distribute.ReduceOp.SUM,
                               strategy.run(lambda: tf.identity(flag)), axis=None)

    return lambda flag: float(reduce(tf.constant(1.0 if flag else 0.0))) > 0


def _check_splits(shards, global_batch: int, seq_len: int, validate: bool) -> None:
    """Refuse a train split with fewer crops than one global batch, or an empty valid split."""
    from .shards import read_index, split_chunks

    splits = read_index(shards)["splits"]
    for split, need in (("train", global_batch), ("valid", 1 if validate else 0)):
        if not need:
            continue
        if split not in splits:
            raise PianolibError(f"{shards}: no {split} split (it has {sorted(splits)}); "
                                f"`python -m pianolib shards ... --assign ITEM={split}`")
        have = split_chunks(shards, split, seq_len)
        if have < need:
            raise PianolibError(f"{shards}: the {split} split has {have} crops of {seq_len} "
                                f"frames, fewer than one global batch of {need}")


def train_streamed(
    shards: str | Path,
    out: str | Path | None,
    target: str = "onset",
    strategy=None,
    kind: str = "crnn",
    units: int = 128,
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 5e-4,
    pos_weight: float = 1.0,
    seed: int = SEED,
    seq_len: int = SEQ_LEN,
    shuffle_buffer: int = 2048,
    cycle_length: int = 4,
    crop: bool = True,
    steps_per_epoch: int | None = None,
    patience: int = 5,
    max_minutes: float | None = None,
    scale_lr: bool = True,
    validate: bool = True,
    verbose: bool = True,
    dataset=None,
) -> dict:
    """Train one model (Onset or Length) from shards under a ``tf.distribute`` strategy.

    Every epoch reads the train split once (or ``steps_per_epoch`` global batches), then the
    valid split; the best model by validation loss is written to ``<out>/<target>.keras`` by
    the chief, with a CSV log ``<out>/<target>.csv``. Early stopping (``patience``) and the
    time budget are agreed by all workers (an all-reduce), so no worker waits for another
    that has stopped.

    Notebook: 08_scaling_up.ipynb

    Args:
        shards: A shard folder (:mod:`pianolib.shards`).
        out: Folder of the model and its log (None: keep in memory only).
        target: ``onset`` or ``length``.
        strategy: A ``tf.distribute`` strategy (default: the default strategy).
        kind, units: Model family and LSTM units (:func:`pianolib.models.build_model`).
        epochs: Most epochs.
        batch_size: Crops per batch *per replica* (:func:`scale_for_replicas`).
        lr: Adam learning rate for one replica.
        pos_weight: Weight of positive frames in the loss.
        seed: Seed of the weights and of the data order.
        seq_len: Frames per crop.
        shuffle_buffer, cycle_length, crop: See :func:`pianolib.shards.shard_dataset`.
        steps_per_epoch: Global batches per epoch (None: one pass over the train split).
        patience: Early-stopping patience in epochs.
        max_minutes: Time budget: no epoch starts that would end past it.
        scale_lr: Scale the learning rate by sqrt(replicas).
        validate: Compute the validation loss each epoch.
        verbose: One line per epoch.
        dataset: A ready ``tf.data`` dataset of global batches to train on instead of the
            shards' train split (e.g. :func:`pianolib.shards.memory_dataset`, to compare).

    Returns:
        ``{"loss": [...], "val_loss": [...], "examples_per_s": [...], "replicas", "global_batch",
        "lr", "epochs_run", "best_val_loss", "seconds"}``.
    """
    quiet_tensorflow()
    import keras
    import tensorflow as tf

    from .models import WeightedBCE, build_model
    from .shards import shard_dataset
    from .train import next_epoch_over_budget

    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    global_batch, lr = scale_for_replicas(batch_size, lr, replicas, scale_lr)
    set_seed(seed)
    keras.utils.set_random_seed(seed)
    if dataset is None:
        _check_splits(shards, global_batch, seq_len, validate)
        dataset = shard_dataset(shards, "train", target, global_batch, seq_len, seed,
                                shuffle_buffer, cycle_length, crop, drop_remainder=True,
                                repeat=steps_per_epoch is not None)
    elif validate:
        _check_splits(shards, 0, seq_len, validate)
    train_ds = _distribute(strategy, dataset)
    valid_ds = None
    if validate:  # every crop once, the last batch partial: the same loss for any replica count
        valid_ds = _distribute(strategy, shard_dataset(
            shards, "valid", target, global_batch, seq_len, seed, shuffle_buffer=1,
            crop=False, shuffle_files=False))
    with strategy.scope():
        model = build_model(kind, units=units, name=f"{target}_{kind}")
        optimizer = keras.optimizers.Adam(lr)
        optimizer.build(model.trainable_variables)
    loss_fn = (WeightedBCE(pos_weight, reduction=None) if pos_weight != 1.0
               else keras.losses.BinaryCrossentropy(reduction=None))

    def per_example(y, p):  # (batch, frames) -> (batch,): mean over frames and keys
        return tf.reduce_mean(loss_fn(y, p), axis=-1)

    @tf.function
    def train_step(x, y):
        def step(x, y):
            with tf.GradientTape() as tape:
                p = model(x, training=True)
                loss = tf.nn.compute_average_loss(per_example(y, p), global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(step, args=(x, y)),
                               axis=None)

    @tf.function
    def valid_step(x, y):  # (sum of the crops' losses, number of crops), over all replicas
        def step(x, y):
            loss = per_example(y, model(x, training=False))
            return tf.reduce_sum(loss), tf.cast(tf.shape(loss)[0], loss.dtype)
        total, count = strategy.run(step, args=(x, y))
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, total, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, count, axis=None))

    agree = agreement(strategy)
    chief = is_chief()
    path = Path(out) / f"{target}.keras" if out is not None else None
    if path is not None and chief:
        path.parent.mkdir(parents=True, exist_ok=True)
    hist: dict = {"loss": [], "val_loss": [], "examples_per_s": [], "replicas": replicas,
                  "global_batch": global_batch, "lr": lr}
    best, best_epoch, t_start = math.inf, -1, time.perf_counter()
    # with steps_per_epoch the data repeats: one iterator for the whole run (as Keras keeps),
    # so the shuffle buffer is filled once, not at every epoch
    it = iter(train_ds) if steps_per_epoch is not None else None
    for epoch in range(epochs):
        t0 = time.perf_counter()
        losses = []
        for step_i, (x, y) in enumerate(it if it is not None else iter(train_ds)):
            losses.append(train_step(x, y))  # a tensor: no wait for the device per step
            if steps_per_epoch is not None and step_i + 1 >= steps_per_epoch:
                break
        seconds = time.perf_counter() - t0
        if not losses:
            raise PianolibError(f"{shards}: epoch {epoch + 1} gave no full batch of "
                                f"{global_batch} crops (a dataset= that does not repeat?)")
        hist["loss"].append(float(np.mean([float(v) for v in losses])))
        hist["examples_per_s"].append(len(losses) * global_batch / max(seconds, 1e-9))
        if valid_ds is not None:
            sums = np.array([[float(v) for v in valid_step(x, y)] for x, y in valid_ds])
            val = float(sums[:, 0].sum() / sums[:, 1].sum())
        else:
            val = hist["loss"][-1]
        hist["val_loss"].append(val)
        if val < best:
            best, best_epoch = val, epoch
            if path is not None and chief:
                from .files import atomic_write

                with atomic_write(path, force=True) as tmp:  # a crash keeps the last best
                    model.save(str(tmp))
        if verbose:
            print(f"{target} epoch {epoch + 1}: loss {hist['loss'][-1]:.4f}, val_loss {val:.4f}, "
                  f"{hist['examples_per_s'][-1]:.1f} examples/s ({replicas} replicas)",
                  flush=True)
        if path is not None and chief:
            _write_log(path.with_suffix(".csv"), hist)
        stop = epoch - best_epoch >= patience or bool(max_minutes) and next_epoch_over_budget(
            time.perf_counter() - t_start, epoch + 1, max_minutes)
        if agree(stop):
            break
    hist.update(epochs_run=len(hist["loss"]), best_val_loss=best,
                seconds=round(time.perf_counter() - t_start, 2), model=model)
    return hist


def _write_log(path: Path, hist: dict) -> None:
    from .files import write_csv

    rows = [{"epoch": i, "loss": hist["loss"][i], "val_loss": hist["val_loss"][i],
             "examples_per_s": round(hist["examples_per_s"][i], 2)}
            for i in range(len(hist["loss"]))]
    write_csv(path, rows, ["epoch", "loss", "val_loss", "examples_per_s"], force=True)


def train_from_shards(cfg, out: str | Path, force: bool = False, verbose: bool = True) -> dict:
    """``python -m pianolib train`` with ``--shards``: the Onset and Length models, streamed.

    The strategy is made first (``MultiWorkerMirroredStrategy`` must exist before TensorFlow
    runs anything else); only the chief writes ``<out>/{onset,length}.keras`` and
    ``<out>/train.json``.

    Notebook: 08_scaling_up.ipynb

    Args:
        cfg: A :class:`pianolib.configs.TrainConfig` with ``shards`` set.
        out: The run folder.
        force: Replace models already in ``out``.
        verbose: One line per epoch.
    """
    from .files import write_json
    from .shards import read_index

    targets = [t for t in cfg.targets if t in ("onset", "length")]
    if not targets or len(targets) != len(cfg.targets):
        raise PianolibError(f"training from shards covers the onset and length models; "
                            f"got targets {list(cfg.targets)}")
    if cfg.init_from or cfg.length_labels != "sounding":
        raise PianolibError("training from shards starts from scratch with the shards' "
                            "(sounding) length labels: init_from and length_labels='key' are "
                            "in-memory options")
    strategy = make_strategy(cfg.strategy)
    out = Path(out)
    chief = is_chief()
    problem = None
    try:  # every worker checks; all refuse together (one alone would leave the others waiting)
        read_index(cfg.shards)
        if chief and not force and any((out / f"{t}.keras").exists() for t in targets):
            raise PianolibError(f"{out}: models already exist; pass --force to retrain")
    except PianolibError as exc:
        problem = str(exc)
    if agreement(strategy)(problem is not None):
        raise PianolibError(problem or "another worker refused to start (see its error)")
    report = {"config": cfg.to_dict(), "shards": str(cfg.shards), "strategy": cfg.strategy,
              "replicas": strategy.num_replicas_in_sync, "kind": cfg.arch, "units": cfg.units,
              "seq_len": cfg.seq_len, "seed": cfg.seed, "length_labels": "sounding", "models": {}}
    lrs = {"onset": (cfg.onset_lr, cfg.onset_pos_weight),
           "length": (cfg.length_lr, cfg.length_pos_weight)}
    for target in targets:
        lr, pw = lrs[target]
        hist = train_streamed(
            cfg.shards, out, target, strategy, cfg.arch, cfg.units, cfg.epochs, cfg.batch_size,
            lr, pw, cfg.seed, cfg.seq_len, cfg.shuffle_buffer,
            steps_per_epoch=cfg.steps_per_epoch, patience=cfg.patience,
            max_minutes=cfg.max_minutes / len(targets) if cfg.max_minutes else None,
            scale_lr=cfg.scale_lr, verbose=verbose)
        hist.pop("model")
        report["models"][target] = {k: hist[k] for k in (
            "epochs_run", "best_val_loss", "seconds", "global_batch", "lr", "loss", "val_loss",
            "examples_per_s")}
        report["models"][target]["pos_weight"] = pw
        if chief:
            write_json(out / "train.json", report, force=True)
    return report


def free_ports(n: int) -> list[int]:
    """``n`` TCP ports free on 127.0.0.1 right now (the OS picks them)."""
    import socket

    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def run_local_workers(args: list[str], workers: int = 2, timeout: float = 600,
                      cwd: str | Path | None = None) -> list[str]:
    """Run ``python -m pianolib ARGS`` as ``workers`` processes of one cluster on 127.0.0.1.

    Each process gets a ``TF_CONFIG`` naming all of them and its own index, exactly as
    machines of a real cluster would (see the module docstring): this is
    ``MultiWorkerMirroredStrategy`` on one machine, for tests and teaching.

    Notebook: 08_scaling_up.ipynb

    Returns:
        Each worker's output (stdout and stderr), worker 0 first.

    Raises:
        PianolibError: A worker failed or ran past ``timeout`` (all are stopped).
    """
    import subprocess
    import sys
    import tempfile

    ports = free_ports(workers)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    with tempfile.TemporaryDirectory(prefix="pianolib-workers-") as tmp:
        logs = [open(Path(tmp) / f"worker{i}.log", "w+") for i in range(workers)]
        procs = []
        for i in range(workers):
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1",
                   "TF_CONFIG": json.dumps({"cluster": cluster,
                                            "task": {"type": "worker", "index": i}})}
            procs.append(subprocess.Popen([sys.executable, "-m", "pianolib", *args], env=env,
                                          cwd=cwd, stdout=logs[i], stderr=subprocess.STDOUT))
        failed, t0 = None, time.monotonic()
        try:  # poll all: one that fails stops the others at once (they would wait for it)
            while any(p.poll() is None for p in procs) and failed is None:
                failed = next((i for i, p in enumerate(procs) if p.poll() not in (None, 0)), None)
                if time.monotonic() - t0 > timeout:
                    raise PianolibError(f"workers ran past {timeout} s")
                time.sleep(0.2)
            failed = next((i for i, p in enumerate(procs) if p.returncode != 0), failed)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        outs = []
        for f in logs:
            f.seek(0)
            outs.append(f.read())
            f.close()
    if failed is not None:
        last = outs[failed].strip().splitlines()
        raise PianolibError(f"worker {failed} failed (exit {procs[failed].returncode}): "
                            f"{last[-1] if last else ''}")
    return outs


#: The scale-bench result that :func:`describe_recipe` takes the measured throughput from.
SCALE_BENCH = Path(__file__).resolve().parent.parent / "data" / "bench" / "scale.json"


def describe_recipe(cfg, bench: str | Path | None = SCALE_BENCH,
                    train_hours: float | None = None) -> dict:
    """The size and cost of a streamed recipe (``train --config maestro --describe``).

    One example is one 1-s crop, so an epoch is about ``train_hours x 3600`` examples. The cost
    comes from the streamed throughput that ``python -m pianolib scale-bench`` measured on
    this machine's cores (``data/bench/scale.json``); GPU hours are not measured here (no GPU):
    run ``scale-bench`` on the GPU machine and divide the same example count by its figure.

    Notebook: 08_scaling_up.ipynb

    Args:
        cfg: A :class:`pianolib.configs.TrainConfig` with ``shards``.
        bench: The scale-bench result to take the throughput from (None: none).
        train_hours: Hours of the train split (default: the shards' ``shards.json`` if it
            exists, else MAESTRO v3's 159.2 h).
    """
    from .configs import MAESTRO_TRAIN_HOURS
    from .shards import read_index

    if train_hours is None:
        try:
            train_hours = read_index(cfg.shards)["splits"]["train"]["hours"]
        except (PianolibError, KeyError, TypeError):
            train_hours = MAESTRO_TRAIN_HOURS
    per_epoch = int(round(train_hours * 3600 * FPS / cfg.seq_len))
    models = [t for t in cfg.targets if t in ("onset", "length")]
    out = {"recipe": cfg.name, "shards": cfg.shards, "strategy": cfg.strategy,
           "epochs": cfg.epochs, "batch_size_per_replica": cfg.batch_size,
           "train_hours": train_hours, "examples_per_epoch": per_epoch, "models": models,
           "examples_total": per_epoch * cfg.epochs * len(models)}
    if bench and Path(bench).is_file():
        b = json.loads(Path(bench).read_text())
        per_core = b["streamed"]["examples_per_s"] / max(1, b.get("cores") or 1)
        out["measured_examples_per_s_per_core"] = round(per_core, 2)
        out["cpu_core_hours"] = round(out["examples_total"] / per_core / 3600, 1)
    return out

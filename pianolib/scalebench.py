"""Measuring the scale-out path: pipeline speed, training throughput and memory, 2 workers.

``python -m pianolib scale-bench SOURCE... --out data/bench/scale`` writes ``scale.json`` and
``scale.md`` (the README's "Scaling up" table):

* **feature pipeline**: the first ``--hours`` of the sources written as shards serially, on a
  Dask ``LocalCluster`` of 1 worker and of 2 workers (seconds, times real time, the 2-worker
  speed-up; the 2-worker shards are compared byte for byte with the serial ones);
* **training throughput** (examples/s, one example = one 1-s crop) of the in-memory path
  (``Model.fit`` on the chunk arrays) and of the streamed path (shards, ``tf.data``, the
  custom loop of :mod:`pianolib.distributed`), the same model and batch;
* **peak memory** (RSS) of a training run of ``--steps`` batches streamed from the shards of
  every source, and from the pipeline's ``--hours`` of shards (flat in dataset size?), against
  the in-memory path on the same data;
* **2 workers vs 1 process**: ``MultiWorkerMirroredStrategy`` on 127.0.0.1 against a single
  process with the same global batch, on the sample clips.

Each measurement runs in a fresh process, so that peak RSS is that run's alone.

Notebook: 08_scaling_up.ipynb
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .errors import PianolibError


def _child(kind: str, shards: str, steps: int, batch: int, shuffle_buffer: int = 2048) -> dict:
    """One measurement in this (fresh) process: ``{"examples_per_s", "peak_rss_mb", ...}``."""
    import resource

    import numpy as np

    from .config import quiet_tensorflow

    quiet_tensorflow()
    t0 = time.perf_counter()
    if kind == "streamed":
        from .distributed import train_streamed

        hist = train_streamed(shards, None, "onset", epochs=2, batch_size=batch,
                              steps_per_epoch=steps, validate=False, verbose=False,
                              patience=99, shuffle_buffer=shuffle_buffer)
        eps = hist["examples_per_s"][-1]  # the second epoch: tracing and start-up excluded
        extra = {"loss": hist["loss"]}
    elif kind in ("memory-fit", "memory-loop"):
        from .chunks import make_chunks
        from .shards import read_shard, shard_files

        xs, ys = [], []
        for f in shard_files(shards, "train"):
            for d in read_shard(f):
                xs.append(make_chunks(d["features"]))
                ys.append(make_chunks(d["onset"]))
        x, y = np.concatenate(xs), np.concatenate(ys).astype(np.float32)
        del xs, ys
        extra = {"chunks": len(x), "array_mb": round((x.nbytes + y.nbytes) / 2**20, 1)}
        if kind == "memory-fit":
            import keras

            from .models import build_model

            model = build_model("crnn", name="onset_crnn")
            model.compile(optimizer=keras.optimizers.Adam(5e-4), loss="binary_crossentropy")
            n = min(len(x), steps * batch)
            model.fit(x[:n], y[:n], batch_size=batch, epochs=1, verbose=0)  # tracing, warm-up
            t1 = time.perf_counter()
            model.fit(x[:n], y[:n], batch_size=batch, epochs=1, verbose=0, shuffle=True)
            eps = n / (time.perf_counter() - t1)
        else:
            from .distributed import train_streamed
            from .shards import memory_dataset

            ds = memory_dataset(x, y, batch, shuffle_buffer=shuffle_buffer, repeat=True,
                                drop_remainder=True)
            hist = train_streamed(shards, None, "onset", epochs=2, batch_size=batch,
                                  steps_per_epoch=steps, validate=False, verbose=False,
                                  patience=99, dataset=ds)
            eps = hist["examples_per_s"][-1]
    else:
        raise PianolibError(f"unknown measurement {kind!r}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"kind": kind, "examples_per_s": round(float(eps), 2), "peak_rss_mb": round(peak, 1),
            "seconds": round(time.perf_counter() - t0, 1), "steps": steps, "batch": batch,
            **extra}


def measure(kind: str, shards: str | Path, steps: int = 40, batch: int = 32,
            timeout: float = 1800, shuffle_buffer: int = 2048) -> dict:
    """Run one :func:`_child` measurement in a fresh Python process and return its result.

    Notebook: 08_scaling_up.ipynb
    """
    r = subprocess.run([sys.executable, "-m", "pianolib.scalebench", "_child", kind, str(shards),
                        str(steps), str(batch), str(shuffle_buffer)], capture_output=True,
                       text=True,
                       timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        raise PianolibError(f"measurement {kind} failed: {' | '.join(tail)}")
    return json.loads(lines[-1])


def pipeline_speed(sources: list[str], hours: float, workdir: Path) -> dict:
    """Seconds of the shard build of ``hours`` of audio: serial, 1 and 2 Dask workers."""
    from .pipeline import build_shards, shards_equal

    out, tasks = {}, {}
    for name, workers in (("serial", 0), ("dask-1", 1), ("dask-2", 2)):
        t0 = time.perf_counter()
        build_shards(sources, workdir / name, hours=hours, workers=workers, items_per_shard=4,
                     force=True, progress=False)
        out[name] = round(time.perf_counter() - t0, 2)
        index = json.loads((workdir / name / "shards.json").read_text())
        tasks[name] = index["build"]["task_seconds"]
    index = json.loads((workdir / "serial" / "shards.json").read_text())
    audio_h = sum(s["hours"] for s in index["splits"].values())
    same = shards_equal(workdir / "serial", workdir / "dask-2")
    return {"hours": round(audio_h, 3), "seconds": out,
            "x_real_time": {k: round(audio_h * 3600 / v, 1) for k, v in out.items()},
            "speedup_2_vs_1": round(out["dask-1"] / out["dask-2"], 2),
            "speedup_2_vs_serial": round(out["serial"] / out["dask-2"], 2),
            "task_seconds": tasks,
            "byte_equal_2_vs_serial": same["byte_equal"]}


def two_workers_vs_one(workdir: Path) -> dict:
    """Losses of 2 ``MultiWorkerMirroredStrategy`` workers and of 1 process, same global batch."""
    from .distributed import run_local_workers
    from .pipeline import build_shards
    from .transcribe import SAMPLE_DIR

    shards = workdir / "sample-shards"
    build_shards([SAMPLE_DIR], shards, items_per_shard=1, force=True, progress=False,
                 assign={"m21-joplin-maple_leaf_rag": "valid", "gen-sample-0": "train",
                         "m21-bach-bwv66_6": "train"})
    common = ["train", "--config", "quick", "--shards", str(shards), "--target", "onset",
              "--epochs", "2", "--no-scale-lr", "--force"]
    t0 = time.perf_counter()
    run_local_workers(common + ["--out", str(workdir / "mw"), "--batch-size", "4",
                                "--strategy", "multi-worker"])
    t_mw = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pianolib", *common, "--out",
                        str(workdir / "one"), "--batch-size", "8"], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise PianolibError(f"single-process run failed: {r.stderr.strip()[-300:]}")
    t_one = time.perf_counter() - t0
    mw = json.loads((workdir / "mw" / "train.json").read_text())["models"]["onset"]["loss"]
    one = json.loads((workdir / "one" / "train.json").read_text())["models"]["onset"]["loss"]
    rel = max(abs(a - b) / abs(b) for a, b in zip(mw, one))
    return {"loss_2_workers": mw, "loss_1_process": one, "max_rel_diff": round(rel, 5),
            "seconds_2_workers": round(t_mw, 1), "seconds_1_process": round(t_one, 1)}


def run_scale_bench(sources: list[str], out: str | Path, hours: float = 1.0,
                    steps: int = 40, batch: int = 32, force: bool = False) -> dict:
    """All measurements of the module docstring; writes ``<out>.json`` and ``<out>.md``.

    ``sources`` are shard sources (:func:`pianolib.pipeline.build_shards`); the pipeline is
    timed on their first ``hours``, memory and throughput on all of them.

    Notebook: 08_scaling_up.ipynb
    """
    from .files import atomic_write, check_writable, write_json
    from .pipeline import build_shards

    out = Path(out)
    for p in (out.with_suffix(".json"), out.with_suffix(".md")):
        check_writable(p, force)
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        tmp = Path(tmp)
        result = {"sources": [str(s) for s in sources], "cores": os.cpu_count()}
        result["pipeline"] = pipeline_speed(sources, hours, tmp / "pipe")
        print("pipeline", result["pipeline"], flush=True)
        shards = tmp / "all"
        build_shards(sources, shards, workers=2, items_per_shard=4, progress=True)
        index = json.loads((shards / "shards.json").read_text())
        result["data_hours"] = round(sum(s["hours"] for s in index["splits"].values()), 3)
        result["train_hours"] = index["splits"]["train"]["hours"]
        for kind in ("memory-fit", "memory-loop", "streamed"):
            result[kind] = measure(kind, shards, steps, batch)
            print(kind, result[kind], flush=True)
        # the same run from the 1-h shards of the pipeline test: flat in dataset size?
        result["streamed-1h"] = measure("streamed", tmp / "pipe" / "serial", steps, batch)
        result["streamed-1h"]["data_hours"] = result["pipeline"]["hours"]
        print("streamed-1h", result["streamed-1h"], flush=True)
        result["streamed_vs_memory_fit"] = round(
            result["streamed"]["examples_per_s"] / result["memory-fit"]["examples_per_s"], 3)
        result["two_workers"] = two_workers_vs_one(tmp)
        print("two workers", result["two_workers"], flush=True)
    write_json(out.with_suffix(".json"), result, force=True)
    with atomic_write(out.with_suffix(".md"), force=True) as tmp:
        tmp.write_text(scale_table(result))
    return result


def scale_table(r: dict) -> str:
    """The Markdown table of a :func:`run_scale_bench` result (quoted by the README)."""
    p = r["pipeline"]
    rows = [
        "| measure | value |",
        "|---|---|",
        f"| feature pipeline, {p['hours']} h of audio: serial / Dask 1 worker / Dask 2 workers "
        f"| {p['seconds']['serial']} / {p['seconds']['dask-1']} / {p['seconds']['dask-2']} s "
        f"({p['x_real_time']['serial']} / {p['x_real_time']['dask-1']} / "
        f"{p['x_real_time']['dask-2']}x real time) |",
        f"| 2 Dask workers vs 1 (target >= 1.6x) | {p['speedup_2_vs_1']}x; vs serial "
        f"{p['speedup_2_vs_serial']}x; shards byte-equal to the serial build: "
        f"{'yes' if p['byte_equal_2_vs_serial'] else 'no'} |",
        f"| seconds inside the shard tasks (no cluster start; a worker's first task includes "
        f"its imports): serial / 1 / 2 workers | "
        f"{p['task_seconds']['serial']} / {p['task_seconds']['dask-1']} / "
        f"{p['task_seconds']['dask-2']} s of work (2 workers: "
        f"{p['task_seconds']['dask-2'] / p['seconds']['dask-2']:.2f} tasks running at once) |",
        f"| training throughput, in memory (Model.fit) | "
        f"{r['memory-fit']['examples_per_s']} examples/s |",
        f"| training throughput, in memory (custom loop, tf.data) | "
        f"{r['memory-loop']['examples_per_s']} examples/s |",
        f"| training throughput, streamed from shards (target >= 90 % of in memory) | "
        f"{r['streamed']['examples_per_s']} examples/s "
        f"({100 * r['streamed_vs_memory_fit']:.0f} % of Model.fit, "
        f"{100 * r['streamed']['examples_per_s'] / r['memory-loop']['examples_per_s']:.0f} % "
        f"of the same loop in memory) |",
        f"| peak RSS, training from shards of {r['data_hours']} h (target <= 2 GB); of "
        f"{r['streamed-1h']['data_hours']} h | {r['streamed']['peak_rss_mb']:.0f} MB; "
        f"{r['streamed-1h']['peak_rss_mb']:.0f} MB |",
        f"| peak RSS, in-memory training on the same {r['train_hours']} h of train split | "
        f"{r['memory-fit']['peak_rss_mb']:.0f} MB (arrays {r['memory-fit']['array_mb']:.0f} MB) |",
        f"| 2 workers (MultiWorkerMirroredStrategy, 127.0.0.1) vs 1 process, same global batch "
        f"| losses {', '.join(f'{v:.4f}' for v in r['two_workers']['loss_2_workers'])} vs "
        f"{', '.join(f'{v:.4f}' for v in r['two_workers']['loss_1_process'])} "
        f"(largest relative difference {100 * r['two_workers']['max_rel_diff']:.2f} %) |",
    ]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "_child":
        print(json.dumps(_child(sys.argv[2], sys.argv[3], *map(int, sys.argv[4:]))))

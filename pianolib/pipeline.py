"""The feature pipeline on Dask: decode, resample, CQT, labels, write a shard, on many workers.

Each shard is one task: a worker reads its items' audio (decode and resample to 16 kHz with
:func:`pianolib.audio.load_audio`), computes the series' log-CQT, reads the labels (TSV, or
MIDI with the sustain pedal applied), and writes the shard file (:mod:`pianolib.shards`). The
shard plan depends only on the item names, so one worker, two, or a cluster write the same
bytes (``tests/test_pipeline.py`` checks 2 local workers against the serial build).

Why Dask (``dask.distributed``), and not Apache Beam or Ray:

* **Dependencies.** Dask and ``distributed`` are pure-Python wheels (msgpack, tornado,
  cloudpickle, ...) that install beside TensorFlow 2.21 without pins on protobuf or numpy.
  Apache Beam pins its own protobuf/pyarrow/numpy ranges, which fight TensorFlow's; Ray is a
  large binary with its own object store, far more than "run this function on N machines".
* **One laptop and a cluster, same code.** Here ``build_shards(..., workers=2)`` starts a
  ``LocalCluster`` of 2 single-threaded worker processes. On a cluster, start a scheduler
  and workers (``dask scheduler`` / ``dask worker tcp://HOST:8786`` on each machine, or
  ``dask-jobqueue``'s ``SLURMCluster``, or the Dask Kubernetes operator) and pass its address:
  ``python -m pianolib shards SRC --out /shared/maestro-shards --scheduler tcp://HOST:8786``.
  Workers need the audio and the output folder on storage they all see as files (NFS, or a
  bucket mounted with gcsfuse / s3fs); URLs such as ``gs://`` are refused (the build writes
  a local temporary folder and renames it into place).
* **Cost at 200 h.** The work is the CQT: ``python -m pianolib scale-bench`` measured one
  single-threaded worker at 110x real time here (``data/bench/scale.md``), so MAESTRO's
  200 h is about 1.8 core-hours (minutes on a 32-core cluster), and the shards take about 28 GB
  (3.13 h took 445 MB: float16 features and uint8 rolls, GZIP). There is no shuffle stage
  and no traffic between workers, only one task per shard, which any engine runs well; Dask
  adds the least to install and learn.

Notebook: 08_scaling_up.ipynb
"""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

import numpy as np

from .config import FPS, SEED
from .errors import PianolibError
from .shards import COMPRESSION, FORMAT, ITEMS_PER_SHARD, plan_shards, shard_name

# ----------------------------------------------------------------------------------------------
# Sources: jobs (one per item) of audio + label folders, MAESTRO, built dataset folders
# ----------------------------------------------------------------------------------------------


def _item_name(path: Path, root: Path) -> str:
    from .recordings import AUDIO_FOLDERS

    rel = path.relative_to(root).with_suffix("")
    parts = [p for p in rel.parts if p.lower() not in AUDIO_FOLDERS]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "__".join(parts))


def folder_jobs(folders: list[str | Path], holdout: tuple[str, ...] = (),
                seed: int = SEED) -> dict[str, dict]:
    """One job per (audio, labels) pair of audio + label folders (MAPS layout or audio + MIDI).

    Pairs come from :func:`pianolib.recordings.find_pairs` (by relative path inside one
    folder). The split is the piece's (:func:`pianolib.datasets.split_of`; a MAPS piece is the
    stem without its piano), or ``holdout`` for a held-out instrument.

    Notebook: 08_scaling_up.ipynb
    """
    from .datasets import split_of
    from .recordings import find_pairs, piano_and_piece

    jobs: dict[str, dict] = {}
    for folder in folders:
        root = Path(folder)
        for audio, label in find_pairs(root):
            item = _item_name(audio, root)
            if item in jobs:
                raise PianolibError(f"{audio}: item name {item} is taken by another file")
            piano, piece = piano_and_piece(audio.stem)
            split = "holdout" if piano in holdout else split_of(piece, seed)
            jobs[item] = {"split": split, "kind": "audio", "audio": str(audio),
                          "labels": str(label)}
    return jobs


def maestro_jobs(root: str | Path, split: str | None = None) -> dict[str, dict]:
    """One job per row of a MAESTRO folder's CSV (audio and MIDI paired by row, split as given).

    Notebook: 08_scaling_up.ipynb
    """
    from .maestro import _SPLIT_NAMES, read_maestro_csv

    jobs = {}
    for row in read_maestro_csv(root, split):
        item = Path(row["midi_filename"]).stem
        jobs[item] = {"split": _SPLIT_NAMES.get(row["split"], row["split"]), "kind": "audio",
                      "audio": str(row["audio"]), "labels": str(row["midi"])}
    return jobs


def limit_hours(jobs: dict[str, dict], hours: float) -> dict[str, dict]:
    """The first jobs (in their order) whose audio adds up to ``hours``.

    Durations come from a dataset's manifest or the audio file's header (an unreadable header
    counts as 0 s: the item is skipped with its reason when processed).
    """
    import soundfile as sf

    out, total = {}, 0.0
    for item in jobs:
        out[item] = jobs[item]
        if "duration" in jobs[item]:
            total += float(jobs[item]["duration"])
        else:
            try:
                total += sf.info(jobs[item]["audio"]).duration
            except (RuntimeError, OSError):
                pass
        if total >= hours * 3600:
            break
    return out


# ----------------------------------------------------------------------------------------------
# The per-item and per-shard work
# ----------------------------------------------------------------------------------------------


def extract_item(item: str, job: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(features, notes)`` of one job: decode, resample, CQT and labels (or a stored ``.npz``).

    Raises:
        PianolibError: Unreadable audio or labels (a :class:`pianolib.recordings.LabelError`
            names the file and line).
    """
    if job["kind"] == "npz":
        with np.load(job["features"]) as z:
            return z["features"], z["notes"]
    from .recordings import labelled_features

    features, notes, _ = labelled_features(job["audio"], job["labels"])
    return features.astype(np.float16), notes


def write_one_shard(path: str, items: list[str], jobs: dict[str, dict]) -> dict:
    """Worker task: extract every item of one shard and write the shard file.

    Returns:
        ``{"file", "items", "frames_per_item", "skipped", "seconds"}``; an item that fails is
        skipped with its one-line reason.
    """
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from .shards import serialize_item, write_shard

    t0 = time.perf_counter()
    done, frames, skipped = [], [], []

    def records():
        for item in items:
            try:
                feats, notes = extract_item(item, jobs[item])
            except (PianolibError, OSError) as exc:
                skipped.append(f"skipped {item}: {exc}")
                continue
            done.append(item)
            frames.append(len(feats))
            yield serialize_item(item, feats, notes)

    write_shard(path, records())
    return {"file": Path(path).name, "items": done, "frames_per_item": frames,
            "skipped": skipped, "seconds": round(time.perf_counter() - t0, 3)}


def build_shards_from_jobs(jobs: dict[str, dict], out: str | Path,
                           items_per_shard: int = ITEMS_PER_SHARD, workers: int = 0,
                           scheduler: str | None = None, force: bool = False,
                           source: list[str] | None = None, progress: bool = False) -> Path:
    """Write the shards of ``jobs`` into ``out`` with ``shards.json``, serially or on Dask.

    Notebook: 08_scaling_up.ipynb

    Args:
        jobs: ``{item: job}`` from :func:`folder_jobs`, :func:`maestro_jobs` or a dataset.
        out: The shard folder (built aside and swapped in: the old one stays on failure).
        items_per_shard: Items per shard file.
        workers: 0 runs every task in this process (the serial build); N >= 1 starts a Dask
            ``LocalCluster`` of N single-threaded worker processes.
        scheduler: Address of a running Dask scheduler (a cluster); overrides ``workers``.
        force: Replace an existing ``out``.
        source: What the jobs were made from (recorded in ``shards.json``).
        progress: Print one line when done.
    """
    from .files import build_folder, write_json

    if "://" in str(out):
        raise PianolibError(f"{out}: shards are written to a folder (mount a bucket with "
                            "gcsfuse or s3fs and give its path), not to a URL")
    if not jobs:
        raise PianolibError("no items to write into shards")
    by_split: dict[str, list[str]] = {}
    for item, job in jobs.items():
        by_split.setdefault(job["split"], []).append(item)
    t0 = time.perf_counter()
    with build_folder(out, force) as tmp:
        tasks = []
        for split in sorted(by_split):
            plan = plan_shards(by_split[split], items_per_shard)
            for i, names in enumerate(plan):
                sub = {n: jobs[n] for n in names}
                tasks.append((split, str(tmp / shard_name(split, i, len(plan))), names, sub))
        results = _run(tasks, workers, scheduler)
        seconds = time.perf_counter() - t0
        index = {"format": FORMAT, "compression": COMPRESSION, "feature_dtype": "float16",
                 "label_dtype": "uint8", "fps": FPS, "items_per_shard": items_per_shard,
                 "source": source or [], "splits": {}, "skipped": [],
                 "build": {"workers": workers if not scheduler else scheduler,
                           "seconds": round(seconds, 2),
                           "task_seconds": round(sum(r["seconds"] for r in results), 2)}}
        for (split, _, _, _), res in zip(tasks, results):
            s = index["splits"].setdefault(split, {"shards": [], "items": 0, "frames": 0,
                                                   "frames_per_item": []})
            s["shards"].append({"file": res["file"], "items": res["items"],
                                "frames": int(sum(res["frames_per_item"]))})
            s["items"] += len(res["items"])
            s["frames"] += int(sum(res["frames_per_item"]))
            s["frames_per_item"] += [int(f) for f in res["frames_per_item"]]
            index["skipped"] += res["skipped"]
        for s in index["splits"].values():
            s["hours"] = round(s["frames"] / FPS / 3600, 4)
        for msg in index["skipped"]:
            warnings.warn(msg, stacklevel=2)
        write_json(tmp / "shards.json", index, force=True)
    if progress:
        hours = sum(s["hours"] for s in index["splits"].values())
        print(f"wrote {out}: {len(tasks)} shards, {hours:.2f} h in {seconds:.1f} s "
              f"({hours * 3600 / max(seconds, 1e-9):.0f}x real time; workers: "
              f"{index['build']['workers']}); {len(index['skipped'])} items skipped")
    return Path(out)


def _run(tasks, workers: int, scheduler: str | None) -> list[dict]:
    """Run the shard tasks serially (``workers=0``) or on a Dask cluster, results in order."""
    if not scheduler and workers == 0:
        return [write_one_shard(path, names, sub) for _, path, names, sub in tasks]
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise PianolibError("the Dask pipeline needs dask.distributed: pip install "
                            "'pianolib[scale]' (or run serially: --workers 0)") from None
    import uuid

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's "port in use, using a random port"
        if scheduler:
            client, cluster = Client(scheduler), None
        else:
            import dask

            # the nanny's MALLOC_TRIM_THRESHOLD_=65536 returns memory to the OS after every
            # large free: the CQT's big temporary arrays then cost 19 % more time (measured,
            # 1 worker, 0.25 h: 16.9 s -> 14.3 s without it); keep its one-thread settings
            env = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items()
                   if k != "MALLOC_TRIM_THRESHOLD_"}
            with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=50)
            client = Client(cluster)
    try:
        run = uuid.uuid4().hex[:8]  # task names unique on a scheduler shared by several builds
        futures = [client.submit(write_one_shard, path, names, sub, pure=False, retries=1,
                                 key=f"pianolib-shard-{run}-{Path(path).name}")
                   for _, path, names, sub in tasks]
        return client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def build_shards(sources: list[str | Path], out: str | Path, hours: float | None = None,
                 items_per_shard: int = ITEMS_PER_SHARD, workers: int = 0,
                 scheduler: str | None = None, holdout: tuple[str, ...] = (),
                 force: bool = False, progress: bool = True, from_audio: bool = False,
                 assign: dict[str, str] | None = None) -> Path:
    """Shards from audio + label folders, MAESTRO folders or built dataset folders.

    A folder with ``manifest.csv`` is a built dataset (its stored features are copied, unless
    ``from_audio``: then its audio + MIDI are processed like any other folder); with
    ``maestro-v3.0.0.csv`` (or v2) it is MAESTRO (paired by the CSV's rows); any other folder
    is searched for audio + label pairs. Features are computed on the workers. ``assign``
    moves items to other splits (``{"m21-joplin-maple_leaf_rag": "valid"}``: the notebooks
    make a tiny train/valid set of the three sample clips that way).

    Notebook: 08_scaling_up.ipynb
    """
    from .maestro import CSV_NAMES

    jobs: dict[str, dict] = {}
    for src in sources:
        src = Path(src)
        if (src / "manifest.csv").is_file() and not from_audio:
            from .datasets import read_manifest

            part = {r["item"]: {"split": r["split"], "kind": "npz", "duration": r["duration"],
                                "features": str(src / r["features"])} for r in read_manifest(src)}
        elif any((src / n).is_file() for n in CSV_NAMES):
            part = maestro_jobs(src)
        else:
            part = folder_jobs([src], holdout)
        clash = set(part) & set(jobs)
        if clash:
            raise PianolibError(f"{src}: item {sorted(clash)[0]} is also in another source")
        jobs.update(part)
    for item, split in (assign or {}).items():
        if item not in jobs:
            raise PianolibError(f"--assign {item}={split}: no item {item} in {sources}")
        jobs[item] = {**jobs[item], "split": split}
    if hours:
        jobs = limit_hours(jobs, hours)
    return build_shards_from_jobs(jobs, out, items_per_shard, workers, scheduler, force,
                                  [str(s) for s in sources], progress)


def shards_equal(a: str | Path, b: str | Path) -> dict:
    """Compare two shard folders file by file: ``{"files", "byte_equal", "max_abs_diff"}``."""
    from .shards import read_index, read_shard

    ia, ib = read_index(a), read_index(b)
    fa = [s["file"] for sp in sorted(ia["splits"]) for s in ia["splits"][sp]["shards"]]
    fb = [s["file"] for sp in sorted(ib["splits"]) for s in ib["splits"][sp]["shards"]]
    unequal = {"files": fa == fb, "byte_equal": False, "max_abs_diff": float("inf")}
    if fa != fb:
        return unequal
    byte_equal = all((Path(a) / f).read_bytes() == (Path(b) / f).read_bytes() for f in fa)
    diff = 0.0
    for f in fa:
        xs, ys = read_shard(Path(a) / f), read_shard(Path(b) / f)
        if [x["item"] for x in xs] != [y["item"] for y in ys]:
            return unequal
        for x, y in zip(xs, ys):
            for k in ("features", "notes", "onset", "length"):
                d = np.abs(x[k].astype(np.float64) - y[k].astype(np.float64))
                diff = max(diff, float(d.max()) if d.size else 0.0)
    return {"files": True, "byte_equal": byte_equal, "max_abs_diff": diff}

"""Sharded features on disk, streamed with ``tf.data``: training memory that does not grow.

The in-memory path (:func:`pianolib.train.load_split_arrays`) holds every chunk of a split in
RAM, about three copies of the features while the arrays are made. That suits the notebooks'
minutes of audio, not MAESTRO's 200 hours (its log-CQT alone is ~38 GB in float16). Here a
split is written as a few compressed TFRecord *shards*, one ``tf.train.Example`` per item
(a recording), and read back as a ``tf.data`` pipeline:

``shard files -> interleave (several shards at once) -> parse -> cut into 1-s crops ->
shuffle buffer -> batch -> prefetch``

so memory holds only the shuffle buffer and a few items, whatever the dataset's size.

Layout of a shard folder::

    shards.json                         what is where (written last: no json, not complete)
    train-00000-of-00004.tfrecord.gz    GZIP TFRecord, one Example per item
    ...

An Example holds ``item`` (bytes), ``frames`` (int64), ``features`` (float16 ``(frames, 264)``
raw bytes), ``onset`` and ``length`` (uint8 ``(frames, 88)`` label rolls, as
:func:`pianolib.labels.notes_to_rolls` makes them) and ``notes`` (float32 ``(n, 4)``). TFRecord
is the format ``tf.data`` reads natively (Onsets and Frames and Basic Pitch use it too).

Items go to shards in their source's order, a fixed number per shard, so the shards of a split
read in order are exactly the items the in-memory path loads, in the same order: with the same
seed both paths give the same batches (:func:`memory_dataset`, ``tests/test_shards.py``).

Notebook: 08_scaling_up.ipynb
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .config import N_BINS, N_KEYS, SEED, SEQ_LEN
from .errors import PianolibError

#: Name and version of the format in ``shards.json``.
FORMAT = "pianolib-shards/1"
#: Compression of the shard files (``tf.data.TFRecordDataset``'s name for it).
COMPRESSION = "GZIP"
#: Items per shard by default: 8 MAESTRO performances (~10 min each) make ~190 MB shards
#: (measured: 142 MB per hour of audio).
ITEMS_PER_SHARD = 8


def _tf():
    """TensorFlow, imported with its start-up lines silenced (workers import it here)."""
    from .config import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    return tf


def shard_name(split: str, index: int, count: int) -> str:
    """File name of shard ``index`` of ``count`` of a split (TensorFlow's own naming)."""
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord.gz"


def plan_shards(items: list[str], items_per_shard: int = ITEMS_PER_SHARD) -> list[list[str]]:
    """Items, in the order given, cut into consecutive groups of ``items_per_shard``.

    One group per shard. The order is the source's (a dataset's manifest, a folder's sorted
    paths, MAESTRO's CSV rows), so the shards read in order give the items in the order the
    in-memory path loads them. The plan never depends on how many workers write the shards,
    so a serial build and a distributed one write the same files.

    Notebook: 08_scaling_up.ipynb
    """
    if items_per_shard < 1:
        raise PianolibError(f"items_per_shard must be at least 1, got {items_per_shard}")
    items = list(items)
    return [items[i:i + items_per_shard] for i in range(0, len(items), items_per_shard)]


def serialize_item(item: str, features: np.ndarray, notes: np.ndarray,
                   onset: np.ndarray | None = None, length: np.ndarray | None = None) -> bytes:
    """One item as a serialized ``tf.train.Example`` (see the module docstring).

    Args:
        item: The item's name.
        features: ``(frames, 264)`` log-CQT (stored as float16, as in the ``.npz`` files).
        notes: ``(n, 4)`` label notes (onset s, offset s, MIDI pitch, velocity).
        onset, length: ``(frames, 88)`` label rolls; made from ``notes`` when None.
    """
    tf = _tf()

    from .labels import notes_to_rolls

    features = np.asarray(features)
    if features.ndim != 2 or features.shape[1] != N_BINS:
        raise PianolibError(f"{item}: features must be (frames, {N_BINS}), got {features.shape}")
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 4)
    if onset is None or length is None:  # from float64 times, as the in-memory path does
        onset, length = notes_to_rolls(notes, len(features))

    def _bytes(a):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[a]))

    ex = tf.train.Example(features=tf.train.Features(feature={
        "item": _bytes(item.encode()),
        "frames": tf.train.Feature(int64_list=tf.train.Int64List(value=[len(features)])),
        "features": _bytes(features.astype("<f2").tobytes()),
        "onset": _bytes(np.asarray(onset).astype(np.uint8).tobytes()),
        "length": _bytes(np.asarray(length).astype(np.uint8).tobytes()),
        "notes": _bytes(notes.astype("<f4").tobytes()),
    }))
    return ex.SerializeToString(deterministic=True)  # sorted map keys: byte-equal builds


_SPEC = None


def _feature_spec():
    global _SPEC
    if _SPEC is None:
        tf = _tf()

        _SPEC = {k: tf.io.FixedLenFeature([], tf.string)
                 for k in ("item", "features", "onset", "length", "notes")}
        _SPEC["frames"] = tf.io.FixedLenFeature([], tf.int64)
    return _SPEC


def parse_item(record):
    """A serialized Example -> dict of tensors: ``item``, ``features`` (frames, 264) float16,
    ``onset``/``length`` (frames, 88) uint8, ``notes`` (n, 4) float32. Works inside ``tf.data``.

    Notebook: 08_scaling_up.ipynb
    """
    tf = _tf()

    ex = tf.io.parse_single_example(record, _feature_spec())
    frames = ex["frames"]
    return {
        "item": ex["item"],
        "features": tf.reshape(tf.io.decode_raw(ex["features"], tf.float16), [frames, N_BINS]),
        "onset": tf.reshape(tf.io.decode_raw(ex["onset"], tf.uint8), [frames, N_KEYS]),
        "length": tf.reshape(tf.io.decode_raw(ex["length"], tf.uint8), [frames, N_KEYS]),
        "notes": tf.reshape(tf.io.decode_raw(ex["notes"], tf.float32), [-1, 4]),
    }


def write_shard(path: str | Path, records: Iterable[bytes]) -> int:
    """Write serialized records into one GZIP TFRecord file, atomically; return the count.

    The file is written under a temporary name beside ``path`` and renamed when complete, so
    a shard that exists is whole (a worker killed midway leaves no half shard).
    """
    from .files import atomic_write

    tf = _tf()
    n = 0
    with atomic_write(path, force=True) as tmp:
        with tf.io.TFRecordWriter(str(tmp), options=COMPRESSION) as w:
            for rec in records:
                w.write(rec)
                n += 1
    return n


def read_shard(path: str | Path) -> list[dict]:
    """Every item of one shard, as numpy arrays (for tests and inspection, not for training).

    Raises:
        PianolibError: A missing, truncated or corrupt shard file (naming it).
    """
    tf = _tf()

    out = []
    try:
        for rec in tf.data.TFRecordDataset(str(path), compression_type=COMPRESSION):
            d = parse_item(rec)
            out.append({k: (v.numpy().decode() if k == "item" else v.numpy())
                        for k, v in d.items()})
    except (tf.errors.DataLossError, tf.errors.NotFoundError,
            tf.errors.InvalidArgumentError) as exc:
        raise PianolibError(f"{path}: not a readable shard ({exc.message.splitlines()[0]})") \
            from None
    return out


def read_index(folder: str | Path) -> dict:
    """The ``shards.json`` of a shard folder.

    Raises:
        PianolibError: No (or an unreadable, or another format's) ``shards.json``.
    """
    path = Path(folder) / "shards.json"
    if not path.is_file():
        raise PianolibError(f"{folder}: no shards.json; write shards with "
                            "`python -m pianolib shards SOURCE --out FOLDER`")
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PianolibError(f"{path}: unreadable ({exc})") from None
    if index.get("format") != FORMAT:
        raise PianolibError(f"{path}: format {index.get('format')!r}, expected {FORMAT!r}")
    return index


def shard_files(folder: str | Path, split: str) -> list[Path]:
    """The shard files of one split, in order (each checked to exist)."""
    folder = Path(folder)
    index = read_index(folder)
    if split not in index["splits"]:
        raise PianolibError(f"{folder}: no split {split!r}; it has {sorted(index['splits'])}")
    files = [folder / s["file"] for s in index["splits"][split]["shards"]]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise PianolibError(f"{missing[0]}: shard listed in shards.json is missing")
    return files


# ----------------------------------------------------------------------------------------------
# Reading: tf.data pipelines
# ----------------------------------------------------------------------------------------------


def _crops(d, seq_len: int, offset, target: str):
    """One parsed item -> a dataset of ``seq_len``-frame crops starting at ``offset``.

    With ``offset`` 0 these are exactly :func:`pianolib.chunks.make_chunks`' chunks (the end
    zero-padded); a random offset in ``[0, seq_len)`` moves every crop boundary.
    """
    tf = _tf()

    x = d["features"][offset:]
    y = d[target][offset:]
    n = tf.shape(x)[0]
    n_chunks = tf.maximum((n + seq_len - 1) // seq_len, 1)
    pad = n_chunks * seq_len - n
    x = tf.reshape(tf.pad(x, [[0, pad], [0, 0]]), [n_chunks, seq_len, N_BINS])
    y = tf.reshape(tf.pad(y, [[0, pad], [0, 0]]), [n_chunks, seq_len, N_KEYS])
    return tf.data.Dataset.from_tensor_slices((x, y))


def _to_float(x, y):
    tf = _tf()

    return tf.cast(x, tf.float32), tf.cast(y, tf.float32)


def shard_dataset(folder: str | Path, split: str = "train", target: str = "onset",
                  batch_size: int = 32, seq_len: int = SEQ_LEN, seed: int = SEED,
                  shuffle_buffer: int = 2048, cycle_length: int = 4, crop: bool = True,
                  shuffle_files: bool = True, repeat: bool = False, drop_remainder: bool = False,
                  float_batches: bool = True, read_parallel: int | None = None):
    """A ``tf.data`` pipeline of ``(x, y)`` batches streamed from the shards of one split.

    Memory holds ``shuffle_buffer`` crops (2048 one-second crops: 126 MB, float16 features and
    uint8 labels) plus ``cycle_length`` items being cut, whatever the number of shards.

    Notebook: 08_scaling_up.ipynb

    Args:
        folder: A shard folder (see the module docstring).
        split: ``train``, ``valid``, ``test`` (or ``holdout``).
        target: Label roll of ``y``: ``onset`` or ``length``.
        batch_size: Crops per batch (the *global* batch under a ``tf.distribute`` strategy).
        seq_len: Frames per crop.
        seed: Seed of the file order, the crop offsets and the shuffle buffer.
        shuffle_buffer: Crops in the shuffle buffer (1: no shuffling).
        cycle_length: Shards read at once (interleaved one item at a time).
        crop: Random crop offsets per item and epoch (False: offset 0, the in-memory chunks).
        shuffle_files: Shuffle the order of the shard files each epoch.
        repeat: Repeat forever (for ``steps_per_epoch``-style training).
        drop_remainder: Drop the last, smaller batch (distributed training wants equal batches).
        float_batches: Cast to float32 (False keeps float16 features and uint8 labels).
        read_parallel: Shards read and decompressed in parallel (None: one at a time). Two
            cores keep up reading one at a time; many GPUs may need more, but the parallel
            interleave's read-ahead made the peak RSS grow with the number of shard files
            (``AUTOTUNE``: +115 MB from 12 to 93 shards, measured), so measure it.
    """
    tf = _tf()

    if target not in ("onset", "length"):
        raise PianolibError(f"target must be 'onset' or 'length', got {target!r}")
    files = [str(f) for f in shard_files(folder, split)]
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle_files and len(files) > 1:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    parallel = {"num_parallel_calls": read_parallel, "deterministic": True} if read_parallel \
        else {}
    ds = ds.interleave(lambda f: tf.data.TFRecordDataset(f, compression_type=COMPRESSION),
                       cycle_length=max(1, min(cycle_length, len(files))), block_length=1,
                       **parallel)
    ds = ds.map(parse_item, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if crop:
        offsets = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).map(
            lambda r: tf.cast(r % seq_len, tf.int32))
        ds = tf.data.Dataset.zip((ds, offsets)).flat_map(
            lambda d, o: _crops(d, seq_len, o, target))
    else:
        ds = ds.flat_map(lambda d: _crops(d, seq_len, 0, target))
    return _finish(ds, batch_size, seed, shuffle_buffer, repeat, drop_remainder, float_batches)


def memory_dataset(x: np.ndarray, y: np.ndarray, batch_size: int = 32, seed: int = SEED,
                   shuffle_buffer: int = 2048, repeat: bool = False,
                   drop_remainder: bool = False, float_batches: bool = True):
    """The in-memory chunk arrays as the same ``tf.data`` batches :func:`shard_dataset` makes.

    Given the arrays of :func:`pianolib.train.load_split_arrays` and the shards of the same
    items, ``shard_dataset(..., crop=False, cycle_length=1, shuffle_files=False)`` yields the
    same batches for the same seed (``tests/test_shards.py``).

    Notebook: 08_scaling_up.ipynb
    """
    tf = _tf()

    ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.uint8)))
    return _finish(ds, batch_size, seed, shuffle_buffer, repeat, drop_remainder, float_batches)


def _finish(ds, batch_size, seed, shuffle_buffer, repeat, drop_remainder, float_batches):
    tf = _tf()

    if shuffle_buffer > 1:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if float_batches:
        ds = ds.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def split_chunks(folder: str | Path, split: str, seq_len: int = SEQ_LEN) -> int:
    """How many ``seq_len`` crops (offset 0) the split's items give (0 for a missing split)."""
    from .chunks import chunk_starts

    split_index = read_index(folder)["splits"].get(split, {"frames_per_item": []})
    return sum(len(chunk_starts(f, seq_len)) for f in split_index["frames_per_item"])

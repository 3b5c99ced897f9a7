"""Shards (pianolib.shards): round trips, the same batches as the in-memory path, bad input."""

import json
import shutil

import numpy as np
import pytest
from conftest import SAMPLE_DIR, sample_rows

from pianolib.errors import PianolibError
from pianolib.pipeline import build_shards
from pianolib.shards import (
    memory_dataset,
    plan_shards,
    read_index,
    read_shard,
    serialize_item,
    shard_dataset,
    shard_files,
    split_chunks,
)


@pytest.fixture(scope="module")
def sample_shards(tmp_path_factory):
    """The three sample clips (split ``test``), one item per shard, from their stored features."""
    out = tmp_path_factory.mktemp("shards") / "sample"
    build_shards([SAMPLE_DIR], out, items_per_shard=1, progress=False)
    return out


def _in_memory(split="test"):
    from pianolib.train import load_split_arrays

    return load_split_arrays(SAMPLE_DIR, split)


def test_plan_keeps_the_order_in_fixed_groups():
    assert plan_shards(["c", "a", "e", "b", "d"], 2) == [["c", "a"], ["e", "b"], ["d"]]
    with pytest.raises(PianolibError, match="at least 1"):
        plan_shards(["a"], 0)


def test_round_trip_keeps_features_labels_and_notes(sample_shards):
    from pianolib.datasets import load_items
    from pianolib.labels import notes_to_rolls

    items = {it["item"]: it for it in load_items(SAMPLE_DIR)}
    got = [d for f in shard_files(sample_shards, "test") for d in read_shard(f)]
    assert sorted(d["item"] for d in got) == sorted(items)
    for d in got:
        ref = items[d["item"]]
        assert d["features"].dtype == np.float16
        np.testing.assert_array_equal(d["features"].astype(np.float32), ref["features"])
        np.testing.assert_array_equal(d["notes"], ref["notes"].astype(np.float32))
        onset, length = notes_to_rolls(ref["notes"], len(ref["features"]))
        np.testing.assert_array_equal(d["onset"], onset)
        np.testing.assert_array_equal(d["length"], length)


def test_index_counts_items_frames_and_hours(sample_shards):
    index = read_index(sample_shards)
    test = index["splits"]["test"]
    rows = sample_rows()
    assert test["items"] == len(rows) == len(test["shards"])
    x, _, _ = _in_memory()
    assert split_chunks(sample_shards, "test") == len(x)
    assert test["hours"] == pytest.approx(sum(float(r["duration"]) for r in rows) / 3600, abs=0.01)


@pytest.mark.parametrize("target", ["onset", "length"])
def test_same_batches_as_in_memory_for_the_same_seed(sample_shards, target):
    x, onset, length = _in_memory()
    y = onset if target == "onset" else length
    mem = list(memory_dataset(x, y, batch_size=16, seed=7, shuffle_buffer=64))
    streamed = list(shard_dataset(sample_shards, "test", target, batch_size=16, seed=7,
                                  shuffle_buffer=64, cycle_length=1, crop=False,
                                  shuffle_files=False))
    assert len(mem) == len(streamed) == int(np.ceil(len(x) / 16))
    for (xm, ym), (xs, ys) in zip(mem, streamed):
        np.testing.assert_array_equal(xm.numpy(), xs.numpy())
        np.testing.assert_array_equal(ym.numpy(), ys.numpy())
    other = list(shard_dataset(sample_shards, "test", target, batch_size=16, seed=8,
                               shuffle_buffer=64, cycle_length=1, crop=False, shuffle_files=False))
    assert not np.array_equal(other[0][0].numpy(), streamed[0][0].numpy())  # the seed matters


def test_interleaved_reading_yields_the_same_chunks(sample_shards):
    """Several shards at once and shuffled files: another order, the same chunks."""
    x, onset, _ = _in_memory()
    ds = shard_dataset(sample_shards, "test", "onset", batch_size=4, seed=3, shuffle_buffer=1,
                       cycle_length=3, crop=False, shuffle_files=True, float_batches=False)
    batches = [(bx.numpy(), by.numpy()) for bx, by in ds]  # one pass: each pass reshuffles
    xs = np.concatenate([b[0] for b in batches])
    ys = np.concatenate([b[1] for b in batches])

    def keys(a, b):
        return sorted(hash(a[i].tobytes() + b[i].tobytes()) for i in range(len(a)))

    assert keys(xs, ys) == keys(x, onset.astype(np.uint8))


def test_random_crops_move_the_boundaries_and_keep_the_frames(sample_shards):
    ds = shard_dataset(sample_shards, "test", "length", batch_size=8, seed=5, shuffle_buffer=1,
                       cycle_length=1, crop=True, shuffle_files=False, repeat=False)
    xs = np.concatenate([b[0].numpy() for b in ds])
    x, _, _ = _in_memory()
    assert xs.shape[1:] == x.shape[1:]
    assert not np.array_equal(xs[0], x[0])  # the first crop starts later than frame 0
    # the crop is a window of the item: its first row is some row of the first clip
    first_frames = len(read_shard(shard_files(sample_shards, "test")[0])[0]["features"])
    first = x[: int(np.ceil(first_frames / 100))].reshape(-1, x.shape[-1])
    assert (np.abs(first - xs[0, :1]).max(axis=1) == 0).any()


def test_serialize_rejects_wrong_feature_shape():
    with pytest.raises(PianolibError, match="bad-item: features must be"):
        serialize_item("bad-item", np.zeros((10, 12)), np.zeros((0, 4)))


def test_missing_or_foreign_index_and_missing_shard(sample_shards, tmp_path):
    with pytest.raises(PianolibError, match="no shards.json"):
        read_index(tmp_path)
    (tmp_path / "shards.json").write_text(json.dumps({"format": "other/9"}))
    with pytest.raises(PianolibError, match="format 'other/9'"):
        read_index(tmp_path)
    (tmp_path / "shards.json").write_text("{not json")
    with pytest.raises(PianolibError, match="unreadable"):
        read_index(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(sample_shards, broken)
    first = shard_files(broken, "test")[0]
    first.unlink()
    with pytest.raises(PianolibError, match=f"{first.name}: shard listed in shards.json"):
        shard_files(broken, "test")
    with pytest.raises(PianolibError, match="no split 'train'"):
        shard_files(sample_shards, "train")


@pytest.mark.slow
def test_streamed_training_memory_is_flat_in_dataset_size(sample_shards, tmp_path):
    """The same training run (2 epochs of 160 batches: all of the big set, read twice) streamed
    from 3 shards and from 120 (40x the data): the peak RSS of the whole process stays within
    80 MB (holding the data in memory, e.g. a ``.cache()``, adds ~180 MB and fails this)."""
    from pianolib.scalebench import measure

    index = read_index(sample_shards)
    big = tmp_path / "big"
    big.mkdir()
    test = index["splits"].pop("test")
    train = {"shards": [], "items": 0, "frames": 0, "frames_per_item": [], "hours": 0.0}
    for copy in range(40):
        for s in test["shards"]:
            name = f"copy{copy:02d}-{s['file']}"
            shutil.copy(sample_shards / s["file"], big / name)
            train["shards"].append({**s, "file": name})
        train["frames_per_item"] += test["frames_per_item"]
    small = tmp_path / "small"
    shutil.copytree(sample_shards, small)
    json.dump({**index, "splits": {"train": test}}, open(small / "shards.json", "w"))
    json.dump({**index, "splits": {"train": train}}, open(big / "shards.json", "w"))
    runs = {name: measure("streamed", folder, steps=160, batch=16, shuffle_buffer=48)
            for name, folder in (("small", small), ("big", big))}
    assert runs["big"]["peak_rss_mb"] - runs["small"]["peak_rss_mb"] < 80, runs
    assert runs["small"]["loss"][1] < runs["small"]["loss"][0]


def test_crop_offsets_change_from_epoch_to_epoch(sample_shards):
    ds = shard_dataset(sample_shards, "test", "onset", batch_size=100, seed=11, shuffle_buffer=1,
                       cycle_length=1, crop=True, shuffle_files=False, float_batches=False)
    epochs = [[b[0].numpy() for b in ds] for _ in range(5)]  # a whole pass: one epoch
    first = epochs[0]
    # the offset is drawn again each epoch: 5 first crops all equal would mean 5 equal draws
    # out of 100 (a chance of 1e-8; two epochs alone collide 1 time in 100)
    assert len({e[0][0].tobytes() for e in epochs}) > 1
    again = [b[0].numpy() for b in shard_dataset(
        sample_shards, "test", "onset", batch_size=100, seed=11, shuffle_buffer=1,
        cycle_length=1, crop=True, shuffle_files=False, float_batches=False)]
    np.testing.assert_array_equal(first[0], again[0])  # the same seed: the same first epoch


def test_a_corrupt_shard_is_named(sample_shards, tmp_path):
    bad = tmp_path / "bad.tfrecord.gz"
    good = shard_files(sample_shards, "test")[0].read_bytes()
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(PianolibError, match=f"{bad}: not a readable shard"):
        read_shard(bad)

"""Notebook 08's key code (its cells tagged ``key-code``) gives the library's results.

The functions a student reads in 08_scaling_up.ipynb - the shard plan, the random 1-s crops of
the streamed pipeline and the batch/learning-rate rule for several replicas - are run against
``pianolib``: the plan against :func:`pianolib.shards.plan_shards`, the crops against
:func:`pianolib.chunks.make_chunks` and against the crops that :func:`pianolib.shards.
shard_dataset` really streams from shards of the sample clips, the rule against
:func:`pianolib.distributed.scale_for_replicas`.
"""

import math
import os

import numpy as np
import pytest
from conftest import SAMPLE_DIR, sample_rows

from pianolib import distributed, shards
from pianolib.chunks import make_chunks
from pianolib.config import SEQ_LEN

NOTEBOOK = "08_scaling_up.ipynb"


@pytest.fixture(scope="module")
def features():
    """Each sample clip's stored features (float16, as in the shards), in manifest order."""
    out = {}
    for row in sample_rows():
        with np.load(os.path.join(SAMPLE_DIR, row["features"])) as z:
            out[row["item"]] = z["features"].astype(np.float16)
    return out


def test_key_code_cells_define_the_functions(key_code):
    for name in ("plan_shards", "crop_chunks", "scale_for_replicas"):
        assert callable(key_code[name]), name


def test_plan_shards_equals_library(key_code):
    plan = key_code["plan_shards"]
    names = [r["item"] for r in sample_rows()]
    for items in (names, [f"piece-{i}" for i in range(17)], ["c", "a", "e", "b", "d"], []):
        for n in (1, 2, 3, 8, 100):
            assert plan(items, n) == shards.plan_shards(items, n), (items, n)
    # values, not only equality: the source's order, consecutive groups, the last one shorter
    assert plan(["c", "a", "e", "b", "d"], 2) == [["c", "a"], ["e", "b"], ["d"]]
    with pytest.raises(ValueError):
        plan(names, 0)


def test_crop_chunks_from_offset_zero_is_make_chunks(key_code, features):
    crop = key_code["crop_chunks"]
    rng = np.random.default_rng(0)
    for name, f in features.items():
        np.testing.assert_array_equal(crop(f, SEQ_LEN, 0), make_chunks(f, SEQ_LEN))
        for offset in rng.integers(1, SEQ_LEN, 5):
            got = crop(f, SEQ_LEN, int(offset))
            np.testing.assert_array_equal(got, make_chunks(f[offset:], SEQ_LEN))
            assert got.dtype == f.dtype and got.shape[1:] == (SEQ_LEN, f.shape[1])
            # the first crop starts at the offset; the last one holds the item's last frames,
            # then zero padding
            np.testing.assert_array_equal(got[0], f[offset:offset + SEQ_LEN])
            tail = (len(f) - offset) % SEQ_LEN or SEQ_LEN
            np.testing.assert_array_equal(got[-1, :tail], f[len(f) - tail:])
            assert not got[-1, tail:].any(), name
    # other trailing shapes (label rolls) and an offset past the end: one zero crop
    roll = (np.arange(250 * 88) % 7 == 0).reshape(250, 88).astype(np.uint8)
    np.testing.assert_array_equal(crop(roll, 100, 30), make_chunks(roll[30:], 100))
    assert crop(roll, 100, 260).shape == (1, 100, 88) and not crop(roll, 100, 260).any()


def test_crop_chunks_are_the_crops_the_pipeline_streams(key_code, features, tmp_path):
    """Random crops streamed from shards: each epoch's crops of an item are crop_chunks from
    that epoch's offset, and the offsets differ between epochs."""
    from pianolib.pipeline import build_shards

    out = build_shards([SAMPLE_DIR], tmp_path / "shards", items_per_shard=1, progress=False)
    first = shards.read_shard(shards.shard_files(out, "test")[0])[0]
    f = features[first["item"]]
    np.testing.assert_array_equal(first["features"], f)
    ds = shards.shard_dataset(out, "test", "length", batch_size=64, seed=11, shuffle_buffer=1,
                              cycle_length=1, shuffle_files=False, crop=True,
                              float_batches=False)
    offsets = []
    for _ in range(3):
        xs = np.concatenate([bx.numpy() for bx, _ in ds])
        hits = [o for o in range(SEQ_LEN) if np.array_equal(f[o:o + SEQ_LEN], xs[0])]
        assert len(hits) == 1
        mine = key_code["crop_chunks"](f, SEQ_LEN, hits[0])
        np.testing.assert_array_equal(xs[:len(mine)], mine)
        offsets.append(hits[0])
    assert len(set(offsets)) > 1, offsets


def test_scale_for_replicas_equals_library(key_code):
    scale = key_code["scale_for_replicas"]
    for batch in (1, 4, 32):
        for lr in (1e-3, 5e-4, 2e-3):
            for replicas in (1, 2, 3, 8, 64):
                for scale_lr in (True, False):
                    mine = scale(batch, lr, replicas, scale_lr)
                    lib = distributed.scale_for_replicas(batch, lr, replicas, scale_lr)
                    assert mine[0] == lib[0] and math.isclose(mine[1], lib[1], rel_tol=1e-12)
    # values: the library's doctest, and the square root (not the linear) rule
    assert scale(32, 1e-3, 4) == (128, 0.002)
    assert scale(32, 1e-3, 8)[1] == pytest.approx(1e-3 * 8 ** 0.5)
    assert scale(32, 1e-3, 8, False) == (256, 1e-3)
    with pytest.raises(ValueError):
        scale(32, 1e-3, 0)

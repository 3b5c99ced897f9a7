"""Training under tf.distribute from shards (pianolib.distributed): the replica scaling rule,
strategies by name, and two MultiWorkerMirroredStrategy workers on 127.0.0.1 against one
process with the same global batch."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, SAMPLE_DIR

from pianolib.errors import PianolibError

SPLITS = {"m21-joplin-maple_leaf_rag": "valid", "gen-sample-0": "train",
          "m21-bach-bwv66_6": "train"}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    from pianolib.pipeline import build_shards

    out = tmp_path_factory.mktemp("dist") / "shards"
    build_shards([SAMPLE_DIR], out, items_per_shard=1, assign=SPLITS, progress=False)
    return out


def test_scale_for_replicas_keeps_the_per_replica_batch_and_scales_adam_by_sqrt():
    from pianolib.distributed import scale_for_replicas

    assert scale_for_replicas(32, 1e-3, 1) == (32, 1e-3)
    batch, lr = scale_for_replicas(32, 1e-3, 8)
    assert batch == 256 and lr == pytest.approx(1e-3 * 8 ** 0.5)
    assert scale_for_replicas(32, 1e-3, 8, scale_lr=False) == (256, 1e-3)
    with pytest.raises(PianolibError):
        scale_for_replicas(32, 1e-3, 0)


def test_strategies_by_name(monkeypatch):
    from pianolib.distributed import is_chief, make_strategy

    assert make_strategy("default").num_replicas_in_sync == 1
    with pytest.raises(PianolibError, match="unknown strategy 'tpu'"):
        make_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(PianolibError, match="needs TF_CONFIG"):
        make_strategy("multi-worker")
    assert is_chief()
    cluster = {"worker": ["a:1", "b:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": 1}}))
    assert not is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": 0}}))
    assert is_chief()


def test_streamed_training_learns_and_writes_the_best_model(shards, tmp_path):
    from pianolib.distributed import train_streamed
    from pianolib.models import load_model

    hist = train_streamed(shards, tmp_path, "onset", epochs=3, batch_size=8, verbose=False)
    assert hist["replicas"] == 1 and hist["global_batch"] == 8
    assert hist["loss"][-1] < hist["loss"][0] * 0.8  # it learns (from ~0.69: untrained BCE)
    assert hist["best_val_loss"] == min(hist["val_loss"])
    model = load_model(tmp_path / "onset.keras")
    assert model.output_shape[-1] == 88
    log = (tmp_path / "onset.csv").read_text().splitlines()
    assert log[0] == "epoch,loss,val_loss,examples_per_s" and len(log) == 4


def _train(args, out, extra=()):
    return ["train", "--config", "quick", "--shards", str(args), "--out", str(out),
            "--target", "onset", "--epochs", "2", "--no-scale-lr", "--force", *extra]


@pytest.mark.slow
def test_two_workers_reach_the_loss_of_one_process(shards, tmp_path):
    """2 processes x batch 4 under MultiWorkerMirroredStrategy = 1 process x batch 8: the same
    computation, so the losses agree up to float rounding in the all-reduce (within 1 %)."""
    from pianolib.distributed import run_local_workers

    outs = run_local_workers(_train(shards, tmp_path / "mw",
                                    ["--batch-size", "4", "--strategy", "multi-worker"]))
    assert len(outs) == 2 and all("(2 replicas)" in o for o in outs)
    r = subprocess.run([sys.executable, "-m", "pianolib",
                        *_train(shards, tmp_path / "one", ["--batch-size", "8"])],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-500:]
    mw = json.loads((tmp_path / "mw" / "train.json").read_text())
    one = json.loads((tmp_path / "one" / "train.json").read_text())
    assert mw["replicas"] == 2 and one["replicas"] == 1
    assert mw["models"]["onset"]["global_batch"] == one["models"]["onset"]["global_batch"] == 8
    for key in ("loss", "val_loss"):
        a, b = mw["models"]["onset"][key], one["models"]["onset"][key]
        assert len(a) == len(b) == 2 and a[1] < a[0]
        for x, y in zip(a, b):
            assert x == pytest.approx(y, rel=0.01)
    assert (tmp_path / "mw" / "onset.keras").is_file()


def test_too_small_or_missing_splits_are_refused(shards, tmp_path):
    from pianolib.distributed import train_streamed
    from pianolib.pipeline import build_shards

    with pytest.raises(PianolibError, match=r"the train split has \d+ crops of 100 frames, "
                                            r"fewer than one global batch of 4096"):
        train_streamed(shards, None, batch_size=4096, verbose=False)
    only_test = build_shards([SAMPLE_DIR], tmp_path / "t", items_per_shard=3, progress=False)
    with pytest.raises(PianolibError, match=r"no train split \(it has \['test'\]\)"):
        train_streamed(only_test, None, batch_size=4, verbose=False)
    no_valid = build_shards([SAMPLE_DIR], tmp_path / "v", items_per_shard=3, progress=False,
                            assign={k: "train" for k in SPLITS})
    with pytest.raises(PianolibError, match=r"no valid split"):
        train_streamed(no_valid, None, batch_size=4, verbose=False)


def test_command_line_refuses_bad_shards_and_targets(shards, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    r = subprocess.run([sys.executable, "-m", "pianolib", *_train(tmp_path / "none", tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'none'}: no shards")
    r = subprocess.run([sys.executable, "-m", "pianolib", "train", "--config", "quick",
                        "--shards", str(shards), "--out", str(tmp_path / "v"), "--target",
                        "velocity"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 1 and "covers the onset and length models" in r.stderr
    r = subprocess.run([sys.executable, "-m", "pianolib", "train", "--config", "quick",
                        "--out", str(tmp_path / "w"), "--strategy", "mirrored"],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "error: --strategy: options of streamed training; add --shards FOLDER (config quick "
        "trains in memory)"]


def test_readme_scaling_table_is_the_measured_one():
    from conftest import assert_readme_has_table

    from pianolib.scalebench import scale_table

    assert_readme_has_table("data/bench/scale.md", 9)
    measured = json.load(open(os.path.join(ROOT, "data", "bench", "scale.json")))
    assert scale_table(measured) == open(os.path.join(ROOT, "data", "bench", "scale.md")).read()


def test_maestro_recipe_described_from_the_measured_throughput(tmp_path):
    from pianolib.configs import MAESTRO_TRAIN_HOURS, get_config
    from pianolib.distributed import describe_recipe

    cfg = get_config("maestro", shards=str(tmp_path / "not-built"))
    bench = os.path.join(ROOT, "data", "bench", "scale.json")
    d = describe_recipe(cfg, bench)
    assert d["train_hours"] == MAESTRO_TRAIN_HOURS and d["strategy"] == "mirrored"
    assert d["examples_per_epoch"] == round(MAESTRO_TRAIN_HOURS * 3600)
    assert d["examples_total"] == d["examples_per_epoch"] * cfg.epochs * 2
    measured = json.load(open(bench))
    per_core = measured["streamed"]["examples_per_s"] / measured["cores"]
    assert d["measured_examples_per_s_per_core"] == pytest.approx(per_core, abs=0.01)
    assert d["cpu_core_hours"] == pytest.approx(d["examples_total"] / per_core / 3600, abs=0.1)
    assert "measured_examples_per_s_per_core" not in describe_recipe(cfg, tmp_path / "none")

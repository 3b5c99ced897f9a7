"""The feature pipeline on Dask (pianolib.pipeline): 2 local workers write what the serial build
writes, bad items are skipped with a line naming them, the command line refuses bad input."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, SAMPLE_DIR

from pianolib.errors import PianolibError
from pianolib.pipeline import build_shards, build_shards_from_jobs, folder_jobs, shards_equal
from pianolib.shards import read_index, read_shard, shard_files


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The serial build of the sample clips' audio + MIDI (CQT computed from the FLAC files)."""
    out = tmp_path_factory.mktemp("pipe") / "serial"
    build_shards_from_jobs(folder_jobs([SAMPLE_DIR]), out, items_per_shard=2, workers=0)
    return out


def test_folder_jobs_pair_audio_and_midi_by_stem():
    jobs = folder_jobs([SAMPLE_DIR])
    assert len(jobs) == 3
    for item, job in jobs.items():
        assert job["kind"] == "audio"
        assert job["audio"].endswith(f"audio/{item}.flac")
        assert job["labels"].endswith(f"midi/{item}.mid")


def test_serial_features_are_the_series_cqt_of_the_recording(serial):
    from pianolib.audio import load_audio
    from pianolib.features import compute_features

    first = read_shard(shard_files(serial, read_index(serial)["splits"].popitem()[0])[0])[0]
    jobs = folder_jobs([SAMPLE_DIR])
    ref = compute_features(load_audio(jobs[first["item"]]["audio"])).astype(np.float16)
    np.testing.assert_array_equal(first["features"], ref)
    assert first["onset"].sum() > 0 and first["length"].sum() > first["onset"].sum()


@pytest.mark.slow
def test_two_local_dask_workers_write_the_serial_bytes(serial, tmp_path):
    out = tmp_path / "dask"
    build_shards_from_jobs(folder_jobs([SAMPLE_DIR]), out, items_per_shard=2, workers=2)
    same = shards_equal(serial, out)
    assert same == {"files": True, "byte_equal": True, "max_abs_diff": 0.0}
    assert read_index(out)["build"]["workers"] == 2


def test_shards_equal_sees_a_changed_value(serial, tmp_path):
    from pianolib.shards import serialize_item, write_shard

    other = tmp_path / "other"
    shutil.copytree(serial, other)
    f = shard_files(other, read_index(other)["splits"].popitem()[0])[0]
    items = read_shard(f)
    items[0]["features"][5, 7] += np.float16(0.25)
    write_shard(f, [serialize_item(d["item"], d["features"], d["notes"], d["onset"], d["length"])
                    for d in items])
    got = shards_equal(serial, other)
    assert got["byte_equal"] is False and got["max_abs_diff"] == pytest.approx(0.25, abs=0.01)


def test_a_bad_label_file_is_skipped_and_named(tmp_path):
    src = tmp_path / "rec"
    (src / "flac").mkdir(parents=True)
    (src / "tsv").mkdir()
    shutil.copy(f"{SAMPLE_DIR}/audio/gen-sample-0.flac", src / "flac" / "good.flac")
    shutil.copy(f"{SAMPLE_DIR}/audio/gen-sample-0.flac", src / "flac" / "bad.flac")
    (src / "tsv" / "good.tsv").write_text("onset\toffset\tnote\tvelocity\n0.5\t1.0\t60\t80\n")
    (src / "tsv" / "bad.tsv").write_text("0.5\t1.0\t60\t80\n0.7\t0.2\t62\t80\n")
    with pytest.warns(UserWarning, match=r"skipped bad: .*bad.tsv:2: offset 0.2 s"):
        out = build_shards([src], tmp_path / "out", items_per_shard=4, progress=False)
    index = read_index(out)
    items = [i for s in index["splits"].values() for sh in s["shards"] for i in sh["items"]]
    assert items == ["good"]
    assert len(index["skipped"]) == 1


def test_assign_and_hours_and_clashes(tmp_path):
    out = build_shards([SAMPLE_DIR], tmp_path / "a", items_per_shard=1, progress=False,
                       assign={"gen-sample-0": "valid"})
    splits = read_index(out)["splits"]
    assert splits["valid"]["shards"][0]["items"] == ["gen-sample-0"]
    assert splits["test"]["items"] == 2
    with pytest.raises(PianolibError, match="no item nothing"):
        build_shards([SAMPLE_DIR], tmp_path / "b", assign={"nothing": "train"}, progress=False)
    few = build_shards([SAMPLE_DIR], tmp_path / "c", hours=1 / 3600, progress=False)
    assert read_index(few)["splits"]["test"]["items"] == 1
    with pytest.raises(PianolibError, match="also in another source"):
        build_shards([SAMPLE_DIR, SAMPLE_DIR], tmp_path / "d", progress=False)
    with pytest.raises(PianolibError, match="already exists"):
        build_shards([SAMPLE_DIR], out, progress=False)


def test_command_line_refuses_a_missing_folder_in_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pianolib", "shards", str(tmp_path / "nope"),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope'}: folder not found"]
    assert not (tmp_path / "o").exists()

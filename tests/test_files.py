"""Safe writing: a failure mid-write keeps the old file; builds never lose a complete dataset."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from pianolib.audio import write_audio
from pianolib.errors import PianolibError
from pianolib.files import atomic_write, build_folder
from pianolib.midi import notes_to_midi, write_midi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_failure_half_way_through_a_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("old contents\n")
    with pytest.raises(OSError, match="disk full"):
        with atomic_write(path, force=True) as tmp, open(tmp, "w") as fh:
            fh.write("new contents, first half")
            raise OSError("disk full")  # the writer dies after half the bytes
    assert path.read_text() == "old contents\n"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("writer", ["audio", "midi"])
def test_audio_and_midi_writers_fail_atomically(tmp_path, monkeypatch, writer):
    path = tmp_path / ("a.flac" if writer == "audio" else "a.mid")
    path.write_bytes(b"precious")
    if writer == "audio":
        import soundfile

        real = soundfile.write

        def half(file, data, *a, **k):  # write half the samples, then fail
            real(file, data[: len(data) // 2], *a, **k)
            raise OSError("No space left on device")

        monkeypatch.setattr(soundfile, "write", half)
        with pytest.raises(OSError):
            write_audio(path, np.zeros(16000, np.float32), force=True)
    else:
        import pretty_midi

        def half(self, filename):
            open(filename, "wb").write(b"MThd\x00")
            raise OSError("No space left on device")

        monkeypatch.setattr(pretty_midi.PrettyMIDI, "write", half)
        with pytest.raises((OSError, PianolibError)):
            write_midi(notes_to_midi(np.array([[0, 1, 60, 80]])), path, force=True)
    assert path.read_bytes() == b"precious"
    assert _leftovers(tmp_path) == []


def _make(folder, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.csv").write_text(text)


def test_build_folder_swaps_in_only_a_finished_build(tmp_path):
    out = tmp_path / "ds"
    _make(out, "old")
    with pytest.raises(PianolibError, match="already exists"):
        with build_folder(out):
            pass
    with pytest.raises(RuntimeError):
        with build_folder(out, force=True) as tmp:
            _make(tmp, "half")
            raise RuntimeError("render failed")
    assert (out / "manifest.csv").read_text() == "old"
    with build_folder(out, force=True) as tmp:
        _make(tmp, "new")
    assert (out / "manifest.csv").read_text() == "new"
    assert _leftovers(tmp_path) == []


def test_second_build_of_the_same_folder_is_refused_clearly(tmp_path):
    out = tmp_path / "ds"
    with build_folder(out):
        with pytest.raises(PianolibError, match=r"another build \(pid \d+\)"):
            with build_folder(out):
                pass
    assert out.is_dir()


def test_stale_lock_of_a_dead_build_is_taken_over(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (tmp_path / ".ds.lock").write_text(str(proc.pid))
    with build_folder(tmp_path / "ds") as tmp:
        _make(tmp, "x")
    assert (tmp_path / "ds" / "manifest.csv").read_text() == "x"


def test_ctrl_c_during_a_build_leaves_the_old_dataset_and_no_litter(tmp_path):
    out = tmp_path / "ds"
    _make(out, "old")
    script = textwrap.dedent(f"""
        import signal, time
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from pianolib.files import build_folder
        with build_folder({str(out)!r}, force=True) as tmp:
            (tmp / "manifest.csv").write_text("half")
            print("building", flush=True)
            time.sleep(30)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "building"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    assert proc.returncode != 0
    assert (out / "manifest.csv").read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_importing_pianolib_prints_nothing_even_under_ci(tmp_path):
    """pyfluidsynth prints a line on import when ``CI`` is set; our output must stay ours."""
    env = dict(os.environ, CI="1")
    out = subprocess.run([sys.executable, "-c", "import pianolib.files, pianolib.midi"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""

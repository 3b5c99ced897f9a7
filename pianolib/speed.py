"""How fast transcription is, as a user runs it: whole processes, stage by stage, peak memory.

``python -m pianolib speed`` makes test recordings from the sample clips (44.1 kHz stereo WAV,
as a phone or an audio interface records them), then times whole ``python -m pianolib
transcribe`` processes - start-up included - alternating with Basic Pitch's own command when
it is installed, and reads each process's peak resident memory (``VmHWM``). A separate child
process reports where the time of one run goes (start-up, audio decoding and resampling, CQT,
models, note decoding, MIDI writing).

Notebook: 06_evaluation_and_comparison.ipynb
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .config import SR

#: Characters of a failed command's last error line kept in the table.
MESSAGE_CHARS = 150
#: Minutes of the long recording transcribed for peak memory by ``speed`` and ``bench`` alike
#: (the README's 60-minute row).
MEMORY_MINUTES = 60.0
#: The stages of :func:`stage_times`, in pipeline order.
STAGES = ("startup", "audio", "cqt", "models", "decode", "midi")


def make_recording(path: str | Path, seconds: float, sr: int = 44_100, channels: int = 2,
                   offset: float = 0.0) -> Path:
    """A ``seconds``-long WAV (16-bit) made by repeating the sample clips, written in blocks.

    Notebook: 06_evaluation_and_comparison.ipynb

    Args:
        path: Output file (overwritten: it is a scratch file of the measurement).
        seconds: Length.
        sr, channels: Format of the file.
        offset: Seconds into the repeated clips to start from (gives different files).
    """
    import librosa
    import soundfile as sf

    from .audio import load_audio
    from .transcribe import SAMPLE_AUDIO

    y = np.concatenate([load_audio(p) for p in SAMPLE_AUDIO])
    y = librosa.resample(y, orig_sr=SR, target_sr=sr).astype(np.float32)
    y = np.roll(y, -int(offset * sr))
    frames = int(seconds * sr)
    path = Path(path)
    with sf.SoundFile(str(path), "w", sr, channels, subtype="PCM_16") as f:
        written = 0
        while written < frames:
            block = y[: frames - written]
            f.write(np.repeat(block[:, None], channels, axis=1) * 0.8)
            written += len(block)
    return path


def run_process(cmd: list[str], env: dict | None = None, poll_s: float = 0.005) -> dict:
    """Run ``cmd``; wall seconds, exit code, stderr lines and peak resident memory (MB).

    The peak is the child's own high-water mark (``VmHWM`` of ``/proc/PID/status``), read
    until it exits (``ru_maxrss`` would also count this parent's memory across fork/exec).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        # files, not pipes: a chatty child cannot fill a pipe and hang
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True,
                                env={**os.environ, **(env or {})})
        peak_kb = 0
        status = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(poll_s)
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return {"seconds": seconds, "rc": proc.returncode, "stdout": stdout,
            "stderr": [line for line in stderr.splitlines() if line.strip()],
            "peak_mb": peak_kb / 1024}


_STAGES_CODE = """
import json, sys, time
t0 = time.perf_counter()
from pianolib.transcribe import Transcriber, transcribe
tr = Transcriber(sys.argv[3], runtime=None if sys.argv[4] == "auto" else sys.argv[4],
                 prefetch=False)  # stages one after the other, so that their times add up
timer = {"startup": time.perf_counter() - t0}
transcribe(sys.argv[1], sys.argv[2], force=True, transcriber=tr, timer=timer)
print(json.dumps(timer))
"""


def stage_times(audio: str | Path, model_dir: str | Path | None = None,
                runtime: str = "auto") -> dict:
    """Seconds per stage of one transcription in a fresh process (see :data:`STAGES`).

    ``startup`` counts from the first import of pianolib to loaded models; the interpreter's
    own start is the difference between ``process`` (the whole child, timed from outside) and
    the sum of the stages. The stages run one after the other here (no prefetch thread), so
    their sum is more than a normal run's wall time, where reading and the CQT of the next
    block overlap the models.

    Notebook: 06_evaluation_and_comparison.ipynb
    """
    from .transcribe import DEFAULT_MODELS

    with tempfile.TemporaryDirectory() as tmp:
        r = run_process([sys.executable, "-c", _STAGES_CODE, str(audio), f"{tmp}/x.mid",
                         str(model_dir or DEFAULT_MODELS), runtime])
    if r["rc"] != 0:
        raise RuntimeError("stage timing failed: " + " | ".join(r["stderr"][-3:]))
    timer = json.loads(r["stdout"].strip().splitlines()[-1])
    timer = {k: round(timer.get(k, 0.0), 3) for k in STAGES}
    timer["python"] = round(r["seconds"] - sum(timer.values()), 3)
    timer["process"] = round(r["seconds"], 3)
    return timer


#: Basic Pitch's model runtimes we time. Its default (the first installed of TensorFlow, CoreML,
#: TFLite, ONNX) is TensorFlow here, and Basic Pitch 0.4.0's TensorFlow model does not load in
#: TensorFlow 2.21, so each runtime is asked for by name; one that fails is reported.
BASIC_PITCH_RUNTIMES = ("onnx", "tflite", "tf")


def basic_pitch_command(out_dir: str | Path, files: list, serialization: str | None = None):
    """Basic Pitch's own command line (``basic-pitch OUT FILES``), or None if not installed."""
    exe = Path(sys.executable).with_name("basic-pitch")
    if not exe.is_file():
        return None
    cmd = [str(exe), str(out_dir), *map(str, files)]
    return cmd + (["--model-serialization", serialization] if serialization else [])


def measure_speed(seconds: float = 300.0, model_dir=None, repeats: int = 2,
                  many: tuple[int, float] = (20, 30.0), memory_minutes: float | None = None,
                  basic_pitch: bool = True, runtime: str = "auto", jobs: int = 1) -> dict:
    """Whole-process speed and memory of ours and Basic Pitch's command, side by side.

    Notebook: 06_evaluation_and_comparison.ipynb

    Args:
        seconds: Length of the single long recording.
        model_dir: Our models (default: shipped).
        repeats: Runs of each command (alternating ours / Basic Pitch); the best is reported.
        many: ``(files, seconds each)`` of the many-files run (one command for all).
        memory_minutes: Also transcribe a recording this long (peak memory); None skips it.
        basic_pitch: Also run Basic Pitch when it is installed.
        runtime: Our model runtime (``auto``, ``onnx``, ``keras``).
        jobs: ``--jobs`` of our many-files run (peak memory is then the parent's only).

    Returns:
        ``{"rows": [...], "stages": {...}}``: one row per (system, task) with seconds,
        real-time factor and peak MB.
    """
    from .transcribe import DEFAULT_MODELS

    model_dir = str(model_dir or DEFAULT_MODELS)
    ours = [sys.executable, "-m", "pianolib", "transcribe", "--models", model_dir,
            "--no-progress", "--force"] + ([] if runtime == "auto" else ["--runtime", runtime])
    rows = []
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        long = make_recording(tmp / "long.wav", seconds)
        folder = tmp / "many"
        folder.mkdir()
        n_files, file_s = many
        files = [make_recording(folder / f"take{i:02d}.wav", file_s, offset=7.0 * i)
                 for i in range(n_files)]
        (tmp / "bp").mkdir()
        # (task, seconds of audio, our arguments, Basic Pitch's files)
        tasks = [("1 file", seconds, [str(long), "-o", str(tmp / "long.mid")], [long]),
                 (f"{n_files} files", n_files * file_s,
                  ["--jobs", str(jobs), str(folder), "-o", str(tmp / "many-out")], files)]
        for task, audio_s, our_args, bp_files in tasks:
            cmds = {"pianolib": (ours + our_args, None)}  # name -> (command, Basic Pitch runtime)
            if basic_pitch:
                for ser in BASIC_PITCH_RUNTIMES:
                    cmd = basic_pitch_command(tmp / "bp", bp_files, ser)
                    if cmd:
                        cmds[f"basic-pitch ({ser})"] = (cmd, ser)
            best: dict[str, dict] = {}
            for _ in range(repeats):
                for name, (cmd, ser) in cmds.items():
                    if ser in failed:
                        continue
                    if ser:  # Basic Pitch refuses to overwrite its outputs
                        for f in (tmp / "bp").iterdir():
                            f.unlink()
                    r = run_process(cmd)
                    if r["rc"] != 0 and ser:
                        failed[ser] = r["stderr"][-1] if r["stderr"] else f"exit {r['rc']}"
                        continue
                    if r["rc"] != 0:
                        raise RuntimeError(f"{name} failed: " + " | ".join(r["stderr"][-3:]))
                    if name not in best or r["seconds"] < best[name]["seconds"]:
                        best[name] = r
            for name, r in best.items():
                rows.append({"system": name, "task": task, "audio_s": audio_s,
                             "seconds": round(r["seconds"], 2),
                             "speed_x": round(audio_s / r["seconds"], 1),
                             "peak_mb": round(r["peak_mb"])})
        stages = stage_times(long, model_dir, runtime)
        if memory_minutes:
            huge = make_recording(tmp / "huge.wav", memory_minutes * 60)
            r = run_process(ours + [str(huge), "-o", str(tmp / "huge.mid")])
            if r["rc"] != 0:
                raise RuntimeError("long transcription failed: " + " | ".join(r["stderr"][-3:]))
            rows.append({"system": "pianolib", "task": f"{memory_minutes:g} min",
                         "audio_s": memory_minutes * 60, "seconds": round(r["seconds"], 2),
                         "speed_x": round(memory_minutes * 60 / r["seconds"], 1),
                         "peak_mb": round(r["peak_mb"])})
    return {"rows": rows, "stages": stages, "seconds": seconds, "runtime": runtime,
            "basic_pitch_failed": failed}


def speed_table(result: dict) -> str:
    """The rows of :func:`measure_speed` as a Markdown table (the README's speed table)."""
    lines = ["| system | task | audio s | wall s | x real time | peak MB |",
             "|---|---|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['system']} | {r['task']} | {r['audio_s']:g} | {r['seconds']:.1f} | "
                     f"{r['speed_x']:.1f} | {r['peak_mb']} |")
    st = result["stages"]
    parts = ", ".join(f"{k} {st[k]:.2f}" for k in ("python",) + STAGES)
    for ser, why in result.get("basic_pitch_failed", {}).items():
        lines.append("")
        lines.append(f"basic-pitch ({ser}) did not run here: {why[:MESSAGE_CHARS]}")
    lines.append("")
    lines.append(f"Stages of one {result['seconds']:g}-s run (s): {parts}; "
                 f"process {st['process']:.2f}.")
    return "\n".join(lines)


def speed_markdown(result: dict) -> str:
    """``speed.md``: the date, how it was measured, and :func:`speed_table`."""
    return (f"Measured {result['date']} with `python -m pianolib speed` on this machine "
            f"({os.cpu_count()} CPU cores): whole processes as a user runs them, start-up "
            f"included, best of {result.get('repeats', 2)} alternating runs; files are 44.1 kHz "
            "stereo WAV.\n\n" + speed_table(result) + "\n")


def write_speed(out: str | Path = "data/bench", force: bool = False, **kwargs) -> str:
    """Run :func:`measure_speed` and write ``speed.json`` and ``speed.md`` (the README's table).

    Both outputs are checked before the measurement starts; replaced only with ``force``.

    Notebook: 06_evaluation_and_comparison.ipynb
    """
    import datetime as dt

    from .files import atomic_write, check_writable, write_json

    out = Path(out)
    for name in ("speed.json", "speed.md"):
        check_writable(out / name, force)
    result = measure_speed(**kwargs)
    result["date"] = dt.datetime.now().strftime("%Y-%m-%d")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "speed.json", result, force=True)
    result["repeats"] = kwargs.get("repeats", 2)
    md = speed_markdown(result)
    with atomic_write(out / "speed.md", force=True) as tmp:
        tmp.write_text(md)
    return md

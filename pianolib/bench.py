"""Benchmark: our transcriber against Spotify's Basic Pitch on the same files, same metrics.

Basic Pitch (``basic-pitch`` 0.4.0) ships its ONNX model inside its wheel; its declared
dependencies pin an old TensorFlow, so it is an optional install (``make peer``). Both systems
are scored by the same ``mir_eval`` code, and timed end to end (file in, notes out) in the
same run, alternating between them after a warm-up so that machine noise hits both alike.

Notebook: 06_evaluation_and_comparison.ipynb
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from .config import MAX_MIDI, MIN_MIDI
from .evaluate import METRICS, dataset_pairs, evaluate_notes, find_pairs, read_labels
from .files import atomic_write, write_csv

PEER_INSTALL = ('pip install --no-deps basic-pitch==0.4.0 && pip install onnxruntime '
                'scikit-learn "resampy<0.4.3"   (or: make peer)')
MAPS_DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "maps-dev"
COLUMNS = ["set", "system", "pieces", "audio_s", *METRICS, "speed_x", "peak_rss_mb"]


class Ours:
    """Our shipped models, end to end from the audio file."""

    name = "pianolib"

    def __init__(self, model_dir=None):
        from .transcribe import DEFAULT_MODELS, Transcriber

        self.transcriber = Transcriber(Path(model_dir or DEFAULT_MODELS))

    def transcribe_file(self, path: Path) -> np.ndarray:
        return self.transcriber.transcribe_file(path)


class BasicPitch:
    """Basic Pitch 0.4.0 through its ONNX model, with its default thresholds.

    Raises:
        ImportError: When ``basic-pitch`` or ``onnxruntime`` is not installed.
    """

    name = "basic-pitch"

    def __init__(self):
        import basic_pitch
        from basic_pitch.inference import Model

        path = Path(basic_pitch.__file__).parent / "saved_models" / "icassp_2022" / "nmp.onnx"
        self.model = Model(path)

    def transcribe_file(self, path: Path) -> np.ndarray:
        from basic_pitch.inference import predict

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, _, events = predict(str(path), self.model, onset_threshold=0.5,
                                   frame_threshold=0.3, minimum_note_length=127.7)
        rows = [(s, e, p, min(127, max(1, round(a * 127)))) for s, e, p, a, *_ in events]
        notes = np.array(rows, dtype=float).reshape(-1, 4)
        return notes[(notes[:, 2] >= MIN_MIDI) & (notes[:, 2] <= MAX_MIDI)]


class _PeakRSS:
    """Peak resident memory of this process while a block runs (sampled every 5 ms)."""

    def __enter__(self):
        import psutil

        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self.peak = self.proc.memory_info().rss

        def sample():
            while not self._stop.wait(0.005):
                self.peak = max(self.peak, self.proc.memory_info().rss)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        return False


def available_systems(model_dir=None, verbose: bool = True) -> list:
    """Ours, plus Basic Pitch when it is installed (else a message saying how to install it)."""
    systems = [Ours(model_dir)]
    try:
        systems.append(BasicPitch())
    except ImportError as exc:
        if verbose:
            print(f"Basic Pitch is not installed ({exc}); running ours alone. "
                  f"To compare: {PEER_INSTALL}")
    return systems


def run_set(name: str, pairs: list[tuple[Path, Path]], systems: list, limit_s: float | None = None,
            progress: bool = True) -> tuple[list[dict], list[dict]]:
    """Transcribe and score every pair with every system, alternating the order per file.

    Returns:
        ``(summary_rows, per_piece_rows)``.
    """
    import soundfile as sf

    if limit_s:  # keep the first files up to limit_s seconds of audio
        kept, total = [], 0.0
        for a, lab in pairs:
            kept.append((a, lab))
            total += sf.info(str(a)).duration
            if total >= limit_s:
                break
        pairs = kept
    for s in systems:  # warm-up: load, trace and JIT outside the timing
        s.transcribe_file(pairs[0][0])
    per_piece: list[dict] = []
    stats = {s.name: {"seconds": 0.0, "peak": 0} for s in systems}
    for i, (audio, label) in enumerate(pairs):
        ref = read_labels(label)
        duration = sf.info(str(audio)).duration
        order = systems if i % 2 == 0 else systems[::-1]
        for s in order:
            with _PeakRSS() as mem:
                t0 = time.perf_counter()
                est = s.transcribe_file(audio)
                sec = time.perf_counter() - t0
            stats[s.name]["seconds"] += sec
            stats[s.name]["peak"] = max(stats[s.name]["peak"], mem.peak)
            row = {"set": name, "system": s.name, "piece": Path(audio).stem,
                   "audio_s": duration, "seconds": sec,
                   **evaluate_notes(ref, est, int(duration * 100) + 1)}
            per_piece.append(row)
            if progress:
                print(f"  {name:10s} {s.name:12s} {row['piece'][:34]:34s} note F1 "
                      f"{row['note_f1']:.3f}  offset F1 {row['note_offset_f1']:.3f}  "
                      f"{duration / sec:6.1f}x real time", flush=True)
    summary = []
    for s in systems:
        rows = [r for r in per_piece if r["system"] == s.name]
        audio_s = sum(r["audio_s"] for r in rows)
        summary.append({"set": name, "system": s.name, "pieces": len(rows),
                        "audio_s": round(audio_s, 1),
                        **{k: round(float(np.mean([r[k] for r in rows])), 4) for k in METRICS},
                        "speed_x": round(audio_s / max(stats[s.name]["seconds"], 1e-9), 1),
                        "peak_rss_mb": round(stats[s.name]["peak"] / 2**20)})
    return summary, per_piece


def markdown_table(rows: list[dict]) -> str:
    """The summary rows as a Markdown table."""
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    return head + "".join("| " + " | ".join(str(r[c]) for c in COLUMNS) + " |\n" for r in rows)


def plot_bench(rows: list[dict], path: Path) -> None:
    """Bar chart of note F1, note-with-offset F1 and frame F1 per set and system."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(r["set"] for r in rows))
    systems = list(dict.fromkeys(r["system"] for r in rows))
    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 3.5), squeeze=False)
    for ax, name in zip(axes[0], sets):
        for j, system in enumerate(systems):
            r = next((r for r in rows if r["set"] == name and r["system"] == system), None)
            if r is None:
                continue
            vals = [r["note_f1"], r["note_offset_f1"], r["frame_f1"]]
            ax.bar(np.arange(3) + j * 0.8 / len(systems), vals, width=0.8 / len(systems),
                   label=f"{system} ({r['speed_x']}x real time)")
        ax.set_xticks(np.arange(3) + 0.4 - 0.4 / len(systems))
        ax.set_xticklabels(["note F1", "note+offset F1", "frame F1"])
        ax.set_ylim(0, 1)
        ax.set_ylabel("F1")
        ax.set_title(f"{name}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path, force=True) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def run_benchmark(data: str | Path | None = "data/corpus", folders: list[str | Path] = (),
                  out: str | Path = "data/bench", model_dir=None, include_maps: bool = True,
                  limit_s: float | None = None, progress: bool = True,
                  force: bool = False) -> list[dict]:
    """Run the benchmark on the test split of ``data``, each folder, and maps-dev if present.

    Writes ``results.csv``, ``results.md``, ``per_piece.csv`` and ``results.png`` to ``out``
    (atomically; existing results are replaced only with ``force``, checked before any work).

    Notebook: 06_evaluation_and_comparison.ipynb
    """
    from .files import check_writable

    out = Path(out)
    for fname in ("results.csv", "per_piece.csv", "results.md", "results.png"):
        check_writable(out / fname, force)
    systems = available_systems(model_dir, verbose=progress)
    sets: list[tuple[str, list]] = []
    if data and (Path(data) / "manifest.csv").is_file():
        sets.append((f"{Path(data).name}:test", dataset_pairs(data, "test")[0]))
    for folder in folders:
        sets.append((Path(folder).name, find_pairs(folder)))
    if include_maps and MAPS_DEV.is_dir():
        sets.append(("maps-dev", find_pairs(MAPS_DEV)))
    summary, pieces = [], []
    for name, pairs in sets:
        s, p = run_set(name, pairs, systems, limit_s, progress)
        summary += s
        pieces += p
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "results.csv", summary, COLUMNS, force=True)
    write_csv(out / "per_piece.csv", pieces, list(pieces[0]) if pieces else [], force=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%d")
    md = (f"Measured {stamp} on this machine ({os.cpu_count()} CPU cores) with "
          f"`python -m pianolib bench`.\n\n" + markdown_table(summary))
    with atomic_write(out / "results.md", force=True) as tmp:
        tmp.write_text(md)
    plot_bench(summary, out / "results.png")
    if progress:
        print(md)
    return summary

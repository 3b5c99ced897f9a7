"""Helpers the notebooks share: quick/full mode and a small cached corpus.

Notebook: 01_data_and_preprocessing.ipynb
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Where notebooks put what they build (ignored by git).
RUNS = ROOT / "data" / "runs"
SAMPLE = ROOT / "data" / "sample"  # a link to the package data (pianolib/data/sample)
#: Seed of the notebooks' small corpus.
QUICK_SEED = 4


def full_mode() -> bool:
    """True when ``PIANOLIB_FULL=1``: notebooks then train on the whole default dataset."""
    return os.environ.get("PIANOLIB_FULL", "0") == "1"


def quick_corpus(minutes: float = 4.0, seed: int = QUICK_SEED) -> Path:
    """A small corpus (generated etudes + Bach chorales, 3 soundfonts), built once and cached.

    The seed is one whose hash split puts pieces in all three splits at this size.

    Notebook: 01_data_and_preprocessing.ipynb
    """
    from .datasets import build_corpus

    out = RUNS / f"quick-corpus-{minutes:g}min-seed{seed}"
    if not (out / "manifest.csv").is_file():
        build_corpus(out, hours=minutes / 60, max_seconds=25, seed=seed, force=True,
                     composers=("bach",), progress=False)
    return out


def default_corpus() -> Path:
    """The default dataset built by ``make data`` (``data/corpus``)."""
    return ROOT / "data" / "corpus"


def notebook_stats(path: str | Path) -> dict:
    """What a notebook offers a student: words of prose, code cells, key code, exercises.

    Notebook: all of them (``python -m pianolib.tutorial`` writes the series' table).

    Args:
        path: an ``.ipynb`` file.

    Returns:
        ``{"notebook", "words", "code_cells", "key_code_cells", "exercises", "audio_players"}``:
        words are counted in the Markdown cells (``\\w+``), exercises are solution cells (tagged
        ``solution``), audio players are ``Audio(`` calls in the code.
    """
    import json
    import re

    cells = json.loads(Path(path).read_text())["cells"]
    prose = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    code = [c for c in cells if c["cell_type"] == "code"]

    def tagged(tag: str) -> int:
        return sum(tag in c.get("metadata", {}).get("tags", []) for c in code)

    return {"notebook": Path(path).name, "words": len(re.findall(r"\w+", prose)),
            "code_cells": len(code), "key_code_cells": tagged("key-code"),
            "exercises": tagged("solution"),
            "audio_players": sum("".join(c["source"]).count("Audio(") for c in code)}


def time_notebook(path: str | Path) -> float:
    """Seconds nbval takes to run a notebook in quick mode, as CI runs it (a fresh process)."""
    import subprocess
    import sys
    import time

    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", str(path), "--nbval-lax", "-q",
                    "--nbval-sanitize-with", str(ROOT / "notebooks" / "sanitize.cfg"),
                    "-p", "no:cacheprovider"], check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """``python -m pianolib.tutorial [--no-time] [--force]``: the series' table.

    Writes ``data/bench/notebooks.{json,md}``: per notebook its words, code cells, key-code
    cells, exercises, audio players and (unless ``--no-time``) its quick-mode nbval run time on
    this machine. Run it on a quiet machine: the times are wall-clock.
    """
    import argparse

    from .files import check_writable, write_json, write_text

    parser = argparse.ArgumentParser(prog="python -m pianolib.tutorial", description=main.__doc__)
    parser.add_argument("--no-time", action="store_true", help="count only, do not run")
    parser.add_argument("--force", action="store_true", help="overwrite the table")
    args = parser.parse_args(argv)
    out = ROOT / "data" / "bench" / "notebooks"
    for suffix in (".json", ".md"):
        check_writable(out.with_suffix(suffix), force=args.force)
    rows = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        row = notebook_stats(path)
        if not args.no_time:
            row["quick_mode_s"] = round(time_notebook(path), 1)
        rows.append(row)
        print(row, flush=True)
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    total = {k: sum(r[k] for r in rows) for k in keys[1:]}
    lines.append("| all | " + " | ".join(f"{v:g}" for v in total.values()) + " |")
    write_json(out.with_suffix(".json"), rows, force=args.force)
    write_text(out.with_suffix(".md"), "\n".join(lines) + "\n", force=args.force)


if __name__ == "__main__":
    main()

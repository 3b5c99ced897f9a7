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

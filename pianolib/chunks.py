"""Cutting long feature/label arrays into fixed-length sequences, remembering where from.

Notebook: 01_data_and_preprocessing.ipynb
"""

from __future__ import annotations

import numpy as np

from .config import SEQ_LEN


def chunk_starts(n_frames: int, seq_len: int = SEQ_LEN) -> np.ndarray:
    """Start frames of the chunks that cover ``n_frames`` frames (the last one padded)."""
    return np.arange(0, max(int(n_frames), 1), seq_len)


def make_chunks(x: np.ndarray, seq_len: int = SEQ_LEN) -> np.ndarray:
    """Cut ``x`` of shape ``(frames, ...)`` into ``(n_chunks, seq_len, ...)``, zero-padding the end.

    Notebook: 01_data_and_preprocessing.ipynb
    """
    n = len(x)
    n_chunks = len(chunk_starts(n, seq_len))
    padded = np.zeros((n_chunks * seq_len,) + x.shape[1:], dtype=x.dtype)
    padded[:n] = x
    return padded.reshape((n_chunks, seq_len) + x.shape[1:])


def unchunk(chunks: np.ndarray, n_frames: int) -> np.ndarray:
    """Inverse of :func:`make_chunks`: glue chunks back and cut to ``n_frames``."""
    return chunks.reshape((-1,) + chunks.shape[2:])[:n_frames]


def chunk_index(piece_ids: list[str], n_frames: list[int], seq_len: int = SEQ_LEN) -> np.ndarray:
    """Where each chunk of a set of pieces comes from.

    Args:
        piece_ids: One id per piece.
        n_frames: Frames of each piece.
        seq_len: Chunk length.

    Returns:
        A structured array with fields ``piece`` (index into ``piece_ids``), ``start`` (frame)
        and ``time`` (seconds), one row per chunk, in piece order.
    """
    from .config import FPS

    starts = [chunk_starts(n, seq_len) for n in n_frames]
    idx = np.zeros(sum(len(s) for s in starts), dtype=[("piece", "i4"), ("start", "i8"),
                                                         ("time", "f8")])
    idx["piece"] = np.repeat(np.arange(len(piece_ids)), [len(s) for s in starts])
    idx["start"] = np.concatenate(starts) if starts else []
    idx["time"] = idx["start"] / FPS
    return idx

"""Loading and writing audio at the project's 16 kHz, mono.

Notebook: 01_data_and_preprocessing.ipynb
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from .config import SR
from .errors import AudioError
from .files import atomic_write


def load_audio(path: str | os.PathLike, sr: int = SR) -> np.ndarray:
    """Load an audio file as mono float32 at ``sr`` Hz, whatever its rate and channels.

    Reads wav/flac/ogg (and mp3 where libsndfile supports it) with soundfile; anything else
    libsndfile cannot read falls back to librosa/audioread (ffmpeg).

    Notebook: 01_data_and_preprocessing.ipynb

    Args:
        path: The audio file.
        sr: Target sample rate.

    Returns:
        A 1-D float32 array (may be empty for an empty file).

    Raises:
        AudioError: If the file is missing or is not readable audio.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")
    try:
        y, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
        y = y.mean(axis=1)
    except Exception as sf_exc:  # libsndfile cannot read it: try audioread/ffmpeg
        try:
            import librosa

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y, file_sr = librosa.load(str(path), sr=None, mono=True)
        except Exception:
            raise AudioError(f"{path}: not a readable audio file ({sf_exc})") from None
    y = np.asarray(y, dtype=np.float32)
    if file_sr != sr and y.size:
        import librosa

        y = librosa.resample(y, orig_sr=file_sr, target_sr=sr, res_type="soxr_hq")
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    return y.astype(np.float32, copy=False)


def write_audio(path: str | os.PathLike, y: np.ndarray, sr: int = SR, force: bool = False) -> Path:
    """Write mono audio atomically (wav or flac by the suffix), 16-bit PCM.

    Args:
        path: Output file.
        y: Mono float audio in [-1, 1] (clipped if outside).
        sr: Sample rate.
        force: Overwrite an existing file.

    Returns:
        The written path.
    """
    path = Path(path)
    with atomic_write(path, force) as tmp:
        sf.write(str(tmp), np.clip(y, -1.0, 1.0), sr, subtype="PCM_16")
    return path

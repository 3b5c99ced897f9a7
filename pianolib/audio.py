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


def check_audio_path(path: str | os.PathLike) -> Path:
    """Check that ``path`` can be an audio file before anything heavy happens.

    Notebook: 05_midi_merge.ipynb

    Raises:
        AudioError: Missing, a directory, unreadable by permissions, or 0 bytes.
    """
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, expected an audio file")
    if not path.exists():
        raise AudioError(f"{path}: audio file not found")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path}: permission denied")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes), not audio")
    return path


def check_audio(y, name: str = "audio") -> np.ndarray:
    """The one check of audio samples for every entry point (file or array).

    Notebook: 05_midi_merge.ipynb

    Args:
        y: Samples, mono (1-D).
        name: What to call the audio in messages (the file name).

    Returns:
        The samples as float32. Empty audio is allowed (it warns: the MIDI will be empty).

    Raises:
        AudioError: Not a 1-D array of numbers, or NaN/infinite samples.
    """
    try:
        y = np.asarray(y, dtype=np.float32)
    except (TypeError, ValueError):
        raise AudioError(f"{name}: not an array of audio samples") from None
    if y.ndim != 1:
        raise AudioError(f"{name}: expected mono samples (1-D), got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    if y.size == 0:
        warnings.warn(f"{name}: no audio samples; the transcription is empty", stacklevel=2)
    return y


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
        AudioError: If the file is missing, a directory, empty or not readable audio
            (:func:`check_audio_path`, :func:`check_audio`). A ``MemoryError`` is not hidden.
    """
    path = check_audio_path(path)
    try:
        y, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
        y = y.mean(axis=1)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as sf_exc:
        # libsndfile cannot read it: try audioread/ffmpeg
        import audioread
        import librosa

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y, file_sr = librosa.load(str(path), sr=None, mono=True)
        except (audioread.exceptions.DecodeError, audioread.exceptions.NoBackendError, EOFError,
                RuntimeError, ValueError, sf.LibsndfileError):
            raise AudioError(f"{path}: not a readable audio file ({sf_exc})") from None
    y = check_audio(y, str(path)) if len(y) else np.zeros(0, np.float32)
    if file_sr != sr and y.size:
        import librosa

        y = librosa.resample(y, orig_sr=file_sr, target_sr=sr, res_type="soxr_hq")
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

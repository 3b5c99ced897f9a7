"""The CQT input representation of the series, and how to scale it.

Notebook: 01_data_and_preprocessing.ipynb
"""

from __future__ import annotations

import numpy as np

from .config import BINS_PER_OCTAVE, HOP_LENGTH, MIN_MIDI, N_BINS, SR

#: Floor of the log-compressed CQT, in dB below the fixed reference.
DB_RANGE = 80.0
#: Fixed reference magnitude for the dB scale. Loud piano music peaks near it (the sample clips
#: reach 0.98-1.03 on the scaled axis); a full-scale pure sine peaks at about 21.7 (scaled 1.34).
DB_REF = 1.0

# librosa needs its filters to fit: pad very short signals up to this many samples first.
_MIN_SAMPLES = 2 * SR


def n_frames_for(num_samples: int) -> int:
    """Number of CQT frames for a signal of ``num_samples`` samples (centred frames).

    Frame ``i`` is centred on sample ``i * HOP_LENGTH``, i.e. at time ``i / FPS`` seconds.
    """
    return 1 + int(num_samples) // HOP_LENGTH


def cqt_input(y: np.ndarray) -> tuple[np.ndarray, int]:
    """The audio a CQT of the series is computed on, and how many frames to keep.

    Mono float32 only; a signal shorter than librosa's filters is zero-padded at the end
    (which leaves the first frames unchanged). Shared by :func:`cqt` and
    :func:`pianolib.fastcqt.fast_cqt`.

    Raises:
        ValueError: Not mono (1-D).
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"cqt expects mono audio (1-D), got shape {y.shape}")
    n_frames = n_frames_for(y.size) if y.size else 0
    if 0 < y.size < _MIN_SAMPLES:
        y = np.pad(y, (0, _MIN_SAMPLES - y.size))
    return y, n_frames


def _memoize_cqt_filters() -> None:
    """Keep librosa's CQT filter bank in memory between calls (same values, 2x faster).

    ``librosa.cqt`` rebuilds its per-octave FFT filter bases on every call (its own cache is a
    disk cache, off unless ``LIBROSA_CACHE_DIR`` is set); for the 20-s blocks of a long file
    that is half of the CQT's time. We wrap librosa's internal filter function with an
    in-memory cache keyed on its arguments and hand out copies (librosa scales the basis in
    place). The values are exactly librosa's (tested in ``tests/test_features.py``).
    A library of the field would be better; librosa has no public filter-bank reuse.
    """
    import librosa.core.constantq as cq

    name = "__vqt_filter_fft"
    original = cq.__dict__.get(name)
    if original is None or getattr(original, "_pianolib_memo", False):
        return
    memo: dict = {}

    def cached(sr, freqs, filter_scale, norm, sparsity, hop_length=None, window="hann",
               gamma=0.0, dtype=np.complex64, alpha=None):
        key = (float(sr), np.asarray(freqs).tobytes(), filter_scale, norm, sparsity,
               hop_length, str(window), gamma, np.dtype(dtype).str,
               None if alpha is None else np.asarray(alpha).tobytes())
        if key not in memo:
            memo[key] = original(sr, freqs, filter_scale, norm, sparsity, hop_length=hop_length,
                                 window=window, gamma=gamma, dtype=dtype, alpha=alpha)
        basis, n_fft, lengths = memo[key]
        return basis.copy(), n_fft, lengths

    cached._pianolib_memo = True
    cached._pianolib_original = original
    setattr(cq, name, cached)


def cqt(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """CQT magnitude exactly as the original series: A0, 264 bins, 36 bins/octave, hop 160.

    Notebook: 01_data_and_preprocessing.ipynb

    Args:
        y: Mono audio at ``sr`` (16 kHz).
        sr: Sample rate; must be 16 kHz for the trained models.

    Returns:
        Magnitudes of shape ``(frames, 264)``, float32, time first (the layout Keras wants).
        A signal shorter than one hop still gives one frame; an empty signal gives zero frames.
    """
    import librosa

    y, n_frames = cqt_input(y)
    if n_frames == 0:
        return np.zeros((0, N_BINS), dtype=np.float32)
    _memoize_cqt_filters()
    C = librosa.cqt(
        y,
        sr=sr,
        hop_length=HOP_LENGTH,
        fmin=librosa.midi_to_hz(MIN_MIDI),
        n_bins=N_BINS,
        bins_per_octave=BINS_PER_OCTAVE,
    )
    return np.abs(C).T[:n_frames].astype(np.float32)


def log_cqt(C: np.ndarray) -> np.ndarray:
    """Log-compress CQT magnitudes on a *fixed* dB scale, mapped to [0, ~1].

    ``0`` is 80 dB below the fixed reference (and anything quieter), ``1`` the reference level;
    louder bins go above 1 (nothing clips them).
    The scale does not depend on the file, so a quiet passage looks quiet in every file, and
    a chunk can be scaled without seeing the rest of the recording.

    Notebook: 01_data_and_preprocessing.ipynb

    Args:
        C: CQT magnitudes, any shape.

    Returns:
        Float32 array of the same shape.
    """
    db = 20.0 * np.log10(np.maximum(C, 1e-10) / DB_REF)
    return np.maximum((db + DB_RANGE) / DB_RANGE, 0.0).astype(np.float32)


def per_file_max_normalize(C: np.ndarray) -> np.ndarray:
    """The original series' scaling, ``X / np.max(X)`` per file: kept to show why it is a bug.

    One loud chord, a click or a dropped microphone sets the scale of the whole file: the same
    note played at the same loudness gets a different input value in two recordings, quiet
    pieces are blown up and loud ones squashed, and a streaming transcriber cannot know the
    maximum before the file ends. Use :func:`log_cqt` instead.

    Notebook: 01_data_and_preprocessing.ipynb
    """
    peak = float(np.max(C)) if C.size else 0.0
    return (C / peak).astype(np.float32) if peak > 0 else np.zeros_like(C, dtype=np.float32)


def compute_features(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """Model input: the log-compressed CQT, shape ``(frames, 264)``.

    Notebook: 01_data_and_preprocessing.ipynb
    """
    return log_cqt(cqt(y, sr))

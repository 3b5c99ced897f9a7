"""The series' CQT without importing librosa: librosa's own algorithm and filters, made fast.

Why not simply ``librosa.cqt`` (as :func:`pianolib.features.cqt` does for training and in the
notebooks)? Measured on a 5-minute file: importing librosa's CQT pulls in ``scipy.signal``
and numba-compiled helpers, 3.4 s of a 7-s transcription; and each call rebuilds the filter
bank. Here the same computation - librosa's recursive octave-by-octave CQT (Schoerkhuber and
Klapuri, 2010) with librosa's own filters - runs from a small file of precomputed filters
(``pianolib/data/cqt_filters.npz``, made by :func:`build_filters` with librosa and checked
against it in ``tests/test_fast_transcription.py``):

1. for each of the 8 octaves, from the top: frame the signal (centred, zero padding, no
   window, as librosa's ``stft(window="ones")``), FFT every frame, and multiply by the
   octave's 36 frequency-domain filters (a dense matrix product instead of librosa's sparse
   one - the same sums, with the zeros included);
2. halve the sample rate with soxr (HQ, scaled by sqrt 2: librosa's ``resample(scale=True)``)
   and the hop, while the hop is even;
3. stack the octaves, trim to the common number of frames, divide by the square root of the
   filter lengths.

The magnitudes equal librosa's within float32 rounding (relative 1e-5; the log features within
1e-4), so the trained models see the same input.

Notebook: 05_midi_merge.ipynb
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import BINS_PER_OCTAVE, HOP_LENGTH, MIN_MIDI, N_BINS, SR

#: Shipped filters (rebuilt by ``python -m pianolib fastcqt-filters`` if librosa changes).
FILTERS_PATH = Path(__file__).parent / "data" / "cqt_filters.npz"


def build_filters(path: str | Path | None = FILTERS_PATH) -> dict:
    """Librosa's CQT filter bank for the series' settings, octave by octave.

    Follows ``librosa.vqt`` for ``librosa.cqt(sr=16000, hop_length=160, fmin=A0, n_bins=264,
    bins_per_octave=36)`` (gamma 0, hann window, filter_scale 1, norm 1, sparsity 0.01) and
    saves the result to ``path`` (if not None).

    Returns:
        ``{"n_fft": (8,), "hop": (8,), "downsample": (8,), "basis_i": (bins, n_fft//2+1),
        "lengths": (264,)}``.
    """
    import librosa
    import librosa.core.constantq as cq
    from librosa import filters

    fmin = librosa.midi_to_hz(MIN_MIDI)
    freqs = librosa.interval_frequencies(n_bins=N_BINS, fmin=fmin, intervals="equal",
                                         bins_per_octave=BINS_PER_OCTAVE, sort=True)
    alpha = filters._relative_bandwidth(freqs=freqs)
    lengths, _ = filters.wavelet_lengths(freqs=freqs, sr=SR, window="hann", filter_scale=1,
                                         gamma=0, alpha=alpha)
    n_octaves = int(np.ceil(N_BINS / BINS_PER_OCTAVE))
    vqt_filter_fft = cq.__dict__["__vqt_filter_fft"]
    vqt_filter_fft = getattr(vqt_filter_fft, "_pianolib_original", vqt_filter_fft)
    out: dict = {"n_fft": [], "hop": [], "downsample": [], "lengths": lengths.astype(np.float64)}
    my_sr, my_hop = float(SR), HOP_LENGTH
    for i in range(n_octaves):
        sl = slice(-BINS_PER_OCTAVE, None) if i == 0 else slice(
            -BINS_PER_OCTAVE * (i + 1), -BINS_PER_OCTAVE * i)
        basis, n_fft, _ = vqt_filter_fft(my_sr, freqs[sl], 1, 1, 0.01, window="hann", gamma=0,
                                         dtype=np.complex64, alpha=alpha[sl])
        basis = basis.toarray() * np.sqrt(SR / my_sr)
        out[f"basis_{i}"] = basis.astype(np.complex64)
        out["n_fft"].append(int(n_fft))
        out["hop"].append(my_hop)
        down = my_hop % 2 == 0
        out["downsample"].append(down)
        if down:
            my_hop //= 2
            my_sr /= 2.0
    out = {k: np.asarray(v) for k, v in out.items()}
    if path is not None:
        from .files import atomic_write

        with atomic_write(Path(path), force=True) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **out)
    return out


class FastCQT:
    """The series' CQT magnitudes, ``(frames, 264)``, computed from precomputed filters.

    Notebook: 05_midi_merge.ipynb

    Args:
        path: The filters file (default: the shipped one; built with librosa if missing).
    """

    def __init__(self, path: str | Path = FILTERS_PATH):
        path = Path(path)
        data = dict(np.load(path)) if path.is_file() else build_filters(None)
        self.n_fft = [int(n) for n in data["n_fft"]]
        self.hop = [int(h) for h in data["hop"]]
        self.downsample = [bool(d) for d in data["downsample"]]
        # transposed, so that (frames, n_fft//2+1) @ (n_fft//2+1, bins) gives time first
        self.basis_t = [np.ascontiguousarray(data[f"basis_{i}"].T)
                        for i in range(len(self.n_fft))]
        self.scale = (1.0 / np.sqrt(data["lengths"])).astype(np.float32)

    @staticmethod
    def _octave_response(y: np.ndarray, n_fft: int, hop: int, basis_t: np.ndarray):
        """librosa's ``__cqt_response``: centred frames, zero padding, no window, FFT, filters."""
        import scipy.fft

        pad = n_fft // 2
        yp = np.zeros(len(y) + 2 * pad, np.float32)
        yp[pad: pad + len(y)] = y
        n_frames = 1 + (len(yp) - n_fft) // hop
        frames = np.lib.stride_tricks.as_strided(
            yp, shape=(n_frames, n_fft), strides=(hop * yp.strides[0], yp.strides[0]),
            writeable=False)
        spec = scipy.fft.rfft(frames, axis=-1)  # complex64 for float32 input
        return spec @ basis_t

    @staticmethod
    def _half_rate(y: np.ndarray) -> np.ndarray:
        """``librosa.resample(y, orig_sr=2, target_sr=1, res_type="soxr_hq", scale=True)``."""
        import soxr

        n = int(np.ceil(len(y) * 0.5))
        y_hat = soxr.resample(y, 2, 1, quality="soxr_hq")
        if len(y_hat) < n:
            y_hat = np.pad(y_hat, (0, n - len(y_hat)))
        y_hat = y_hat[:n] / np.sqrt(0.5)
        return np.asarray(y_hat, dtype=y.dtype)

    def __call__(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, np.float32)
        responses = []
        for i, (n_fft, hop) in enumerate(zip(self.n_fft, self.hop)):
            responses.append(self._octave_response(y, n_fft, hop, self.basis_t[i]))
            if self.downsample[i]:
                y = self._half_rate(y)
        n_frames = min(len(r) for r in responses)
        out = np.empty((n_frames, N_BINS), np.float32)
        end = N_BINS
        for r in responses:  # octaves from the top down, as librosa's __trim_stack
            n_oct = r.shape[1]
            take = min(n_oct, end)
            out[:, end - take: end] = np.abs(r[:n_frames, n_oct - take:])
            end -= take
        out *= self.scale
        return out


_SHARED: list = []


def fast_cqt(y: np.ndarray) -> np.ndarray:
    """CQT magnitudes like :func:`pianolib.features.cqt` (same shapes and padding rules).

    Notebook: 05_midi_merge.ipynb
    """
    from .features import cqt_input

    y, n_frames = cqt_input(y)
    if n_frames == 0:
        return np.zeros((0, N_BINS), dtype=np.float32)
    if not _SHARED:
        _SHARED.append(FastCQT())
    return _SHARED[0](y)[:n_frames]


def fast_features(y: np.ndarray) -> np.ndarray:
    """:func:`pianolib.features.compute_features` with :func:`fast_cqt`."""
    from .features import log_cqt

    return log_cqt(fast_cqt(y))

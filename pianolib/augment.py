"""Augmentation: change the score (tempo, key, dynamics) and make rendered audio sound recorded.

A soundfont rendering is dry, noiseless and perfectly level; a phone or a room microphone is
not. These transforms give the models a taste of real rooms and microphones.

Notebook: 01_data_and_preprocessing.ipynb
"""

from __future__ import annotations

import numpy as np

from .config import MAX_MIDI, MIN_MIDI, SR


def transform_notes(
    notes: np.ndarray,
    pedal: np.ndarray,
    rng: np.random.Generator,
    tempo_range: tuple[float, float] = (0.85, 1.15),
    max_transpose: int = 3,
    velocity_jitter: float = 8.0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Random tempo change, transposition (kept inside the piano) and per-note velocity jitter.

    Args:
        notes: Note list ``(n, 4)``.
        pedal: Pedal intervals ``(k, 2)``.
        rng: Random generator.
        tempo_range: Range of the tempo factor (> 1 is faster).
        max_transpose: Largest transposition in semitones, up or down.
        velocity_jitter: Standard deviation of the velocity change per note.

    Returns:
        ``(notes, pedal, info)`` with ``info = {"tempo": f, "transpose": k}``.
    """
    notes = np.array(notes, dtype=np.float64).reshape(-1, 4)
    tempo = float(rng.uniform(*tempo_range))
    lo, hi = (notes[:, 2].min(), notes[:, 2].max()) if len(notes) else (60, 60)
    k_lo = max(-max_transpose, int(MIN_MIDI - lo))
    k_hi = min(max_transpose, int(MAX_MIDI - hi))
    k = int(rng.integers(k_lo, k_hi + 1)) if k_hi >= k_lo else 0
    notes[:, :2] /= tempo
    notes[:, 2] += k
    notes[:, 3] = np.clip(notes[:, 3] + rng.normal(0, velocity_jitter, len(notes)), 1, 127)
    return notes, np.asarray(pedal, dtype=np.float64) / tempo, {"tempo": tempo, "transpose": k}


def impulse_response(rng: np.random.Generator, rt60: float, sr: int = SR) -> np.ndarray:
    """A synthetic room impulse response: exponentially decaying, low-passed noise."""
    from scipy.signal import lfilter

    n = int(rt60 * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    alpha = rng.uniform(0.2, 0.7)  # higher frequencies decay faster in real rooms
    tail = lfilter([1 - alpha], [1, -alpha], tail)
    ir = tail / np.sqrt(np.sum(tail**2))
    ir[0] = 1.0  # direct sound
    return ir.astype(np.float32)


def room_augment(y: np.ndarray, rng: np.random.Generator, sr: int = SR) -> tuple[np.ndarray, dict]:
    """Reverb, microphone colouration (tilt EQ), background noise and a random level.

    Args:
        y: Mono audio.
        rng: Random generator.
        sr: Sample rate.

    Returns:
        ``(audio, info)``; ``info`` records what was applied (for the manifest).
    """
    from scipy.signal import fftconvolve, lfilter

    info: dict = {}
    y = np.asarray(y, dtype=np.float64)
    if len(y) == 0:
        return y.astype(np.float32), info
    if rng.random() < 0.7:
        rt60 = float(rng.uniform(0.2, 1.2))
        wet = float(rng.uniform(0.05, 0.5))
        rev = fftconvolve(y, impulse_response(rng, rt60, sr))[: len(y)]
        y = (1 - wet) * y + wet * rev
        info.update(rt60=round(rt60, 2), wet=round(wet, 2))
    # tilt EQ: blend of a one-pole low-pass and its high-pass complement
    tilt = float(rng.uniform(-0.6, 0.6))
    a = float(rng.uniform(0.6, 0.95))
    low = lfilter([1 - a], [1, -a], y)
    y = y + tilt * (low - (y - low))
    info["tilt"] = round(tilt, 2)
    # level: peak at a random level from -30 to -1 dBFS
    peak = np.max(np.abs(y))
    level_db = float(rng.uniform(-30, -1))
    if peak > 0:
        y = y / peak * 10 ** (level_db / 20)
    info["level_db"] = round(level_db, 1)
    # noise: white or brown-ish, 25-60 dB below the signal's RMS
    rms = np.sqrt(np.mean(y**2)) + 1e-9
    snr = float(rng.uniform(25, 60))
    noise = rng.standard_normal(len(y))
    if rng.random() < 0.5:
        noise = lfilter([1], [1, -0.98], noise)
        noise /= np.std(noise) + 1e-9
    y = y + noise * rms * 10 ** (-snr / 20)
    info["snr_db"] = round(snr, 1)
    return np.clip(y, -1, 1).astype(np.float32), info

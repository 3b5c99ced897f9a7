"""Augmentation: change the score (tempo, key, dynamics) and make rendered audio sound recorded.

A soundfont rendering is dry, noiseless and perfectly level; a phone or a room microphone is
not. :func:`room_augment` gives the models a taste of real rooms and microphones with two
well-kept libraries: ``pyroomacoustics`` simulates the room (image-source impulse response of
a random shoebox room, source and microphone placed at a random distance) and Spotify's
``pedalboard`` plays the microphone and the recorder (convolution, filters and shelves for the
microphone's colour, a compressor like a phone's automatic gain, a late reverb tail, MP3
coding). Only the background noise is ours: neither library generates noise.

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


def room_impulse_response(rng: np.random.Generator, sr: int = SR) -> tuple[np.ndarray, dict]:
    """Impulse response of a random shoebox room, simulated with ``pyroomacoustics``.

    Room 3-15 m wide, reverberation time 0.15-1.0 s, microphone 0.3-5 m from the piano. The
    image-source order is capped at 12 (the late tail is added later by pedalboard's reverb),
    which keeps one response under 0.1 s to compute.

    Notebook: 01_data_and_preprocessing.ipynb
    """
    import pyroomacoustics as pra

    dims = np.array([rng.uniform(3, 15), rng.uniform(3, 12), rng.uniform(2.4, 5)])
    rt60 = float(rng.uniform(0.15, 1.0))
    try:
        e_abs, order = pra.inverse_sabine(rt60, dims)
    except ValueError:  # the room is too small for that reverberation time
        e_abs, order = 0.5, 6
    room = pra.ShoeBox(dims, fs=sr, materials=pra.Material(min(e_abs, 1.0)),
                       max_order=int(min(order, 12)))
    src = np.array([rng.uniform(0.5, dims[0] - 0.5), rng.uniform(0.5, dims[1] - 0.5), 1.0])
    dist = float(rng.uniform(0.3, 5.0))
    ang = rng.uniform(0, 2 * np.pi)
    mic = np.clip(src + [dist * np.cos(ang), dist * np.sin(ang), rng.uniform(0, 0.8)],
                  0.2, dims - 0.2)
    room.add_source(src)
    room.add_microphone(mic)
    room.compute_rir()
    ir = np.asarray(room.rir[0][0], dtype=np.float32)
    # start at the direct sound: the labels' times are when the keys were struck, and a
    # recording's clock starts when sound reaches the microphone
    ir = ir[max(int(np.argmax(np.abs(ir))) - 8, 0):]
    ir /= np.max(np.abs(ir)) + 1e-9
    return ir, {"rt60": round(rt60, 2), "mic_m": round(float(np.linalg.norm(mic - src)), 2)}


def room_augment(y: np.ndarray, rng: np.random.Generator, sr: int = SR) -> tuple[np.ndarray, dict]:
    """Make a dry rendering sound recorded: room, microphone, recorder, level and noise.

    Notebook: 01_data_and_preprocessing.ipynb

    Args:
        y: Mono audio.
        rng: Random generator.
        sr: Sample rate.

    Returns:
        ``(audio, info)``; ``info`` records what was applied (for the manifest).
    """
    import pedalboard as pb

    info: dict = {}
    y = np.asarray(y, dtype=np.float32)
    if len(y) == 0:
        return y, info
    peak_in = float(np.max(np.abs(y))) + 1e-9
    chain = []
    if rng.random() < 0.8:
        ir, room = room_impulse_response(rng, sr)
        chain.append(pb.Convolution(ir, mix=float(rng.uniform(0.5, 1.0)), sample_rate=sr))
        info.update(room)
        if rng.random() < 0.5:
            chain.append(pb.Reverb(room_size=float(rng.uniform(0.2, 0.9)),
                                   wet_level=float(rng.uniform(0.03, 0.2)), dry_level=1.0))
    # the microphone's colour: a low cut, two shelves and one resonance
    chain.append(pb.HighpassFilter(float(rng.uniform(20, 150))))
    lo, hi = float(rng.uniform(-8, 8)), float(rng.uniform(-10, 6))
    chain += [pb.LowShelfFilter(float(rng.uniform(100, 400)), lo),
              pb.HighShelfFilter(float(rng.uniform(2000, 5000)), hi),
              pb.PeakFilter(float(np.exp(rng.uniform(np.log(200), np.log(5000)))),
                            float(rng.uniform(-9, 9)), float(rng.uniform(0.5, 2.0)))]
    info.update(low_db=round(lo, 1), high_db=round(hi, 1))
    if rng.random() < 0.3:  # a phone's automatic gain control
        chain.append(pb.Compressor(float(rng.uniform(-35, -15)), float(rng.uniform(2, 8))))
        info["compressor"] = 1
    y = pb.Pedalboard(chain)(y / peak_in * 0.5, sr)
    if rng.random() < 0.2:  # lossy coding
        q = float(rng.uniform(2, 9))
        y = pb.MP3Compressor(q)(y, sr)
        info["mp3_q"] = round(q, 1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)[: len(y)]
    y = _level_and_noise(y, rng, info, snr_low=20.0)
    return np.clip(y, -1, 1).astype(np.float32), info


def _level_and_noise(y: np.ndarray, rng: np.random.Generator, info: dict,
                     snr_low: float) -> np.ndarray:
    """A random peak level (-30 to -1 dBFS), then white or brown noise ``snr_low``-60 dB down.

    The noise is ours: neither pyroomacoustics nor pedalboard generates noise.
    """
    from scipy.signal import lfilter

    peak = np.max(np.abs(y))
    level_db = float(rng.uniform(-30, -1))
    if peak > 0:
        y = y / peak * 10 ** (level_db / 20)
    info["level_db"] = round(level_db, 1)
    rms = np.sqrt(np.mean(y**2)) + 1e-9
    snr = float(rng.uniform(snr_low, 60))
    noise = rng.standard_normal(len(y))
    if rng.random() < 0.5:
        noise = lfilter([1], [1, -0.98], noise)
        noise /= np.std(noise) + 1e-9
    y = y + noise * rms * 10 ** (-snr / 20)
    info["snr_db"] = round(snr, 1)
    return y


# The hand-written version that room_augment replaced, kept for the ablation's baseline.


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


def synthetic_room_augment(y: np.ndarray, rng: np.random.Generator,
                           sr: int = SR) -> tuple[np.ndarray, dict]:
    """The first, hand-written augmentation: noise reverb, tilt EQ, noise and a random level.

    Kept only as the baseline arm of the ablation in the README (built with
    ``--room-kind synthetic``); :func:`room_augment` replaces it with pyroomacoustics and
    pedalboard.

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
    y = _level_and_noise(y, rng, info, snr_low=25.0)
    return np.clip(y, -1, 1).astype(np.float32), info


#: Room/microphone augmentations by name (``pianolib data --room-kind``).
ROOM_AUGMENTS = {"recorded": room_augment, "synthetic": synthetic_room_augment}

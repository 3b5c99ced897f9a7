import librosa
import numpy as np
import pytest
from conftest import sine

from pianolib.config import FPS, N_BINS
from pianolib.features import compute_features, cqt, log_cqt, n_frames_for, per_file_max_normalize


def test_cqt_matches_librosa_and_series_parameters():
    y = sine(440.0, 3.0)
    C = cqt(y)
    ref = np.abs(librosa.cqt(y, sr=16000, hop_length=160, fmin=librosa.midi_to_hz(21),
                             n_bins=264, bins_per_octave=36)).T
    assert C.shape == (n_frames_for(len(y)), N_BINS) == ref.shape == (301, 264)
    np.testing.assert_allclose(C, ref, rtol=1e-4, atol=1e-6)


def test_a4_lands_on_its_key_centre_bin():
    C = cqt(sine(440.0, 2.0))
    # key k (MIDI 21 + k) has its centre at bin 3k; A4 = MIDI 69 -> bin 144
    assert int(np.argmax(C[100])) == 3 * (69 - 21)


def test_frame_rate_is_100_per_second():
    assert FPS == 100
    assert cqt(np.zeros(16000 * 5, np.float32)).shape[0] == 501


@pytest.mark.parametrize("n, frames", [(0, 0), (1, 1), (100, 1), (160, 2), (3200, 21)])
def test_short_and_empty_audio(n, frames):
    C = cqt(sine(440, n / 16000) if n else np.zeros(0, np.float32))
    assert C.shape == (frames, 264)
    assert np.all(np.isfinite(C))


def test_short_audio_is_the_cqt_of_the_zero_padded_signal():
    y = sine(220, 0.2)
    padded = np.pad(y, (0, 16000 * 3 - len(y)))
    np.testing.assert_allclose(cqt(y), cqt(padded)[:21], atol=1e-5)


def test_silence_gives_zero_features():
    f = compute_features(np.zeros(16000, np.float32))
    assert f.shape == (101, 264) and f.max() == 0.0


def test_log_cqt_is_fixed_scale_unlike_per_file_max():
    y = sine(440, 1.0)
    loud, quiet = cqt(y), cqt(0.1 * y)
    # per-file max hides the 20 dB level difference entirely ...
    np.testing.assert_allclose(per_file_max_normalize(loud), per_file_max_normalize(quiet),
                               atol=1e-5)
    # ... the fixed dB scale keeps it: -20 dB is 20/80 lower at the peak bin
    diff = log_cqt(loud)[50].max() - log_cqt(quiet)[50].max()
    assert diff == pytest.approx(20 / 80, abs=0.01)
    # and a click elsewhere in the file does not change the scale of the note
    soft = 0.1 * y
    with_bang = soft.copy()
    with_bang[12000:13600] += sine(1000, 0.1, amp=0.9)  # a loud 0.1 s bang late in the file
    assert log_cqt(cqt(with_bang))[20, 144] == pytest.approx(log_cqt(cqt(soft))[20, 144],
                                                             abs=1e-3)
    assert per_file_max_normalize(cqt(with_bang))[20, 144] < 0.5 * per_file_max_normalize(
        cqt(soft))[20, 144]


def test_cqt_rejects_stereo():
    with pytest.raises(ValueError, match="mono"):
        cqt(np.zeros((2, 1000), np.float32))

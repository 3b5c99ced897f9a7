import numpy as np
import pytest
import soundfile as sf
from conftest import sine

from pianolib.audio import load_audio, write_audio
from pianolib.errors import AudioError, SynthError
from pianolib.features import cqt
from pianolib.synth import available_soundfonts, find_soundfont, render_notes


@pytest.mark.parametrize("fmt, sr, channels", [("wav", 44100, 2), ("flac", 22050, 1),
                                                ("ogg", 48000, 2), ("wav", 16000, 1)])
def test_load_any_rate_and_channels(tmp_path, fmt, sr, channels):
    y = sine(440, 1.0, sr=sr, amp=0.4)
    data = np.stack([y] * channels, 1) if channels > 1 else y
    path = tmp_path / f"x.{fmt}"
    sf.write(path, data, sr)
    out = load_audio(path)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - 16000) <= 16
    assert 0.3 < np.abs(out).max() < 0.5


def test_load_mp3(tmp_path):
    path = tmp_path / "x.mp3"
    try:
        sf.write(path, sine(440, 1.0, sr=44100), 44100, format="MP3")
    except Exception:
        pytest.skip("libsndfile without MP3 support")
    assert abs(len(load_audio(path)) - 16000) < 2000


def test_bad_audio_names_the_file(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    with pytest.raises(AudioError, match="notes.wav"):
        load_audio(bad)
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "missing.flac")


def test_write_audio_is_atomic_and_refuses_overwrite(tmp_path):
    path = write_audio(tmp_path / "a.wav", sine(100, 0.1))
    with pytest.raises(Exception, match="already exists"):
        write_audio(path, sine(100, 0.1))
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]


def test_all_three_debian_soundfonts_installed():
    assert available_soundfonts() == ["FluidR3_GM", "MuseScore_General", "TimGM6mb"]


@pytest.mark.parametrize("font", ["FluidR3_GM", "MuseScore_General", "TimGM6mb"])
def test_render_puts_energy_on_the_played_key(font):
    notes = np.array([[0.2, 1.2, 57, 100]])  # A3 = 220 Hz
    y = render_notes(notes, font)
    assert len(y) == pytest.approx(16000 * 2.2, abs=2)
    C = cqt(y)
    assert np.abs(y[:3000]).max() < 1e-3 < np.abs(y[3300:6000]).max()  # starts at 0.2 s
    assert int(np.argmax(C[60])) // 3 == 57 - 21


def test_render_with_pedal_sustains():
    notes = np.array([[0.1, 0.3, 60, 100]])
    dry = render_notes(notes, "FluidR3_GM")
    wet = render_notes(notes, "FluidR3_GM", pedal=np.array([[0.0, 2.0]]))
    seg = slice(int(1.0 * 16000), int(1.5 * 16000))
    assert np.abs(wet[seg]).mean() > 5 * np.abs(dry[seg]).mean()


def test_missing_soundfont_names_the_package(monkeypatch):
    import pianolib.synth as synth

    monkeypatch.setitem(synth.SOUNDFONTS, "TimGM6mb", ("timgm6mb-soundfont", ["/nope.sf2"]))
    with pytest.raises(SynthError, match="apt-get install timgm6mb-soundfont"):
        find_soundfont("TimGM6mb")
    with pytest.raises(SynthError, match="unknown soundfont"):
        find_soundfont("NoSuchFont")


def test_missing_fluidsynth_library_says_what_to_install(monkeypatch):
    import builtins

    import pianolib.synth as synth

    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name == "fluidsynth":
            raise ImportError("Couldn't find the FluidSynth library.")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(synth, "_SYNTHS", {})
    with pytest.raises(SynthError, match="apt-get install fluidsynth"):
        synth.get_synth("FluidR3_GM")

"""The listening widget: build it, move a slider programmatically, see notes and F1 change."""

import numpy as np
import pytest
from conftest import SAMPLE_DIR

from pianolib.transcribe import Transcriber
from pianolib.widgets import ListeningWidget, load_clips, side_by_side, wav_bytes


@pytest.fixture(scope="module")
def widget():
    return ListeningWidget(load_clips(SAMPLE_DIR), Transcriber())


def test_slider_change_redecodes_and_updates_the_displayed_f1(widget):
    calls = []
    original = widget.transcriber.probabilities
    widget.transcriber.probabilities = lambda f: calls.append(1) or original(f)
    notes_before, html_before = widget.notes.copy(), widget.scores_html.value
    audio_before = widget.player.value
    widget.onset.value = 0.95
    assert len(widget.notes) < len(notes_before)
    assert widget.scores_html.value != html_before
    assert f"{widget.scores['note_f1']:.3f}" in widget.scores_html.value
    assert widget.player.value != audio_before and widget.player.value[:4] == b"RIFF"
    widget.min_frames.value = 15
    assert np.all(widget.notes[:, 1] - widget.notes[:, 0] >= 0.15 - 1e-9)
    assert calls == []  # the models did not run again: cached probabilities
    widget.transcriber.probabilities = original


def test_clip_choice_and_stereo_mode(widget):
    names = list(widget.clips)
    widget.clip.value = names[1]
    assert str(len(widget.clips[names[1]]["notes"])) in widget.scores_html.value
    widget.mode.value = "lr"
    import io

    import soundfile as sf

    data, sr = sf.read(io.BytesIO(widget.player.value))
    assert data.ndim == 2 and data.shape[1] == 2 and sr == 16000


def test_audio_helpers():
    a, b = np.ones(100, np.float32), np.ones(50, np.float32)
    assert side_by_side(a, b, "lr").shape == (100, 2)
    assert len(side_by_side(a, b)) == 150 + 8000
    assert wav_bytes(np.zeros(10, np.float32))[:4] == b"RIFF"


def test_decoder_toggle_switches_between_the_two_rules_of_decode_py(widget):
    from pianolib.decode import decode_notes, decode_pedal, decode_series
    from pianolib.midi import apply_sustain

    tr = widget.transcriber
    probs = widget.predictions(widget.clip.value)
    velocity = probs.get("velocity") if widget.extras.value else None

    def expected(notes):  # what the widget adds after decoding (key releases -> sounding ends)
        if tr.sustain_from_pedal and "pedal" in probs:
            return apply_sustain(notes, decode_pedal(probs["pedal"], tr.pedal_threshold))
        return notes

    widget.decoder.value = "ours"
    widget.onset.value, widget.length.value, widget.min_frames.value = 0.6, 0.3, 5
    ours, html_ours = widget.notes.copy(), widget.scores_html.value
    assert np.array_equal(ours, expected(decode_notes(
        probs["onset"], probs["length"], 0.6, 0.3, 5, reonset=tr.reonset,
        velocity_prob=velocity, partial_onset=tr.partial_onset)))
    widget.decoder.value = "series"  # the series' rule with the series' thresholds
    assert (widget.onset.value, widget.length.value) == (0.5, 0.3)
    assert widget.min_frames.disabled
    series = widget.notes.copy()
    assert np.array_equal(series, expected(decode_series(
        probs["onset"], probs["length"], 0.5, 0.3, velocity_prob=velocity)))
    assert len(series) != len(ours)  # the two rules really differ on this clip
    assert widget.scores_html.value != html_ours
    assert f"<b>{len(series)} notes</b>" in widget.scores_html.value
    assert f"{widget.scores['note_f1']:.3f}" in widget.scores_html.value
    widget.onset.value = 0.7  # the sliders now move the series' rule
    assert np.array_equal(widget.notes, expected(decode_series(
        probs["onset"], probs["length"], 0.7, 0.3, velocity_prob=velocity)))
    widget.decoder.value = "ours"  # back: our settings and notes come back
    assert (widget.onset.value, widget.length.value, widget.min_frames.value) == (0.6, 0.3, 5)
    assert not widget.min_frames.disabled
    assert np.array_equal(widget.notes, ours)
    widget.decoder.value = "series"  # and the series' rule remembers its own 0.7
    assert widget.onset.value == 0.7
    widget.decoder.value = "ours"

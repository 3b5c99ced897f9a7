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

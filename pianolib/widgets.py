"""Listening and threshold widgets (ipywidgets 8): hear what the models hear and predict.

Notebook: 05_midi_merge.ipynb
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf

from .config import SR


def wav_bytes(y: np.ndarray, sr: int = SR) -> bytes:
    """Audio (mono ``(n,)`` or stereo ``(n, 2)``) as WAV bytes for an audio player.

    Notebook: 01_data_and_preprocessing.ipynb
    """
    buf = io.BytesIO()
    peak = float(np.max(np.abs(y))) if np.size(y) else 0.0
    sf.write(buf, (y / peak * 0.9) if peak > 0 else y, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def resynthesize(notes: np.ndarray, soundfont: str = "FluidR3_GM") -> np.ndarray:
    """Play a note list back on a piano soundfont (to *hear* a transcription).

    Notebook: 05_midi_merge.ipynb
    """
    from .synth import render_notes

    return render_notes(notes, soundfont)


def side_by_side(original: np.ndarray, transcription: np.ndarray, mode: str = "sequence"):
    """Original then transcription (``sequence``) or original left / transcription right (``lr``).

    Both are scaled to the same peak level first.
    """
    a = original / (np.max(np.abs(original)) + 1e-9)
    b = transcription / (np.max(np.abs(transcription)) + 1e-9)
    if mode == "lr":
        n = max(len(a), len(b))
        out = np.zeros((n, 2), np.float32)
        out[: len(a), 0], out[: len(b), 1] = a, b
        return out
    return np.concatenate([a, np.zeros(SR // 2, np.float32), b])


def load_clips(folder: str | Path, split: str | None = None, limit: int | None = None):
    """Clips of a dataset folder as dicts with ``name``, ``audio``, ``features``, ``notes``."""
    from .audio import load_audio
    from .datasets import load_items

    folder = Path(folder)
    items = load_items(folder, split)[:limit]
    return [{"name": it["item"], "audio": load_audio(folder / it["audio"]),
             "features": it["features"], "notes": it["notes"]} for it in items]


class ListeningWidget:
    """Choose a clip, hear original and transcription, move thresholds, see the F1 change.

    The models run once per clip; every slider move only re-decodes the cached probabilities
    (vectorised, milliseconds), then redraws the roll, the audio and the scores.

    Notebook: 05_midi_merge.ipynb

    Args:
        clips: From :func:`load_clips`.
        transcriber: A :class:`pianolib.transcribe.Transcriber`.
        soundfont: Soundfont for the resynthesis.
    """

    def __init__(self, clips: list[dict], transcriber, soundfont: str = "FluidR3_GM"):
        import ipywidgets as w

        self.clips = {c["name"]: c for c in clips}
        self.transcriber = transcriber
        self.soundfont = soundfont
        self._probs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.clip = w.Dropdown(options=list(self.clips), description="clip")
        self.onset = w.FloatSlider(value=transcriber.onset_threshold, min=0.05, max=0.95,
                                   step=0.05, description="onset ≥")
        self.length = w.FloatSlider(value=transcriber.length_threshold, min=0.05, max=0.95,
                                    step=0.05, description="length ≥")
        self.min_frames = w.IntSlider(value=transcriber.min_frames, min=1, max=20,
                                      description="min frames")
        self.mode = w.ToggleButtons(options=[("one after the other", "sequence"),
                                             ("left / right", "lr")], value="sequence")
        self.scores_html = w.HTML()
        self.plot = w.Output()
        self.player = w.Audio(value=b"", format="wav", autoplay=False)
        for ctl in (self.clip, self.onset, self.length, self.min_frames, self.mode):
            ctl.observe(lambda change: self.update(), names="value")
        self.box = w.VBox([
            w.HBox([self.clip, self.mode]),
            w.HBox([self.onset, self.length, self.min_frames]),
            self.scores_html, self.player, self.plot,
        ])
        self.notes = np.zeros((0, 4))
        self.scores: dict = {}
        self.update()

    def probabilities(self, name: str):
        """Cached model outputs of a clip."""
        if name not in self._probs:
            self._probs[name] = self.transcriber.probabilities(self.clips[name]["features"])
        return self._probs[name]

    def update(self) -> None:
        """Re-decode with the current slider values and refresh scores, audio and picture."""
        from .decode import decode_notes, notes_to_roll
        from .evaluate import evaluate_notes
        from .labels import notes_to_rolls
        from .plots import plot_comparison

        clip = self.clips[self.clip.value]
        onset_prob, length_prob = self.probabilities(self.clip.value)
        self.notes = decode_notes(onset_prob, length_prob, self.onset.value, self.length.value,
                                  self.min_frames.value)
        n = len(onset_prob)
        self.scores = evaluate_notes(clip["notes"], self.notes, n)
        s = self.scores
        self.scores_html.value = (
            f"<b>{len(self.notes)} notes</b> (truth {len(clip['notes'])}) &nbsp; "
            f"note F1 <b>{s['note_f1']:.3f}</b> &nbsp; note-with-offset F1 "
            f"<b>{s['note_offset_f1']:.3f}</b> &nbsp; frame F1 <b>{s['frame_f1']:.3f}</b>")
        audio = side_by_side(clip["audio"], resynthesize(self.notes, self.soundfont)
                             if len(self.notes) else np.zeros(SR, np.float32), self.mode.value)
        self.player.value = wav_bytes(audio)
        self.plot.clear_output(wait=True)
        with self.plot:
            fig, ax = plt.subplots(figsize=(11, 3.5))
            plot_comparison(notes_to_rolls(clip["notes"], n)[1], notes_to_roll(self.notes, n),
                            ax=ax, title=f"{self.clip.value}: green correct, red missed, "
                                         "blue extra")
            plt.show()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.box)

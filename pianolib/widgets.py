"""Listening and threshold widgets (ipywidgets 8): hear what the models hear and predict.

Notebooks: 05_midi_merge.ipynb, 07_velocity_and_pedal.ipynb
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf

from .config import FPS, SR


def wav_bytes(y: np.ndarray, sr: int = SR) -> bytes:
    """Audio (mono ``(n,)`` or stereo ``(n, 2)``) as WAV bytes for an audio player.

    Notebook: 01_data_and_preprocessing.ipynb
    """
    buf = io.BytesIO()
    peak = float(np.max(np.abs(y))) if np.size(y) else 0.0
    sf.write(buf, (y / peak * 0.9) if peak > 0 else y, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def resynthesize(notes: np.ndarray, soundfont: str = "FluidR3_GM",
                 pedal: np.ndarray | None = None) -> np.ndarray:
    """Play a note list (with its velocities, and the sustain pedal if given) on a soundfont.

    Notebooks: 05_midi_merge.ipynb, 07_velocity_and_pedal.ipynb
    """
    from .synth import render_notes

    return render_notes(notes, soundfont, pedal if pedal is not None else np.zeros((0, 2)))


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
    """Clips of a dataset folder as dicts with ``name``, ``audio``, ``features``, ``notes``
    and ``pedal`` (down/up seconds from the item's MIDI; None where labels carry no pedal)."""
    from .audio import load_audio
    from .datasets import load_items
    from .midi import load_midi, pedal_intervals
    from .train import has_pedal_labels

    folder = Path(folder)
    items = load_items(folder, split)[:limit]
    return [{"name": it["item"], "audio": load_audio(folder / it["audio"]),
             "features": it["features"], "notes": it["notes"],
             "pedal": pedal_intervals(load_midi(folder / it["midi"]))
             if has_pedal_labels(it) and it.get("midi") else None} for it in items]


def decoder_settings(transcriber) -> dict[str, tuple[float, float, int]]:
    """Starting ``(onset, length, min_frames)`` of each decoder in :class:`ListeningWidget`.

    The transcriber's own settings for its decoder; for the other one, the series' thresholds
    (the defaults of :func:`~pianolib.decode.decode_series`: onset 0.5, length 0.3) or our
    tuned ones (``decoder.json`` of the transcriber's model folder, then the defaults).

    Notebook: 05_midi_merge.ipynb
    """
    import inspect

    from .decode import decode_series
    from .transcribe import DECODER_DEFAULTS, read_decoder_json

    own = (transcriber.onset_threshold, transcriber.length_threshold, transcriber.min_frames)
    series = inspect.signature(decode_series).parameters
    tuned = {**DECODER_DEFAULTS, **read_decoder_json(Path(transcriber.model_dir) /
                                                       "decoder.json")}
    settings = {
        "series": (series["onset_threshold"].default, series["length_threshold"].default,
                   transcriber.min_frames),
        "ours": (tuned["onset_threshold"], tuned["length_threshold"], tuned["min_frames"]),
    }
    settings[transcriber.decoder] = own
    return settings


class ListeningWidget:
    """Choose a clip, hear original and transcription, move thresholds, see the F1 change.

    The models run once per clip; every slider move only re-decodes the cached probabilities
    (vectorised, milliseconds), then redraws the roll, the audio and the scores. The
    "decoder" buttons switch between our rule (:func:`~pianolib.decode.decode_notes`) and the
    series' rule (:func:`~pianolib.decode.decode_series`); each keeps its own slider values,
    and the series' rule starts from the series' thresholds (onset 0.5, length 0.3; it has no
    minimum length, so that slider is disabled while it is chosen). With a
    Velocity and a Pedal model (notebook 07) the transcription plays with its predicted
    velocities and sustain pedal, and the pedal is drawn under the piano roll beside the
    truth; the "velocity & pedal" box switches them off to hear the difference.

    Notebooks: 05_midi_merge.ipynb, 07_velocity_and_pedal.ipynb

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
        self._probs: dict[str, dict[str, np.ndarray]] = {}
        self._settings = decoder_settings(transcriber)
        onset, length, min_frames = self._settings[transcriber.decoder]
        self.clip = w.Dropdown(options=list(self.clips), description="clip")
        self.decoder = w.ToggleButtons(options=[("ours", "ours"), ("series'", "series")],
                                       value=transcriber.decoder, description="decoder")
        self.onset = w.FloatSlider(value=onset, min=0.05, max=0.95, step=0.05,
                                   description="onset ≥")
        self.length = w.FloatSlider(value=length, min=0.05, max=0.95, step=0.05,
                                    description="length ≥")
        self.min_frames = w.IntSlider(value=min_frames, min=1, max=20,
                                      description="min frames",
                                      disabled=transcriber.decoder == "series")
        self.mode = w.ToggleButtons(options=[("one after the other", "sequence"),
                                             ("left / right", "lr")], value="sequence")
        self.extras = w.Checkbox(value=True, description="velocity & pedal")
        self.scores_html = w.HTML()
        self.plot = w.Output()
        self.player = w.Audio(value=b"", format="wav", autoplay=False)
        self._quiet = False  # True while the decoder switch sets several sliders at once
        for ctl in (self.clip, self.onset, self.length, self.min_frames, self.mode,
                    self.extras):
            ctl.observe(lambda change: None if self._quiet else self.update(), names="value")
        self.decoder.observe(self._switch_decoder, names="value")
        self.box = w.VBox([
            w.HBox([self.clip, self.mode, self.extras]),
            self.decoder,
            w.HBox([self.onset, self.length, self.min_frames]),
            self.scores_html, self.player, self.plot,
        ])
        self.notes = np.zeros((0, 4))
        self.pedal: np.ndarray | None = None
        self.scores: dict = {}
        self.update()

    def _switch_decoder(self, change) -> None:
        """Keep the old decoder's slider values, restore the new one's, then re-decode once."""
        self._settings[change["old"]] = (self.onset.value, self.length.value,
                                         self.min_frames.value)
        self._quiet = True
        try:
            self.onset.value, self.length.value, self.min_frames.value = \
                self._settings[change["new"]]
        finally:
            self._quiet = False
        self.min_frames.disabled = change["new"] == "series"
        self.update()

    def predictions(self, name: str) -> dict[str, np.ndarray]:
        """Cached model outputs of a clip (:meth:`~pianolib.transcribe.Transcriber.predict`)."""
        if name not in self._probs:
            self._probs[name] = self.transcriber.predict(self.clips[name]["features"])
        return self._probs[name]

    def probabilities(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Cached onset and length probabilities of a clip."""
        p = self.predictions(name)
        return p["onset"], p["length"]

    def update(self) -> None:
        """Re-decode with the current slider values and refresh scores, audio and picture."""
        from .decode import decode_notes, decode_pedal, decode_series, notes_to_roll
        from .evaluate import evaluate_notes
        from .labels import notes_to_rolls, pedal_roll
        from .midi import apply_sustain
        from .plots import plot_comparison

        clip = self.clips[self.clip.value]
        probs = self.predictions(self.clip.value)
        onset_prob, length_prob = probs["onset"], probs["length"]
        extras = self.extras.value
        velocity_prob = probs.get("velocity") if extras else None
        if self.decoder.value == "series":
            self.notes = decode_series(onset_prob, length_prob, self.onset.value,
                                       self.length.value, velocity_prob=velocity_prob)
        else:
            self.notes = decode_notes(onset_prob, length_prob, self.onset.value,
                                      self.length.value, self.min_frames.value,
                                      reonset=self.transcriber.reonset,
                                      velocity_prob=velocity_prob,
                                      partial_onset=self.transcriber.partial_onset)
        pedal = (decode_pedal(probs["pedal"], self.transcriber.pedal_threshold)
                 if "pedal" in probs else None)
        if pedal is not None and self.transcriber.sustain_from_pedal:
            self.notes = apply_sustain(self.notes, pedal)  # key releases -> sounding ends
        self.pedal = pedal if extras else None
        n = len(onset_prob)
        self.scores = evaluate_notes(clip["notes"], self.notes, n)
        s = self.scores
        rule = "our rule" if self.decoder.value == "ours" else "the series' rule"
        self.scores_html.value = (
            f"{rule}: <b>{len(self.notes)} notes</b> (truth {len(clip['notes'])}) &nbsp; "
            f"note F1 <b>{s['note_f1']:.3f}</b> &nbsp; note-with-offset F1 "
            f"<b>{s['note_offset_f1']:.3f}</b> &nbsp; frame F1 <b>{s['frame_f1']:.3f}</b>")
        audio = side_by_side(clip["audio"], resynthesize(self.notes, self.soundfont, self.pedal)
                             if len(self.notes) else np.zeros(SR, np.float32), self.mode.value)
        self.player.value = wav_bytes(audio)
        self.plot.clear_output(wait=True)
        with self.plot:
            if self.pedal is None:
                fig, ax = plt.subplots(figsize=(11, 3.5))
            else:
                fig, (ax, pax) = plt.subplots(2, 1, figsize=(11, 4.3), sharex=True,
                                              gridspec_kw={"height_ratios": [5, 1]})
            plot_comparison(notes_to_rolls(clip["notes"], n)[1], notes_to_roll(self.notes, n),
                            ax=ax, title=f"{self.clip.value}: green correct, red missed, "
                                         "blue extra")
            if self.pedal is not None:
                t = np.arange(n) / FPS
                pax.fill_between(t, 0, pedal_roll(self.pedal, n)[:, 0], color="#36c", alpha=0.6,
                                 step="post", label="predicted pedal")
                if clip.get("pedal") is not None:
                    pax.step(t, pedal_roll(clip["pedal"], n)[:, 0] * 0.9, "k", where="post",
                             lw=1, label="true pedal")
                pax.set(yticks=[], ylabel="pedal", xlabel="time (s)")
                pax.legend(loc="upper right", fontsize=7)
            plt.show()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.box)

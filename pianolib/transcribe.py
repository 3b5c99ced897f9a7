"""From an audio file to a MIDI file with the trained Onset and Length models.

Notebook: 05_midi_merge.ipynb
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import load_audio
from .config import HOP_LENGTH, N_BINS, N_KEYS, SR
from .decode import decode_notes, decode_series
from .errors import PianolibError
from .features import compute_features, n_frames_for
from .midi import notes_to_midi, write_midi


def package_data(name: str) -> Path:
    """A folder of the package data (``models``, ``sample``), found with importlib.resources.

    It works from a source checkout (where ``data/models`` and ``data/sample`` are links to
    these folders) and from any ``pip install``, editable or not.
    """
    from importlib.resources import files

    return Path(str(files("pianolib").joinpath("data", name)))


#: Folder of the shipped models (``onset.keras``, ``length.keras``, ``decoder.json``).
DEFAULT_MODELS = package_data("models")
#: The sample clips (a tiny dataset folder), for demos, tests and speed measurements.
SAMPLE_DIR = package_data("sample")
SAMPLE_AUDIO = sorted((SAMPLE_DIR / "audio").glob("*.flac"))

#: Frames per inference window and frames of context discarded on each side of it.
WINDOW = 1000
CONTEXT = 50
#: Seconds of audio per CQT block, and of context on each side (longer than the A0 filter).
BLOCK_SECONDS = 20.0
BLOCK_CONTEXT = 2.0


def features_in_blocks(y: np.ndarray, block_seconds: float = BLOCK_SECONDS) -> np.ndarray:
    """Log-CQT of long audio computed block by block (bounded memory, same result).

    Each block is computed with :data:`BLOCK_CONTEXT` seconds of audio on both sides, longer
    than half the longest CQT filter, and only its own frames are kept.

    Notebook: 05_midi_merge.ipynb
    """
    n_frames = n_frames_for(len(y)) if len(y) else 0
    block = int(block_seconds * SR) // HOP_LENGTH * HOP_LENGTH
    ctx = int(BLOCK_CONTEXT * SR) // HOP_LENGTH * HOP_LENGTH
    if len(y) <= block + ctx:
        return compute_features(y)
    out = np.empty((n_frames, N_BINS), dtype=np.float32)
    for start in range(0, len(y), block):
        lo = max(start - ctx, 0)
        seg = y[lo: start + block + ctx]
        f = compute_features(seg)
        first = (start - lo) // HOP_LENGTH
        f0 = start // HOP_LENGTH
        count = min(block // HOP_LENGTH, n_frames - f0)
        out[f0: f0 + count] = f[first: first + count]
    return out


def predict_windows(model, features: np.ndarray, window: int = WINDOW, context: int = CONTEXT,
                    batch_size: int = 2) -> np.ndarray:
    """Run a model over a whole recording in fixed-length, overlapping windows.

    Every call sees the same window length (``window + 2 * context`` frames), which bounds
    memory and keeps results independent of the file's length. Each window keeps only its
    central ``window`` frames, so every kept frame has ``context`` frames on both sides.

    Notebook: 05_midi_merge.ipynb

    Args:
        model: A Keras model ``(b, T, 264) -> (b, T, 88)``.
        features: ``(frames, 264)``.
        window: Frames kept per window.
        context: Frames of context on each side.
        batch_size: Windows per model call.

    Returns:
        ``(frames, 88)`` float32 probabilities.
    """
    from .models import inference_function

    n = len(features)
    if n == 0:
        return np.zeros((0, N_KEYS), np.float32)
    infer = inference_function(model)
    n_win = -(-n // window)
    padded = np.zeros((n_win * window + 2 * context, features.shape[1]), np.float32)
    padded[context: context + n] = features
    span = window + 2 * context
    idx = np.arange(n_win)[:, None] * window + np.arange(span)[None, :]
    out = np.empty((n_win, window, N_KEYS), np.float32)
    for b in range(0, n_win, batch_size):
        x = padded[idx[b: b + batch_size]]
        if len(x) < batch_size:  # keep the batch shape fixed too
            x = np.concatenate([x, np.zeros((batch_size - len(x),) + x.shape[1:], x.dtype)])
        pred = infer(x).numpy()
        out[b: b + batch_size] = pred[: min(batch_size, n_win - b), context: context + window]
    return out.reshape(-1, N_KEYS)[:n]


#: Decoder settings used when neither the caller nor ``decoder.json`` gives one.
DECODER_DEFAULTS = {"onset_threshold": 0.5, "length_threshold": 0.3, "min_frames": 3,
                    "decoder": "ours", "reonset": False}


def read_decoder_json(path: Path) -> dict:
    """The decoder settings of a ``decoder.json``, checked (empty if the file is absent).

    Notebook: 05_midi_merge.ipynb

    Raises:
        PianolibError: Not JSON, or a setting of the wrong type or out of range.
    """
    import json

    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PianolibError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PianolibError(f"{path}: expected a JSON object of decoder settings")
    out = {}
    for k in ("onset_threshold", "length_threshold"):
        if k in data:
            v = data[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
                raise PianolibError(f"{path}: {k} must be a number between 0 and 1, got {v!r}")
            out[k] = float(v)
    if "min_frames" in data:
        v = data["min_frames"]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise PianolibError(f"{path}: min_frames must be a whole number >= 0, got {v!r}")
        out["min_frames"] = v
    if "reonset" in data:
        if not isinstance(data["reonset"], bool):
            raise PianolibError(f"{path}: reonset must be true or false, got {data['reonset']!r}")
        out["reonset"] = data["reonset"]
    if "decoder" in data:
        if data["decoder"] not in ("ours", "series"):
            raise PianolibError(f"{path}: decoder must be 'ours' or 'series', "
                                f"got {data['decoder']!r}")
        out["decoder"] = data["decoder"]
    return out


@dataclass
class Transcriber:
    """The Onset and Length models, loaded once, with the decoder settings.

    Notebook: 05_midi_merge.ipynb

    Attributes:
        model_dir: Folder with ``onset.keras`` and ``length.keras``.
        onset_threshold, length_threshold, min_frames: Decoder settings.
        decoder: ``"ours"`` (:func:`decode_notes`) or ``"series"`` (:func:`decode_series`).
        reonset: Use the re-onset rule of :func:`decode_notes`.

    Settings given explicitly win; the others come from ``decoder.json`` in ``model_dir``
    (tuned on the validation split), then from :data:`DECODER_DEFAULTS`.
    """

    model_dir: Path = DEFAULT_MODELS
    onset_threshold: float | None = None
    length_threshold: float | None = None
    min_frames: int | None = None
    decoder: str | None = None
    reonset: bool | None = None
    onset_model: object = field(default=None, repr=False)
    length_model: object = field(default=None, repr=False)

    def __post_init__(self):
        self.model_dir = Path(self.model_dir)
        for name, model in (("onset", self.onset_model), ("length", self.length_model)):
            path = self.model_dir / f"{name}.keras"
            if model is None and not path.is_file():  # checked before Keras is imported
                raise PianolibError(f"{path}: model file not found (train one with "
                                    "`python -m pianolib train` or use the shipped models)")
        from .models import load_model

        if self.onset_model is None:
            self.onset_model = load_model(self.model_dir / "onset.keras")
        if self.length_model is None:
            self.length_model = load_model(self.model_dir / "length.keras")
        self._settings()

    def _settings(self) -> None:
        """Fill the settings not given explicitly: ``decoder.json`` first, then the defaults."""
        tuned = read_decoder_json(self.model_dir / "decoder.json")
        for k, default in DECODER_DEFAULTS.items():
            if getattr(self, k) is None:
                setattr(self, k, tuned.get(k, default))

    def use_decoder(self, decoder: str) -> None:
        """Switch decoder; ``"series"`` also restores the series' thresholds (0.5 / 0.3)."""
        self.decoder = decoder
        if decoder == "series":
            self.onset_threshold, self.length_threshold = 0.5, 0.3

    def probabilities(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(onset_prob, length_prob)``, each ``(frames, 88)``."""
        return (predict_windows(self.onset_model, features),
                predict_windows(self.length_model, features))

    def decode(self, onset_prob: np.ndarray, length_prob: np.ndarray) -> np.ndarray:
        """Notes from probabilities with this transcriber's decoder settings."""
        if self.decoder == "series":
            return decode_series(onset_prob, length_prob, self.onset_threshold,
                                 self.length_threshold)
        return decode_notes(onset_prob, length_prob, self.onset_threshold,
                            self.length_threshold, self.min_frames, reonset=self.reonset)

    def transcribe_audio(self, y: np.ndarray) -> np.ndarray:
        """Note list of mono 16 kHz audio (checked by :func:`pianolib.audio.check_audio`)."""
        from .audio import check_audio
        from .midi import empty_notes

        y = check_audio(y)
        if y.size == 0:
            return empty_notes()
        return self.decode(*self.probabilities(features_in_blocks(y)))

    def transcribe_file(self, path: str | os.PathLike) -> np.ndarray:
        """Note list of an audio file (any format, rate and channel count)."""
        return self.transcribe_audio(load_audio(path))


def transcribe(audio_path: str | os.PathLike, midi_path: str | os.PathLike,
               model_dir: str | os.PathLike = DEFAULT_MODELS, force: bool = False,
               transcriber: Transcriber | None = None) -> np.ndarray:
    """Transcribe ``audio_path`` and write the notes to ``midi_path`` (atomically).

    Notebook: 05_midi_merge.ipynb

    Raises:
        PianolibError: Unreadable audio, missing model, or an output that exists (without
            ``force``) or cannot be written - checked before any work is done.
    """
    from .audio import check_audio_path
    from .files import check_writable

    check_writable(midi_path, force)
    y = load_audio(check_audio_path(audio_path))  # a bad file is refused before models load
    transcriber = transcriber or Transcriber(Path(model_dir))
    notes = transcriber.transcribe_audio(y)
    write_midi(notes_to_midi(notes), midi_path, force=force)
    return notes

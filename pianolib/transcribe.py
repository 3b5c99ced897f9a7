"""From an audio file to a MIDI file with the trained Onset and Length models.

Notebook: 05_midi_merge.ipynb
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import load_audio
from .config import HOP_LENGTH, N_KEYS, SR
from .decode import decode_notes, decode_series
from .errors import PianolibError
from .features import compute_features, n_frames_for
from .midi import notes_to_midi, write_midi

#: Folder of the shipped models (``onset.keras``, ``length.keras``).
DEFAULT_MODELS = Path(__file__).resolve().parent.parent / "data" / "models"

#: The committed sample clips (for demos, tests and speed measurements).
SAMPLE_AUDIO = sorted((DEFAULT_MODELS.parent / "sample" / "audio").glob("*.flac"))

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
    out = np.empty((n_frames, 264), dtype=np.float32)
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


@dataclass
class Transcriber:
    """The Onset and Length models, loaded once, with the decoder settings.

    Notebook: 05_midi_merge.ipynb

    Attributes:
        model_dir: Folder with ``onset.keras`` and ``length.keras``.
        onset_threshold, length_threshold, min_frames: Decoder settings.
        decoder: ``"ours"`` (:func:`decode_notes`) or ``"series"`` (:func:`decode_series`).
    """

    model_dir: Path = DEFAULT_MODELS
    onset_threshold: float = 0.5
    length_threshold: float = 0.3
    min_frames: int = 3
    decoder: str = "ours"
    onset_model: object = field(default=None, repr=False)
    length_model: object = field(default=None, repr=False)

    def __post_init__(self):
        from .models import load_model

        self.model_dir = Path(self.model_dir)
        if self.onset_model is None:
            self.onset_model = load_model(self.model_dir / "onset.keras")
        if self.length_model is None:
            self.length_model = load_model(self.model_dir / "length.keras")
        self._settings()

    def _settings(self) -> None:
        path = self.model_dir / "decoder.json"
        if path.is_file():  # thresholds tuned on the validation split, written by training
            import json

            for k, v in json.loads(path.read_text()).items():
                if k in ("onset_threshold", "length_threshold", "min_frames", "decoder"):
                    setattr(self, k, v)

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
                            self.length_threshold, self.min_frames)

    def transcribe_audio(self, y: np.ndarray) -> np.ndarray:
        """Note list of mono 16 kHz audio."""
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
    from .files import check_writable

    check_writable(midi_path, force)
    if not Path(audio_path).is_file():
        raise PianolibError(f"{audio_path}: audio file not found")
    transcriber = transcriber or Transcriber(Path(model_dir))
    notes = transcriber.transcribe_file(audio_path)
    write_midi(notes_to_midi(notes), midi_path, force=force)
    return notes

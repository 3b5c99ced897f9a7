"""From an audio file to a MIDI file with the trained Onset and Length models.

Notebook: 05_midi_merge.ipynb
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import N_BINS
from .decode import decode_notes, decode_pedal, decode_series
from .errors import PianolibError
from .midi import notes_to_midi, write_midi
from .stream import (  # noqa: F401
    BLOCK_CONTEXT,
    BLOCK_SECONDS,
    CONTEXT,
    WINDOW,
    audio_blocks,
    expected_frames,
    feature_blocks,
    predict_stream,
    prefetch,
    probe_audio,
)


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



def features_in_blocks(y: np.ndarray, block_seconds: float = BLOCK_SECONDS,
                       transform=None) -> np.ndarray:
    """Log-CQT of long audio computed block by block (bounded memory, same result).

    Each block is computed with :data:`BLOCK_CONTEXT` seconds of audio on both sides, longer
    than half the longest CQT filter, and only its own frames are kept
    (:func:`pianolib.stream.feature_blocks` does the work, also for audio read from a file;
    ``transform`` as there: the fast CQT by default).

    Notebook: 05_midi_merge.ipynb
    """
    parts = list(feature_blocks([np.asarray(y, np.float32)], block_seconds, transform))
    return np.concatenate(parts) if parts else np.zeros((0, N_BINS), np.float32)


def keras_inference(*models) -> "callable":
    """``x -> [model(x) for model in models]`` with each model's compiled inference function."""
    from .models import inference_function

    fns = [inference_function(m) for m in models]
    return lambda x: [fn(x).numpy() for fn in fns]


def predict_windows(model, features: np.ndarray, window: int = WINDOW, context: int = CONTEXT,
                    batch_size: int = 2) -> np.ndarray:
    """Run a model over a whole recording in fixed-length, overlapping windows.

    Every call sees the same window length (``window + 2 * context`` frames), which bounds
    memory and keeps results independent of the file's length. Each window keeps only its
    central ``window`` frames, so every kept frame has ``context`` frames on both sides
    (:func:`pianolib.stream.predict_stream` does the work).

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
    return predict_stream(keras_inference(model), [features], 1, window, context, batch_size,
                          expected_frames=len(features))[0]


#: Windows per model call: 4 windows of 1100 frames run ~10 % faster per window than 1 or 2
#: in ONNX Runtime on 2 cores (measured), and keep memory small.
WINDOWS_PER_CALL = 4

#: Decoder settings used when neither the caller nor ``decoder.json`` gives one.
DECODER_DEFAULTS = {"onset_threshold": 0.5, "length_threshold": 0.3, "min_frames": 3,
                    "decoder": "ours", "reonset": False, "length_labels": "sounding",
                    "pedal_threshold": 0.5, "note_ends": "sounding", "partial_onset": 0.0}


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
    if "partial_onset" in data:
        v = data["partial_onset"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise PianolibError(f"{path}: partial_onset must be a number from 0 to below 1, "
                                f"got {v!r}")
        out["partial_onset"] = float(v)
    for k in ("onset_threshold", "length_threshold", "pedal_threshold"):
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
    if "note_ends" in data:
        if data["note_ends"] not in ("sounding", "key"):
            raise PianolibError(f"{path}: note_ends must be 'sounding' or 'key', "
                                f"got {data['note_ends']!r}")
        out["note_ends"] = data["note_ends"]
    if "length_labels" in data:
        if data["length_labels"] not in ("sounding", "key"):
            raise PianolibError(f"{path}: length_labels must be 'sounding' or 'key', "
                                f"got {data['length_labels']!r}")
        out["length_labels"] = data["length_labels"]
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
        model_dir: Folder with ``transcriber.onnx`` and/or ``onset.keras`` + ``length.keras``.
        onset_threshold, length_threshold, min_frames: Decoder settings.
        decoder: ``"ours"`` (:func:`decode_notes`) or ``"series"`` (:func:`decode_series`).
        reonset: Use the re-onset rule of :func:`decode_notes`.
        runtime: ``"onnx"`` (ONNX Runtime, no TensorFlow), ``"keras"``, or None: ONNX when the
            folder's ``transcriber.onnx`` was made from its ``.keras`` files (else Keras, with
            a one-line notice if the export is stale).
        threads: Threads of ONNX Runtime (default: all cores).
        prefetch: Read and transform the next audio block in a background thread while the
            models run (:func:`pianolib.stream.prefetch`).
        onset_model, length_model: Keras models to use instead of the folder's files
            (implies ``runtime="keras"``).
        velocity: Use the folder's Velocity model (notebook 07) for MIDI velocities; without
            it (or without the model: a one-line notice) velocities follow onset strength.
        pedal: Use the folder's Pedal model: the MIDI file gets sustain-pedal (CC64) events.
        pedal_threshold: Pedal-down probability threshold of :func:`decode_pedal`.
        length_labels: What the Length model learnt: ``"sounding"`` ends (sustain included)
            or ``"key"`` releases.
        note_ends: With a key-release Length model: ``"sounding"`` - each note lasts until
            the later of its key release and the decoded pedal's release
            (:func:`pianolib.midi.apply_sustain`, the rule the labels were made with) - or
            ``"key"``: notes end at key release and the pedal is left to the MIDI file's CC64
            (as a Disklavier or MAESTRO's MIDI writes them; a player sustains them). The
            shipped models use ``"key"``: measured better (README, "Velocity, pedal and
            note ends").
        partial_onset: Onset probability a peak needs over a stronger peak an octave, a
            twelfth or two octaves below (:func:`pianolib.decode.partial_ghosts`; 0: off).

    Settings given explicitly win; the others come from ``decoder.json`` in ``model_dir``
    (tuned on the validation split), then from :data:`DECODER_DEFAULTS`.
    """

    model_dir: Path = DEFAULT_MODELS
    onset_threshold: float | None = None
    length_threshold: float | None = None
    min_frames: int | None = None
    decoder: str | None = None
    reonset: bool | None = None
    runtime: str | None = None
    threads: int | None = None
    prefetch: bool = True
    onset_model: object = field(default=None, repr=False)
    length_model: object = field(default=None, repr=False)
    velocity: bool = True
    pedal: bool = True
    pedal_threshold: float | None = None
    length_labels: str | None = None
    note_ends: str | None = None
    partial_onset: float | None = None

    def __post_init__(self):
        import sys

        from .export import OPTIONAL, present_targets
        from .runtime import ONNX_NAME, OnnxModels, onnx_status

        self.model_dir = Path(self.model_dir)
        if self.runtime not in (None, "onnx", "keras"):
            raise PianolibError(f"unknown runtime {self.runtime!r}; use 'onnx' or 'keras'")
        if self.onset_model is not None or self.length_model is not None:
            self.runtime = "keras"  # models given in memory: only those two are used
            self.velocity = self.pedal = False
        self.onnx = None
        if self.runtime in (None, "onnx"):
            path = self.model_dir / ONNX_NAME
            session, problem = None, None
            try:
                session = OnnxModels(path, self.threads) if path.is_file() else None
            except PianolibError as exc:
                problem = str(exc)
            status = onnx_status(self.model_dir, session) if session else (
                "broken" if problem else onnx_status(self.model_dir))
            if status == "ok":
                self.onnx, self.runtime = session, "onnx"
                have = set(session.available)
            elif self.runtime == "onnx":
                why = {"missing": "not found; run `python -m pianolib export`",
                       "stale": "stale (made from other .keras files); run `python -m "
                                f"pianolib export {self.model_dir} --force`",
                       "broken": problem,
                       "no-runtime": "onnxruntime is not installed (pip install onnxruntime)"}
                raise PianolibError(f"{path}: cannot use the ONNX export: {why[status]}")
            else:
                if status in ("stale", "broken"):
                    what = ("was made from other .keras files" if status == "stale"
                            else "cannot be loaded")
                    print(f"notice: {path} {what}; using Keras (re-export with "
                          f"`python -m pianolib export {self.model_dir} --force`)",
                          file=sys.stderr)
                self.runtime = "keras"
        if self.runtime == "keras":
            have = set(present_targets(self.model_dir)) | {"onset", "length"}
        self._settings()
        wanted = [t for t in OPTIONAL if getattr(self, t)]
        if self.sustain_from_pedal and "pedal" not in wanted:
            wanted.append("pedal")  # the pedal gives key releases their sounding ends
        missing = [t for t in wanted if t not in have]
        self.outputs = ["onset", "length"] + [t for t in wanted if t in have]
        if self.runtime == "keras":
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
            extra = [load_model(self.model_dir / f"{t}.keras") for t in self.outputs[2:]]
            self.infer = keras_inference(self.onset_model, self.length_model, *extra)
        else:
            self.onnx.outputs = list(self.outputs)
            self.infer = self.onnx
        if missing:  # after the models loaded: a missing onset/length model is the one error
            what = {"velocity": "velocities follow onset strength",
                    "pedal": "no sustain pedal in the MIDI" + (
                        " and notes end at key release" if self.sustain_from_pedal else "")}
            print(f"notice: {self.model_dir} has no {' or '.join(missing)} model: "
                  f"{'; '.join(what[t] for t in missing)}", file=sys.stderr)

    def _settings(self) -> None:
        """Fill the settings not given explicitly: ``decoder.json`` first, then the defaults
        (``length_labels`` also from ``train.json``, which records what the model learnt)."""
        import json

        tuned = read_decoder_json(self.model_dir / "decoder.json")
        trained = self.model_dir / "train.json"
        if "length_labels" not in tuned and trained.is_file():
            try:
                labels = json.loads(trained.read_text()).get("length_labels")
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                labels = None
            if labels in ("sounding", "key"):
                tuned["length_labels"] = labels
        for k, default in DECODER_DEFAULTS.items():
            if getattr(self, k) is None:
                setattr(self, k, tuned.get(k, default))

    @property
    def sustain_from_pedal(self) -> bool:
        """Whether note ends are key releases extended by the decoded pedal."""
        return self.length_labels == "key" and self.note_ends == "sounding"

    def use_decoder(self, decoder: str) -> None:
        """Switch decoder; ``"series"`` also restores the series' thresholds (0.5 / 0.3)."""
        self.decoder = decoder
        if decoder == "series":
            self.onset_threshold, self.length_threshold = 0.5, 0.3

    def predict(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Every model's output for a feature array: ``{"onset": (frames, 88), "length": ..,
        "velocity": (frames, 88), "pedal": (frames, 1)}`` (the last two where used).

        Notebook: 07_velocity_and_pedal.ipynb
        """
        outs = predict_stream(self.infer, [features], len(self.outputs),
                              batch_size=WINDOWS_PER_CALL, expected_frames=len(features))
        return dict(zip(self.outputs, outs))

    def probabilities(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(onset_prob, length_prob)``, each ``(frames, 88)``, of a feature array."""
        p = self.predict(features)
        return p["onset"], p["length"]

    def probabilities_of_file(self, path: str | os.PathLike,
                              timer: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(onset_prob, length_prob)`` of an audio file (see :meth:`predict_file`)."""
        p = self.predict_file(path, timer)
        return p["onset"], p["length"]

    def predict_file(self, path: str | os.PathLike,
                     timer: dict | None = None) -> dict[str, np.ndarray]:
        """Every model's output for an audio file, read and processed block by block.

        Memory does not grow with the file's length (but for the probabilities themselves).
        ``timer``, if given, receives the seconds spent in each stage (``audio``, ``cqt``,
        ``models``); with ``prefetch`` the first two run beside the third, so the stages
        can add up to more than the wall time.
        """
        import time

        timer = timer if timer is not None else {}
        for k in ("audio", "cqt", "models"):
            timer.setdefault(k, 0.0)

        def timed(it, key):
            it = iter(it)
            try:
                while True:
                    t0 = time.perf_counter()
                    try:
                        item = next(it)
                    except StopIteration:
                        return
                    finally:
                        timer[key] += time.perf_counter() - t0
                    yield item
            finally:
                it.close()

        def infer(x):
            t0 = time.perf_counter()
            out = self.infer(x)
            timer["models"] += time.perf_counter() - t0
            return out

        audio = timed(audio_blocks(path), "audio")
        t_audio = timer["audio"]
        feats = timed(feature_blocks(audio), "cqt")
        if self.prefetch:
            feats = prefetch(feats)
        try:
            probs = predict_stream(infer, feats, len(self.outputs),
                                   batch_size=WINDOWS_PER_CALL,
                                   expected_frames=expected_frames(path))
        finally:
            feats.close()  # stops the prefetch thread and closes the file, also on errors
        # the cqt timer includes the audio pulled through it: keep the stages apart
        timer["cqt"] -= timer["audio"] - t_audio
        return dict(zip(self.outputs, probs))

    def decode(self, onset_prob: np.ndarray, length_prob: np.ndarray,
               velocity_prob: np.ndarray | None = None) -> np.ndarray:
        """Notes from probabilities with this transcriber's decoder settings.

        ``velocity_prob``: the Velocity model's output (velocities then come from it).
        """
        if self.decoder == "series":
            return decode_series(onset_prob, length_prob, self.onset_threshold,
                                 self.length_threshold, velocity_prob=velocity_prob)
        return decode_notes(onset_prob, length_prob, self.onset_threshold,
                            self.length_threshold, self.min_frames, reonset=self.reonset,
                            velocity_prob=velocity_prob, partial_onset=self.partial_onset)

    def decode_all(self, probs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """``(notes, pedal)`` from :meth:`predict`'s outputs; ``pedal`` is None without a
        Pedal model or with ``pedal=False`` (else ``(k, 2)`` down/up seconds, possibly empty).
        A key-release Length model (``length_labels="key"``) gets its sounding note ends from
        the decoded pedal even when the pedal is not written.

        Notebook: 07_velocity_and_pedal.ipynb
        """
        from .midi import apply_sustain

        notes = self.decode(probs["onset"], probs["length"],
                            probs.get("velocity") if self.velocity else None)
        pedal = (decode_pedal(probs["pedal"], self.pedal_threshold) if "pedal" in probs
                 else None)
        if self.sustain_from_pedal and pedal is not None:
            notes = apply_sustain(notes, pedal)  # key release -> sounding end
        return notes, (pedal if self.pedal else None)

    def transcribe_audio(self, y: np.ndarray) -> np.ndarray:
        """Note list of mono 16 kHz audio (checked by :func:`pianolib.audio.check_audio`)."""
        from .audio import check_audio
        from .midi import empty_notes

        y = check_audio(y)
        if y.size == 0:
            return empty_notes()
        return self.decode_all(self.predict(features_in_blocks(y)))[0]

    def transcribe_file(self, path: str | os.PathLike, timer: dict | None = None,
                        with_pedal: bool = False):
        """Note list of an audio file (any format, rate and channel count), in bounded memory.

        ``timer``: see :meth:`predict_file` (adds ``decode``). ``with_pedal``: return
        ``(notes, pedal)`` (see :meth:`decode_all`) instead of the notes alone.
        """
        import time

        probs = self.predict_file(path, timer)
        t0 = time.perf_counter()
        notes, pedal = self.decode_all(probs)
        if timer is not None:
            timer["decode"] = timer.get("decode", 0.0) + time.perf_counter() - t0
        return (notes, pedal) if with_pedal else notes


def transcribe(audio_path: str | os.PathLike, midi_path: str | os.PathLike,
               model_dir: str | os.PathLike = DEFAULT_MODELS, force: bool = False,
               transcriber: Transcriber | None = None, timer: dict | None = None) -> np.ndarray:
    """Transcribe ``audio_path`` and write the notes to ``midi_path`` (atomically).

    The audio is read, resampled, transformed and run through the models block by block
    (:mod:`pianolib.stream`), so memory does not grow with the recording's length.

    Notebook: 05_midi_merge.ipynb

    Args:
        timer: If given, receives seconds per stage: ``audio``, ``cqt``, ``models``,
            ``decode``, ``midi``.

    Raises:
        PianolibError: Unreadable audio, missing model, or an output that exists (without
            ``force``) or cannot be written - checked before any work is done.
    """
    import sys
    import time

    from .files import check_writable

    check_writable(midi_path, force)
    info = probe_audio(audio_path)  # a bad file is refused before models load
    if info["frames"] == 0:
        print(f"notice: {audio_path}: no audio samples; the MIDI file is empty",
              file=sys.stderr)
    transcriber = transcriber or Transcriber(Path(model_dir))
    notes, pedal = transcriber.transcribe_file(audio_path, timer, with_pedal=True)
    t0 = time.perf_counter()
    write_midi(notes_to_midi(notes, pedal=pedal), midi_path, force=force)
    if timer is not None:
        timer["midi"] = timer.get("midi", 0.0) + time.perf_counter() - t0
    return notes

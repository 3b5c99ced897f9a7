"""Transcription block by block: read, resample, CQT and models in pieces of bounded size.

A 60-minute 44.1 kHz stereo WAV is 1.2 GB as float64 in memory, its CQT 380 MB; loading
either whole makes memory grow with the file. Here every stage is a generator that keeps
only what the next stage still needs:

1. :func:`audio_blocks` - ``soundfile`` blocks, mixed to mono, resampled with a
   ``soxr.ResampleStream`` (the same HQ resampler ``librosa.load`` uses, in streaming form);
2. :func:`feature_blocks` - the series' CQT on 20-s blocks with 2 s of audio context on each
   side, exactly the frames :func:`pianolib.transcribe.features_in_blocks` gives;
3. :func:`predict_stream` - the models on fixed windows of 1000 frames with 50 frames of
   context on each side, exactly the windows of :func:`pianolib.transcribe.predict_windows`.

Only the probabilities (88 x 2 floats per frame, 127 MB per hour and model) are kept whole,
for the decoder.

Notebook: 05_midi_merge.ipynb
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from .audio import check_audio_path
from .config import HOP_LENGTH, N_BINS, N_KEYS, SR
from .errors import AudioError

#: Seconds of audio per CQT block, and of context on each side (longer than the A0 filter).
BLOCK_SECONDS = 20.0
BLOCK_CONTEXT = 2.0
#: Frames per inference window and frames of context discarded on each side of it.
WINDOW = 1000
CONTEXT = 50


def probe_audio(path: str | os.PathLike) -> dict:
    """Check that ``path`` is readable audio, cheaply (no decoding, no heavy imports).

    Notebook: 05_midi_merge.ipynb

    Returns:
        ``{"sr", "channels", "frames", "seconds"}`` (``frames``/``seconds`` None when only
        audioread/ffmpeg can read the file and its length is not in the header).

    Raises:
        AudioError: Missing, a directory, unreadable, empty, or not audio.
    """
    import soundfile as sf

    path = check_audio_path(path)
    try:
        info = sf.info(str(path))
        return {"sr": info.samplerate, "channels": info.channels, "frames": info.frames,
                "seconds": info.frames / info.samplerate}
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as sf_exc:
        import audioread

        try:
            with audioread.audio_open(str(path)) as f:
                return {"sr": f.samplerate, "channels": f.channels, "frames": None,
                        "seconds": f.duration or None}
        except (audioread.exceptions.DecodeError, audioread.exceptions.NoBackendError,
                EOFError, OSError, RuntimeError, ValueError):
            raise AudioError(f"{path}: not a readable audio file ({sf_exc})") from None


def audio_blocks(path: str | os.PathLike, sr: int = SR,
                 block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Mono float32 audio at ``sr`` Hz, block by block (the same samples as ``load_audio``).

    Files libsndfile cannot read (e.g. m4a through ffmpeg) are loaded whole by
    :func:`pianolib.audio.load_audio`: memory is bounded only for libsndfile's formats (wav,
    flac, ogg, mp3).

    Notebook: 05_midi_merge.ipynb

    Raises:
        AudioError: Not readable audio, or NaN/infinite samples (naming the file).
    """
    import soundfile as sf

    path = check_audio_path(path)
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        from .audio import load_audio

        y = load_audio(path, sr)
        step = int(block_seconds * sr)
        for i in range(0, len(y), step):
            yield y[i: i + step]
        return
    with f:
        stream = None
        if f.samplerate != sr:
            import soxr

            stream = soxr.ResampleStream(f.samplerate, sr, 1, dtype="float32", quality="HQ")
            wanted = int(np.ceil(f.frames * sr / f.samplerate))  # librosa's fix_length
        given = 0
        step = max(int(block_seconds * f.samplerate), 1)
        blocks = f.blocks(blocksize=step, dtype="float32", always_2d=True)
        while True:
            try:
                block = next(blocks)
            except StopIteration:
                break
            except (sf.LibsndfileError, RuntimeError, ValueError) as exc:  # truncated/corrupt
                raise AudioError(f"{path}: audio data cannot be read ({exc})") from None
            y = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
            if not np.all(np.isfinite(y)):
                raise AudioError(f"{path}: audio contains NaN or infinite samples")
            if stream is not None:
                y = stream.resample_chunk(y, last=False)
                y = y[: max(wanted - given, 0)]
            given += len(y)
            yield y
        if stream is not None:
            tail = stream.resample_chunk(np.zeros(0, np.float32), last=True)[: wanted - given]
            if given + len(tail) < wanted:
                tail = np.concatenate([tail, np.zeros(wanted - given - len(tail), np.float32)])
            if len(tail):
                yield tail


def feature_blocks(blocks: Iterable[np.ndarray], block_seconds: float = BLOCK_SECONDS,
                   transform: Callable[[np.ndarray], np.ndarray] | None = None
                   ) -> Iterator[np.ndarray]:
    """Consecutive frames of the log-CQT of the concatenated ``blocks``.

    Each CQT block of ``block_seconds`` is computed with :data:`BLOCK_CONTEXT` seconds of
    audio on both sides (longer than half the longest CQT filter) and keeps only its own
    frames; audio no longer needed is dropped. A signal no longer than one block plus its
    context is transformed in one go, so short files give exactly ``transform(y)``.

    ``transform`` turns audio into features: by default
    :func:`pianolib.fastcqt.fast_features` (librosa's CQT without librosa's start-up, equal
    within 1e-4); :func:`pianolib.features.compute_features` gives librosa's own values.

    Notebook: 05_midi_merge.ipynb
    """
    if transform is None:
        from .fastcqt import fast_features as transform

    if block_seconds < 1.0:
        raise ValueError(f"block_seconds must be at least 1 s, got {block_seconds}")
    block = int(block_seconds * SR) // HOP_LENGTH * HOP_LENGTH
    ctx = int(BLOCK_CONTEXT * SR) // HOP_LENGTH * HOP_LENGTH
    parts: list[np.ndarray] = []
    buf = np.zeros(0, np.float32)
    buf0 = start = total = 0  # absolute sample of buf[0]; next block's start; samples seen

    def segment(lo, hi, count=block // HOP_LENGTH):
        with warnings.catch_warnings():  # librosa: "n_fft too large" on a short last block
            warnings.simplefilter("ignore", UserWarning)
            f = transform(buf[lo - buf0: hi - buf0])
        first = (start - lo) // HOP_LENGTH
        return f[first: first + count]

    for b in blocks:
        parts.append(np.asarray(b, np.float32))
        total += len(b)
        if total <= start + block + ctx:
            continue
        buf = np.concatenate([buf, *parts])
        parts = []
        while total > start + block + ctx:
            yield segment(max(start - ctx, 0), start + block + ctx)
            start += block
            drop = max(start - ctx, 0) - buf0
            buf, buf0 = buf[drop:], buf0 + drop
    buf = np.concatenate([buf, *parts])
    n_frames = 1 + total // HOP_LENGTH if total else 0
    if start == 0 and n_frames:
        yield transform(buf)
        return
    while start // HOP_LENGTH < n_frames:
        yield segment(max(start - ctx, 0), total,
                      min(block // HOP_LENGTH, n_frames - start // HOP_LENGTH))
        start += block


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Run the generator ``items`` in a background thread, ``depth`` items ahead.

    Reading, resampling and the CQT of the next block then overlap with the models running
    on the current one: ONNX Runtime, the FFTs and soxr release Python's GIL, so on two cores
    the stages run side by side. An exception in the thread is raised in the caller; a
    caller that stops early stops the thread.

    Notebook: 05_midi_merge.ipynb
    """
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(entry) -> bool:
        """Hand one entry over unless the caller has stopped; True if handed over."""
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        it = iter(items)
        try:
            for item in it:
                if not put((True, item)):
                    return
            put((True, done))
        except BaseException as exc:  # handed to the caller, raised there
            put((False, exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()  # e.g. closes the audio file of a generator stopped early

    thread = threading.Thread(target=work, daemon=True, name="pianolib-prefetch")
    thread.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


class _Growing:
    """A ``(n, width)`` float32 array filled from the front, grown by doubling when needed.

    The width (88 keys, or 1 for the pedal) is taken from the first rows added.
    """

    def __init__(self, expected: int):
        self.expected = max(expected, 1)
        self.data = None
        self.n = 0

    def add(self, rows: np.ndarray) -> None:
        if self.data is None:
            self.data = np.empty((self.expected, rows.shape[1]), np.float32)
        if self.n + len(rows) > len(self.data):
            bigger = np.empty((max(2 * len(self.data), self.n + len(rows)), rows.shape[1]),
                              np.float32)
            bigger[: self.n] = self.data[: self.n]
            self.data = bigger
        self.data[self.n: self.n + len(rows)] = rows
        self.n += len(rows)

    def result(self, n: int, width: int = N_KEYS) -> np.ndarray:
        if self.data is None:  # nothing was added (no frames)
            return np.zeros((0, width), np.float32)
        return self.data[:n]


def predict_stream(infer: Callable[[np.ndarray], list[np.ndarray]],
                   frames: Iterable[np.ndarray], n_outputs: int, window: int = WINDOW,
                   context: int = CONTEXT, batch_size: int = 2,
                   expected_frames: int = 0) -> list[np.ndarray]:
    """Run ``infer`` over a stream of feature frames in fixed, overlapping windows.

    Window ``w`` covers frames ``w*window - context .. (w+1)*window + context`` (zeros
    outside the recording) and keeps its central ``window`` frames; windows go to ``infer``
    ``batch_size`` at a time (the last batch padded with zero windows, so every call has the
    same shape). The result equals :func:`pianolib.transcribe.predict_windows` on the whole
    feature array.

    Notebook: 05_midi_merge.ipynb

    Args:
        infer: ``(batch, window + 2*context, 264)`` -> list of ``n_outputs`` arrays
            ``(batch, window + 2*context, width)`` (88 keys; 1 for the pedal).
        frames: Consecutive blocks of feature frames ``(k, 264)``.
        n_outputs: Number of outputs of ``infer``.
        expected_frames: Expected total (to allocate once; may be wrong).

    Returns:
        ``n_outputs`` arrays ``(frames, width)`` float32.
    """
    span = window + 2 * context
    outs = [_Growing(expected_frames) for _ in range(n_outputs)]
    buf = np.zeros((context, N_BINS), np.float32)  # the zero context before frame 0
    buf0 = -context  # absolute frame of buf[0]
    pending: list[np.ndarray] = []
    state = {"next": 0}

    def run(final: bool = False):
        if not pending or (len(pending) < batch_size and not final):
            return
        x = np.stack(pending)
        if len(x) < batch_size:
            x = np.concatenate([x, np.zeros((batch_size - len(x), span, N_BINS), np.float32)])
        for out, y in zip(outs, infer(x), strict=True):
            y = np.asarray(y, np.float32)
            out.add(y[: len(pending), context: context + window].reshape(-1, y.shape[-1]))
        pending.clear()

    n = 0
    chunks: list[np.ndarray] = []
    for f in frames:
        n += len(f)
        chunks.append(np.asarray(f, np.float32))
        if buf0 + len(buf) + sum(map(len, chunks)) < (state["next"] + 1) * window + context:
            continue
        buf = np.concatenate([buf, *chunks])
        chunks = []
        while buf0 + len(buf) >= (state["next"] + 1) * window + context:
            lo = state["next"] * window - context - buf0
            pending.append(buf[lo: lo + span])
            state["next"] += 1
            run()
            cut = state["next"] * window - context - buf0
            buf, buf0 = buf[cut:].copy(), buf0 + cut
    buf = np.concatenate([buf, *chunks])
    while state["next"] * window < n:
        lo = state["next"] * window - context - buf0
        x = buf[lo: lo + span]
        pending.append(np.concatenate([x, np.zeros((span - len(x), N_BINS), np.float32)]))
        state["next"] += 1
        run()
    run(final=True)
    return [o.result(n) for o in outs]


def expected_frames(path: str | Path, info: dict | None = None) -> int:
    """Frames the CQT of ``path`` will have at 16 kHz (0 if the header does not say)."""
    info = info or probe_audio(path)
    if not info.get("frames"):
        return 0
    samples = int(np.ceil(info["frames"] * SR / info["sr"]))
    return 1 + samples // HOP_LENGTH

"""Run the exported models with ONNX Runtime: transcription without TensorFlow.

:mod:`pianolib.export` writes ``transcriber.onnx`` (both models, one graph). Here it is loaded
into one ``onnxruntime.InferenceSession``; one call per window gives the onset and length
probabilities together. :func:`onnx_status` says whether a model folder's export can be used
(present, and made from the ``.keras`` files that are there now).

Notebook: 05_midi_merge.ipynb
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import PianolibError
from .export import ONNX_NAME, OUTPUTS, TARGETS


class OnnxModels:
    """Both models of a ``transcriber.onnx`` in one ONNX Runtime session.

    Calling it with ``(batch, frames, 264)`` float32 features returns one array per name of
    ``outputs``: ``[onset, length]`` ``(batch, frames, 88)``, then ``velocity`` and ``pedal``
    ``(batch, frames, 1)`` where the export has them.

    Notebook: 05_midi_merge.ipynb

    Args:
        path: The ``.onnx`` file.
        threads: Intra-op threads (default: all cores, as ONNX Runtime chooses).
        outputs: The outputs to compute (default: all that the file has).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None,
                 outputs: tuple[str, ...] | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise PianolibError(f"{self.path}: ONNX model not found (make one with "
                                "`python -m pianolib export MODEL_DIR`)")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # errors only: no start-up chatter
        # No memory arena: it keeps the largest window's buffers for the whole run (measured:
        # 60 min of audio peaked near 1 GB with it, see tests/test_fast_transcription.py).
        opts.enable_cpu_mem_arena = False
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise PianolibError(f"{self.path}: not a loadable ONNX model ({exc})") from None
        self.input = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        if not set(TARGETS) <= set(names):
            raise PianolibError(f"{self.path}: expected outputs {', '.join(TARGETS)}, "
                                f"found {names} (not a pianolib export)")
        self.available = [t for t in OUTPUTS if t in names]
        self.outputs = [t for t in self.available if outputs is None or t in outputs]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.outputs, {self.input: np.asarray(x, np.float32)})


def onnx_status(model_dir: str | os.PathLike, models: OnnxModels | None = None) -> str:
    """``"ok"``, ``"missing"``, ``"stale"`` (made from other ``.keras`` files), ``"broken"``
    (not loadable) or ``"no-runtime"`` (onnxruntime not installed).

    A folder with only ``transcriber.onnx`` (no ``.keras`` files) is ``"ok"``: the export is
    all that transcription needs. ``models``: the folder's session, if already loaded (the
    metadata is read from it).

    Notebook: 05_midi_merge.ipynb
    """
    import importlib.util

    from .export import source_hashes

    model_dir = Path(model_dir)
    if not (model_dir / ONNX_NAME).is_file():
        return "missing"
    if importlib.util.find_spec("onnxruntime") is None:
        return "no-runtime"
    if models is None:
        try:
            models = OnnxModels(model_dir / ONNX_NAME)
        except PianolibError:
            return "broken"
    for name, sha in source_hashes(model_dir).items():
        if models.metadata.get(f"sha256:{name}") != sha:
            return "stale"
    return "ok"

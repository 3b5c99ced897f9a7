"""Export the trained Keras models to one ONNX file, so that transcription needs no TensorFlow.

Keras builds, trains and explains the models (notebooks 02-04); a user who only transcribes
should not have to install or start TensorFlow (several seconds and ~1 GB of memory). Basic
Pitch answered the same complaint by shipping ONNX/TFLite/CoreML models; we export with
``tf2onnx`` (the converter the TensorFlow and ONNX projects maintain: each Bidirectional LSTM
becomes one ONNX ``LSTM`` op with ``direction="bidirectional"``) and run the file with
ONNX Runtime (:mod:`pianolib.runtime`).

One file, ``transcriber.onnx``, holds the Onset and the Length model (and the Velocity and
Pedal models, where the folder has them) side by side: all read the same CQT window, so one
``InferenceSession.run`` gives every output. Its metadata records the SHA-256 of the
``.keras`` files it was made from, so a retrained model folder with a
stale export is noticed (:func:`pianolib.runtime.onnx_status`).

Notebook: 05_midi_merge.ipynb
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .config import N_BINS
from .errors import PianolibError
from .files import atomic_write

#: The exported file in a model folder.
ONNX_NAME = "transcriber.onnx"
#: The Keras models every export holds, first among its outputs.
TARGETS = ("onset", "length")
#: Models added when the folder has them (notebook 07), after those, in this order.
OPTIONAL = ("velocity", "pedal")
#: Every possible output, in order.
OUTPUTS = TARGETS + OPTIONAL


def present_targets(model_dir: Path) -> tuple[str, ...]:
    """The models of :data:`OUTPUTS` that ``model_dir`` has as ``.keras`` files, in order."""
    return tuple(t for t in OUTPUTS if (Path(model_dir) / f"{t}.keras").is_file())
#: ONNX opset of the export (ONNX Runtime 1.17+ runs it).
OPSET = 17


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, in hex (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_hashes(model_dir: Path) -> dict[str, str]:
    """``{"onset.keras": sha, "length.keras": sha, ...}`` of the model files in ``model_dir``."""
    return {f"{t}.keras": file_sha256(model_dir / f"{t}.keras") for t in OUTPUTS
            if (model_dir / f"{t}.keras").is_file()}


def export_onnx(model_dir: str | Path, out: str | Path | None = None,
                force: bool = False) -> Path:
    """Write ``transcriber.onnx``: the folder's models as one multi-output ONNX graph.

    Notebook: 05_midi_merge.ipynb

    Args:
        model_dir: Folder with ``onset.keras`` and ``length.keras`` (and optionally
            ``velocity.keras``, ``pedal.keras``).
        out: Output file (default ``model_dir/transcriber.onnx``).
        force: Replace an existing file.

    Returns:
        The written path. Inputs: ``cqt`` ``(batch, frames, 264)`` float32; outputs ``onset``,
        ``length`` (and ``velocity``) ``(batch, frames, 88)`` (and ``pedal``
        ``(batch, frames, 1)``); any batch size and number of frames.

    Raises:
        PianolibError: A model file is missing or the output exists (without ``force``).
    """
    from .config import quiet_tensorflow
    from .files import check_writable

    model_dir = Path(model_dir)
    out = Path(out) if out else model_dir / ONNX_NAME
    check_writable(out, force)
    quiet_tensorflow()
    import onnx
    import tensorflow as tf
    import tf2onnx

    from .models import load_model

    targets = TARGETS + tuple(t for t in present_targets(model_dir) if t in OPTIONAL)
    models = {t: load_model(model_dir / f"{t}.keras") for t in targets}

    @tf.function(input_signature=[tf.TensorSpec((None, None, N_BINS), tf.float32, name="cqt")])
    def every(cqt):
        return {t: models[t](cqt, training=False) for t in targets}

    proto, _ = tf2onnx.convert.from_function(every, input_signature=every.input_signature,
                                             opset=OPSET)
    # outputs by plain names, whatever tf2onnx called them
    names = {o.name: o.name for o in proto.graph.output}
    for o in proto.graph.output:
        for t in targets:
            if t in o.name and o.name != t:
                names[o.name] = t
    for node in proto.graph.node:
        node.output[:] = [names.get(n, n) for n in node.output]
    for o in proto.graph.output:
        o.name = names[o.name]
    # outputs in the order of OUTPUTS, so that ``session.run(None, ...)`` gives onset, length..
    ordered = sorted(proto.graph.output, key=lambda o: OUTPUTS.index(o.name))
    del proto.graph.output[:]
    proto.graph.output.extend(ordered)
    meta = {"pianolib": "transcriber", "outputs": ",".join(targets),
            **{f"sha256:{k}": v for k, v in source_hashes(model_dir).items()}}
    del proto.metadata_props[:]
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(proto)
    with atomic_write(out, force) as tmp:
        tmp.write_bytes(proto.SerializeToString())
    return out


def max_difference(model_dir: str | Path, lengths=(1, 7, 100, 1100), batch: int = 2,
                   seed: int = 0, features: list[np.ndarray] | None = None) -> float:
    """Largest absolute difference between the Keras models and their ONNX export.

    Checked on random CQT-like inputs of several lengths and, if given, on real features.

    Notebook: 05_midi_merge.ipynb
    """
    from .models import load_model
    from .runtime import OnnxModels

    model_dir = Path(model_dir)
    session = OnnxModels(model_dir / ONNX_NAME)
    keras_models = [load_model(model_dir / f"{t}.keras") for t in session.outputs]
    rng = np.random.default_rng(seed)
    inputs = [rng.uniform(0, 1, (batch, n, N_BINS)).astype(np.float32) for n in lengths]
    inputs += [f[None].astype(np.float32) for f in (features or [])]
    worst = 0.0
    for x in inputs:
        ours = session(x)
        for m, o in zip(keras_models, ours):
            worst = max(worst, float(np.abs(m(x, training=False).numpy() - o).max()))
    if not np.isfinite(worst):
        raise PianolibError(f"{model_dir}: the ONNX export gives non-finite outputs")
    return worst

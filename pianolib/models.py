"""The architectures the series compares, all with one contract: CQT in, key probabilities out.

Every model maps ``(batch, frames, 264)`` log-CQT frames to ``(batch, frames, 88)`` sigmoid
probabilities, one independent yes/no per key and frame (several keys sound at once, so it
is a *multi-label* problem: sigmoid + binary cross-entropy, not softmax).

Notebook: 02_architecture_cnn_rnn_lstm.ipynb
"""

from __future__ import annotations

from .config import quiet_tensorflow

quiet_tensorflow()  # before Keras loads TensorFlow: no C++ start-up lines
import keras
from keras import layers

from .config import BINS_PER_OCTAVE, N_BINS, N_KEYS
from .decode import PARTIAL_KEYS

ARCHITECTURES = ("cnn", "rnn", "lstm", "bilstm", "crnn", "hcrnn", "lcrnn")

#: Harmonics stacked by the ``hcrnn`` front end (Basic Pitch's harmonic CQT: the sub-octave,
#: the fundamental and partials 2-4), as frequency ratios (:func:`harmonic_shifts` gives bins).
HARMONICS = (0.5, 1, 2, 3, 4)
#: Key offsets of a note's partials where an extra onset is an invented note (octave, twelfth,
#: double octave): the "hard negatives" of :class:`WeightedBCE` (``partial_weight``), the same
#: offsets as the decoder's partial rule.
PARTIALS = PARTIAL_KEYS


def harmonic_shifts(harmonics=HARMONICS) -> tuple[int, ...]:
    """CQT bins between a fundamental and each harmonic: ``round(36 * log2(h))``.

    Not yet taught in a notebook: README, "The real-piano-sound ablation" (arm f).
    """
    import math

    return tuple(int(round(BINS_PER_OCTAVE * math.log2(h))) for h in harmonics)


@keras.saving.register_keras_serializable(package="pianolib")
class HarmonicStack(layers.Layer):
    """``(batch, frames, 264)`` -> ``(batch, frames, 264, H)``: channel h is the CQT moved down
    by harmonic h's distance, so bin b of every channel holds the partials of the note at b.

    A convolution over this stack sees a note's fundamental and its partials at once, at the
    same position: it can tell a true C5 from the octave partial of a C4 that is sounding, the
    mistake that makes most of our invented notes (Bittner et al. 2022, Basic Pitch). Bins
    moved in from beyond the CQT's range are 0, the floor of :func:`pianolib.features.log_cqt`.
    Written as a pad and a slice per harmonic (not a library layer: Keras has none), which
    ONNX export turns into plain Pad/Slice nodes.
    """

    def __init__(self, shifts=None, **kwargs):
        super().__init__(**kwargs)
        self.shifts = tuple(int(s) for s in (harmonic_shifts() if shifts is None else shifts))

    def call(self, x):
        from keras import ops

        n = x.shape[-1]
        channels = []
        for s in self.shifts:
            if s >= 0:
                c = ops.pad(x[..., s:], [[0, 0], [0, 0], [0, s]])
            else:
                c = ops.pad(x[..., : n + s], [[0, 0], [0, 0], [-s, 0]])
            channels.append(c)
        return ops.stack(channels, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape, len(self.shifts))

    def get_config(self):
        return {**super().get_config(), "shifts": list(self.shifts)}


@keras.saving.register_keras_serializable(package="pianolib")
class BinContrast(layers.Layer):
    """``(batch, frames, 264)`` -> the same: each bin of the log-CQT minus its mean over the
    ``window`` frames around it (fewer at the edges).

    On the log scale a change of level adds one constant to every bin, and a microphone's or
    a room's colour (a fixed EQ) one constant per bin: both vanish here, so the model sees only
    how each bin changes against its own recent past, which is what an onset is. This is the
    gain control of PCEN (per-channel energy normalisation, Wang et al. 2017) done in the log
    domain with a centred moving average instead of PCEN's causal smoother, so that it is one
    layer of the model (an ONNX ``AveragePool``) and needs no state between the blocks that
    :mod:`pianolib.transcribe` reads; ``librosa.pcen`` works on magnitudes in numpy, outside
    the model. Within the floor of :func:`pianolib.features.log_cqt` (0 = 80 dB below the
    reference) a gain is exactly removed; below it, it is not.

    Not yet taught in a notebook: README, "The real-piano-sound ablation" (arm g).
    """

    def __init__(self, window: int = 51, **kwargs):
        super().__init__(**kwargs)
        self.window = int(window)

    def call(self, x):
        from keras import ops

        return x - ops.average_pool(x, self.window, strides=1, padding="same")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "window": self.window}


def _inputs(stateful: bool, batch_size: int | None, seq_len: int | None):
    if stateful:
        if not batch_size or not seq_len:
            raise ValueError("a stateful model needs a fixed batch_size and seq_len")
        return keras.Input(batch_shape=(batch_size, seq_len, N_BINS), name="cqt")
    return keras.Input(shape=(None, N_BINS), name="cqt")


def _head(x, name: str, outputs: int = N_KEYS):
    """Dense(88, sigmoid, he_normal) on every frame: the series' ``TimeDistributed(Dense)``.

    ``outputs`` is 88 for the key models (onset, length, velocity) and 1 for the pedal model.

    A ``Dense`` layer on a ``(batch, frames, features)`` tensor already acts on the last axis
    of every frame with shared weights, which is exactly what ``TimeDistributed(Dense)`` does.
    We use the plain ``Dense`` because with Keras 3.15 / TF 2.21 ``TimeDistributed`` breaks
    when the graph is traced with an unknown number of frames: it returns shape
    ``(batch, batch, 88)`` - the cause of ``model.predict()`` giving wrong outputs on a new
    sequence length (see ``timedistributed_pitfall`` in notebook 03 and the tests).
    """
    return layers.Dense(outputs, activation="sigmoid", kernel_initializer="he_normal",
                        name=name)(x)


def series_timedistributed_model(units: int = 128) -> keras.Model:
    """The series' BiLSTM exactly as written, with ``TimeDistributed(Dense)`` (for comparison).

    Notebook: 03_onset_model.ipynb
    """
    inp = keras.Input(shape=(None, N_BINS), name="cqt")
    x = layers.Bidirectional(layers.LSTM(units, return_sequences=True))(inp)
    out = layers.TimeDistributed(
        layers.Dense(N_KEYS, activation="sigmoid", kernel_initializer="he_normal"), name="keys"
    )(x)
    return keras.Model(inp, out, name="bilstm_timedistributed")


def inference_function(model: keras.Model):
    """A compiled ``tf.function`` of ``model(x, training=False)`` for any batch and length.

    Traced once with unknown batch and frame dimensions: the first call takes well under a
    second (a trace specialised to one large static shape took ~10 s on 2 cores), and every
    later call of any shape reuses it.

    Notebook: 05_midi_merge.ipynb
    """
    fn = getattr(model, "_pianolib_infer", None)
    if fn is None:
        import tensorflow as tf

        fn = tf.function(lambda x: model(x, training=False),
                         input_signature=[tf.TensorSpec((None, None, N_BINS), tf.float32)])
        model._pianolib_infer = fn
    return fn


def _conv_front(x, filters: int = 16, time_context: int = 3, harmonic: bool = False,
                contrast: bool = False):
    """Convolutions over (time, frequency), then pooling to one vector of 88 x c per frame.

    The same small kernels slide over all 264 bins, so the local shape of a spectral peak and
    of its attack is learnt once for the whole keyboard (stacked, the kernels see 7 bins, about
    two semitones: harmonics an octave or more apart are combined by the dense layer after the
    pooling, whose weights are not shared); pooling by 3 brings the 3 bins per key to one.
    ``harmonic``: the kernels read the :class:`HarmonicStack` (5 channels) instead of the
    plain CQT (1 channel), so they see a note's partials too. ``contrast``: they read
    :class:`BinContrast`'s output, which no gain or fixed EQ changes.
    """
    if contrast:
        x = BinContrast(name="bin_contrast")(x)
    if harmonic:
        x = HarmonicStack(name="harmonic_stack")(x)
    else:
        x = layers.Reshape((-1, N_BINS, 1))(x)
    x = layers.Conv2D(filters, (time_context, 5), padding="same", activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Conv2D(filters, (time_context, 3), padding="same", activation="relu")(x)
    x = layers.MaxPooling2D((1, 3))(x)  # 264 bins -> 88 keys
    x = layers.BatchNormalization()(x)
    return layers.Reshape((-1, N_KEYS * filters))(x)


def build_model(
    kind: str = "bilstm",
    units: int = 128,
    stateful: bool = False,
    batch_size: int | None = None,
    seq_len: int | None = None,
    name: str | None = None,
    verbose: bool = False,
    outputs: int = N_KEYS,
) -> keras.Model:
    """Build one of the compared architectures.

    Notebook: 02_architecture_cnn_rnn_lstm.ipynb

    Args:
        kind: ``cnn`` (convolutions, a small time context, no recurrence), ``rnn`` (a plain
            ``SimpleRNN``), ``lstm`` (one-directional LSTM), ``bilstm`` (the series'
            ``Bidirectional(LSTM(128))``), ``crnn`` (a convolutional front end + BiLSTM),
            ``hcrnn`` (the crnn on the harmonic stack of the CQT, :class:`HarmonicStack`) or
            ``lcrnn`` (the crnn on :class:`BinContrast`: blind to level and microphone colour).
        units: Recurrent units (per direction).
        stateful: Keep the recurrent state from one batch to the next (streaming training,
            ``rnn`` and ``lstm`` only); needs ``batch_size`` and ``seq_len``.
        batch_size: Fixed batch size (stateful models only).
        seq_len: Fixed sequence length (stateful models only).
        name: Model name (default: ``kind``).
        verbose: Print the parameter count.
        outputs: Values per frame: 88 (one per key; onset, length, velocity) or 1 (pedal).

    Returns:
        An uncompiled ``keras.Model``: ``(batch, frames, 264)`` -> ``(batch, frames, 88)``.
    """
    if kind not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {kind!r}; choose from {ARCHITECTURES}")
    if stateful and kind not in ("rnn", "lstm"):
        raise ValueError("only the one-directional rnn and lstm can be stateful (streaming)")
    inp = _inputs(stateful, batch_size, seq_len)
    if kind == "cnn":
        x = _conv_front(inp, filters=8, time_context=5)
        x = layers.Conv1D(128, 5, padding="same", activation="relu")(x)
    elif kind == "rnn":
        x = layers.SimpleRNN(units, return_sequences=True, stateful=stateful)(inp)
    elif kind == "lstm":
        x = layers.LSTM(units, return_sequences=True, stateful=stateful)(inp)
    elif kind == "bilstm":
        x = layers.Bidirectional(layers.LSTM(units, return_sequences=True))(inp)
    else:  # crnn, hcrnn, lcrnn
        x = _conv_front(inp, filters=8, time_context=3, harmonic=kind == "hcrnn",
                        contrast=kind == "lcrnn")
        x = layers.Dense(256, activation="relu")(x)
        x = layers.Bidirectional(layers.LSTM(units, return_sequences=True))(x)
    model = keras.Model(inp, _head(x, "keys", outputs), name=name or kind)
    if verbose:
        print(f"{model.name}: {model.count_params():,} parameters")
    return model


@keras.saving.register_keras_serializable(package="pianolib")
class WeightedBCE(keras.losses.Loss):
    """Binary cross-entropy with positive frames weighted ``pos_weight`` times (class weighting).

    Onsets are rare (about 1 key-frame in 300 is an onset in our corpora), so early in training
    plain BCE settles on "no onset" almost everywhere, the best answer that ignores the input;
    weighting the positives counters that (at the optimum it multiplies the odds the model
    reports by ``pos_weight``).

    ``partial_weight`` (> 1) makes *hard negatives* of the keys an octave, a twelfth and two
    octaves above a true onset (:data:`PARTIALS`) in the same frame: a wrong "yes" there costs
    ``partial_weight`` times as much. Those are where a note's partials are loudest and where
    most of our invented notes sit (``data/bench/extra-notes.md``). A key that is itself a true
    onset stays a positive (``partial_weight`` is not yet taught in a notebook: README, "The
    real-piano-sound ablation", arm e).

    Notebook: 03_onset_model.ipynb
    """

    def __init__(self, pos_weight: float = 1.0, partial_weight: float = 1.0,
                 name: str = "weighted_bce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pos_weight = float(pos_weight)
        self.partial_weight = float(partial_weight)

    def call(self, y_true, y_pred):
        from keras import ops

        eps = keras.config.epsilon()
        y_pred = ops.clip(y_pred, eps, 1 - eps)
        y_true = ops.cast(y_true, y_pred.dtype)
        neg = 1 - y_true
        if self.partial_weight != 1.0:
            neg = neg * (1 + (self.partial_weight - 1) * partial_mask(y_true))
        loss = -(self.pos_weight * y_true * ops.log(y_pred) + neg * ops.log(1 - y_pred))
        return ops.mean(loss, axis=-1)

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight,
                "partial_weight": self.partial_weight}


def partial_mask(y_true, partials=PARTIALS):
    """1 where a key is a partial (:data:`PARTIALS` keys above) of a true onset, else 0.

    Works on ``(..., 88)`` rolls, numpy or tensors: the roll moved up the keyboard by each
    offset (keys moved past the top drop out), the largest taken.

    Not yet taught in a notebook: README, "The real-piano-sound ablation" (arm e).
    """
    from keras import ops

    y = ops.convert_to_tensor(y_true)
    rank = len(y.shape)
    moved = [ops.pad(y[..., : N_KEYS - k], [[0, 0]] * (rank - 1) + [[k, 0]]) for k in partials]
    return ops.max(ops.stack(moved, axis=0), axis=0)


@keras.saving.register_keras_serializable(package="pianolib")
class OnsetMSE(keras.losses.Loss):
    """Squared error counted only where the target is non-zero: the Velocity model's loss.

    The velocity roll (:func:`pianolib.labels.velocity_roll`) is ``velocity / 127`` on onset
    frames and 0 elsewhere; a key that is not struck has no velocity, so those frames carry no
    loss (Onsets and Frames' velocity loss). The mean is over the onset frames of the batch.

    Notebook: 07_velocity_and_pedal.ipynb
    """

    def __init__(self, name: str = "onset_mse", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        from keras import ops

        y_true = ops.cast(y_true, y_pred.dtype)
        mask = ops.cast(y_true > 0, y_pred.dtype)
        # scaled so that the framework's mean over frames gives the mean over onset frames
        frames = ops.cast(ops.shape(mask)[-1], y_pred.dtype)
        share = ops.maximum(ops.mean(mask), keras.config.epsilon())
        return ops.sum(mask * ops.square(y_pred - y_true), axis=-1) / frames / share


def load_model(path) -> keras.Model:
    """Load a ``.keras`` model for inference (no optimiser state needed).

    Notebook: 05_midi_merge.ipynb
    """
    from pathlib import Path

    from .errors import PianolibError

    path = Path(path)
    if not path.is_file():
        raise PianolibError(f"{path}: model file not found (train one with "
                            "`python -m pianolib train` or use data/models)")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise PianolibError(f"{path}: not a loadable .keras model ({exc})") from None

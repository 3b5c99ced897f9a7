"""Constants shared by the whole pipeline, and the one place where seeds are set.

Notebook: 01_data_and_preprocessing.ipynb
"""

from __future__ import annotations

import os
import random

import numpy as np

#: Sample rate of all audio in the project (Hz), as in the original series.
SR = 16_000
#: Hop between CQT frames in samples: 160 samples at 16 kHz = 10 ms = 100 frames per second.
HOP_LENGTH = 160
#: Frames per second.
FPS = SR / HOP_LENGTH
#: Lowest piano key, A0.
MIN_MIDI = 21
#: Highest piano key, C8.
MAX_MIDI = 108
#: Number of piano keys.
N_KEYS = MAX_MIDI - MIN_MIDI + 1
#: CQT bins per octave: 3 bins per semitone, so key k (MIDI 21 + k) gets bins 3k, 3k+1, 3k+2 at
#: +0, +1/3 and +2/3 of a semitone above its pitch (bin 3k is exactly on the key).
BINS_PER_OCTAVE = 36
#: Number of CQT bins: 88 keys x 3 bins.
N_BINS = N_KEYS * 3
#: Number of frames labelled as "onset" at the start of each note.
ONSET_FRAMES = 4
#: Default sequence (chunk) length in frames: 100 frames = 1 second.
SEQ_LEN = 100
#: Default seed of the project.
SEED = 1234


def quiet_tensorflow() -> None:
    """Import TensorFlow with its C++ start-up lines (CUDA probing, absl) silenced.

    TensorFlow's C++ core writes straight to file descriptor 2 before ``TF_CPP_MIN_LOG_LEVEL``
    takes effect, so the descriptor itself is pointed at ``/dev/null`` while TensorFlow loads
    and probes for GPUs; Python errors raised meanwhile still reach the user. Set
    ``PIANOLIB_VERBOSE=1`` (the command line's ``--verbose``) to see everything. Idempotent.

    Notebook: 02_architecture_cnn_rnn_lstm.ipynb
    """
    import sys

    if "tensorflow" in sys.modules or os.environ.get("PIANOLIB_VERBOSE"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (some embedded interpreters)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe prints here
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def set_seed(seed: int = SEED) -> None:
    """Seed Python, NumPy and (if loaded) Keras/TensorFlow: the one place seeds are set.

    Notebook: 02_architecture_cnn_rnn_lstm.ipynb

    Args:
        seed: The seed.
    """
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    try:
        quiet_tensorflow()
        import keras

        keras.utils.set_random_seed(seed)
    except ImportError:  # pragma: no cover - keras is a hard dependency
        pass

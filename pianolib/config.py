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
#: CQT bins per octave: 3 bins per semitone, so each key gets a centre bin and two neighbours.
BINS_PER_OCTAVE = 36
#: Number of CQT bins: 88 keys x 3 bins.
N_BINS = N_KEYS * 3
#: Number of frames labelled as "onset" at the start of each note.
ONSET_FRAMES = 4
#: Default sequence (chunk) length in frames: 100 frames = 1 second.
SEQ_LEN = 100
#: Default seed of the project.
SEED = 1234


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
        import keras

        keras.utils.set_random_seed(seed)
    except ImportError:  # pragma: no cover - keras is a hard dependency
        pass

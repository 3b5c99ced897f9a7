"""Pictures used across the notebooks: spectrograms, piano rolls, training curves.

Notebook: 01_data_and_preprocessing.ipynb
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .config import FPS, MIN_MIDI, N_KEYS


def _key_axis(ax, bins_per_key: int = 1) -> None:
    ticks = [k for k in range(MIN_MIDI, MIN_MIDI + N_KEYS) if k % 12 == 0]  # the Cs
    ax.set_yticks([(k - MIN_MIDI) * bins_per_key for k in ticks])
    ax.set_yticklabels([f"C{k // 12 - 1} ({k})" for k in ticks])
    ax.set_ylabel("key: note (MIDI)")


def plot_cqt(features: np.ndarray, ax=None, title: str = "log-CQT", fps: float = FPS):
    """Show a ``(frames, 264)`` CQT with time in seconds and keys on the vertical axis.

    Notebook: 01_data_and_preprocessing.ipynb
    """
    ax = ax or plt.subplots(figsize=(10, 3.5))[1]
    im = ax.imshow(features.T, origin="lower", aspect="auto", cmap="magma",
                   extent=(0, len(features) / fps, -0.5, features.shape[1] - 0.5))
    _key_axis(ax, bins_per_key=3)
    ax.set_xlabel("time (s)")
    ax.set_title(title)
    plt.colorbar(im, ax=ax, pad=0.01)
    return ax


def plot_roll(roll: np.ndarray, ax=None, title: str = "piano roll", fps: float = FPS,
              cmap: str = "Greys"):
    """Show a ``(frames, 88)`` roll (labels or probabilities).

    Notebook: 01_data_and_preprocessing.ipynb
    """
    ax = ax or plt.subplots(figsize=(10, 3))[1]
    ax.imshow(roll.T, origin="lower", aspect="auto", cmap=cmap, vmin=0, vmax=1,
              extent=(0, len(roll) / fps, -0.5, N_KEYS - 0.5), interpolation="nearest")
    _key_axis(ax)
    ax.set_xlabel("time (s)")
    ax.set_title(title)
    return ax


def plot_comparison(truth: np.ndarray, pred: np.ndarray, ax=None, title: str = "",
                    fps: float = FPS):
    """Truth vs prediction on one roll: green = both, red = missed, blue = extra.

    Notebook: 05_midi_merge.ipynb
    """
    ax = ax or plt.subplots(figsize=(10, 3.5))[1]
    t, p = truth > 0.5, pred > 0.5
    img = np.ones(t.shape + (3,))
    img[t & p] = (0.1, 0.6, 0.1)
    img[t & ~p] = (0.85, 0.1, 0.1)
    img[~t & p] = (0.1, 0.3, 0.9)
    ax.imshow(img.transpose(1, 0, 2), origin="lower", aspect="auto",
              extent=(0, len(t) / fps, -0.5, N_KEYS - 0.5), interpolation="nearest")
    _key_axis(ax)
    ax.set_xlabel("time (s)")
    ax.set_title(title or "green: correct, red: missed, blue: extra")
    return ax


def plot_history(history: dict, ax=None, title: str = "training curves"):
    """Training and validation loss per epoch (a Keras ``History.history`` or CSV log dict).

    Notebook: 03_onset_model.ipynb
    """
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    for key in ("loss", "val_loss"):
        if key in history:
            ax.plot(np.arange(1, len(history[key]) + 1), history[key], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("binary cross-entropy")
    ax.set_title(title)
    ax.legend()
    return ax

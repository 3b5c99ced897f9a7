"""Notebook 03's key code (the weighted BCE and one training step) against the library.

The notebook writes out the loss of ``pianolib.models.WeightedBCE`` and a plain
``tf.GradientTape`` training step; on chunks of the sample clips the loss must be the
library's, and one step must move the weights exactly as Keras' ``fit`` does in
``pianolib.train.train_model`` (same initial weights, Adam with the same learning rate).
"""

import numpy as np
import pytest
from conftest import SAMPLE_DIR

NOTEBOOK = "03_onset_model.ipynb"
LR = 5e-4          # the onset model's learning rate (train.TARGETS["onset"]["lr"])
POS_WEIGHT = 5.0   # the notebook's class weight


@pytest.fixture(scope="module")
def batch():
    """8 chunks spread over the three sample clips, with their onset targets."""
    from pianolib.datasets import load_items, make_training_arrays

    X, onset, _, _ = make_training_arrays(load_items(SAMPLE_DIR))
    pick = np.linspace(0, len(X) - 1, 8).astype(int)
    xb, yb = X[pick], onset[pick]
    assert yb.sum() > 100  # enough onset key-frames for the class weight to matter
    return xb, yb


def _model(units: int = 32):
    import pianolib
    from pianolib import models

    pianolib.set_seed()
    return models.build_model("bilstm", units=units)


def test_weighted_bce_is_the_library_loss(key_code, batch):
    import keras

    from pianolib.models import WeightedBCE

    xb, yb = batch
    p = _model()(xb)
    for w in (1.0, 2.0, POS_WEIGHT):
        ours = float(key_code["weighted_bce"](yb, p, w))
        np.testing.assert_allclose(ours, float(WeightedBCE(w)(yb, p)), rtol=1e-6)
    # pos_weight = 1 is the plain binary cross-entropy the series (and train_model) use
    np.testing.assert_allclose(float(key_code["weighted_bce"](yb, p, 1.0)),
                               float(keras.losses.BinaryCrossentropy()(yb, p)), rtol=1e-5)
    # the weight acts on the positive frames only
    assert float(key_code["weighted_bce"](yb, p, POS_WEIGHT)) > float(
        key_code["weighted_bce"](yb, p, 1.0)) + 1e-3


def test_weighted_bce_by_hand(key_code):
    y = np.array([[[1.0, 0.0]]], np.float32)
    p = np.array([[[0.5, 0.2]]], np.float32)
    expected = -(3.0 * np.log(0.5) + np.log(0.8)) / 2
    np.testing.assert_allclose(float(key_code["weighted_bce"](y, p, 3.0)), expected, rtol=1e-6)


def test_train_step_moves_weights_as_keras_fit(key_code, batch):
    import keras

    from pianolib import train

    xb, yb = batch
    w0 = _model().get_weights()

    def step(pos_weight, lr=LR):
        m = _model()
        m.set_weights(w0)
        loss = float(key_code["train_step"](m, keras.optimizers.Adam(lr), xb, yb, pos_weight))
        return m.get_weights(), loss

    ours, our_loss = step(POS_WEIGHT)
    keras_model = _model()
    keras_model.set_weights(w0)
    hist = train.train_model(keras_model, xb, yb, xb, yb, lr=LR, pos_weight=POS_WEIGHT,
                             epochs=1, batch_size=len(xb), verbose=0)
    theirs = keras_model.get_weights()
    np.testing.assert_allclose(our_loss, hist.history["loss"][0], rtol=1e-5)
    # Adam's first step moves each weight by about lr: 1e-3 lr is above float32 rounding
    # (one ulp of a weight near 1 is 2.4e-4 lr) and far below any real difference.
    moved = np.concatenate([(a - b).ravel() for a, b in zip(theirs, w0)])
    assert np.median(np.abs(moved)) > 0.5 * LR
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-3 * LR)
    # the comparison can fail: another class weight or learning rate lands elsewhere
    for other in (step(1.0)[0], step(POS_WEIGHT, lr=2 * LR)[0]):
        gap = max(np.abs(a - b).max() for a, b in zip(other, theirs))
        assert gap > 0.5 * LR, gap

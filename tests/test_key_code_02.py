"""Notebook 02's key code (the architectures compared, the receptive field) against pianolib."""

import numpy as np
import pytest
from conftest import SAMPLE_DIR

NOTEBOOK = "02_architecture_cnn_rnn_lstm.ipynb"
KINDS = ("cnn", "rnn", "lstm", "bilstm", "crnn")


@pytest.fixture(scope="module")
def clip():
    from pianolib.datasets import load_items

    items = load_items(SAMPLE_DIR)
    return np.stack([it["features"][:150] for it in items])  # 3 clips x 1.5 s


def _config(layer):
    """A layer's configuration without the names Keras numbers automatically."""
    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in ("name", "seed")}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v
    return strip(layer.get_config())


@pytest.mark.parametrize("kind", KINDS)
def test_build_model_is_the_library_architecture(key_code, clip, kind):
    from pianolib import models

    ours, lib = key_code["build_model"](kind), models.build_model(kind)
    assert [type(la).__name__ for la in ours.layers] == [type(la).__name__ for la in lib.layers]
    assert [_config(la) for la in ours.layers] == [_config(la) for la in lib.layers]
    assert ours.count_params() == lib.count_params()
    ours.set_weights(lib.get_weights())
    y_ours, y_lib = ours(clip).numpy(), lib(clip).numpy()
    assert y_ours.shape == y_lib.shape == (len(clip), clip.shape[1], 88)
    np.testing.assert_allclose(y_ours, y_lib, rtol=1e-6, atol=1e-6)
    assert y_lib.std() > 1e-3  # real, varied outputs, not a constant


def test_build_model_units_and_errors(key_code):
    from pianolib import models

    for kind in ("rnn", "lstm", "bilstm"):
        assert (key_code["build_model"](kind, units=16).count_params()
                == models.build_model(kind, units=16).count_params())
    assert key_code["build_model"]("lstm", name="onset_lstm").name == "onset_lstm"
    # the parameter counts the notebook explains: SimpleRNN u(264 + u + 1), LSTM 4x, BiLSTM 8x
    u, head = 128, 128 * 88 + 88
    assert key_code["build_model"]("rnn").count_params() == u * (264 + u + 1) + head
    assert key_code["build_model"]("lstm").count_params() == 4 * u * (264 + u + 1) + head
    assert key_code["build_model"]("bilstm").count_params() == 8 * u * (264 + u + 1) + 2 * head - 88
    with pytest.raises(ValueError):
        key_code["build_model"]("transformer")


def test_receptive_field_matches_library_and_perturbation(key_code):
    import keras
    from keras import layers

    from pianolib import compare, models

    fields = {k: key_code["receptive_field"](models.build_model(k)) for k in KINDS}
    assert fields == {k: compare.receptive_field(models.build_model(k)) for k in KINDS}
    assert fields == {"cnn": 13, "rnn": None, "lstm": None, "bilstm": None, "crnn": None}
    # dilation and stride: 1 + 2 + 2*4 = 11, then a stride-2 pooling doubles later widenings
    inp = keras.Input((None, 4))
    x = layers.Conv1D(2, 3, padding="same")(inp)
    x = layers.Conv1D(2, 3, dilation_rate=4, padding="same")(x)
    x = layers.MaxPooling1D(2)(x)
    x = layers.Conv1D(2, 3, padding="same")(x)
    toy = keras.Model(inp, x)
    assert key_code["receptive_field"](toy) == compare.receptive_field(toy) == 1 + 2 + 8 + 1 + 2 * 2
    # the CNN's field, seen from outside: nudge one input frame, count the output frames moved
    cnn = models.build_model("cnn")
    x = np.random.default_rng(0).random((1, 60, 264), dtype=np.float32)
    x2 = x.copy()
    x2[0, 30] += 1.0
    changed = np.nonzero(np.abs(cnn(x2).numpy() - cnn(x).numpy()).max(axis=(0, 2)) > 0)[0]
    assert list(changed) == list(range(30 - 6, 30 + 7))


def test_score_valid_test_picks_on_valid_and_scores_on_test(key_code):
    """Thresholds come from the validation pieces; every returned score is the test pieces'."""
    import tensorflow as tf

    from pianolib import compare
    from pianolib.datasets import load_items

    items = load_items(SAMPLE_DIR)
    valid, test = items[:1], items[1:]

    class Oracle:  # a "model" that returns the label roll of whatever chunks it is given
        def __init__(self, arrays, target):
            lookup = {a.tobytes(): b for a, b in zip(arrays["x"], arrays[target])}
            rows = lambda x: np.stack([lookup[c.tobytes()] for c in np.asarray(x)])  # noqa: E731
            # score_chunks runs models through pianolib.models.inference_function, which
            # reuses a model's `_pianolib_infer`
            self._pianolib_infer = lambda x: tf.constant(0.8 * rows(x).astype("float32"))

    both = compare.split_arrays(items)
    onset, length = Oracle(both, "onset"), Oracle(both, "length")
    s = compare.score_valid_test(onset, length, valid, test)
    t = compare.score_chunks(onset, length, compare.split_arrays(test)["x"],
                             [it["notes"] for it in test], [len(it["features"]) for it in test],
                             onset_thresholds=(s["onset_threshold"],),
                             length_thresholds=(s["length_threshold"],))
    assert s["note_f1"] == t["note_f1"] and s["frame_f1"] == t["frame_f1"]
    assert s["onset_threshold"] in compare.ONSET_THRESHOLDS
    assert s["note_f1"] > 0.9 and s["valid_note_f1"] > 0.9
    assert s["onset_ap"] == pytest.approx(1.0) and s["length_ap"] == pytest.approx(1.0)


def test_compare_architectures_several_seeds_scored_on_test(monkeypatch):
    from pianolib import compare
    from pianolib.datasets import load_items

    items = load_items(SAMPLE_DIR)
    rows = compare.compare_architectures(items[:1], items[1:2], kinds=("rnn",), epochs=1,
                                         units=8, seeds=(1, 2), test_items=items[2:])
    (row,) = rows
    assert row["scored_on"] == "test" and row["seeds"] == [1, 2] and len(row["runs"]) == 2
    for key in compare.SCORES:
        values = [r[key] for r in row["runs"]]
        assert row[key] == pytest.approx(np.mean(values))
        assert row[f"{key}_sd"] == pytest.approx(np.std(values, ddof=1))
    # two seeds, two different starts: the models differ
    assert row["runs"][0]["onset_ap"] != row["runs"][1]["onset_ap"]
    assert set(row["models"]) == {"onset", "length"}
    assert row["parameters"] == row["models"]["onset"][0].count_params()
    # without test pieces: scored on the validation pieces (the old behaviour, one seed);
    # untrained models are enough for that (and fast)
    seen = []

    class History:
        history: dict = {}

    monkeypatch.setattr(compare, "train_model", lambda m, *a, **k: seen.append(k) or History())
    (old,) = compare.compare_architectures(items[:1], items[1:2], kinds=("rnn",), epochs=1,
                                           units=8, onset_lr=0.01, length_lr=0.02)
    assert [k["lr"] for k in seen] == [0.01, 0.02]  # the onset model, then the length model
    assert [k["pos_weight"] for k in seen] == [5.0, 1.0]
    assert old["scored_on"] == "valid" and old["onset_ap_sd"] == 0.0 and len(old["runs"]) == 1


def test_evaluate_notes_fast_equals_evaluate_notes():
    """The pruned scoring gives mir_eval's scores, on flooded, exact, shifted and empty output."""
    from pianolib.compare import evaluate_notes_fast
    from pianolib.datasets import load_items
    from pianolib.evaluate import METRICS, evaluate_notes

    rng = np.random.default_rng(0)
    for it in load_items(SAMPLE_DIR):
        ref, n = it["notes"], len(it["features"])
        flood = np.stack([rng.uniform(0, n / 100, 3000), np.zeros(3000),
                          rng.integers(21, 109, 3000), np.full(3000, 64.0)], axis=1)
        flood[:, 1] = flood[:, 0] + rng.uniform(0.03, 1.0, 3000)
        near = ref.copy()
        near[:, 0] += rng.uniform(-0.07, 0.07, len(ref))  # some within 50 ms, some not
        near[:, 1] += rng.uniform(-0.3, 0.3, len(ref))
        near[:, 1] = np.maximum(near[:, 1], near[:, 0] + 0.01)
        cases = {"flood": np.concatenate([flood, near[::2]]), "exact": ref, "near": near,
                 "hopeless": flood[np.isin(flood[:, 2], ref[:, 2], invert=True)],
                 "empty": np.zeros((0, 4))}
        for name, est in cases.items():
            fast, slow = evaluate_notes_fast(ref, est, n), evaluate_notes(ref, est, n)
            for key in METRICS:
                assert fast[key] == pytest.approx(slow[key], abs=1e-12), (it["item"], name, key)
        assert 0 < evaluate_notes(ref, cases["flood"], n)["note_recall"] < 1
        assert evaluate_notes(ref, cases["exact"], n)["note_f1"] == 1.0

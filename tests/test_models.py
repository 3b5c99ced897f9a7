import numpy as np
import pytest

from pianolib.models import (
    ARCHITECTURES,
    build_model,
    inference_function,
    load_model,
    series_timedistributed_model,
)
from pianolib.train import get_strategy, reset_rows, streaming_batches, train_model


@pytest.mark.parametrize("kind", ARCHITECTURES)
def test_every_builder_has_the_contract_and_trains_one_step(kind, capsys):
    model = build_model(kind, units=16, verbose=True)
    assert f"{kind}: " in capsys.readouterr().out  # prints its parameter count
    for frames in (7, 100):
        out = model(np.random.rand(2, frames, 264).astype("float32"))
        assert tuple(out.shape) == (2, frames, 88)
        assert float(np.min(out)) >= 0 and float(np.max(out)) <= 1
    x = np.random.rand(4, 20, 264).astype("float32")
    y = (np.random.rand(4, 20, 88) > 0.9).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    hist = train_model(model, x, y, x, y, epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))


def test_save_and_load_keras_file(tmp_path):
    model = build_model("bilstm", units=8)
    x = np.random.rand(1, 30, 264).astype("float32")
    model.save(tmp_path / "m.keras")
    back = load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(back(x)), np.asarray(model(x)), atol=1e-6)


def test_inference_on_several_lengths_matches_eager_call():
    """The brief's pitfall: outputs must not depend on the lengths seen before."""
    model = build_model("bilstm", units=16)
    infer = inference_function(model)
    for frames in (1100, 37, 500, 1):
        x = np.random.rand(3, frames, 264).astype("float32")
        ref = np.asarray(model(x, training=False))
        np.testing.assert_allclose(infer(x).numpy(), ref, atol=1e-5)
        np.testing.assert_allclose(model.predict(x, verbose=0), ref, atol=1e-5)


def test_timedistributed_head_is_the_same_math_as_dense():
    series = series_timedistributed_model(units=8)
    ours = build_model("bilstm", units=8)
    ours.set_weights(series.get_weights())
    x = np.random.rand(2, 50, 264).astype("float32")
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(series(x)), atol=1e-6)


def test_stateful_needs_fixed_shapes_and_one_direction():
    with pytest.raises(ValueError, match="fixed"):
        build_model("lstm", stateful=True)
    with pytest.raises(ValueError, match="one-directional"):
        build_model("bilstm", stateful=True, batch_size=2, seq_len=10)


def test_streaming_layout_rows_continue_their_piece():
    lengths = [5, 3, 4, 1]  # chunks per piece
    ids, resets = streaming_batches(lengths, batch_size=2)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    piece_of = np.repeat(np.arange(len(lengths)), lengths)
    seen = sorted(ids[ids >= 0].tolist())
    assert seen == list(range(sum(lengths)))  # every chunk exactly once
    for row in range(2):
        lane = ids[:, row]
        for t in range(1, len(lane)):
            if lane[t] < 0:
                continue
            if resets[t, row]:
                assert lane[t] in starts  # a reset only where a piece starts
            else:
                # row i of batch t continues row i of batch t-1: next chunk of the same piece
                assert lane[t] == lane[t - 1] + 1 and piece_of[lane[t]] == piece_of[lane[t - 1]]
    assert resets[0].all()


def test_reset_rows_zeroes_only_those_rows():
    model = build_model("lstm", units=4, stateful=True, batch_size=3, seq_len=5)
    model(np.random.rand(3, 5, 264).astype("float32"))
    reset_rows(model, np.array([False, True, False]))
    lstm = next(layer for layer in model.layers if getattr(layer, "stateful", False))
    for state in lstm.states:
        s = np.asarray(state)
        assert np.all(s[1] == 0) and np.any(s[0] != 0) and np.any(s[2] != 0)


def test_strategy_path_runs_on_one_cpu_device():
    strategy = get_strategy("/cpu:0")
    with strategy.scope():
        model = build_model("cnn")
    x = np.random.rand(4, 10, 264).astype("float32")
    y = np.zeros((4, 10, 88), "float32")
    hist = train_model(model, x, y, x, y, epochs=1, batch_size=2, verbose=0, strategy=strategy)
    assert np.isfinite(hist.history["val_loss"][0])


@pytest.mark.parametrize("layout", ["streaming", "series"])
def test_train_streaming_runs_both_layouts(layout):
    from pianolib.train import train_streaming

    model = build_model("lstm", units=8, stateful=True, batch_size=3, seq_len=10)
    x = np.random.rand(7, 10, 264).astype("float32")
    y = (np.random.rand(7, 10, 88) > 0.9).astype("float32")
    losses = train_streaming(model, x, y, [4, 2, 1], epochs=2, layout=layout, pos_weight=2.0,
                             verbose=False)
    assert len(losses) == 2 and all(np.isfinite(losses))


def test_series_layout_jumps_ahead_by_the_batch_size():
    from pianolib.train import series_batches

    ids, resets = series_batches([25], batch_size=10)
    assert ids[:, 0].tolist() == [0, 10, 20]  # row 0: 0 s, 10 s, 20 s
    assert ids[2, 5:].tolist() == [-1] * 5 and resets[0].all() and not resets[1].any()


def test_train_command_trains_both_models_and_tunes_the_decoder(tmp_path):
    """The path that made the shipped weights, on a tiny copy of the sample clips."""
    import json

    from conftest import tiny_dataset

    from pianolib.__main__ import main
    from pianolib.transcribe import Transcriber

    data = tiny_dataset(tmp_path)
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(out), "--arch", "lstm", "--units", "8",
            "--epochs", "1", "--batch-size", "8"]
    assert main(args) == 0
    report = json.loads((out / "train.json").read_text())
    assert set(report["models"]) == {"onset", "length"}
    assert json.loads((out / "decoder.json").read_text())["decoder"] in ("ours", "series")
    assert Transcriber(out).probabilities(np.zeros((30, 264), "float32"))[0].shape == (30, 88)
    assert main(args) == 1  # models exist: refuses without --force


def test_time_budget_stops_before_an_epoch_that_would_overrun():
    import time as _time

    from pianolib.train import TimeBudget

    class Fake:
        stop_training = False

    cb = TimeBudget(minutes=0.5 / 60, slack=0.0)  # a 0.5 s budget
    cb.set_model(Fake())
    cb.on_train_begin()
    _time.sleep(0.15)
    cb.on_epoch_end(0)          # 0.15 s done, the next ends at ~0.3 s: go on
    assert not cb.model.stop_training
    _time.sleep(0.15)
    cb.on_epoch_end(1)          # 0.3 s done, the next would end at ~0.45 s: go on
    assert not cb.model.stop_training
    _time.sleep(0.15)
    cb.on_epoch_end(2)          # 0.45 s done, the next would end at ~0.6 s: stop
    assert cb.model.stop_training


def test_harmonic_stack_puts_each_partial_under_its_fundamental():
    """Bin b of channel h holds bin b + shift(h): a note's partials line up with it."""
    from pianolib.models import HarmonicStack, harmonic_shifts

    assert harmonic_shifts() == (-36, 0, 36, 57, 72)  # 36 bins per octave; 3rd: 36 log2 3
    x = np.zeros((1, 2, 264), "float32")
    f0 = 3 * 20 + 1  # centre bin of key 20 (F2)
    for shift in (0, 36, 57, 72):  # a note: fundamental and partials 2-4
        x[0, :, f0 + shift] = 1.0
    stack = np.asarray(HarmonicStack()(x))
    assert stack.shape == (1, 2, 264, 5)
    np.testing.assert_array_equal(stack[0, 0, f0, 1:], 1.0)  # all at the fundamental's bin
    assert stack[0, 0, f0, 0] == 0.0  # nothing an octave below it
    assert stack[0, 0, f0 + 36, 0] == 1.0  # the sub-octave channel of its octave partial
    # bins moved in from beyond the range are the floor, 0
    ramp = np.tile(np.arange(1, 265, dtype="float32"), (1, 1, 1))
    s = np.asarray(HarmonicStack()(ramp))
    assert s[0, 0, -72:, 4].max() == 0 and s[0, 0, :36, 0].max() == 0
    np.testing.assert_array_equal(s[0, 0, :-72, 4], ramp[0, 0, 72:])


def test_bin_contrast_removes_a_gain_and_a_fixed_eq_and_keeps_onsets():
    """BinContrast: each bin minus its moving mean over time; blind to level and colour."""
    from pianolib.models import BinContrast, build_model

    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.9, (2, 120, 264)).astype("float32")
    layer = BinContrast(window=11)
    out = np.asarray(layer(x))
    # frame 60 of bin 5: minus the mean of frames 55..65 (the edges average fewer frames)
    np.testing.assert_allclose(out[0, 60, 5], x[0, 60, 5] - x[0, 55:66, 5].mean(), atol=1e-6)
    np.testing.assert_allclose(out[1, 0, 7], x[1, 0, 7] - x[1, 0:6, 7].mean(), atol=1e-6)
    gain_and_eq = 0.1 + np.linspace(-0.1, 0.05, 264, dtype="float32")  # + dB per bin, scaled
    np.testing.assert_allclose(np.asarray(layer(x + gain_and_eq)), out, atol=1e-5)
    step = np.zeros((1, 40, 264), "float32")
    step[0, 20:, 100] = 0.8  # a note starting at frame 20: the contrast peaks there
    c = np.asarray(layer(step))[0, :, 100]
    assert c.argmax() == 20 and c[:10].max() == 0 and abs(c[-1]) < 1e-6
    assert BinContrast.from_config(layer.get_config()).window == 11
    m = build_model("lcrnn", units=8)
    assert any(isinstance(lay, BinContrast) for lay in m.layers)
    assert m(x[:, :50]).shape == (2, 50, 88)


def test_partial_weight_makes_octave_twelfth_and_double_octave_hard_negatives():
    from pianolib.models import WeightedBCE, partial_mask

    y = np.zeros((1, 3, 88), "float32")
    y[0, 1, 40] = 1.0
    y[0, 1, 52] = 1.0  # a true onset an octave above stays a positive
    mask = np.asarray(partial_mask(y))
    # 40 + 12, 19, 24 and 52 + 12, 19, 24 (64 is both)
    assert set(zip(*np.nonzero(mask[0]))) == {(1, 52), (1, 59), (1, 64), (1, 71), (1, 76)}
    assert mask[0, 0].sum() == 0 and mask[0, 1, 40] == 0
    p = np.full_like(y, 0.3)
    plain = np.asarray(WeightedBCE(5.0)(y, p))
    hard = WeightedBCE(5.0, partial_weight=4.0)
    # 4 hard negatives of frame 1 (59, 64, 71, 76; 52 is a positive) cost 3 times more each
    one = -np.log(0.7) / 88 / 3  # one negative's share of the mean over keys and frames
    np.testing.assert_allclose(float(hard(y, p)) - float(plain), 4 * 3 * one, rtol=1e-5)
    back = WeightedBCE.from_config(hard.get_config())
    assert back.partial_weight == 4.0 and back.pos_weight == 5.0

"""Fast, light transcription: ONNX export/runtime, block-by-block stream, many files, memory."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT

from pianolib.audio import load_audio
from pianolib.config import N_BINS, N_KEYS
from pianolib.errors import PianolibError
from pianolib.features import compute_features
from pianolib.midi import midi_to_notes
from pianolib.runtime import ONNX_NAME, OnnxModels, onnx_status
from pianolib.stream import audio_blocks, feature_blocks, predict_stream
from pianolib.transcribe import DEFAULT_MODELS, SAMPLE_AUDIO, Transcriber, features_in_blocks


def run_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "pianolib", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, **kw)


def lines(text):
    return [ln for ln in text.splitlines() if ln.strip()]


# ---------------------------------------------------------------------------- ONNX export


def test_shipped_export_is_up_to_date_and_agrees_with_keras():
    from pianolib.export import max_difference

    assert onnx_status(DEFAULT_MODELS) == "ok"
    feats = [compute_features(load_audio(p))[:1500] for p in SAMPLE_AUDIO]
    diff = max_difference(DEFAULT_MODELS, lengths=(1, 7, 100, 1100), features=feats)
    assert diff <= 1e-4, diff


def test_export_of_a_new_model_keeps_both_lstm_directions(tmp_path):
    """A freshly built CRNN (random weights) exports to real ONNX LSTM ops, bidirectional, and
    agrees with Keras: a reversed backward direction would differ by far more than 1e-4."""
    import onnx

    from pianolib.export import export_onnx, max_difference
    from pianolib.models import build_model

    for t in ("onset", "length"):
        build_model("crnn", units=16, name=t).save(tmp_path / f"{t}.keras")
    path = export_onnx(tmp_path)
    graph = onnx.load(str(path)).graph
    lstms = [n for n in graph.node if n.op_type == "LSTM"]
    assert len(lstms) == 2
    for n in lstms:
        assert {a.name: a.s for a in n.attribute}["direction"] == b"bidirectional"
    assert [o.name for o in OnnxModels(path).session.get_outputs()] != []
    assert max_difference(tmp_path, lengths=(3, 250)) <= 1e-4
    with pytest.raises(PianolibError, match="already exists"):
        export_onnx(tmp_path)


@pytest.mark.parametrize("arch", ["hcrnn", "lcrnn"])
def test_export_of_a_harmonic_stack_or_contrast_model_agrees_with_keras(tmp_path, arch):
    """The hcrnn's HarmonicStack (pads and slices) and the lcrnn's BinContrast (an average
    pool whose edges average fewer frames) export to ONNX and give Keras' outputs."""
    from pianolib.export import export_onnx, max_difference
    from pianolib.models import build_model

    build_model(arch, units=16, name="onset").save(tmp_path / "onset.keras")
    build_model("crnn", units=16, name="length").save(tmp_path / "length.keras")
    export_onnx(tmp_path)
    assert max_difference(tmp_path, lengths=(1, 250)) <= 1e-4


def test_cli_export_writes_checks_and_never_overwrites(tmp_path):
    for f in ("onset.keras", "length.keras"):
        shutil.copy(DEFAULT_MODELS / f, tmp_path / f)
    res = run_cli("export", tmp_path)
    assert res.returncode == 0, res.stderr
    assert "transcriber.onnx: written" in res.stdout
    diff = float(res.stdout.split("difference:")[1])
    assert diff <= 1e-4
    assert lines(res.stderr) == []  # no TensorFlow / converter chatter
    res = run_cli("export", tmp_path)
    assert res.returncode == 1 and "already exists" in res.stderr and len(lines(res.stderr)) == 1


def test_stale_export_is_noticed_and_keras_is_used(tmp_path, capsys):
    for f in ("onset.keras", "length.keras", ONNX_NAME, "decoder.json"):
        shutil.copy(DEFAULT_MODELS / f, tmp_path / f)
    assert onnx_status(tmp_path) == "ok"
    assert Transcriber(tmp_path).runtime == "onnx"
    from pianolib.models import load_model

    m = load_model(tmp_path / "length.keras")
    m.set_weights([w * 0.5 for w in m.get_weights()])
    m.save(tmp_path / "length.keras")
    assert onnx_status(tmp_path) == "stale"
    tr = Transcriber(tmp_path)
    assert tr.runtime == "keras"
    assert "was made from other .keras files" in capsys.readouterr().err
    with pytest.raises(PianolibError, match="stale"):
        Transcriber(tmp_path, runtime="onnx")


def test_export_alone_transcribes_without_keras_files(tmp_path):
    shutil.copy(DEFAULT_MODELS / ONNX_NAME, tmp_path / ONNX_NAME)
    tr = Transcriber(tmp_path)
    assert tr.runtime == "onnx"
    notes = tr.transcribe_file(SAMPLE_AUDIO[0])
    assert len(notes) > 20


def test_onnx_and_keras_give_the_same_notes():
    onnx_tr, keras_tr = Transcriber(runtime="onnx"), Transcriber(runtime="keras")
    for p in SAMPLE_AUDIO:
        feats = compute_features(load_audio(p))
        a, b = onnx_tr.probabilities(feats), keras_tr.probabilities(feats)
        assert max(np.abs(x - y).max() for x, y in zip(a, b)) <= 1e-4
        np.testing.assert_array_equal(onnx_tr.decode(*a), keras_tr.decode(*b))


# ---------------------------------------------------------------------------- the stream


def test_streamed_audio_equals_load_audio(tmp_path):
    import librosa

    y = load_audio(SAMPLE_AUDIO[1])
    y44 = librosa.resample(y, orig_sr=16000, target_sr=44100)
    sf.write(tmp_path / "st.wav", np.stack([y44, 0.3 * y44], 1), 44100, subtype="FLOAT")
    whole = load_audio(tmp_path / "st.wav")
    for seconds in (0.7, 3.0, 100.0):
        streamed = np.concatenate(list(audio_blocks(tmp_path / "st.wav", block_seconds=seconds)))
        assert len(streamed) == len(whole)
        np.testing.assert_allclose(streamed, whole, atol=1e-6)


def reference_block_features(y, block_seconds=20.0, context_seconds=2.0):
    """The block CQT as first written, on the whole array (with the last frame of an exact
    multiple of a block filled, which the first version left uninitialised)."""
    n_frames = 1 + len(y) // 160
    block = int(block_seconds * 16000) // 160 * 160
    ctx = int(context_seconds * 16000) // 160 * 160
    if len(y) <= block + ctx:
        return compute_features(y)
    out = np.full((n_frames, N_BINS), np.nan, np.float32)
    for start in range(0, n_frames * 160, block):
        lo = max(start - ctx, 0)
        f = compute_features(y[lo: start + block + ctx])
        first, f0 = (start - lo) // 160, start // 160
        count = min(block // 160, n_frames - f0)
        out[f0: f0 + count] = f[first: first + count]
    assert not np.isnan(out).any()
    return out


@pytest.mark.parametrize("n", [1, 100, 320_000, 352_000, 352_160, 640_000, 640_005, 700_000])
def test_streamed_features_equal_block_features(n):
    """Any split of the audio gives the frames of the whole-array block CQT, including exact
    multiples of a block."""
    y = np.resize(load_audio(SAMPLE_AUDIO[2]), n).astype(np.float32)
    ref = reference_block_features(y)
    np.testing.assert_array_equal(features_in_blocks(y, transform=compute_features), ref)
    assert len(ref) == 1 + n // 160
    rng = np.random.default_rng(n)
    cuts = np.sort(rng.integers(0, n, 5))
    got = np.concatenate(list(feature_blocks(np.split(y, cuts), transform=compute_features)))
    np.testing.assert_array_equal(got, ref)
    if n <= 352_000:  # one block: exactly the whole-signal CQT
        np.testing.assert_array_equal(got, compute_features(y))
    else:  # blocks with 2 s of context: equal to the whole-signal CQT within 1e-4 (log scale)
        np.testing.assert_allclose(got[:3000], compute_features(y)[:3000], atol=2e-3)


def test_fast_cqt_equals_librosa_within_1e_4():
    """The transcription path's CQT (no librosa import) against librosa's, on every sample clip
    and on noise, magnitudes and the log features the models see; and the shipped filter file
    is what librosa builds today."""
    from pianolib.fastcqt import FILTERS_PATH, build_filters, fast_cqt, fast_features
    from pianolib.features import cqt

    rng = np.random.default_rng(0)
    signals = [load_audio(p) for p in SAMPLE_AUDIO] + [
        rng.normal(0, 0.1, 16000 * 7).astype(np.float32), np.zeros(500, np.float32)]
    for y in signals:
        ref, got = cqt(y), fast_cqt(y)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-2, atol=1e-6)
        assert np.abs(fast_features(y) - compute_features(y)).max() <= 1e-4
    shipped = dict(np.load(FILTERS_PATH))
    fresh = build_filters(None)
    assert set(shipped) == set(fresh)
    for k in fresh:
        np.testing.assert_allclose(shipped[k], fresh[k], rtol=1e-6, atol=1e-9)


def test_transcription_path_does_not_import_librosa(tmp_path):
    code = ("import sys\n"
            "from pianolib.__main__ import main\n"
            f"rc = main(['transcribe', r'{SAMPLE_AUDIO[0]}', '-o', r'{tmp_path / 'a.mid'}'])\n"
            "assert rc == 0\n"
            "heavy = [m for m in ('librosa', 'tensorflow', 'keras', 'numba') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr


def test_memoised_cqt_filters_give_librosa_values():
    import librosa.core.constantq as cq

    y = load_audio(SAMPLE_AUDIO[0])[: 16000 * 5]
    memo = compute_features(y)
    fn = cq.__dict__["__vqt_filter_fft"]
    assert fn._pianolib_memo
    setattr(cq, "__vqt_filter_fft", fn._pianolib_original)
    try:
        np.testing.assert_array_equal(memo, compute_features(y))
    finally:
        setattr(cq, "__vqt_filter_fft", fn)


def reference_windows(fn, features, window=1000, context=50, batch=2):
    """The windowing as first written: the whole padded array in memory."""
    n = len(features)
    n_win = -(-n // window)
    padded = np.zeros((n_win * window + 2 * context, N_BINS), np.float32)
    padded[context: context + n] = features
    out = []
    for w in range(n_win):
        x = padded[w * window: w * window + window + 2 * context][None]
        out.append(fn(x)[0][0, context: context + window])
    return np.concatenate(out)[:n]


@pytest.mark.parametrize("n", [1, 999, 1000, 1001, 2050, 4321])
def test_streamed_windows_equal_whole_array_windows(n):
    rng = np.random.default_rng(n)
    feats = rng.uniform(0, 1, (n, N_BINS)).astype(np.float32)
    w = rng.normal(size=(N_BINS, N_KEYS)).astype(np.float32) / 30

    def fn(x):  # a model with memory across frames: a running mean over time
        return [np.cumsum(x @ w, axis=1) / np.arange(1, x.shape[1] + 1)[None, :, None]]

    ref = reference_windows(fn, feats)
    cuts = np.sort(rng.integers(0, n, 4))
    got = predict_stream(fn, np.split(feats, cuts), 1, batch_size=3, expected_frames=10)[0]
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


def test_prefetch_passes_errors_to_the_caller():
    from pianolib.stream import prefetch

    def broken():
        yield 1
        raise ValueError("block 2 is bad")

    it = prefetch(broken())
    assert next(it) == 1
    with pytest.raises(ValueError, match="block 2"):
        next(it)


# ---------------------------------------------------------------------------- the command


def test_importing_pianolib_and_help_do_not_load_tensorflow():
    code = ("import sys, pianolib, pianolib.transcribe, pianolib.stream, pianolib.batch\n"
            "from pianolib.__main__ import build_parser\n"
            "build_parser()\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    res = run_cli("transcribe", "--help")
    assert res.returncode == 0 and "glob" in res.stdout


def test_bad_input_refused_fast_with_one_line(tmp_path):
    (tmp_path / "notes.txt.wav").write_text("this is not audio")
    t0 = time.perf_counter()
    res = run_cli("transcribe", tmp_path / "notes.txt.wav", "-o", tmp_path / "x.mid")
    elapsed = time.perf_counter() - t0
    assert res.returncode == 1
    assert len(lines(res.stderr)) == 1 and "not a readable audio file" in res.stderr
    assert elapsed < 1.5, elapsed  # < 1 s on a quiet machine; CI runs other work beside it
    assert not (tmp_path / "x.mid").exists()


def test_transcription_prints_no_tensorflow_noise(tmp_path):
    res = run_cli("transcribe", SAMPLE_AUDIO[0], "-o", tmp_path / "a.mid", "--runtime", "keras")
    assert res.returncode == 0, res.stderr
    assert lines(res.stderr) == [], res.stderr


@pytest.fixture
def recordings(tmp_path):
    """A folder tree of recordings, one of them not audio."""
    root = tmp_path / "takes"
    (root / "day2").mkdir(parents=True)
    shutil.copy(SAMPLE_AUDIO[0], root / "a.flac")
    shutil.copy(SAMPLE_AUDIO[1], root / "day2" / "b.flac")
    shutil.copy(SAMPLE_AUDIO[0], root / "day2" / "a.flac")  # same name, other folder
    (root / "day2" / "broken.wav").write_bytes(b"RIFF not really a wave file")
    (root / "notes.txt").write_text("not taken: not an audio suffix")
    return root


def test_many_files_one_failing_mirrored_names(recordings, tmp_path):
    out = tmp_path / "midi"
    res = run_cli("transcribe", recordings, "-o", out, "--no-progress")
    assert res.returncode == 1  # one file failed
    err = lines(res.stderr)
    assert len(err) == 1 and "broken.wav" in err[0] and err[0].startswith("error: ")
    assert "transcribed 3 of 4 files, 1 failed" in res.stdout
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*.mid"))
    assert made == ["a.mid", "day2/a.mid", "day2/b.mid"]
    for p in out.rglob("*.mid"):
        assert len(midi_to_notes(p)) > 20
    # never overwrite: every output is checked before anything runs
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.mid")}
    res = run_cli("transcribe", recordings, "-o", out)
    assert res.returncode == 1 and "already exists (and 2 more)" in res.stderr
    assert len(lines(res.stderr)) == 1
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mid")} == before
    res = run_cli("transcribe", recordings, "-o", out, "--force", "--no-progress")
    assert "transcribed 3 of 4" in res.stdout


def test_a_damaged_file_fails_alone(recordings, tmp_path):
    """A truncated FLAC passes the header check and fails while decoding: reported in one
    line, the other files are done. One bad file given alone: exactly one line."""
    data = (recordings / "a.flac").read_bytes()
    (recordings / "cut.flac").write_bytes(data[: len(data) // 2])
    (recordings / "day2" / "broken.wav").unlink()
    (recordings / "._a.flac").write_bytes(b"macOS resource fork, not audio")  # skipped
    res = run_cli("transcribe", recordings, "-o", tmp_path / "o", "--no-progress")
    assert res.returncode == 1
    err = lines(res.stderr)
    assert len(err) == 1 and "cut.flac" in err[0], res.stderr
    assert "transcribed 3 of 4 files, 1 failed" in res.stdout
    res = run_cli("transcribe", recordings / "cut.flac", "-o", tmp_path / "cut.mid")
    assert res.returncode == 1 and len(lines(res.stderr)) == 1, res.stderr
    assert "cut.flac" in res.stderr and not (tmp_path / "cut.mid").exists()
    sf.write(tmp_path / "nan.wav", np.array([0.0, np.nan, 0.1] * 1000, np.float32), 16000,
             subtype="FLOAT")
    res = run_cli("transcribe", tmp_path / "nan.wav", "-o", tmp_path / "nan.mid")
    assert res.returncode == 1 and len(lines(res.stderr)) == 1 and "NaN" in res.stderr


def test_globs_and_file_lists(recordings, tmp_path):
    res = run_cli("transcribe", f"{recordings}/**/*.flac", "-o", tmp_path / "g", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "g").rglob("*.mid")) == ["a.mid", "a.mid", "b.mid"]
    res = run_cli("transcribe", recordings / "a.flac", recordings / "day2" / "a.flac",
                  "-o", tmp_path / "clash")
    assert res.returncode == 1 and "would be written" in res.stderr
    res = run_cli("transcribe", f"{recordings}/*.mp3", "-o", tmp_path / "none")
    assert res.returncode == 1 and "no audio files match" in res.stderr
    res = run_cli("transcribe", recordings, "-o", tmp_path / "new.mid")
    assert res.returncode == 1 and "need an output folder" in res.stderr
    (tmp_path / "file.mid").write_text("x")
    res = run_cli("transcribe", recordings, "-o", tmp_path / "file.mid")
    assert res.returncode == 1 and "must be a folder" in res.stderr


def test_parallel_jobs_give_the_same_files(recordings, tmp_path):
    from pianolib.batch import expand_inputs, plan_outputs, transcribe_many

    (recordings / "day2" / "broken.wav").unlink()
    tr = Transcriber()
    one = transcribe_many(plan_outputs(expand_inputs([recordings]), tmp_path / "j1"), tr,
                          progress=False)
    two = transcribe_many(plan_outputs(expand_inputs([recordings]), tmp_path / "j2"), tr,
                          progress=False, jobs=2)
    assert len(one.done) == len(two.done) == 3 and not two.failed
    for _, midi, _ in one.done:
        rel = midi.relative_to(tmp_path / "j1")
        np.testing.assert_allclose(midi_to_notes(midi), midi_to_notes(tmp_path / "j2" / rel),
                                   atol=1e-3)


# ---------------------------------------------------------------------------- memory


def peak_of_transcription(audio: Path, out: Path) -> tuple[float, subprocess.CompletedProcess]:
    from pianolib.speed import run_process

    r = run_process([sys.executable, "-m", "pianolib", "transcribe", str(audio), "-o", str(out),
                     "--no-progress"])
    return r["peak_mb"], r


@pytest.mark.slow
def test_sixty_minutes_of_44k_stereo_within_one_gigabyte(tmp_path):
    from pianolib.speed import make_recording

    wav = make_recording(tmp_path / "hour.wav", 3600)  # 635 MB of 16-bit stereo
    peak, r = peak_of_transcription(wav, tmp_path / "hour.mid")
    wav.unlink()
    assert r["rc"] == 0, r["stderr"]
    print(f"peak memory, 60 min of 44.1 kHz stereo: {peak:.0f} MB in {r['seconds']:.0f} s")
    assert 100 < peak <= 1000, peak
    notes = midi_to_notes(tmp_path / "hour.mid")
    assert len(notes) > 20_000 and notes[:, 0].max() > 3590  # the whole hour (~28k notes)


def test_five_minutes_within_600_megabytes(tmp_path):
    from pianolib.speed import make_recording

    wav = make_recording(tmp_path / "five.wav", 300)
    peak, r = peak_of_transcription(wav, tmp_path / "five.mid")
    assert r["rc"] == 0, r["stderr"]
    print(f"peak memory, 5 min of 44.1 kHz stereo: {peak:.0f} MB in {r['seconds']:.1f} s")
    assert 100 < peak <= 600, peak


# ---------------------------------------------------------------------------- speed


def test_speed_measurement_small(tmp_path):
    """The speed command's machinery on small files: rows, stage split, written outputs."""
    from pianolib.speed import STAGES, write_speed

    md = write_speed(tmp_path, seconds=20, many=(2, 5.0), repeats=1, basic_pitch=False,
                     memory_minutes=None)
    import json

    result = json.loads((tmp_path / "speed.json").read_text())
    tasks = {r["task"]: r for r in result["rows"] if r["system"] == "pianolib"}
    assert set(tasks) == {"1 file", "2 files"}
    for r in tasks.values():
        assert r["speed_x"] > 0 and 50 < r["peak_mb"] < 2000
    st = result["stages"]
    assert all(st[k] >= 0 for k in STAGES) and st["cqt"] > 0 and st["models"] > 0
    assert "| pianolib | 1 file | 20 |" in md
    with pytest.raises(PianolibError, match="already exists"):
        write_speed(tmp_path, seconds=20, many=(2, 5.0), repeats=1, basic_pitch=False)


def test_readme_speed_table_is_the_measured_one():
    from conftest import assert_readme_has_table

    assert_readme_has_table("data/bench/speed.md", 4)

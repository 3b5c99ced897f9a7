"""End to end with the shipped models in data/models: transcribe, evaluate, bad inputs."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, SAMPLE_DIR

from pianolib.audio import load_audio
from pianolib.errors import PianolibError
from pianolib.evaluate import evaluate_folder, evaluate_notes, read_tsv_notes
from pianolib.midi import midi_to_notes
from pianolib.transcribe import DEFAULT_MODELS, Transcriber, features_in_blocks, transcribe

#: The shipped models' scores on the committed sample clips, measured by
#: `python -m pianolib evaluate data/sample --json data/models/sample_scores.json --force`;
#: the README quotes the same file (test_readme_quotes_the_measured_sample_scores).
MEASURED = json.loads((DEFAULT_MODELS / "sample_scores.json").read_text())
ROOT_PATH = Path(ROOT)
#: A regression bigger than this fails (CPU threads may change the last digits, not more).
MARGIN = 0.02


@pytest.fixture(scope="module")
def transcriber():
    return Transcriber()


def run_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "pianolib", *args], capture_output=True,
                          text=True, cwd=ROOT, **kw)


def test_shipped_models_exist():
    assert (DEFAULT_MODELS / "onset.keras").is_file()
    assert (DEFAULT_MODELS / "length.keras").is_file()


def check_sample_scores(transcriber):
    summary = evaluate_folder(SAMPLE_DIR, transcriber, split="test", progress=False)
    assert summary["pieces"] == 3
    for k in ("note_f1", "note_offset_f1", "frame_f1"):
        assert abs(summary[k] - MEASURED[k]) <= MARGIN, (k, summary[k], MEASURED[k])


def test_transcribe_sample_and_score_as_measured(transcriber):
    check_sample_scores(transcriber)


def test_a_worse_decoder_fails_the_score_check(transcriber, monkeypatch):
    """The check above can fail: a decoder that loses every fifth note and starts notes 30 ms
    late (a plausible off-by-three-frames bug) is caught."""
    import pianolib.transcribe as tmod

    real = tmod.decode_notes

    def worse(*a, **k):
        notes = real(*a, **k)
        notes = notes[np.arange(len(notes)) % 5 != 0].copy()
        notes[:, 0] += 0.03
        return notes

    monkeypatch.setattr(tmod, "decode_notes", worse)
    with pytest.raises(AssertionError):
        check_sample_scores(transcriber)


def test_readme_quotes_the_measured_sample_scores():
    readme = (ROOT_PATH / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| sample | pianolib |"))
    assert f"| {MEASURED['note_f1']:.4f} | {MEASURED['note_offset_f1']:.4f} |" in row, row


def test_cli_transcribe_writes_midi_that_reads_back(tmp_path):
    audio = f"{SAMPLE_DIR}/audio/m21-bach-bwv66_6.flac"
    out = tmp_path / "bach.mid"
    res = run_cli("transcribe", audio, "-o", str(out))
    assert res.returncode == 0, res.stderr
    notes = midi_to_notes(out)
    assert len(notes) > 50
    ref = midi_to_notes(f"{SAMPLE_DIR}/midi/m21-bach-bwv66_6.mid", sustain=True)
    assert evaluate_notes(ref, notes)["note_f1"] > 0.5
    # never overwrite without --force
    res = run_cli("transcribe", audio, "-o", str(out))
    assert res.returncode == 1 and "already exists" in res.stderr and "--force" in res.stderr
    assert res.stderr.count("\n") == 1


@pytest.mark.parametrize("case", ["not_audio", "missing_audio", "missing_model", "bad_out",
                                  "directory", "zero_bytes"])
def test_cli_bad_inputs_give_one_line_errors(tmp_path, case):
    audio = f"{SAMPLE_DIR}/audio/gen-sample-0.flac"
    out = str(tmp_path / "x.mid")
    args = ["transcribe", audio, "-o", out]
    if case == "not_audio":
        (tmp_path / "text.wav").write_text("hello")
        args[1] = str(tmp_path / "text.wav")
    elif case == "missing_audio":
        args[1] = str(tmp_path / "nope.flac")
    elif case == "missing_model":
        args += ["--models", str(tmp_path)]
    elif case == "directory":
        args[1] = str(tmp_path)
    elif case == "zero_bytes":
        (tmp_path / "empty.flac").write_bytes(b"")
        args[1] = str(tmp_path / "empty.flac")
    else:
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro" / "sub").write_text("a file, not a folder")
        args[3] = str(tmp_path / "ro" / "sub" / "x.mid")
    res = run_cli(*args)
    assert res.returncode == 1
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    expected = {"not_audio": "not a readable audio file", "missing_audio": "audio file not found",
                "missing_model": "onset.keras", "bad_out": "sub",
                "directory": "no audio files in this folder",
                "zero_bytes": "empty file (0 bytes)"}[case]
    assert expected in lines[0]
    assert not (tmp_path / "x.mid").exists()


@pytest.mark.parametrize("exc, code, text", [
    (KeyboardInterrupt(), 130, "interrupted (Ctrl-C)"),
    (OSError(28, "No space left on device", "/data/out.mid"), 1,
     "error: /data/out.mid: No space left on device"),
])
def test_cli_ctrl_c_and_system_errors_are_one_line(monkeypatch, capsys, exc, code, text):
    import pianolib.__main__ as cli

    def boom(a):
        raise exc

    monkeypatch.setattr(cli, "_cmd_summary", boom)
    parser = cli.build_parser

    def patched():
        p = parser()
        sub = next(a for a in p._actions if a.dest == "command").choices
        sub["summary"].set_defaults(func=boom)
        return p

    monkeypatch.setattr(cli, "build_parser", patched)
    assert cli.main(["summary", "x"]) == code
    err = capsys.readouterr().err
    assert err.strip() == err.strip().splitlines()[0] and text in err


def test_check_audio_for_arrays_and_an_empty_recording(transcriber):
    from pianolib.audio import check_audio
    from pianolib.errors import AudioError

    with pytest.raises(AudioError, match="NaN or infinite"):
        transcriber.transcribe_audio(np.array([0.0, np.nan, 0.1]))
    with pytest.raises(AudioError, match="mono"):
        check_audio(np.zeros((2, 100)))
    with pytest.warns(UserWarning, match="no audio samples"):
        assert len(transcriber.transcribe_audio(np.zeros(0))) == 0


def test_decoder_json_is_checked_and_explicit_settings_win(tmp_path, transcriber):
    import shutil

    for name in ("onset.keras", "length.keras"):
        shutil.copy(DEFAULT_MODELS / name, tmp_path / name)
    (tmp_path / "decoder.json").write_text('{"onset_threshold": 0.7, "min_frames": 2}')
    tr = Transcriber(tmp_path, onset_threshold=0.4, onset_model=transcriber.onset_model,
                     length_model=transcriber.length_model)
    assert (tr.onset_threshold, tr.min_frames, tr.length_threshold) == (0.4, 2, 0.3)
    for bad, msg in [('{"onset_threshold": 1.5}', "between 0 and 1"),
                     ('{"min_frames": "3"}', "whole number"), ('{"decoder": "x"}', "decoder"),
                     ('{"partial_onset": 1}', "partial_onset"), ("not json", "not valid JSON")]:
        (tmp_path / "decoder.json").write_text(bad)
        with pytest.raises(PianolibError, match=msg):
            Transcriber(tmp_path, onset_model=transcriber.onset_model,
                        length_model=transcriber.length_model)


def test_partial_onset_of_decoder_json_reaches_the_decoder(tmp_path, transcriber):
    """decoder.json's partial_onset is what Transcriber.decode uses (and it changes notes)."""
    import shutil

    from pianolib.decode import decode_notes

    for name in ("onset.keras", "length.keras"):
        shutil.copy(DEFAULT_MODELS / name, tmp_path / name)
    (tmp_path / "decoder.json").write_text('{"partial_onset": 0.95, "onset_threshold": 0.3}')
    tr = Transcriber(tmp_path, onset_model=transcriber.onset_model,
                     length_model=transcriber.length_model)
    assert tr.partial_onset == 0.95
    features = np.load(f"{SAMPLE_DIR}/features/m21-joplin-maple_leaf_rag.npz")["features"]
    po, pl = tr.probabilities(features)
    with_rule = tr.decode(po, pl)
    kw = dict(min_frames=tr.min_frames, reonset=tr.reonset)
    assert np.array_equal(with_rule, decode_notes(po, pl, 0.3, tr.length_threshold,
                                                  partial_onset=0.95, **kw))
    assert len(with_rule) < len(decode_notes(po, pl, 0.3, tr.length_threshold, **kw))


def test_silence_gives_empty_midi_and_short_file_works(transcriber, tmp_path):
    sf.write(tmp_path / "silence.wav", np.zeros(16000 * 3), 16000)
    assert len(transcribe(tmp_path / "silence.wav", tmp_path / "s.mid",
                          transcriber=transcriber)) == 0
    assert midi_to_notes(tmp_path / "s.mid").shape == (0, 4)
    y = load_audio(f"{SAMPLE_DIR}/audio/gen-sample-0.flac")[: int(0.2 * 16000)]
    sf.write(tmp_path / "short.wav", np.stack([y, y], 1), 16000)  # stereo, 0.2 s
    notes = transcribe(tmp_path / "short.wav", tmp_path / "short.mid", transcriber=transcriber)
    assert notes.shape[1] == 4 and (len(notes) == 0 or notes[:, 1].max() <= 0.3)


def test_any_rate_and_length_give_consistent_notes(transcriber, tmp_path):
    """Inference on several lengths: a clip and its first half agree on the first half."""
    y = load_audio(f"{SAMPLE_DIR}/audio/m21-bach-bwv66_6.flac")
    full = transcriber.transcribe_audio(y)
    half = transcriber.transcribe_audio(y[: len(y) // 2])
    t_half = len(y) / 2 / 16000 - 1.0
    a, b = full[full[:, 0] < t_half], half[half[:, 0] < t_half]
    assert evaluate_notes(a, b)["note_f1"] > 0.95
    sf.write(tmp_path / "x44.wav", np.stack([y, y], 1), 16000)
    import librosa

    y44 = librosa.resample(y, orig_sr=16000, target_sr=44100)
    sf.write(tmp_path / "x44.wav", np.stack([y44, y44], 1), 44100)
    assert evaluate_notes(full, transcriber.transcribe_file(tmp_path / "x44.wav"))["note_f1"] > 0.9


def test_block_features_equal_whole_file_features():
    y = load_audio(f"{SAMPLE_DIR}/audio/m21-joplin-maple_leaf_rag.flac")
    from pianolib.features import compute_features

    np.testing.assert_allclose(features_in_blocks(y, block_seconds=5.0), compute_features(y),
                               atol=2e-3)


def test_maps_style_tsv_labels(tmp_path):
    p = tmp_path / "x.tsv"
    p.write_text("onset\toffset\tnote\tvelocity\n0.5\t1.0\t60\t80\n0.1\t0.2\t21\t30\n")
    np.testing.assert_allclose(read_tsv_notes(p), [[0.1, 0.2, 21, 30], [0.5, 1.0, 60, 80]])


def test_evaluate_perfect_and_empty():
    ref = np.array([[0.1, 0.5, 60, 80], [0.2, 0.9, 64, 80]])
    s = evaluate_notes(ref, ref)
    assert s["note_f1"] == s["note_offset_f1"] == s["frame_f1"] == 1.0
    shifted = ref + [0.06, 0.06, 0, 0]  # onsets 60 ms late: wrong by the 50 ms rule
    assert evaluate_notes(ref, shifted)["note_f1"] == 0.0
    assert evaluate_notes(ref, np.zeros((0, 4)))["note_f1"] == 0.0


def test_unreadable_folder():
    with pytest.raises(PianolibError, match="not found"):
        evaluate_folder("/nonexistent/folder", transcriber=object())


def test_frame_scores_agree_with_mir_eval_multipitch():
    import mir_eval

    from pianolib.evaluate import _roll_to_mir, frame_scores

    rng = np.random.default_rng(3)
    ref = rng.random((300, 88)) > 0.95
    est = ref ^ (rng.random((300, 88)) > 0.97)
    p, r, _ = frame_scores(ref, est)
    m = mir_eval.multipitch.evaluate(*_roll_to_mir(ref), *_roll_to_mir(est))
    assert p == pytest.approx(m["Precision"]) and r == pytest.approx(m["Recall"])


def test_evaluate_checks_split_labels_and_output_before_work(tmp_path, transcriber):
    with pytest.raises(PianolibError, match=r"no split 'tset'; it has test"):
        evaluate_folder(SAMPLE_DIR, transcriber, split="tset", progress=False)
    (tmp_path / "old.csv").write_text("keep me")
    with pytest.raises(PianolibError, match="already exists"):
        evaluate_folder(SAMPLE_DIR, transcriber, out_csv=tmp_path / "old.csv", progress=False)
    assert (tmp_path / "old.csv").read_text() == "keep me"
    # one bad label file and one unreadable audio file are skipped, the rest is scored
    import shutil

    d = tmp_path / "set"
    (d / "a").mkdir(parents=True)
    (d / "b").mkdir()
    shutil.copy(f"{SAMPLE_DIR}/audio/gen-sample-0.flac", d / "a" / "clip.flac")
    shutil.copy(f"{SAMPLE_DIR}/midi/gen-sample-0.mid", d / "a" / "clip.mid")
    shutil.copy(f"{SAMPLE_DIR}/audio/m21-bach-bwv66_6.flac", d / "b" / "clip.flac")
    (d / "b" / "clip.tsv").write_text("0.1\t0.05\t60\t80\n")  # offset before onset
    (d / "c.wav").write_text("not audio")
    (d / "c.tsv").write_text("0.1\t0.5\t60\t80\n")
    with pytest.warns(UserWarning) as rec:
        s = evaluate_folder(d, transcriber, out_csv=tmp_path / "new.csv", progress=False)
    msgs = " ".join(str(w.message) for w in rec)
    assert "b/clip.tsv:1: offset" in msgs and "c.wav: not a readable audio file" in msgs
    assert s["pieces"] == 1 and (tmp_path / "new.csv").read_text().count("\n") == 2

"""Failure analysis on hand-made note lists whose answer is known (pianolib.failures)."""

import json

import numpy as np
import pytest

from pianolib import failures as F

# true notes: C3 and C4 held 0-1 s, C5 at 2-3 s (onset s, offset s, MIDI pitch, velocity)
REF = np.array([[0.0, 1.0, 48, 80], [0.0, 1.0, 60, 80], [2.0, 3.0, 72, 80]])
# each estimate below is built to be one kind of error (the first one is right)
EST = np.array([
    [0.00, 1.00, 60, 80],   # C4: matched
    [0.50, 0.70, 60, 70],   # C4 again while C4 sounds: repeat
    [0.00, 0.50, 61, 70],   # C#4 while C4 sounds: semitone
    [0.01, 0.50, 72, 70],   # C5 = C4 + 12: octave
    [0.01, 0.50, 67, 70],   # G4 = C3 + 19: twelfth
    [0.02, 0.50, 84, 70],   # C6 = C4 + 24: double octave
    [0.02, 0.50, 76, 70],   # E5 = C3 + 28: 5th partial, other harmonic
    [2.00, 2.50, 36, 70],   # C2 below the only sounding note (C5): below
    [2.00, 2.50, 79, 70],   # G5 = C5 + 7: other
    [5.00, 5.50, 60, 70],   # nothing sounds at 5 s: none sounding
])
KIND_OF_EST = ["repeat", "semitone", "octave", "twelfth", "double octave", "other harmonic",
               "below", "other", "none sounding"]


def test_each_kind_of_extra_note_on_hand_made_notes():
    found = F.extra_notes(REF, EST)
    assert list(found["kind"]) == KIND_OF_EST
    np.testing.assert_array_equal(found["extra"], EST[1:])
    # C3 (48) and C5 at 2 s (72) were never written with their onset: missed
    np.testing.assert_array_equal(found["missed"][:, 2], [48, 72])
    for note, kind in zip(found["extra"], found["kind"]):
        assert F.classify_extra_note(note[2], F.sounding_pitches(note[0], REF)) == kind


def test_priority_same_pitch_before_semitone_before_partials():
    # an extra C4 over C4, C#4 and C3: a repeat, though it is also a semitone and an octave away
    assert F.classify_extra_note(60, [61, 60, 48]) == "repeat"
    assert F.classify_extra_note(60, [61, 48]) == "semitone"
    assert F.classify_extra_note(67, [48, 60]) == "twelfth"   # +19 over C3, +7 over C4
    assert F.classify_extra_note(72, [48, 60]) == "octave"    # +24 over C3, +12 over C4
    assert F.classify_extra_note(40, [60, 64]) == "below"
    assert F.classify_extra_note(66, [60, 80]) == "other"     # +6 over C4, below 80
    assert F.classify_extra_note(66, []) == "none sounding"


def test_sounding_window_is_50_ms_either_side_of_the_onset():
    ref = np.array([[0.0, 1.0, 60, 80], [1.2, 2.0, 64, 80]])
    # a note that ended 40 ms before, or starts 40 ms after, sounds "near" the onset
    assert list(F.sounding_pitches(1.04, ref)) == [60]
    assert list(F.sounding_pitches(1.16, ref)) == [64]
    assert list(F.sounding_pitches(1.10, ref)) == []            # 100 ms from both
    assert list(F.sounding_pitches(1.10, ref, window=0.1)) == [60, 64]


def test_vectorised_kinds_equal_the_one_note_rule_on_random_notes(rng):
    ref = np.stack([rng.uniform(0, 20, 300), np.zeros(300), rng.integers(40, 80, 300),
                    np.full(300, 64)], 1)
    ref[:, 1] = ref[:, 0] + rng.uniform(0.05, 1.5, 300)
    extra = np.stack([rng.uniform(0, 22, 500), np.zeros(500), rng.integers(21, 109, 500),
                      np.full(500, 64)], 1)
    kinds = F.extra_note_kinds(extra, ref, block=64)  # several blocks
    loop = [F.classify_extra_note(n[2], F.sounding_pitches(n[0], ref)) for n in extra]
    assert [F.KINDS[k] for k in kinds] == loop
    assert len(set(loop)) == len(F.KINDS)  # every kind occurs: every branch is compared


def test_counts_by_register_add_up_and_give_pooled_precision_and_recall():
    counts = F.piece_counts(REF, EST)
    a = counts["all"]
    assert (a["n_ref"], a["n_est"], a["n_extra"], a["n_missed"]) == (3, 10, 9, 2)
    assert sum(a[k] for k in F.KINDS) == a["n_extra"] == 9
    assert a["short"] == 0
    est = EST.copy()
    est[1, 1] = est[1, 0] + 0.05  # the repeat lasts 50 ms
    assert F.piece_counts(REF, est)["all"]["short"] == 1
    for key in ("n_ref", "n_est", "n_extra", "n_missed", *F.KINDS):
        assert sum(counts[r][key] for r in F.REGISTERS) == a[key], key
    # C4-B4: 60 (right), then 60, 61, 67 and 60 at 5 s (extra)
    assert counts["C4-B4"]["n_est"] == 5 and counts["C4-B4"]["n_extra"] == 4
    assert counts["C6-C8"]["double octave"] == 1 and counts["A0-B2"]["below"] == 1
    pooled = F.pool_counts([counts, counts])
    assert pooled["all"]["n_est"] == 20 and pooled["all"]["precision"] == 0.1
    assert pooled["all"]["recall"] == round(1 / 3, 4)
    assert pooled["A0-B2"]["recall"] is None and pooled["A0-B2"]["precision"] == 0.0
    assert pooled["C3-B3"]["recall"] == 0.0  # C3 was never found


def test_match_gives_mir_eval_precision_and_recall_on_the_sample_clips():
    from conftest import SAMPLE_DIR

    from pianolib.evaluate import evaluate_notes
    from pianolib.midi import midi_to_notes

    ref = midi_to_notes(f"{SAMPLE_DIR}/midi/m21-bach-bwv66_6.mid")
    est = ref.copy()
    est[::5, 2] += 12           # every fifth note an octave too high
    est[1::7, 0] += 0.08        # others 80 ms late
    counts = F.piece_counts(ref, est)["all"]
    scores = evaluate_notes(ref, est)
    assert counts["n_extra"] > 40
    assert abs(1 - counts["n_extra"] / len(est) - scores["note_precision"]) < 1e-9
    assert abs(1 - counts["n_missed"] / len(ref) - scores["note_recall"]) < 1e-9


def test_worst_window_counts_extra_and_missed_onsets():
    ref = np.array([[t, t + 0.3, 60, 80] for t in np.arange(0, 20, 0.5)])
    est = ref.copy()
    est[(ref[:, 0] >= 12) & (ref[:, 0] < 14), 2] = 61   # 4 notes wrong: 4 extra + 4 missed
    est = np.vstack([est, [[3.0, 3.2, 70, 64]]])          # one lone extra note
    assert F.worst_window(ref, est, 5.0) == (12.0, 8)
    assert F.worst_window(ref, est, 1.0) == (12.0, 4)
    assert F.worst_window(ref, ref) == (0.0, 0)
    np.testing.assert_array_equal(F.error_times(ref, est), [3.0] + [12, 12, 12.5, 12.5, 13,
                                                                     13, 13.5, 13.5])


def test_markdown_table_lists_every_kind_and_register():
    counts = F.pool_counts([F.piece_counts(REF, EST)])
    report = {"window_s": F.WINDOW, "kinds": list(F.KINDS), "registers": list(F.REGISTERS),
              "sets": {"toy": {"pieces": 1, "audio_s": 5.5, "systems": {"ours": counts}}}}
    md = F.report_markdown(report)
    assert "| ours | 10 | 9 (90.0 %) | 0.1 | 0.3333 | 1 (11.1 %) |" in md
    assert md.count("\n| C") == 4
    assert "| A0-B2 | ours | 0 | - | 1 | 1 | 0.0 | below 1 (100.0 %) |" in md


def test_cli_writes_json_and_markdown_and_refuses_to_overwrite(tmp_path, capsys):
    from conftest import SAMPLE_DIR

    from pianolib.__main__ import main

    out = tmp_path / "bench" / "extra-notes"
    args = ["extra-notes", SAMPLE_DIR, "--peer", "none", "--quiet", "--out", str(out)]
    assert main(args) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    s = report["sets"]["sample"]
    assert s["pieces"] == 3 and list(s["systems"]) == ["pianolib"]
    a = s["systems"]["pianolib"]["all"]
    assert a["n_ref"] == 600 and 0 < a["n_extra"] < a["n_est"]
    assert sum(a[k] for k in report["kinds"]) == a["n_extra"]
    assert "| pianolib |" in out.with_suffix(".md").read_text()
    assert out.with_suffix(".png").stat().st_size > 10_000
    capsys.readouterr()
    assert main(args) == 1
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0


@pytest.mark.parametrize("bad, message", [
    (["no-such-folder"], "folder not found"),
    (["SAMPLE", "--system", "ours"], "expected NAME=MODEL_FOLDER"),
    (["SAMPLE", "--system", "ours=no-such-models"], "model file not found"),
])
def test_cli_bad_input_is_one_error_line(tmp_path, capsys, bad, message):
    from conftest import SAMPLE_DIR

    from pianolib.__main__ import main

    bad = [SAMPLE_DIR if b == "SAMPLE" else b for b in bad]
    out = tmp_path / "x"
    assert main(["extra-notes", *bad, "--peer", "none", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
    assert not list(tmp_path.iterdir())  # nothing written


def test_cli_asked_for_basic_pitch_without_it_says_how_to_install(tmp_path, capsys):
    try:
        import basic_pitch  # noqa: F401
        pytest.skip("Basic Pitch is installed")
    except ImportError:
        pass
    from conftest import SAMPLE_DIR

    from pianolib.__main__ import main

    assert main(["extra-notes", SAMPLE_DIR, "--peer", "basic-pitch", "--out",
                 str(tmp_path / "x")]) == 1
    assert "make peer" in capsys.readouterr().err


def test_readme_quotes_the_measured_extra_notes_table():
    """The README's maps-dev extra-notes table is the file `extra-notes` wrote, line for line."""
    import os

    from conftest import ROOT

    measured = open(os.path.join(ROOT, "data", "bench", "extra-notes.md")).read()
    readme = open(os.path.join(ROOT, "README.md")).read()
    first_table = measured.split("\n\n| register")[0]
    rows = [ln for ln in first_table.splitlines() if ln.startswith("| ")]
    assert len(rows) == 3  # header + ours + Basic Pitch
    for ln in rows:
        assert ln in readme, ln

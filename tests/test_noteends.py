"""Note ends and velocities measured on hand-made notes (pianolib.noteends)."""

import numpy as np

from pianolib.noteends import offset_deviations, offset_report, velocity_scores

REF = np.array([[0.0, 1.0, 40, 30], [0.5, 0.7, 60, 60], [1.0, 3.0, 80, 90], [2.0, 2.5, 60, 100]])


def test_offset_deviations_of_matched_notes_only():
    est = REF.copy()
    est[0, 1] = 0.7       # 300 ms early (tolerance 200 ms): early
    est[1, 1] = 0.73      # 30 ms late (tolerance 50 ms): right
    est[2, 1] = 3.5       # 500 ms late (tolerance 400 ms): late
    est[3, 0] += 0.2      # onset 200 ms late: not matched, not counted
    dev = offset_deviations(REF, est)
    assert dev.shape == (3, 3)
    by_pitch = {int(p): round(d, 3) for p, _, d in dev}
    assert by_pitch == {40: -0.3, 60: 0.03, 80: 0.5}
    rep = offset_report(dev)
    assert rep["all"] == {"notes": 3, "median_ms": 30.0, "early": 0.333, "right": 0.333,
                          "late": 0.333}
    assert rep["low (A0-B2)"]["early"] == 1.0 and rep["high (C5-C8)"]["late"] == 1.0
    assert offset_deviations(REF, np.zeros((0, 4))).shape == (0, 3)


def test_velocity_scores_depend_on_the_order_of_velocities_not_their_scale():
    est = REF.copy()
    est[:, 3] = REF[:, 3] / 2 + 10  # another scale, same order: rescaled by mir_eval
    assert velocity_scores(REF, est)["note_velocity_f1"] == 1.0
    est[:, 3] = REF[::-1, 3]        # loud and soft swapped
    assert velocity_scores(REF, est)["note_velocity_f1"] < 0.6
    assert velocity_scores(REF, np.zeros((0, 4)))["note_velocity_f1"] == 0.0


def test_cli_on_the_sample_clips(tmp_path):
    import json
    import subprocess
    import sys

    from conftest import ROOT, SAMPLE_DIR

    out = tmp_path / "r.json"
    res = subprocess.run([sys.executable, "-m", "pianolib", "note-ends", SAMPLE_DIR, "--json",
                          str(out)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    assert report["pieces"] == 3 and 0 < report["velocity"]["note_velocity_f1"] <= 1
    shares = report["offsets"]["all"]
    assert abs(shares["early"] + shares["right"] + shares["late"] - 1) < 0.002
    res = subprocess.run([sys.executable, "-m", "pianolib", "note-ends", SAMPLE_DIR, "--json",
                          str(out)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 1 and "already exists" in res.stderr

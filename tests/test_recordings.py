"""Labelled recordings as a training source: pairing, label checks, splits by piece, hold-out."""

import numpy as np
import pytest

from pianolib.audio import write_audio
from pianolib.datasets import load_items, read_manifest
from pianolib.errors import PianolibError
from pianolib.recordings import (
    LabelError,
    build_from_recordings,
    find_pairs,
    piano_and_piece,
    read_labels,
    read_tsv_labels,
)
from pianolib.synth import render_notes

TSV_HEADER = "onset\toffset\tnote\tvelocity\n"


def _tsv(notes) -> str:
    return TSV_HEADER + "".join(f"{a}\t{b}\t{int(c)}\t{int(d)}\n" for a, b, c, d in notes)


def _notes(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    on = np.sort(rng.uniform(0.1, 2.5, 8))
    return np.stack([on, on + 0.4, rng.integers(40, 90, 8), rng.integers(40, 110, 8)], 1)


@pytest.fixture(scope="module")
def maps_folder(tmp_path_factory):
    """A small MAPS-layout folder: 3 pieces on 2 'pianos', one bad label file, one lone audio."""
    root = tmp_path_factory.mktemp("maps")
    specs = [("MAPS_MUS-a_AkPnBcht", 0), ("MAPS_MUS-a_SptkBGCl", 0), ("MAPS_MUS-b_AkPnBcht", 1),
             ("MAPS_MUS-c_SptkBGCl", 2), ("MAPS_MUS-d_AkPnBcht", 3)]
    for stem, seed in specs:
        notes = _notes(seed)
        y = render_notes(notes, "TimGM6mb" if "Bcht" in stem else "FluidR3_GM")
        write_audio(root / "flac" / f"{stem}.flac", y)
        (root / "tsv").mkdir(exist_ok=True)
        (root / "tsv" / f"{stem}.tsv").write_text(_tsv(notes))
    # d's labels have a note outside the piano on line 3
    bad = _tsv(_notes(3)).splitlines(keepends=True)
    bad[2] = "0.5\t0.9\t12\t80\n"
    (root / "tsv" / "MAPS_MUS-d_AkPnBcht.tsv").write_text("".join(bad))
    write_audio(root / "flac" / "MAPS_MUS-e_AkPnBcht.flac", np.zeros(16000, np.float32))
    return root


def test_pairs_by_relative_path_never_by_name_across_folders(tmp_path):
    for sub in ("x", "y"):
        write_audio(tmp_path / sub / "a.wav", np.zeros(1600, np.float32))
    (tmp_path / "x" / "a.tsv").write_text(_tsv([[0.1, 0.2, 60, 64]]))
    msgs = []
    pairs = find_pairs(tmp_path, report=msgs.append)
    assert pairs == [(tmp_path / "x" / "a.wav", tmp_path / "x" / "a.tsv")]
    assert len(msgs) == 1 and "y/a.wav: no labels" in msgs[0]


def test_maps_layout_pairs_and_reports_lone_files(maps_folder):
    msgs = []
    pairs = find_pairs(maps_folder, report=msgs.append)
    assert len(pairs) == 5
    assert all(a.stem == lab.stem and a.parent.name == "flac" and lab.parent.name == "tsv"
               for a, lab in pairs)
    assert any("MAPS_MUS-e_AkPnBcht.flac: no labels" in m for m in msgs)


@pytest.mark.parametrize("text, problem", [
    ("", "no notes"),
    ("0.1\t0.5\t60\n0.2\tx\t61\t50\n", ":2: not numbers"),
    ("0.1\t0.5\t60\t50\n0.3\t0.2\t61\t50\n", ":2: offset 0.2 s is not after onset 0.3 s"),
    ("0.1\t0.5\t109\t50\n", ":1: note 109 outside the piano"),
    ("0.1\t0.5\t60\t0\n", ":1: velocity 0 outside 1-127"),
    ("0.1\t0.5\n", ":1: expected onset, offset, note"),
])
def test_bad_tsv_labels_name_the_file_and_line(tmp_path, text, problem):
    p = tmp_path / "bad.tsv"
    p.write_text(text)
    with pytest.raises(LabelError) as exc:
        read_tsv_labels(p)
    assert str(exc.value).startswith(str(p)) and problem in str(exc.value)


def test_good_tsv_with_header_and_three_columns(tmp_path):
    p = tmp_path / "ok.tsv"
    p.write_text("# onset,offset,note,velocity\n0.5\t1.0\t60\t80\n0.1\t0.2\t21\n")
    np.testing.assert_allclose(read_tsv_labels(p), [[0.1, 0.2, 21, 64], [0.5, 1.0, 60, 80]])


def test_missing_label_file_is_a_label_error(tmp_path):
    for name in ("none.tsv", "none.mid"):
        with pytest.raises(LabelError, match="not found"):
            read_labels(tmp_path / name)


def test_piano_and_piece_of_maps_stems():
    assert piano_and_piece("MAPS_MUS-alb_se3_AkPnBcht") == ("AkPnBcht", "alb_se3")
    assert piano_and_piece("my_recording") == ("recording", "my_recording")


@pytest.fixture(scope="module")
def built(maps_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("rec") / "maps"
    with pytest.warns(UserWarning) as rec:
        build_from_recordings([maps_folder], out, holdout=("SptkBGCl",), workers=1,
                              progress=False)
    return out, [str(w.message) for w in rec]


def test_build_skips_bad_labels_and_holds_out_a_piano_and_its_pieces(built):
    out, msgs = built
    assert any("MAPS_MUS-d_AkPnBcht.tsv:3: note 12 outside the piano" in m for m in msgs)
    rows = {r["item"]: r for r in read_manifest(out)}
    # d: bad labels; a on AkPnBcht: its piece is played by the held-out piano
    assert set(rows) == {"MAPS_MUS-a_SptkBGCl", "MAPS_MUS-b_AkPnBcht", "MAPS_MUS-c_SptkBGCl"}
    assert rows["MAPS_MUS-a_SptkBGCl"]["split"] == "holdout"
    assert rows["MAPS_MUS-c_SptkBGCl"]["split"] == "holdout"
    assert rows["MAPS_MUS-b_AkPnBcht"]["split"] in ("train", "valid", "test")
    assert rows["MAPS_MUS-b_AkPnBcht"]["piece"] == "rec-b"


def test_built_features_and_labels_come_from_the_recording(built, maps_folder):
    out, _ = built
    (item,) = [it for it in load_items(out) if it["item"] == "MAPS_MUS-b_AkPnBcht"]
    np.testing.assert_allclose(item["notes"], read_tsv_labels(
        maps_folder / "tsv" / "MAPS_MUS-b_AkPnBcht.tsv"), atol=1e-4)
    from pianolib.audio import load_audio
    from pianolib.features import compute_features

    ref = compute_features(load_audio(maps_folder / "flac" / "MAPS_MUS-b_AkPnBcht.flac"))
    np.testing.assert_allclose(item["features"], ref, atol=2e-3 * np.abs(ref).max())


def test_no_usable_recording_is_an_error(tmp_path):
    write_audio(tmp_path / "a.wav", np.zeros(16000, np.float32))
    (tmp_path / "a.tsv").write_text("")
    with pytest.warns(UserWarning, match="no notes"), pytest.raises(PianolibError):
        build_from_recordings([tmp_path], tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out").exists()


def test_splits_do_not_depend_on_the_order_of_the_folders(maps_folder, tmp_path):
    """Two builds that meet the recordings in opposite orders give every piece the same split."""
    import shutil

    a, b = tmp_path / "a", tmp_path / "b"
    for d, stems in ((a, ["MAPS_MUS-a_AkPnBcht", "MAPS_MUS-b_AkPnBcht"]),
                     (b, ["MAPS_MUS-c_SptkBGCl", "MAPS_MUS-a_SptkBGCl"])):
        for stem in stems:
            for sub, ext in (("flac", "flac"), ("tsv", "tsv")):
                (d / sub).mkdir(parents=True, exist_ok=True)
                shutil.copy(maps_folder / sub / f"{stem}.{ext}", d / sub / f"{stem}.{ext}")
    one = build_from_recordings([a, b], tmp_path / "one", workers=1, progress=False)
    two = build_from_recordings([b, a], tmp_path / "two", workers=1, progress=False)
    splits = [{r["item"]: (r["piece"], r["split"]) for r in read_manifest(x)} for x in (one, two)]
    assert splits[0] == splits[1] and len(splits[0]) == 4
    by_piece = {}
    for piece, split in splits[0].values():
        by_piece.setdefault(piece, set()).add(split)
    assert all(len(v) == 1 for v in by_piece.values())  # piece a: two pianos, one split

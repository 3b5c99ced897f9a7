import collections

import numpy as np
import pytest
import soundfile as sf

from pianolib.datasets import (
    build_corpus,
    dataset_summary,
    load_items,
    make_training_arrays,
    read_manifest,
    split_of,
)
from pianolib.errors import PianolibError
from pianolib.midi import notes_to_midi, write_midi
from pianolib.sources import generate_piece


@pytest.fixture(scope="module")
def midi_folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("midis")
    rng = np.random.default_rng(1)
    for i in range(4):
        on = np.sort(rng.uniform(0, 4, 12))
        notes = np.stack([on, on + 0.3, rng.integers(30, 100, 12), rng.integers(30, 120, 12)], 1)
        write_midi(notes_to_midi(notes), d / "perf" / f"piece{i}.mid")
    write_midi(notes_to_midi(np.array([[0, 1, 15, 80], [0, 1, 60, 80], [0.5, 1, 120, 80]])),
               d / "range.mid")
    (d / "corrupt.mid").write_bytes(b"MThd garbage")
    (d / "empty.midi").write_bytes(b"")
    return d


@pytest.fixture(scope="module")
def corpus(midi_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "corpus"
    with pytest.warns(UserWarning) as rec:
        build_corpus(out, hours=1.0, midi_dirs=[midi_folder], use_music21=False, generated=0,
                     soundfonts=["TimGM6mb", "FluidR3_GM"], renditions=2, workers=1,
                     progress=False)
    return out, [str(w.message) for w in rec]


def test_corrupt_and_empty_midi_skipped_with_warning_naming_file(corpus):
    out, warnings = corpus
    assert any("corrupt.mid" in w for w in warnings)
    assert any("empty.midi" in w for w in warnings)
    rows = read_manifest(out)
    assert len(rows) == 2 * 5  # 4 pieces + the out-of-range one, 2 renditions each
    assert not any("corrupt" in r["item"] for r in rows)


def test_out_of_range_notes_are_dropped(corpus):
    out, _ = corpus
    row = next(r for r in read_manifest(out) if "range" in r["item"])
    assert int(row["n_notes"]) == 1 and 21 <= int(row["min_pitch"]) <= 108


def test_manifest_files_and_labels_agree(corpus):
    out, _ = corpus
    rows = read_manifest(out)
    assert {r["soundfont"] for r in rows} == {"TimGM6mb", "FluidR3_GM"}
    for r in rows:
        for k in ("audio", "midi", "features"):
            assert (out / r[k]).is_file()
        with np.load(out / r["features"]) as z:
            frames = sf.info(out / r["audio"]).frames
            assert z["features"].shape == (1 + frames // 160, 264)
            assert abs(frames / 16000 - float(r["duration"])) < 1e-3
            assert len(z["notes"]) == int(r["n_notes"])
    assert not list(out.parent.glob(".*"))  # no temporary build folder, no lock left


def test_split_is_by_piece(corpus):
    out, _ = corpus
    by_piece = collections.defaultdict(set)
    for r in read_manifest(out):
        by_piece[r["piece"]].add(r["split"])
    assert all(len(s) == 1 for s in by_piece.values())
    ids = [f"piece-{i}" for i in range(3000)]
    counts = collections.Counter(split_of(i) for i in ids)
    assert 0.77 < counts["train"] / 3000 < 0.83 and 0.08 < counts["test"] / 3000 < 0.12
    # a function of the piece id (and seed) alone: the order pieces come in changes nothing
    order = np.random.default_rng(0).permutation(len(ids))
    assert {ids[i]: split_of(ids[i]) for i in order} == {i: split_of(i) for i in ids}
    assert [split_of(i, seed=1) for i in ids[:50]] != [split_of(i) for i in ids[:50]]
    # and the build used exactly that function
    assert all(r["split"] == split_of(r["piece"]) for r in read_manifest(out))


def test_existing_output_needs_force(corpus, midi_folder):
    out, _ = corpus
    with pytest.raises(PianolibError, match="--force"):
        build_corpus(out, hours=0.001, midi_dirs=[midi_folder], use_music21=False,
                     generated=0, workers=1, progress=False)
    assert (out / "manifest.csv").is_file()


def test_training_arrays_and_summary(corpus):
    out, _ = corpus
    items = load_items(out)
    X, on, ln, idx = make_training_arrays(items, 100)
    assert X.shape[1:] == (100, 264) and on.shape[1:] == ln.shape[1:] == (100, 88)
    assert len(idx) == len(X) and on.sum() > 0
    # every onset frame lies inside its note's length frames, and every note has its onset
    assert (ln[on > 0] > 0).all()
    from pianolib.labels import notes_to_rolls

    for it in items:
        o, _ = notes_to_rolls(it["notes"], len(it["features"]))
        f = np.rint(it["notes"][:, 0] * 100).astype(int)
        k = it["notes"][:, 2].astype(int) - 21
        inside = f < len(o)
        assert (o[f[inside], k[inside]] > 0).all()
    s = dataset_summary(out)
    assert s["all"]["items"] == 10 and s["all"]["notes"] == sum(len(i["notes"]) for i in items)


def test_generated_piece_covers_the_keyboard():
    notes, pedal = generate_piece(3, duration=200)
    assert notes[:, 2].min() == 21 and notes[:, 2].max() == 108
    assert notes[:, 3].min() < 30 and notes[:, 3].max() > 115
    d = notes[:, 1] - notes[:, 0]
    assert d.min() < 0.06 and d.max() > 1.5
    assert len(pedal) > 0

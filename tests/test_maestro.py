"""MAESTRO support on a tiny fixture in MAESTRO's layout, built (and synthesised) by the test."""

import csv

import numpy as np
import pretty_midi
import pytest

from pianolib.audio import write_audio
from pianolib.datasets import load_items, read_manifest
from pianolib.errors import PianolibError
from pianolib.maestro import prepare_maestro, read_maestro_csv
from pianolib.synth import render_notes

FIELDS = ["canonical_composer", "canonical_title", "split", "year", "midi_filename",
          "audio_filename", "duration"]


@pytest.fixture(scope="module")
def maestro(tmp_path_factory):
    root = tmp_path_factory.mktemp("maestro-v3.0.0")
    rows = []
    # names chosen so that sorted/glob order of audio and MIDI disagree with the CSV pairing
    specs = [("2018", "z_first", "b_audio", "train", 60), ("2018", "a_second", "y_audio",
                                                           "validation", 72),
             ("2017", "m_third", "a_audio", "test", 48)]
    for year, midi_name, audio_name, split, pitch in specs:
        notes = np.array([[0.1, 0.4, pitch, 90], [0.5, 0.6, pitch + 4, 90]])
        pm = pretty_midi.PrettyMIDI()
        inst = pretty_midi.Instrument(0)
        inst.notes = [pretty_midi.Note(90, int(p), s, e) for s, e, p, _ in notes]
        inst.control_changes = [pretty_midi.ControlChange(64, 127, 0.45),
                                pretty_midi.ControlChange(64, 0, 0.9)]
        pm.instruments.append(inst)
        (root / year).mkdir(exist_ok=True)
        pm.write(str(root / year / f"{midi_name}.midi"))
        write_audio(root / year / f"{audio_name}.wav", render_notes(notes, "TimGM6mb"))
        rows.append(dict(canonical_composer="Test", canonical_title=midi_name, split=split,
                         year=year, midi_filename=f"{year}/{midi_name}.midi",
                         audio_filename=f"{year}/{audio_name}.wav", duration=1.6))
    with open(root / "maestro-v3.0.0.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS)
        w.writeheader()
        w.writerows(rows)
    return root, specs


def test_csv_pairs_audio_and_midi_by_row(maestro):
    root, specs = maestro
    rows = read_maestro_csv(root)
    assert [(r["midi"].stem, r["audio"].stem) for r in rows] == [(m, a) for _, m, a, _, _ in specs]
    assert [r["split"] for r in read_maestro_csv(root, "test")] == ["test"]


def test_prepare_uses_split_column_and_sustain(maestro, tmp_path):
    root, specs = maestro
    out = prepare_maestro(root, tmp_path / "feat")
    rows = {r["item"]: r for r in read_manifest(out)}
    assert {k: v["split"] for k, v in rows.items()} == {"z_first": "train", "a_second": "valid",
                                                         "m_third": "test"}
    items = {it["item"]: it for it in load_items(out)}
    for _, midi_name, _, _, pitch in specs:
        notes = items[midi_name]["notes"]
        assert notes[:, 2].tolist() == [pitch, pitch + 4]
        assert notes[0, 1] == pytest.approx(0.4, abs=1e-3)  # released before the pedal
        assert notes[1, 1] == pytest.approx(0.9, abs=1e-3)  # held by the pedal until 0.9
    with pytest.raises(PianolibError, match="--force"):
        prepare_maestro(root, out)


def test_features_follow_the_paired_audio(maestro, tmp_path):
    root, specs = maestro
    out = prepare_maestro(root, tmp_path / "feat")
    for it in load_items(out):
        pitch = int(it["notes"][0, 2])
        frame = it["features"][20]  # 0.2 s: the first note sounds
        assert int(np.argmax(frame)) // 3 == pitch - 21


def test_not_a_maestro_folder(tmp_path):
    with pytest.raises(PianolibError, match="maestro-v3.0.0.csv"):
        read_maestro_csv(tmp_path)


def test_failed_rebuild_keeps_the_old_features_and_skips_a_bad_item(maestro, tmp_path):
    import shutil

    root, _ = maestro
    out = prepare_maestro(root, tmp_path / "feat")
    before = sorted(p.name for p in (out / "features").iterdir())
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    for wav in broken.rglob("*.wav"):
        wav.write_text("not audio")  # every item fails: the rebuild must not replace `out`
    with pytest.warns(UserWarning, match="not a readable audio file"), \
            pytest.raises(PianolibError, match="no MAESTRO item"):
        prepare_maestro(broken, out, force=True)
    assert sorted(p.name for p in (out / "features").iterdir()) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # one bad item: skipped with a warning naming it, the others are built
    (broken / "2018" / "b_audio.wav").unlink()
    shutil.copy(root / "2018" / "b_audio.wav", broken / "2018" / "b_audio.wav")
    with pytest.warns(UserWarning, match="a_audio.wav"):
        out2 = prepare_maestro(broken, tmp_path / "feat2")
    assert [r["item"] for r in read_manifest(out2)] == ["z_first"]

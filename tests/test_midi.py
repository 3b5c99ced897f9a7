import numpy as np
import pretty_midi
import pytest

from pianolib.errors import MidiError
from pianolib.midi import (
    apply_sustain,
    load_midi,
    midi_to_notes,
    notes_to_midi,
    pedal_intervals,
    write_midi,
)


def make_pm(notes, pedal=()):
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.notes = [pretty_midi.Note(int(v), int(p), s, e) for s, e, p, v in notes]
    for s, e in pedal:
        inst.control_changes += [pretty_midi.ControlChange(64, 100, s),
                                 pretty_midi.ControlChange(64, 0, e)]
    pm.instruments.append(inst)
    return pm


def test_roundtrip_through_a_file(tmp_path):
    notes = np.array([[0.0, 0.5, 60, 80], [0.25, 1.0, 64, 100], [0.5, 0.75, 21, 1],
                      [0.5, 2.0, 108, 127]])
    path = write_midi(notes_to_midi(notes), tmp_path / "x.mid")
    back = midi_to_notes(path)
    np.testing.assert_allclose(back, notes, atol=2e-3)
    assert load_midi(path).instruments[0].program == 0


def test_write_refuses_to_overwrite(tmp_path):
    path = write_midi(notes_to_midi(np.zeros((0, 4))), tmp_path / "x.mid")
    with pytest.raises(Exception, match="already exists"):
        write_midi(notes_to_midi(np.zeros((0, 4))), path)
    write_midi(notes_to_midi(np.zeros((0, 4))), path, force=True)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_sustain_extends_until_pedal_up_or_restrike():
    notes = np.array([[0.0, 0.5, 60, 80], [1.0, 1.2, 60, 80], [0.2, 0.3, 64, 80],
                      [2.5, 2.6, 67, 80]])
    pm = make_pm(notes, pedal=[(0.4, 1.5)])
    ped = pedal_intervals(pm)
    np.testing.assert_allclose(ped, [[0.4, 1.5]], atol=1e-3)
    out = midi_to_notes(pm, sustain=True)
    ends = {(round(s, 2), int(p)): round(e, 2) for s, e, p, _ in out}
    assert ends[(0.0, 60)] == 1.0  # held by the pedal, cut by the restrike at 1.0
    assert ends[(1.0, 60)] == 1.5  # released at 1.2 under the pedal -> pedal up at 1.5
    assert ends[(0.2, 64)] == 0.3  # released before the pedal went down
    assert ends[(2.5, 67)] == 2.6  # after the pedal


def test_pedal_intervals_merge_instruments():
    pm = make_pm([], pedal=[(0.0, 1.0)])
    pm.instruments.append(make_pm([], pedal=[(0.5, 2.0), (3.0, 4.0)]).instruments[0])
    np.testing.assert_allclose(pedal_intervals(pm), [[0.0, 2.0], [3.0, 4.0]], atol=1e-3)
    assert apply_sustain(np.zeros((0, 4)), pedal_intervals(pm)).shape == (0, 4)


def test_out_of_range_notes_dropped_with_warning():
    pm = make_pm([[0, 1, 20, 80], [0, 1, 60, 80], [0, 1, 109, 80]])
    with pytest.warns(UserWarning, match="outside the piano range"):
        notes = midi_to_notes(pm)
    assert notes[:, 2].tolist() == [60]


@pytest.mark.parametrize("content", [b"", b"not a midi file at all", b"MThd\x00\x00"])
def test_corrupt_or_empty_midi_names_the_file(tmp_path, content):
    bad = tmp_path / "broken.mid"
    bad.write_bytes(content)
    with pytest.raises(MidiError, match="broken.mid"):
        load_midi(bad)
    with pytest.raises(MidiError, match="not found"):
        load_midi(tmp_path / "missing.mid")


def test_pedal_messages_that_never_press_give_no_intervals():
    # found when a narrow `except` replaced a bare one: this crashed inside the corpus build
    import pretty_midi

    from pianolib.midi import pedal_intervals

    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.notes.append(pretty_midi.Note(80, 60, 0.0, 1.0))
    inst.control_changes += [pretty_midi.ControlChange(64, 0, 0.0),
                             pretty_midi.ControlChange(64, 10, 0.5)]
    pm.instruments.append(inst)
    assert pedal_intervals(pm).shape == (0, 2)

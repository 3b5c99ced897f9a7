"""Using the real MAESTRO dataset (v2/v3) with the same pipeline.

MAESTRO ships a CSV (``maestro-v3.0.0.csv``) with one row per performance: ``canonical_composer,
canonical_title, split, year, midi_filename, audio_filename, duration``. Audio and MIDI are
paired **by that row**. The original blog series paired them by two unsorted ``glob`` calls,
which only works while the file system happens to list both in the same order: a silent bug
that trains a model on the wrong labels.

Notebook: 01_data_and_preprocessing.ipynb
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

from .audio import load_audio
from .datasets import save_item, write_manifest
from .errors import PianolibError
from .midi import load_midi, midi_to_notes, pedal_intervals

CSV_NAMES = ("maestro-v3.0.0.csv", "maestro-v2.0.0.csv")
REQUIRED = ("split", "midi_filename", "audio_filename")


def find_csv(root: str | Path) -> Path:
    """The MAESTRO metadata CSV inside ``root``."""
    root = Path(root)
    for name in CSV_NAMES:
        if (root / name).is_file():
            return root / name
    raise PianolibError(f"{root}: no {' or '.join(CSV_NAMES)} found; is this a MAESTRO folder?")


def read_maestro_csv(root: str | Path, split: str | None = None) -> list[dict]:
    """Rows of the MAESTRO CSV with absolute ``audio`` and ``midi`` paths, paired by row.

    Notebook: 01_data_and_preprocessing.ipynb

    Args:
        root: The MAESTRO folder (holding the CSV and the year folders).
        split: Keep only ``train``, ``validation`` or ``test`` rows.
    """
    root = Path(root)
    path = find_csv(root)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not all(k in rows[0] for k in REQUIRED):
        raise PianolibError(f"{path}: missing columns, expected {REQUIRED}")
    out = []
    for row in rows:
        if split and row["split"] != split:
            continue
        out.append({**row, "audio": root / row["audio_filename"],
                    "midi": root / row["midi_filename"]})
    return out


_SPLIT_NAMES = {"train": "train", "validation": "valid", "test": "test"}


def prepare_maestro(root: str | Path, out: str | Path, split: str | None = None,
                    limit: int | None = None, force: bool = False) -> Path:
    """Compute features and sustain-extended labels of MAESTRO into a pianolib dataset folder.

    The result has the same layout as a built corpus (see :mod:`pianolib.datasets`), with the
    split taken from the CSV (``validation`` becomes ``valid``), so training and evaluation
    commands work on it unchanged. Unreadable files are skipped with a warning.

    Notebook: 01_data_and_preprocessing.ipynb
    """
    from .files import build_folder

    out = Path(out)
    selected = read_maestro_csv(root, split)[:limit]  # a bad root fails before anything is made
    with build_folder(out, force) as tmp:
        rows = []
        for row in selected:
            try:
                y = load_audio(row["audio"])
                pm = load_midi(row["midi"])
            except PianolibError as exc:
                warnings.warn(f"skipped: {exc}", stacklevel=2)
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                notes = midi_to_notes(pm)
            item = Path(row["midi_filename"]).stem
            info = save_item(tmp, item, y, notes, pedal_intervals(pm))
            info.update(item=item, piece=f"maestro-{item}", source="maestro",
                        title=f"{row.get('canonical_composer', '')}: "
                              f"{row.get('canonical_title', '')}",
                        soundfont="", program=0, transpose=0, tempo=1.0, room="",
                        split=_SPLIT_NAMES.get(row["split"], row["split"]))
            rows.append(info)
        if not rows:
            raise PianolibError(f"{root}: no MAESTRO item could be read")
        write_manifest(tmp / "manifest.csv", rows)
    return out

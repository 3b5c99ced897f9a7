"""Rendering note lists to piano audio with FluidSynth and the Debian soundfonts.

Notebook: 01_data_and_preprocessing.ipynb
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .config import SR
from .errors import SynthError

#: Soundfonts of the default dataset: name -> (Debian package, candidate file paths).
SOUNDFONTS: dict[str, tuple[str, list[str]]] = {
    "FluidR3_GM": (
        "fluid-soundfont-gm",
        ["/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/soundfonts/FluidR3_GM.sf2"],
    ),
    "MuseScore_General": (
        "musescore-general-soundfont",
        [
            "/usr/share/sounds/sf3/MuseScore_General.sf3",
            "/usr/share/sounds/sf3/MuseScore_General_Full.sf3",
            "/usr/share/sounds/sf2/MuseScore_General.sf2",
            "/usr/share/soundfonts/MuseScore_General.sf3",
        ],
    ),
    "TimGM6mb": (
        "timgm6mb-soundfont",
        ["/usr/share/sounds/sf2/TimGM6mb.sf2", "/usr/share/soundfonts/TimGM6mb.sf2"],
    ),
}

#: General MIDI piano programs used for rendering (0 acoustic grand, 1 bright acoustic).
PIANO_PROGRAMS = (0, 1)

_INSTALL_HINT = (
    "install it with `sudo apt-get install {pkg}` "
    "(conda: `conda install -c conda-forge fluidsynth` and copy the .sf2/.sf3 file to {path})"
)

# one synthesiser per (soundfont, program) per process: loading a soundfont takes 0.1-1 s
_SYNTHS: dict[tuple[str, int], object] = {}


def find_soundfont(name: str) -> Path:
    """Path of a soundfont of :data:`SOUNDFONTS` (or an explicit ``.sf2``/``.sf3`` path).

    Notebook: 01_data_and_preprocessing.ipynb

    Raises:
        SynthError: Naming the Debian package to install when the file is missing.
    """
    if name not in SOUNDFONTS:
        path = Path(name)
        if path.is_file():
            return path
        raise SynthError(f"{name}: unknown soundfont; use one of {sorted(SOUNDFONTS)} or a path")
    env = os.environ.get(f"PIANOLIB_SF_{name.upper()}")
    pkg, candidates = SOUNDFONTS[name]
    for cand in ([env] if env else []) + candidates:
        if Path(cand).is_file():
            return Path(cand)
    raise SynthError(
        f"soundfont {name} not found (looked in {', '.join(candidates)}): "
        + _INSTALL_HINT.format(pkg=pkg, path=candidates[0])
    )


#: The sampled grand of :mod:`pianolib.sampler`, usable wherever a soundfont name is.
SALAMANDER = "Salamander"


def available_soundfonts(sampled: bool = False) -> list[str]:
    """Names of the soundfonts of :data:`SOUNDFONTS` present on this machine.

    With ``sampled``, also ``"Salamander"`` when ``make salamander`` has fetched it. It is not
    in the default list, so that the default dataset does not depend on whether npm was there;
    ask for it by name (``--soundfont Salamander``).
    """
    from .sampler import salamander_available

    out = [SALAMANDER] if sampled and salamander_available() else []
    for name in SOUNDFONTS:
        try:
            find_soundfont(name)
            out.append(name)
        except SynthError:
            pass
    return out


def _import_fluidsynth():
    try:
        import fluidsynth
    except (ImportError, OSError) as exc:
        raise SynthError(
            f"FluidSynth not found ({exc}): install it with `sudo apt-get install fluidsynth` "
            "or `conda install -c conda-forge fluidsynth`, and `pip install pyfluidsynth`"
        ) from None
    return fluidsynth


def get_synth(soundfont: str, program: int = 0):
    """A FluidSynth synthesiser at 16 kHz with ``soundfont`` loaded, cached per process."""
    key = (soundfont, program)
    if key not in _SYNTHS:
        fluidsynth = _import_fluidsynth()
        path = find_soundfont(soundfont)
        synth = fluidsynth.Synth(gain=0.3, samplerate=float(SR))
        synth.setting("synth.chorus.active", 0)
        sfid = synth.sfload(str(path))
        if sfid < 0:
            raise SynthError(f"{path}: FluidSynth could not load this soundfont")
        synth.program_select(0, sfid, 0, program)
        _SYNTHS[key] = synth
    return _SYNTHS[key]


def render_notes(
    notes: np.ndarray,
    soundfont: str = "FluidR3_GM",
    pedal: np.ndarray | None = None,
    program: int = 0,
    tail: float = 1.0,
) -> np.ndarray:
    """Render a note list (and optional sustain-pedal intervals) to mono audio at 16 kHz.

    Events are scheduled to the exact sample; the synthesiser is reused between calls.

    Notebook: 01_data_and_preprocessing.ipynb

    Args:
        notes: Note list ``(n, 4)``: onset s, offset s, pitch, velocity.
        soundfont: A name of :data:`SOUNDFONTS`, ``"Salamander"`` (the sampled grand of
            :mod:`pianolib.sampler`) or a path to a soundfont file.
        pedal: Sustain-pedal down/up intervals ``(k, 2)`` in seconds, or None.
        program: General MIDI program (0 = acoustic grand piano).
        tail: Seconds rendered after the last event (release and reverb).

    Returns:
        Float32 mono audio in [-1, 1].
    """
    if soundfont == SALAMANDER:
        from .sampler import render_salamander

        return render_salamander(notes, pedal, tail)
    synth = get_synth(soundfont, program)
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 4)
    pedal = np.zeros((0, 2)) if pedal is None else np.asarray(pedal, dtype=np.float64)
    # events: (sample, order, kind, a, b); note-offs before note-ons at the same sample
    t = np.concatenate([notes[:, 1], notes[:, 0], pedal[:, 1], pedal[:, 0]])
    kind = np.concatenate(
        [np.zeros(len(notes)), np.ones(len(notes)), np.full(len(pedal), 2), np.full(len(pedal), 3)]
    ).astype(int)
    a = np.concatenate([notes[:, 2], notes[:, 2], np.zeros(2 * len(pedal))]).astype(int)
    b = np.concatenate([np.zeros(len(notes)), notes[:, 3], np.zeros(2 * len(pedal))]).astype(int)
    samples = np.maximum(np.rint(t * SR).astype(np.int64), 0)
    order = np.lexsort((kind, samples))
    end = int(samples.max() if len(samples) else 0) + int(tail * SR)
    out = np.zeros(end, dtype=np.float32)
    synth.system_reset()
    synth.program_change(0, program)
    pos = 0
    for i in order:
        s = samples[i]
        if s > pos:
            out[pos:s] = _pull(synth, s - pos)
            pos = s
        k = kind[i]
        if k == 0:
            synth.noteoff(0, a[i])
        elif k == 1:
            synth.noteon(0, a[i], int(np.clip(b[i], 1, 127)))
        elif k == 2:
            synth.cc(0, 64, 0)
        else:
            synth.cc(0, 64, 127)
    if end > pos:
        out[pos:end] = _pull(synth, end - pos)
    synth.all_notes_off(0)
    synth.cc(0, 64, 0)
    return out


def _pull(synth, n: int) -> np.ndarray:
    """``n`` mono float samples from the synthesiser (its output is interleaved stereo int16)."""
    stereo = np.asarray(synth.get_samples(int(n)), dtype=np.float32).reshape(-1, 2)
    return stereo.mean(axis=1) / 32768.0

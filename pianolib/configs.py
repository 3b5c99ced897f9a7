"""Named training recipes: every setting of a training run, in one place, under one name.

``python -m pianolib train --config shipped`` replays the recipe that produced the shipped
models; explicit command-line flags override single values; ``train.json`` records the name
and every value. (Magenta's Onsets and Frames keeps its recipes the same way, in
``configs.CONFIG_MAP``.) The data folders a recipe trains on are built by the commands in
its ``data_commands``; ``make shipped-data`` runs them.

Notebook: 03_onset_model.ipynb
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from .config import SEED, SEQ_LEN
from .errors import PianolibError

_PERF = ("python -m pianolib data --out data/corpus-perf{suffix} --hours 2 "
         "--midi-dir ../shared/data/performance-midi $(sed 's/^/--exclude /' "
         "data/maps_overlap.txt) --room 0.7 --max-seconds 45")
_CORPUS = "python -m pianolib data --out data/corpus --hours 1"
_MAPS = ("python -m pianolib recordings ../shared/data/maps-synth --out data/maps-synth "
         "--holdout AkPnStgb")


@dataclass(frozen=True)
class TrainConfig:
    """One training recipe (see the module docstring).

    Attributes:
        name: The recipe's name.
        data: Dataset folders whose train/valid splits are pooled.
        arch: Model family of :func:`pianolib.models.build_model`.
        epochs: Most epochs per model.
        batch_size: Chunks per batch.
        seq_len: Frames per chunk.
        onset_lr, length_lr: Adam learning rates.
        onset_pos_weight, length_pos_weight: Weight of positive frames in the loss.
        onset_partial_weight: Weight of the onset model's hard negatives, the keys an octave,
            a twelfth and two octaves above a true onset (1: none; see
            :class:`pianolib.models.WeightedBCE`).
        units: LSTM units.
        patience: Early-stopping patience (epochs).
        max_minutes: Time budget of both models together (None: no budget).
        seed: Seed of the run.
        description: What the recipe is for.
        data_commands: The commands that build ``data``.
        init_from: Model folder whose weights training starts from (a continued training),
            or None (from scratch).
        targets: The models trained (of ``pianolib.train.TARGETS``).
        velocity_lr, pedal_lr: Adam learning rates of the Velocity and Pedal models.
        length_labels: ``"sounding"`` (ends extended by the sustain pedal) or ``"key"`` (ends
            at key release; the Pedal model adds the sustain at decoding).
        shards: A shard folder (:mod:`pianolib.shards`) to stream from instead of ``data``
            (:func:`pianolib.distributed.train_from_shards`), or None (in memory).
        strategy: ``default``, ``mirrored`` or ``multi-worker`` (streamed training only).
        shuffle_buffer: Crops in the shuffle buffer of the streamed path.
        steps_per_epoch: Global batches per epoch of the streamed path (None: one pass).
        scale_lr: Multiply the learning rates by sqrt(replicas) (streamed path).
    """

    name: str
    data: tuple[str, ...] = ("data/corpus",)
    arch: str = "crnn"
    epochs: int = 30
    batch_size: int = 32
    seq_len: int = SEQ_LEN
    onset_lr: float = 5e-4
    length_lr: float = 2e-3
    onset_pos_weight: float = 1.0
    length_pos_weight: float = 1.0
    onset_partial_weight: float = 1.0
    units: int = 128
    patience: int = 5
    max_minutes: float | None = None
    seed: int = SEED
    description: str = ""
    data_commands: tuple[str, ...] = (_CORPUS,)
    init_from: str | None = None
    targets: tuple[str, ...] = ("onset", "length")
    velocity_lr: float = 1e-3
    pedal_lr: float = 1e-3
    length_labels: str = "sounding"
    shards: str | None = None
    strategy: str = "default"
    shuffle_buffer: int = 2048
    steps_per_epoch: int | None = None
    scale_lr: bool = True

    def to_dict(self) -> dict:
        """Every value, JSON-ready (for ``train.json``)."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


_SHIPPED_V1 = TrainConfig(
    name="shipped-v1",
    data=("data/corpus", "data/corpus-perf-synthetic"),
    onset_lr=1e-3, onset_pos_weight=5.0, max_minutes=44,
    description="the first shipped models: three GM soundfonts only (ablation arm a)",
    data_commands=(_CORPUS, _PERF.format(suffix="-synthetic") + " --room-kind synthetic "
                   "--soundfont FluidR3_GM --soundfont MuseScore_General --soundfont TimGM6mb"),
)

CONFIG_MAP: dict[str, TrainConfig] = {
    "default": TrainConfig(
        name="default", max_minutes=28,
        description="`make train`: both models on the default dataset within 28 minutes"),
    "quick": TrainConfig(
        name="quick", epochs=2, max_minutes=2, data=("data/sample",),
        description="a smoke test on the sample clips (tests, notebooks in quick mode)",
        data_commands=()),
    "shipped-v1": _SHIPPED_V1,
    "maps-synth": replace(
        _SHIPPED_V1, name="maps-synth", max_minutes=50,
        data=_SHIPPED_V1.data + ("data/maps-synth",),
        description="arm b: arm a + five sampled MAPS pianos (AkPnStgb held out)",
        data_commands=_SHIPPED_V1.data_commands + (_MAPS,)),
    "salamander-room": replace(
        _SHIPPED_V1, name="salamander-room", max_minutes=50,
        data=("data/corpus", "data/corpus-perf", "data/maps-synth"),
        description="arm c+d: arm b with the performances re-rendered on the Salamander grand "
                    "(40 %) and the GM soundfonts, with pyroomacoustics/pedalboard rooms",
        data_commands=(_CORPUS, _PERF.format(suffix="") + " --soundfont FluidR3_GM --soundfont "
                       "MuseScore_General --soundfont TimGM6mb --soundfont Salamander "
                       "--soundfont Salamander", _MAPS)),
}
CONFIG_MAP["maps-synth-continued"] = replace(
    CONFIG_MAP["maps-synth"], name="maps-synth-continued", init_from="data/runs/maps-synth",
    onset_lr=5e-4, length_lr=1e-3, max_minutes=48,
    description="arm b2: arm b (data/runs/maps-synth) trained 48 more minutes on the same data "
                "from its weights, learning rates halved (its models were still improving)")
CONFIG_MAP["partials"] = replace(
    CONFIG_MAP["maps-synth"], name="partials", targets=("onset",), onset_partial_weight=4.0,
    epochs=4, max_minutes=25, init_from=None,
    description="arm e: arm b's onset model (same data, the same 4 epochs) with hard "
                "negatives: a wrong onset an octave, a twelfth or two octaves above a true one "
                "costs 4 times as much")
CONFIG_MAP["harmonic"] = replace(
    CONFIG_MAP["partials"], name="harmonic", arch="hcrnn",
    description="arm f: arm e's onset model on the harmonic stack of the CQT (hcrnn: the "
                "sub-octave, the fundamental and partials 2-4 as channels of the front end)")
CONFIG_MAP["velocity-pedal"] = replace(
    CONFIG_MAP["maps-synth"], name="velocity-pedal", targets=("velocity", "pedal"),
    max_minutes=44,
    description="the Velocity and Pedal models (notebook 07) on the shipped recipe's data, "
                "beside the shipped onset and length models; the pedal model learns from the "
                "rendered items only (MAPS TSV labels carry no pedal)")
CONFIG_MAP["key-length"] = replace(
    CONFIG_MAP["maps-synth"], name="key-length", targets=("length",), length_labels="key",
    max_minutes=25,
    description="a Length model of key releases (no sustain extension), for the key/pedal "
                "split of notebook 07: the sounding end is the later of key and pedal release")
#: MAESTRO v3's train split, in hours (Hawthorne et al., 2019: 159.2 h of 198.7 h).
MAESTRO_TRAIN_HOURS = 159.2
CONFIG_MAP["maestro"] = TrainConfig(
    name="maestro", data=(), shards="data/maestro-shards", strategy="mirrored",
    epochs=20, batch_size=32, onset_lr=5e-4, length_lr=2e-3, onset_pos_weight=5.0,
    patience=3, shuffle_buffer=8192,
    description="the Onset and Length models on all of MAESTRO v3 (1,276 performances, 200 h), "
                "streamed from shards on every GPU of the machine (--strategy multi-worker and "
                "TF_CONFIG for several machines); `train --config maestro --describe` prints "
                "the run's size and its cost at the throughput measured by scale-bench",
    data_commands=("python -m pianolib shards /path/to/maestro-v3.0.0 --out data/maestro-shards "
                   "--items-per-shard 8 --workers 8  # or --scheduler tcp://HOST:8786",))
#: The recipe of the shipped onset model (``pianolib/data/models``): arm b's recipe at the 4
#: epochs its 50-minute budget bought when it was chosen (on this machine 25 minutes now buy about
#: 15 epochs, and longer training cost precision out of timbre: arm b2). Run on 2026-12-01 it gave
#: the shipped onset model (ablation arm ``shipped``, the same weights as arm b-replay: training on
#: CPU with one seed is deterministic); ``key-length`` and ``velocity-pedal`` then add the other
#: three (``make shipped``).
CONFIG_MAP["shipped"] = replace(CONFIG_MAP["maps-synth"], name="shipped", epochs=4,
                                targets=("onset",),
                                description="the shipped onset model: arm b's recipe, 4 epochs")

#: Arm g: the shipped onset recipe on BinContrast's input (level- and colour-blind).
CONFIG_MAP["contrast"] = replace(
    CONFIG_MAP["shipped"], name="contrast", arch="lcrnn",
    description="arm g: the shipped onset recipe (4 epochs) on the log-CQT minus its moving "
                "mean per bin (lcrnn, models.BinContrast): blind to level and microphone "
                "colour, as PCEN's gain control")

CONFIG_MAP["ends-velocity-pedal"] = replace(
    CONFIG_MAP["maps-synth"], name="ends-velocity-pedal", targets=("length", "velocity", "pedal"),
    length_labels="key", max_minutes=36,
    description="the Length model of key releases, the Velocity and the Pedal models in one run, "
                "12 minutes each (the models of recipes key-length and velocity-pedal, which "
                "gave them 25 and 22 minutes), beside an onset model")


def get_config(name: str, **overrides) -> TrainConfig:
    """The recipe ``name`` with some values replaced (None values are ignored).

    Notebook: 03_onset_model.ipynb

    Raises:
        PianolibError: An unknown name or setting.
    """
    if name not in CONFIG_MAP:
        raise PianolibError(f"unknown training config {name!r}; use one of {sorted(CONFIG_MAP)}")
    known = {f.name for f in fields(TrainConfig)}
    bad = set(overrides) - known
    if bad:
        raise PianolibError(f"unknown training settings {sorted(bad)}")
    values = {k: (tuple(v) if isinstance(v, list) else v)
              for k, v in overrides.items() if v is not None}
    return replace(CONFIG_MAP[name], **values)

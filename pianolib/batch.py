"""Transcribe many files in one run: inputs expanded, outputs planned and checked, models once.

``python -m pianolib transcribe IN... -o OUT`` takes files, folders (searched recursively for
audio) and glob patterns. With one input file ``-o`` is the MIDI file; otherwise it is a
folder, and each output mirrors its input's path relative to the folder it was found in
(``recordings/day1/a.wav`` given as ``recordings`` -> ``OUT/day1/a.mid``). Every output is
checked before any model loads (no overwrite without ``--force``); a file that fails later is
reported in one line and the run goes on.

Notebook: 05_midi_merge.ipynb
"""

from __future__ import annotations

import glob
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import PianolibError

#: Suffixes taken from folders and globs (any file given by name is tried, whatever its suffix).
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".aifc",
                  ".m4a", ".aac", ".wma", ".caf", ".w64", ".rf64"}


def expand_inputs(inputs: list[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """``(audio file, path relative to where it was found)`` for files, folders and globs.

    Notebook: 05_midi_merge.ipynb

    Raises:
        PianolibError: An input that does not exist and matches nothing, or a folder or glob
            without audio files.
    """
    found: list[tuple[Path, Path]] = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*")
                           if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
                           and not any(part.startswith(".") for part in
                                       p.relative_to(path).parts))  # e.g. macOS ._take.wav
            if not files:
                raise PianolibError(f"{path}: no audio files in this folder "
                                    f"({', '.join(sorted(AUDIO_SUFFIXES)[:6])}, ...)")
            found += [(p, p.relative_to(path)) for p in files]
        elif path.exists() or not glob.has_magic(str(given)):
            found.append((path, Path(path.name)))  # a missing file is reported by name later
        else:
            matches = sorted(Path(m) for m in glob.glob(str(given), recursive=True))
            files = [m for m in matches if m.is_file() and m.suffix.lower() in AUDIO_SUFFIXES]
            if not files:
                raise PianolibError(f"{given}: no audio files match this pattern")
            root = Path(os.path.commonpath([str(m.parent) for m in files]))
            found += [(m, m.relative_to(root)) for m in files]
    seen: dict[Path, Path] = {}
    unique = []
    for p, rel in found:
        key = p.resolve()
        if key not in seen:
            seen[key] = rel
            unique.append((p, rel))
    return unique


def plan_outputs(pairs: list[tuple[Path, Path]], out: str | os.PathLike,
                 force: bool = False) -> list[tuple[Path, Path]]:
    """``(audio, midi)`` pairs; every output checked before anything runs.

    Notebook: 05_midi_merge.ipynb

    Raises:
        PianolibError: Two inputs would write the same output; an output exists (without
            ``force``) or cannot be written; ``out`` is an existing file while several
            inputs are given.
    """
    from .files import check_writable

    out = Path(out)
    midi_suffix = out.suffix.lower() in (".mid", ".midi")
    single = len(pairs) == 1 and not out.is_dir() and midi_suffix
    if single:
        plan = [(pairs[0][0], out)]
    else:
        if out.exists() and not out.is_dir():
            raise PianolibError(f"{out}: is a file; with several inputs -o must be a folder")
        if midi_suffix and not out.exists():
            raise PianolibError(f"{out}: {len(pairs)} inputs need an output folder, not a "
                                "MIDI file name")
        plan = [(p, out / rel.with_suffix(".mid")) for p, rel in pairs]
    seen: dict[str, Path] = {}
    for audio, midi in plan:
        key = str(midi).casefold()  # Take.wav and take.wav clash on macOS and Windows
        if key in seen:
            raise PianolibError(f"{midi}: both {seen[key]} and {audio} would be written "
                                "here; rename one of them or give them in separate folders")
        seen[key] = audio
    targets = [midi for _, midi in plan]
    existing = [m for m in targets if m.exists()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise PianolibError(f"{existing[0]}: already exists{more}; pass --force to overwrite")
    for midi in targets:
        if not midi.parent.exists():
            continue  # made when the file is written; check_writable checks existing folders
        check_writable(midi, force)
    return plan


@dataclass
class BatchResult:
    """What a many-file run did."""

    done: list[tuple[Path, Path, int]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    audio_seconds: float = 0.0
    seconds: float = 0.0

    def summary(self) -> str:
        n = len(self.done) + len(self.failed)
        speed = self.audio_seconds / self.seconds if self.seconds > 0 else 0.0
        failed = f", {len(self.failed)} failed" if self.failed else ""
        return (f"transcribed {len(self.done)} of {n} file{'s' * (n != 1)}{failed}: "
                f"{self.audio_seconds:.1f} s of audio in {self.seconds:.1f} s "
                f"({speed:.0f}x real time)")


def transcribe_many(plan: list[tuple[Path, Path]], transcriber, force: bool = False,
                    progress: bool | None = None, jobs: int = 1, stream=None) -> BatchResult:
    """Transcribe every ``(audio, midi)`` of ``plan`` with one loaded ``transcriber``.

    A file that fails (unreadable, not audio) is reported on ``stream`` in one line and the
    run goes on. A progress bar (files and audio seconds) is shown on a terminal.

    Notebook: 05_midi_merge.ipynb

    Args:
        plan: From :func:`plan_outputs`.
        transcriber: A :class:`pianolib.transcribe.Transcriber`.
        force: Overwrite existing outputs.
        progress: Show a progress bar (default: when ``stream`` is a terminal).
        jobs: Files transcribed at once in worker processes (1: in this process).
        stream: Where messages go (default ``sys.stderr``).
    """
    from .stream import probe_audio
    from .transcribe import transcribe

    stream = stream or sys.stderr
    progress = stream.isatty() if progress is None else progress
    result = BatchResult()
    infos = {}
    for audio, _ in plan:
        try:
            infos[audio] = probe_audio(audio)
        except (PianolibError, OSError) as exc:
            infos[audio] = exc
    total = sum(i["seconds"] or 0 for i in infos.values() if isinstance(i, dict))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=round(total, 1), unit="s", unit_scale=False, file=stream,
                   desc=f"0/{len(plan)} files", leave=False,
                   bar_format="{desc} |{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]")
    t0 = time.perf_counter()

    def report(audio, midi, outcome):
        if isinstance(outcome, BaseException):
            msg = str(outcome) if isinstance(outcome, PianolibError) else f"{audio}: {outcome}"
            result.failed.append((audio, msg))
            (bar.write if bar else lambda s: print(s, file=stream))(f"error: {msg}")
        else:
            result.done.append((audio, midi, outcome))
            result.audio_seconds += infos[audio]["seconds"] or 0.0
        if bar:
            info = infos[audio]
            bar.update((info["seconds"] or 0) if isinstance(info, dict) else 0)
            bar.set_description(f"{len(result.done) + len(result.failed)}/{len(plan)} files")

    todo = []
    for audio, midi in plan:
        if isinstance(infos[audio], BaseException):
            report(audio, midi, infos[audio])
        else:
            todo.append((audio, midi))
    if jobs > 1 and len(todo) > 1:
        _run_parallel(todo, transcriber, force, jobs, report)
    else:
        for audio, midi in todo:
            try:
                midi.parent.mkdir(parents=True, exist_ok=True)
                report(audio, midi, len(transcribe(audio, midi, force=force,
                                                   transcriber=transcriber)))
            except Exception as exc:  # noqa: BLE001 - one file's failure must not end the run
                report(audio, midi, exc)
    result.seconds = time.perf_counter() - t0
    if bar:
        bar.close()
    return result


_WORKER: dict = {}


def _worker_init(kwargs: dict) -> None:
    from .transcribe import Transcriber

    _WORKER["tr"] = Transcriber(**kwargs)


def _worker_run(args) -> int | str:
    from .transcribe import transcribe

    audio, midi, force = args
    try:
        midi.parent.mkdir(parents=True, exist_ok=True)
        return len(transcribe(audio, midi, force=force, transcriber=_WORKER["tr"]))
    except PianolibError as exc:
        return f"error: {exc}"
    except Exception as exc:  # noqa: BLE001 - reported as this file's failure
        return f"error: {audio}: {exc}"


def _run_parallel(todo, transcriber, force, jobs, report) -> None:
    """Files in ``jobs`` spawned worker processes, each with its own transcriber (1 thread)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    kwargs = {k: getattr(transcriber, k) for k in ("model_dir", "onset_threshold",
              "length_threshold", "min_frames", "decoder", "reonset", "runtime", "prefetch")}
    kwargs["threads"] = 1  # the workers share the cores
    # the models the main transcriber found (so a missing one is not noticed again per worker)
    kwargs.update(velocity="velocity" in transcriber.outputs, pedal="pedal" in transcriber.outputs,
                  pedal_threshold=transcriber.pedal_threshold)
    with ProcessPoolExecutor(jobs, mp.get_context("spawn"), initializer=_worker_init,
                             initargs=(kwargs,)) as pool:
        futures = {pool.submit(_worker_run, (a, m, force)): (a, m) for a, m in todo}
        from concurrent.futures import as_completed

        try:
            for fut in as_completed(futures):
                audio, midi = futures[fut]
                try:
                    out = fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. a worker killed (out of memory)
                    out = f"error: {audio}: worker process failed ({exc})"
                report(audio, midi, PianolibError(out[7:]) if isinstance(out, str) else out)
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise

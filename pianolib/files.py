"""Safe file writing: never leave a half-written file that looks complete, never clobber.

Notebook: 05_midi_merge.ipynb
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import PianolibError


def check_writable(path: str | os.PathLike, force: bool = False) -> Path:
    """Check that ``path`` may be written: it must not exist unless ``force``.

    Args:
        path: The output file.
        force: Allow overwriting an existing file.

    Returns:
        The path as a ``Path``.

    Raises:
        PianolibError: If the file exists and ``force`` is false, or its folder cannot be made.
    """
    path = Path(path)
    if path.exists() and not force:
        raise PianolibError(f"{path}: already exists; pass --force (force=True) to overwrite it")
    if path.is_dir():
        raise PianolibError(f"{path}: is a directory, expected a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PianolibError(f"{path}: cannot create its folder ({exc.strerror})") from exc
    if not os.access(path.parent, os.W_OK):
        raise PianolibError(f"{path}: folder {path.parent} is not writable")
    return path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only on success.

    A crash or exception leaves no partial file under the final name.

    Args:
        path: The final file.
        force: Allow replacing an existing file.

    Yields:
        The temporary path to write to (same folder and suffix as ``path``).
    """
    path = check_writable(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | os.PathLike, data, force: bool = False) -> Path:
    """Write ``data`` as indented JSON, atomically; refuses to overwrite without ``force``."""
    import json

    with atomic_write(path, force=force) as tmp:
        tmp.write_text(json.dumps(data, indent=2))
    return Path(path)


def write_text(path: str | os.PathLike, text: str, force: bool = False) -> Path:
    """Write a text file atomically; refuses to overwrite without ``force``."""
    with atomic_write(path, force=force) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_csv(path: str | os.PathLike, rows: list[dict], fieldnames=None,
              force: bool = False) -> Path:
    """Write dict rows as CSV, atomically; refuses to overwrite without ``force``.

    Args:
        path: The CSV file.
        rows: One dict per row.
        fieldnames: The columns (default: the keys of the first row); other keys are ignored.
        force: Allow replacing an existing file.
    """
    import csv

    with atomic_write(path, force=force) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(fieldnames or rows[0]), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return Path(path)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux ``renameat2(RENAME_EXCHANGE)``; False if unsupported.

    Python's standard library has no atomic exchange of two folders; this is the one system
    call that gives "no moment without a complete dataset", so we call it through ctypes.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def build_folder(out: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """A private temporary folder for building ``out``, swapped in only when the build succeeds.

    The rules every dataset build follows (corpus, recordings, samples, MAESTRO):

    * the target is checked first: an existing ``out`` is an error unless ``force``;
    * a lock file ``.<name>.lock`` next to ``out`` (created exclusively, holding our pid) makes
      a second build of the same folder fail at once with a clear message; a lock left by a
      process that no longer runs is taken over;
    * the build writes into a unique ``tempfile.mkdtemp`` folder next to ``out``;
    * on success the new folder replaces ``out`` with an atomic exchange (so there is no moment
      without a complete dataset), then the old one is removed;
    * on any error or Ctrl-C the temporary folder and the lock are removed and ``out`` is left
      exactly as it was.

    Notebook: 01_data_and_preprocessing.ipynb

    Args:
        out: The dataset folder to build.
        force: Replace an existing ``out``.

    Yields:
        The temporary folder to build in.
    """
    import shutil

    out = Path(out)
    if out.is_symlink():  # e.g. data/sample -> pianolib/data/sample: build the real folder
        out = out.resolve()
    if out.exists() and not force:
        raise PianolibError(f"{out}: already exists; pass --force to rebuild it")
    if out.exists() and not out.is_dir():
        raise PianolibError(f"{out}: exists and is not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PianolibError(f"{out.parent}: cannot create folder ({exc.strerror})") from None
    lock = out.parent / f".{out.name}.lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and _pid_alive(pid):
                raise PianolibError(
                    f"{out}: another build (pid {pid}) is writing this folder; wait for it or "
                    f"remove {lock} if that process is gone") from None
            lock.unlink(missing_ok=True)  # stale lock of a dead build
    else:  # pragma: no cover - lost a race twice
        raise PianolibError(f"{out}: could not take the lock {lock}")
    with os.fdopen(fd, "w") as fh:
        fh.write(str(os.getpid()))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes a private 0700 folder; a dataset is not
    try:
        yield tmp
        if out.exists():
            if not force:  # appeared during the build
                raise PianolibError(f"{out}: appeared during the build; pass --force to replace")
            if _exchange(tmp, out):
                shutil.rmtree(tmp)  # tmp now holds the old dataset
            else:  # no renameat2: two renames, the gap is one system call
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
                os.replace(out, old / "d")
                os.replace(tmp, out)
                shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        lock.unlink(missing_ok=True)

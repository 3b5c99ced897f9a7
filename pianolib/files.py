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

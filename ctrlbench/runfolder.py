"""Run folders own their lifecycle: one run (or one study) per folder, one writer at a time,
damaged files set aside and named, never merged or silently used.

- :func:`lock_folder` takes an exclusive ``flock`` on ``<folder>/.lock`` for the life of a writer;
  a second writer is refused with the holder's pid. The kernel drops the lock when the holder
  dies, even by ``kill -9``, so a stale lock never blocks a resume.
- :func:`claim_folder` refuses to start a new run in a folder that already holds one unless the
  caller resumes it, or moves the old run aside (``--overwrite``) to ``<folder>.old-<time>``.
- :func:`quarantine` moves a corrupt or foreign file to ``<root>/quarantine/`` next to a
  ``.why.txt`` that says what was wrong with it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "CorruptFileError",
    "FolderBusyError",
    "RunFolderError",
    "claim_folder",
    "ensure_writable",
    "lock_folder",
    "quarantine",
]

LOCK_NAME = ".lock"
QUARANTINE = "quarantine"


class RunFolderError(ValueError):
    """The folder cannot be used as asked (holds another run, not writable, is a file)."""


class CorruptFileError(ValueError):
    """A result file (record, trajectory, checkpoint) that cannot be read back; the message
    names the file and what is wrong with it."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{str(path)!r} is corrupt or not ours: {problem}")


class FolderBusyError(RunFolderError):
    """Another live process is writing to the folder."""


def ensure_writable(folder: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Create ``folder`` if needed and check that files can be written in it.

    Raises :class:`RunFolderError` naming the folder when it is a file or not writable.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"{what} {str(folder)!r} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create {what} {str(folder)!r}: {exc.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RunFolderError(f"{what} {str(folder)!r} is not writable")
    return folder


@contextmanager
def lock_folder(folder: str | os.PathLike[str], what: str = "run") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if missing) for the block.

    Raises
    ------
    FolderBusyError
        Another process holds the lock; the message names its pid.
    RunFolderError
        The folder is a file or cannot be written.
    """
    folder = ensure_writable(folder, f"{what} folder")
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise RunFolderError(f"cannot lock {str(folder)!r}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise FolderBusyError(
                f"{str(folder)!r} is in use by another {what} (pid {holder}); wait for it to "
                f"finish, stop it, or choose another folder"
            ) from None
        raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield folder
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _contents(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != LOCK_NAME)


def _aside_name(folder: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = folder.with_name(f"{folder.name}.old-{stamp}")
    k = 1
    while aside.exists():
        aside = folder.with_name(f"{folder.name}.old-{stamp}-{k}")
        k += 1
    return aside


def claim_folder(
    folder: str | os.PathLike[str],
    *,
    resume: bool,
    overwrite: bool,
    markers: Iterable[str] | None = None,
) -> Path | None:
    """Make ``folder`` ready for a new run, or check it holds one to resume.

    Call it while holding :func:`lock_folder`.

    Parameters
    ----------
    folder:
        The run folder.
    resume:
        The caller continues the run in the folder: nothing is moved or refused.
    overwrite:
        Move the folder's contents (all but the lock) aside to ``<folder>.old-<time>``.
    markers:
        Names whose presence means "holds a run"; ``None``: any file does.

    Returns
    -------
    pathlib.Path or None
        Where the old run was moved, when it was.

    Raises
    ------
    RunFolderError
        The folder holds a run and neither ``resume`` nor ``overwrite`` was given, or both were.
    """
    folder = Path(folder).resolve()
    if resume and overwrite:
        raise RunFolderError("choose one of --resume and --overwrite, not both")
    present = _contents(folder) if folder.is_dir() else []
    if markers is not None:
        wanted = set(markers)
        held = [name for name in present if name in wanted]
    else:
        held = present
    if resume or not held:
        return None
    if not overwrite:
        raise RunFolderError(
            f"{str(folder)!r} already holds a run ({', '.join(held)}); pass --resume to continue "
            f"it, --overwrite to move it aside to {folder.name}.old-<time>, or choose another "
            f"folder"
        )
    aside = _aside_name(folder)
    aside.mkdir()
    for name in present:
        os.replace(folder / name, aside / name)
    return aside


def quarantine(path: str | os.PathLike[str], root: str | os.PathLike[str], reason: str) -> Path:
    """Move a corrupt or foreign file to ``<root>/quarantine/`` with a ``.why.txt`` note.

    Returns the file's new path. The move is a rename within ``root``, so nothing is copied
    and nothing is lost.
    """
    path, qdir = Path(path), Path(root) / QUARANTINE
    qdir.mkdir(parents=True, exist_ok=True)
    dest = qdir / path.name
    k = 1
    while dest.exists():
        dest = qdir / f"{path.name}.{k}"
        k += 1
    os.replace(path, dest)
    dest.with_name(dest.name + ".why.txt").write_text(f"{path}: {reason}\n")
    return dest

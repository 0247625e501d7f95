"""Atomic file writes, the one implementation used by studies, trajectories, reports and
checkpoints: a reader sees the old file or the new one, never a torn one.

Files get the permissions of an ordinary ``open()`` (``0o666`` less the umask), not the
``0o600`` of a bare ``mkstemp``, so a colleague can read a shared study folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "atomic_write_bytes", "optional_pyplot", "save_figure"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(fh)`` on a temporary file in ``path``'s folder, fsync it, rename it over
    ``path``; on any error (or interrupt) the temporary file is removed and ``path`` is untouched.

    Parameters
    ----------
    path:
        The destination; its folder is created if missing.
    write:
        Writes the content to the binary file handle it is given (e.g. ``torch.save``).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda fh: fh.write(data))


def optional_pyplot() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend, or ``None`` when matplotlib is not
    installed (study scripts then skip their figures and still write their tables)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Render a matplotlib figure to PNG in memory, write it atomically, close it."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())

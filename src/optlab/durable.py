"""Durable files: what the results store and the halving checkpoints both need to write a
file so that a crash leaves either the old version or the new one, never half of one.

Every other file optlab writes (reports, figures, decompressed data, policy configs) goes
through :func:`atomic_writer` / :func:`write_atomic`: a fresh temporary file (created
exclusively, so never through a link planted at its name) renamed over the target, which
replaces a symbolic link there instead of writing to what it points at.

Both write a temporary file in the target's folder, flush and fsync it, ``os.replace`` it
into place, then fsync the folder (:func:`fsync_directory`) so the rename itself survives
a power cut. A temporary left by a killed writer is recognised by the writer's pid in its
name (:func:`pid_alive`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def fsync_directory(path: Path) -> None:
    """fsync a folder (its entries: a rename into it); a no-op where the platform cannot
    open a folder."""
    with contextlib.suppress(OSError):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: str = "wb", **options: Any) -> Iterator[IO]:
    """A handle on a new temporary file beside ``path``, renamed onto ``path`` when the block
    ends without error (flushed, fsynced; the folder fsynced after), deleted otherwise.

    Never writes through a symbolic link: the temporary file is created exclusively
    (``mkstemp``), and the rename replaces a link at ``path`` by the new file, leaving the
    link's target untouched. ``mode`` is ``"wb"`` or ``"w"`` (``options``: ``encoding``...).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_writer: mode must be 'w' or 'wb', got {mode!r}")
    final = Path(path)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{final.name}.{os.getpid()}.", suffix=".tmp", dir=final.parent
    )
    try:
        with os.fdopen(descriptor, mode, **options) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, final)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    fsync_directory(final.parent)


def write_atomic(path: str | os.PathLike[str], content: str | bytes) -> Path:
    """Write ``content`` (text as UTF-8) to ``path`` with :func:`atomic_writer`."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    with atomic_writer(path) as handle:
        handle.write(data)
    return Path(path)


@functools.cache
def _umask() -> int:
    """The process umask, read once (by setting it and back: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

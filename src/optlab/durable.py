"""Durable files: what the results store and the halving checkpoints both need to write a
file so that a crash leaves either the old version or the new one, never half of one.

Both write a temporary file in the target's folder, flush and fsync it, ``os.replace`` it
into place, then fsync the folder (:func:`fsync_directory`) so the rename itself survives
a power cut. A temporary left by a killed writer is recognised by the writer's pid in its
name (:func:`pid_alive`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


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

"""Halving checkpoints on disk: one file per completed round, written atomically.

After every completed round a halving run writes its state (the payload is the halving's,
:mod:`optlab.train.population.halving`) to ``checkpoint_dir/round-K.pt`` atomically
(``torch.save`` to a temporary file in the same folder, fsync, ``os.replace``); the
previous round's file is then removed. :func:`load_latest` hands the latest file's payload
to a restore function; a file that cannot be read, or that the restore function refuses
(written by other arguments), is ignored with a :class:`CheckpointWarning`. The caller
removes the folder (:func:`remove_checkpoints`) once it has stored the result.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from optlab.durable import fsync_directory, pid_alive

CHECKPOINT_FORMAT = "optlab-halving-checkpoint"
CHECKPOINT_VERSION = 1
_ROUND_FILE = re.compile(r"^round-(\d+)\.pt$")
Restored = TypeVar("Restored")


class CheckpointWarning(UserWarning):
    """A halving checkpoint was ignored (unreadable, or written by other arguments)."""


def save_checkpoint(directory: str | os.PathLike[str], number: int, payload: Any) -> Path:
    """Write ``payload`` to ``directory/round-<number>.pt`` atomically (temporary file in
    the same folder, flush, fsync, ``os.replace``, fsync of the folder), then remove the
    older rounds' files. Returns the path."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"round-{number}.pt"
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".round-{number}.{os.getpid()}.", suffix=".tmp", dir=folder
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        fsync_directory(folder)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    for path, other in round_files(folder):
        if other < number:
            with contextlib.suppress(OSError):
                path.unlink()
    return final


def round_files(folder: Path) -> list[tuple[Path, int]]:
    """``(path, round)`` of the checkpoint files in ``folder``, latest round first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _ROUND_FILE.match(path.name)
        if match:
            found.append((path, int(match.group(1))))
    return sorted(found, key=lambda item: -item[1])


def remove_stale_temporaries(folder: Path) -> None:
    """Temporary files of writers that died mid-write (never read) are deleted."""
    if not folder.is_dir():
        return
    for path in folder.glob(".round-*.tmp"):
        parts = path.name.split(".")  # ".round-K.<pid>.<random>.tmp"
        if len(parts) >= 5 and parts[2].isdigit() and not pid_alive(int(parts[2])):
            with contextlib.suppress(OSError):
                path.unlink()


def remove_checkpoints(directory: str | os.PathLike[str]) -> None:
    """Delete a halving run's checkpoint folder (call it once the result is stored)."""
    shutil.rmtree(directory, ignore_errors=True)


def load_latest(
    directory: Path, restore: Callable[[Any, int], Restored], stacklevel: int = 2
) -> Restored | None:
    """``restore(payload, round)`` of the latest checkpoint in ``directory`` that loads and
    that ``restore`` accepts (it raises on anything that does not fit: then nothing of it is
    used, and a :class:`CheckpointWarning` names it); None when there is none."""
    remove_stale_temporaries(directory)
    for path, number in round_files(directory):
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            return restore(payload, number)
        except Exception as error:  # unreadable or unfit: never used, half or whole
            warnings.warn(
                f"ignoring halving checkpoint {path}: {type(error).__name__}: {error}",
                CheckpointWarning,
                stacklevel=stacklevel + 1,
            )
    return None


def plain(value: Any) -> Any:
    """A comparable, picklable-by-weights_only form of hyperparameters (tensors as lists)."""
    if isinstance(value, torch.Tensor):
        return {"tensor": value.detach().cpu().tolist(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value

"""Paths a person passes in (``--out``, ``--data-dir``, a suite or policy file), checked
before any work starts so that a bad one is one line naming it, never an ``OSError``
traceback after hours of runs.

:func:`check_path` refuses a path the operating system cannot even look up (a name over
the file system's limit, 255 bytes on most; a whole path over 4,096 bytes, or with a NUL);
:func:`check_writable_folder` also makes the folder and proves it can be written to (a
read-only store, a file where a folder should be). Both raise :class:`PathError`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from optlab.errors import OptlabError

NAME_MAX = 255
"""Bytes in one name of a path (most file systems' limit; the folder's own, where known)."""
PATH_MAX = 4096
"""Bytes in a whole path (Linux's limit)."""


class PathError(OptlabError):
    """A path given by a person cannot be used (too long, not a folder, not writable)."""


def _short(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 80 else f"{text[:40]}...{text[-30:]}"


def _name_max(path: Path) -> int:
    for folder in (path, *path.parents):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if folder.is_dir():
                return int(os.pathconf(folder, "PC_NAME_MAX"))
    return NAME_MAX


def check_path(what: str, path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`Path`, or :class:`PathError` naming ``what`` (e.g. ``--out``)
    if no file could ever have that name."""
    given = Path(path).expanduser()
    text = os.fsencode(given)
    if b"\0" in text:
        raise PathError(f"{what} must not contain a NUL character, got {_short(given)!r}")
    absolute = os.fsencode(given.absolute())
    if len(absolute) > PATH_MAX:
        raise PathError(
            f"{what} is too long: {len(absolute)} bytes, at most {PATH_MAX} ({_short(given)})"
        )
    longest = max((len(os.fsencode(part)) for part in given.parts), default=0)
    if longest > NAME_MAX or longest > _name_max(given.absolute()):
        raise PathError(
            f"{what} has a name of {longest} bytes, at most {min(NAME_MAX, _name_max(given))} "
            f"per name ({_short(given)})"
        )
    return given


def check_writable_folder(what: str, path: str | os.PathLike[str]) -> Path:
    """``path`` made (with its parents) and proven writable by creating and removing a
    temporary file in it; else :class:`PathError` naming ``what`` and the reason."""
    folder = check_path(what, path)
    if folder.exists() and not folder.is_dir():
        raise PathError(f"{what} {_short(folder)} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".optlab-probe-"):
            pass
    except OSError as error:
        raise PathError(
            f"{what} {_short(folder)} cannot be written: {error.strerror or error}"
        ) from None
    return folder

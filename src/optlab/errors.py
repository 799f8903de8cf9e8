"""The exception root of optlab.

Invalid input raises a subclass of :class:`OptlabError` whose message names the field, the
value given and what is allowed, so that the command line can print that one line and exit
with status 2; where a built-in type is expected (torch's constructors raise ``ValueError``
and ``TypeError``), the error is also one (:class:`InvalidValueError`,
:class:`InvalidTypeError`, :class:`UnsupportedError`). Any other exception is a bug.

The classes live in :mod:`optlab.optim.errors`, the lowest layer, so that ``optim/`` imports
nothing of optlab outside itself; this module is where every other layer takes them from.
"""

from __future__ import annotations

from optlab.optim.errors import (
    InvalidTypeError,
    InvalidValueError,
    OptlabError,
    UnsupportedError,
)

__all__ = ["InvalidTypeError", "InvalidValueError", "OptlabError", "UnsupportedError"]

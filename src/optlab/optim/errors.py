"""optlab's exception root, defined in the lowest layer so that ``optim/`` imports nothing
of optlab outside itself (``optlab.errors`` re-exports these for every other layer).

Every error optlab raises for a person's input is an :class:`OptlabError`; where Python or
torch users expect a built-in type, it is also one (``ValueError``, ``TypeError``,
``RuntimeError``), so ``except ValueError`` around a constructor works as with torch. The
command line prints an ``OptlabError``'s message as one line and exits with status 2; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class OptlabError(Exception):
    """Base class of optlab's own errors: the message is written for a person."""


class InvalidValueError(OptlabError, ValueError):
    """A value outside what is allowed; the message names the field, the value and what
    is allowed."""


class InvalidTypeError(OptlabError, TypeError):
    """A value of the wrong type; the message names the field and the type expected."""


class UnsupportedError(OptlabError, RuntimeError):
    """The optimizer cannot do what was asked (sparse or complex gradients, a step without
    its required closure, a CPU-only path on another device); the message says what to do."""

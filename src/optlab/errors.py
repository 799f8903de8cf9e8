"""The exception root of optlab.

Invalid input raises a subclass of :class:`OptlabError` (or ``ValueError`` / ``TypeError``
from constructors, as torch does) whose message names the field, the value given and what
is allowed, so that the command line can print that one line and exit with status 2.
"""

from __future__ import annotations


class OptlabError(Exception):
    """Base class of optlab's own errors: the message is written for a person."""

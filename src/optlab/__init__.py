"""optlab: a laboratory for gradient-based optimizers on PyTorch.

Importing ``optlab`` is cheap: the sub-packages are imported on first use
(``optlab.optim``, ``optlab.reference``, ``optlab.testing``).
"""

from __future__ import annotations

import importlib
from typing import Any

from optlab.errors import OptlabError

__version__ = "0.1.0"
__all__ = ["OptlabError", "__version__", "optim", "reference", "testing"]

_SUBPACKAGES = frozenset({"optim", "reference", "testing"})


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"optlab.{name}")
    raise AttributeError(f"module 'optlab' has no attribute {name!r}")

"""Seeds of a build: validate them, and turn them into generators and initial parameters.

The instance seed feeds ``numpy.random.default_rng`` (generated data, matrices, splits);
the init seed fixes parameters through :func:`init_module`, which seeds torch inside
``torch.random.fork_rng`` so that the caller's global RNG state is left exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

from optlab.problems.base import BuildContext, ProblemError

M = TypeVar("M", bound=torch.nn.Module)


def check_context(problem: str, context: BuildContext) -> None:
    """Raise :class:`ProblemError` naming the field when a seed is not an integer >= 0."""
    if not isinstance(context, BuildContext):
        raise ProblemError(
            f"{problem}: context must be a BuildContext, got {type(context).__name__}"
        )
    for field_name in ("instance_seed", "init_seed"):
        value = getattr(context, field_name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ProblemError(f"{problem}: {field_name} must be an integer >= 0, got {value!r}")


def instance_rng(context: BuildContext) -> np.random.Generator:
    """The NumPy generator of the instance seed (data, matrices, splits)."""
    return np.random.default_rng(context.instance_seed)


def init_module(factory: Callable[[], M], seed: int) -> M:
    """Build ``factory()`` with torch seeded by ``seed``, leaving the global RNG untouched.

    Equivalent to ``torch.manual_seed(seed); factory()`` for the parameters drawn, so a
    model's initial parameters depend on the init seed only.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def init_normal(shape: tuple[int, ...], seed: int, dtype: torch.dtype) -> torch.Tensor:
    """Standard normal draws from a local ``torch.Generator`` seeded by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype)

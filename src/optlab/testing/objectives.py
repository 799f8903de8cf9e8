"""Small deterministic objectives used by the contract kit (torch and NumPy versions)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Objective:
    """A smooth test function with a known minimum value and a fixed start point."""

    name: str
    start: tuple[float, ...]
    minimum: float
    function: Callable[[torch.Tensor], torch.Tensor]

    def initial(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """A fresh leaf tensor at the start point."""
        return torch.tensor(self.start, dtype=dtype).requires_grad_(True)


def _ill_conditioned(x: torch.Tensor) -> torch.Tensor:
    # 0.5 * sum(lambda_i x_i^2), lambda log-spaced from 1 to 1000 (condition number 1000)
    curvature = torch.logspace(0, 3, x.numel(), dtype=x.dtype, device=x.device)
    return 0.5 * torch.sum(curvature * x * x)


def _rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


ILL_CONDITIONED_QUADRATIC = Objective(
    "ill-conditioned quadratic (10-D, condition 1000)",
    start=(1.0,) * 10,
    minimum=0.0,
    function=_ill_conditioned,
)
ROSENBROCK_2D = Objective("Rosenbrock 2-D", start=(-1.2, 1.0), minimum=0.0, function=_rosenbrock)


def smooth_gradient(theta: np.ndarray, seed_scale: np.ndarray) -> np.ndarray:
    """Gradient of a smooth non-convex function, sum(0.5*a*(x-1)^2 + 0.1*sin(3x)).

    Used to drive an optimizer and its NumPy reference through identical gradient
    functions (each evaluated at its own parameters).
    """
    return seed_scale * (theta - 1.0) + 0.3 * np.cos(3.0 * theta)

"""The objective of a 2-D analytic problem on a grid, for contour plots of trajectories.

:func:`load_landscape` builds the problem through ``optlab.problems`` (imported lazily, so
the report works without it) and returns a :class:`Landscape`: a function of an ``(N, 2)``
array of points, the plot bounds, the known minimisers and the known minimum. Anything that
goes wrong (the package missing, an unknown name, a problem that is not 2-D) gives None:
the report then draws the trajectories without contours.

The problem's loss is evaluated one point at a time (``x`` is copied into the model's single
parameter), since nothing guarantees that it accepts a batch of points; a 120 x 120 grid
takes about a third of a second for the analytic functions. A point where the
loss raises or is not finite is left blank.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Bounds = tuple[tuple[float, float], tuple[float, float]]
GRID_POINTS = 120


@dataclass(frozen=True)
class Landscape:
    """A 2-D objective: ``function(points (N, 2)) -> values (N,)`` and where to draw it."""

    function: Callable[[np.ndarray], np.ndarray]
    bounds: Bounds | None = None
    minima: tuple[tuple[float, float], ...] = ()
    optimum: float | None = None

    def grid(self, bounds: Bounds, points: int = GRID_POINTS) -> tuple[np.ndarray, ...]:
        """``(X, Y, Z)`` on a ``points x points`` grid over ``bounds`` (non-finite Z: NaN)."""
        (xmin, xmax), (ymin, ymax) = bounds
        X, Y = np.meshgrid(np.linspace(xmin, xmax, points), np.linspace(ymin, ymax, points))
        flat = np.column_stack([X.ravel(), Y.ravel()])
        Z = np.asarray(self.function(flat), dtype=float).reshape(X.shape)
        return X, Y, np.where(np.isfinite(Z), Z, np.nan)

    def gap_grid(
        self, bounds: Bounds, points: int = GRID_POINTS
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float] | None:
        """``(X, Y, gap, low, high)`` for log-spaced contours of ``f - min`` over ``bounds``.

        ``min`` is the lowest value on the grid (or the known optimum when lower); ``gap``
        is clipped to ``[low, high]`` (``low``: its 0.5th percentile among positive values,
        at least ``high * 1e-12``; non-finite points drawn at ``high``). None when no
        positive finite gap is left to draw.
        """
        X, Y, Z = self.grid(bounds, points)
        if not np.isfinite(Z).any():
            return None
        lowest = float(np.nanmin(Z))
        if self.optimum is not None and math.isfinite(self.optimum):
            lowest = min(lowest, self.optimum)
        gap = Z - lowest
        positive = gap[np.isfinite(gap) & (gap > 0)]
        if positive.size == 0:
            return None
        high = float(positive.max())
        low = max(float(np.percentile(positive, 0.5)), high * 1e-12)
        if not high > low:
            return None
        clipped = np.clip(np.where(np.isfinite(gap), gap, high), low, high)
        return X, Y, clipped, low, high


def point_function(instance: object) -> Callable[[np.ndarray], np.ndarray]:
    """Evaluate an ``optlab.problems`` instance's loss at each row of an ``(N, 2)`` array."""
    import torch

    model = instance.model  # type: ignore[attr-defined]
    loss = instance.loss  # type: ignore[attr-defined]
    parameter = model.x

    def function(points: np.ndarray) -> np.ndarray:
        values = np.empty(len(points))
        saved = parameter.detach().clone()
        with torch.no_grad():
            try:
                for i, point in enumerate(points):
                    parameter.copy_(torch.as_tensor(point, dtype=parameter.dtype))
                    try:
                        values[i] = float(loss(model, None))
                    except (ArithmeticError, RuntimeError, ValueError):
                        values[i] = math.nan
            finally:
                parameter.copy_(saved)
        return values

    return function


def load_landscape(problem: str, instance_seed: int | None = None) -> Landscape | None:
    """The landscape of ``problem`` from ``optlab.problems``, or None (see module docstring)."""
    try:
        problems = importlib.import_module("optlab.problems")
        context_type = problems.BuildContext
        context = (
            context_type() if instance_seed is None else context_type(instance_seed=instance_seed)
        )
        instance = problems.build(problem, context)
        parameter = getattr(instance.model, "x", None)
        if parameter is None or parameter.numel() != 2:
            return None
        bounds = _bounds(getattr(instance, "plot_bounds", None))
        minima = tuple(
            (float(m[0]), float(m[1])) for m in getattr(instance, "minima", ()) or () if len(m) == 2
        )
        optimum = getattr(instance, "optimum", None)
        return Landscape(
            function=point_function(instance),
            bounds=bounds,
            minima=minima,
            optimum=None if optimum is None else float(optimum),
        )
    except Exception:
        # Whatever fails here (package missing or half-written, unknown name, a problem
        # that builds differently) costs the contours only, never the report.
        return None


def _bounds(value: object) -> Bounds | None:
    with contextlib.suppress(TypeError, ValueError, IndexError):
        (xmin, xmax), (ymin, ymax) = value  # type: ignore[misc]
        bounds = ((float(xmin), float(xmax)), (float(ymin), float(ymax)))
        if all(math.isfinite(v) for pair in bounds for v in pair) and xmin < xmax and ymin < ymax:
            return bounds
    return None

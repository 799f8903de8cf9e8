"""Iterations to converge on 2-D test functions, on the NumPy reference rules (float64).

The IMO report ("IMO — Inertial Mass Optimizer", ashmithkp123-dotcom/Inertial-Mass-Optimizer-IMO-)
counts iterations to converge at lr 0.01 on a well-conditioned quadratic, an ill-conditioned
quadratic and Rosenbrock's function, without stating the settings.
``benchmarks/imo_report_table.py`` searches for settings that reproduce its baselines with
these functions; the claims (:mod:`optlab.claims`) count iterations from seeded starts with
:func:`seeded_start` and :func:`iterations`.

Rules (:mod:`optlab.reference`): ``adam`` (torch's defaults), ``momentum`` (torch's SGD
momentum form, ``b = 0.9 b + g``), ``momentum-ema`` (``v = 0.9 v + 0.1 g``),
``imo-soft-nesterov`` and ``imo-algorithm-box`` (IMO's two step forms, see
:mod:`optlab.optim.imo`). A count is the first iteration after which the stopping rule
holds: ``("f", tol)`` is ``f(x) < tol``, ``("grad", tol)`` is ``||grad f(x)|| < tol``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from optlab import reference

LR = 0.01
"""The report's learning rate for every method."""
REPORT_TABLE: dict[str, dict[str, int]] = {
    "well-conditioned": {"imo": 287, "adam": 826, "momentum": 1207},
    "ill-conditioned": {"imo": 246, "adam": 2230, "momentum": 985},
    "rosenbrock": {"imo": 769, "adam": 4721, "momentum": 1914},
}
"""The report's iterations to converge at lr 0.01 (the claimed values, as published)."""
METHODS = ("adam", "momentum", "momentum-ema", "imo-soft-nesterov", "imo-algorithm-box")

Function = Callable[[np.ndarray], float]
Gradient = Callable[[np.ndarray], np.ndarray]


def quadratic(curvatures: tuple[float, ...]) -> tuple[Function, Gradient]:
    """f(x) = sum(c_i x_i^2) (so its Hessian is diag(2 c_i))."""
    c = np.asarray(curvatures, dtype=float)
    return (lambda x: float(np.sum(c * x * x))), (lambda x: 2.0 * c * x)


def rosenbrock() -> tuple[Function, Gradient]:
    """f(x, y) = (1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1)."""

    def value(z: np.ndarray) -> float:
        return float((1 - z[0]) ** 2 + 100 * (z[1] - z[0] ** 2) ** 2)

    def gradient(z: np.ndarray) -> np.ndarray:
        return np.array(
            [-2 * (1 - z[0]) - 400 * z[0] * (z[1] - z[0] ** 2), 200 * (z[1] - z[0] ** 2)]
        )

    return value, gradient


def iterations(
    method: str,
    value: Function,
    gradient: Gradient,
    start: tuple[float, ...],
    stop: tuple[str, float],
    cap: int,
    lr: float = LR,
) -> int | None:
    """Iterations until the stopping rule holds (None: not within ``cap`` or diverged)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    kind, tolerance = stop
    x = {"x": np.asarray(start, dtype=float)}
    if method == "adam":
        v, s = reference.initialize_adam(x)
    elif method.startswith("momentum"):
        velocity = np.zeros_like(x["x"])
    else:
        state = reference.initialize_imo(x)
    for t in range(1, cap + 1):
        g = gradient(x["x"])
        if method == "adam":
            x, v, s, _, _ = reference.update_parameters_with_adam(
                x, {"dx": g}, v, s, t, learning_rate=lr
            )
        elif method == "momentum":  # torch's SGD momentum form: b = 0.9 b + g; x -= lr b
            velocity = 0.9 * velocity + g
            x = {"x": x["x"] - lr * velocity}
        elif method == "momentum-ema":  # the averaging form: v = 0.9 v + 0.1 g; x -= lr v
            velocity = 0.9 * velocity + 0.1 * g
            x = {"x": x["x"] - lr * velocity}
        else:
            form = "soft-nesterov" if method == "imo-soft-nesterov" else "algorithm-box"
            x, state = reference.update_parameters_with_imo(
                x, {"dx": g}, state, learning_rate=lr, step_form=form
            )
        current = value(x["x"]) if kind == "f" else float(np.linalg.norm(gradient(x["x"])))
        if not math.isfinite(current) or current > 1e12:
            return None
        if current < tolerance:
            return t
    return None


FUNCTIONS: dict[str, Callable[[], tuple[Function, Gradient]]] = {
    "well-conditioned": lambda: quadratic((0.5, 5.0)),
    "ill-conditioned": lambda: quadratic((0.5, 50.0)),
    "rosenbrock": rosenbrock,
}
"""The claims' functions: 0.5x²+5y² (condition number 10), 0.5x²+50y² (100), Rosenbrock;
the quadratics are among the settings where ``benchmarks/imo_report_table.py`` finds the
report's baselines closest."""


def seeded_start(function: str, seed: int) -> tuple[float, float]:
    """A start drawn from ``numpy.random.default_rng([seed, index of function])``: for the
    quadratics each coordinate is ``±U(1, 5)`` (random sign); for Rosenbrock the classic
    start (-1.2, 1) plus ``U(-0.2, 0.2)`` per coordinate."""
    if function not in FUNCTIONS:
        raise ValueError(f"function must be one of {', '.join(FUNCTIONS)}, got {function!r}")
    rng = np.random.default_rng([seed, list(FUNCTIONS).index(function)])
    if function == "rosenbrock":
        dx, dy = rng.uniform(-0.2, 0.2, size=2)
        return (-1.2 + float(dx), 1.0 + float(dy))
    magnitude = rng.uniform(1.0, 5.0, size=2)
    sign = rng.choice([-1.0, 1.0], size=2)
    return (float(sign[0] * magnitude[0]), float(sign[1] * magnitude[1]))

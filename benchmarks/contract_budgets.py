"""Measure the convergence budgets that the contract kit states for each registry entry.

For every registry optimizer and each contract objective (10-D quadratic with condition
number 1000; 2-D Rosenbrock from (-1.2, 1)), try a grid of learning rates and print the
steps needed to reach f - f* <= 1e-6 (or "-" within the cap). The budgets in
registry records (``optlab.optim.spec.KitData``) are these step counts x ~1.5 at the best lr.

    python benchmarks/contract_budgets.py [--cap 20000]
"""

from __future__ import annotations

import argparse
import math

import torch

from optlab.optim import create, names
from optlab.testing.objectives import ILL_CONDITIONED_QUADRATIC, ROSENBROCK_2D, Objective

LRS = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005)


def steps_to_converge(name: str, objective: Objective, lr: float, cap: int) -> int | None:
    """Steps until f - f* <= 1e-6, or None if not within ``cap`` (or diverged)."""
    x = objective.initial()
    optimizer = create(name, [x], lr=lr)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = objective.function(x)
        value.backward()
        return value

    for step in range(1, cap + 1):
        optimizer.step(closure)
        with torch.no_grad():
            gap = float(objective.function(x)) - objective.minimum
        if gap <= 1e-6:
            return step
        if not math.isfinite(gap) or gap > 1e12:
            return None
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=int, default=20000)
    args = parser.parse_args()
    for objective in (ILL_CONDITIONED_QUADRATIC, ROSENBROCK_2D):
        print(f"\n{objective.name}: steps to f - f* <= 1e-6 (cap {args.cap})")
        print("optimizer     " + " ".join(f"{lr:>7g}" for lr in LRS))
        for name in names():
            counts = [steps_to_converge(name, objective, lr, args.cap) for lr in LRS]
            cells = " ".join(f"{'-' if c is None else c:>7}" for c in counts)
            print(f"{name:<13} {cells}")


if __name__ == "__main__":
    main()

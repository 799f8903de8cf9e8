"""A quick look: every registry optimizer on 2-D Rosenbrock (no store, no tuning).

Each optimizer starts at (-1.2, 1) and runs up to ``--steps`` steps (an L-BFGS step counts
its closure calls, so every row spends the same number of gradient evaluations) at the
learning rate that the contract kit states for it (its record's ``kit.rosenbrock``,
measured by ``benchmarks/contract_budgets.py``). Prints one table: final and best f, the
distance of the final point to the minimum (1, 1), gradient evaluations to reach f < 1e-6,
and wall time. Runs offline.

    python -m optlab.demo [--steps 3000] [--seed 42]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from optlab.optim import create, names, spec
from optlab.testing.objectives import ROSENBROCK_2D


def run(name: str, lr: float, evaluations: int) -> dict[str, float]:
    """Train ``name`` on 2-D Rosenbrock for ``evaluations`` gradient evaluations."""
    x = ROSENBROCK_2D.initial()
    optimizer = create(name, [x], lr=lr)
    count = 0
    solved_at = math.nan
    best = math.inf

    def closure() -> torch.Tensor:
        nonlocal count
        count += 1
        optimizer.zero_grad()
        value = ROSENBROCK_2D.function(x)
        value.backward()
        return value

    start = time.perf_counter()
    while count < evaluations:
        optimizer.step(closure)
        with torch.no_grad():
            value = float(ROSENBROCK_2D.function(x))
        best = min(best, value)
        if math.isnan(solved_at) and value < 1e-6:
            solved_at = count
        if not math.isfinite(value):
            break
    seconds = time.perf_counter() - start
    with torch.no_grad():
        distance = float(torch.linalg.vector_norm(x - 1.0))
    return {
        "f": value,
        "best": best,
        "distance": distance,
        "solved_at": solved_at,
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Every optlab optimizer on 2-D Rosenbrock.")
    parser.add_argument("--steps", type=int, default=3000, help="gradient evaluations each")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    torch.manual_seed(args.seed)
    print(
        f"2-D Rosenbrock from (-1.2, 1), {args.steps} gradient evaluations each, seed {args.seed}"
    )
    header = (
        f"{'optimizer':<12} {'lr':>7} {'final f':>10} {'best f':>10} {'|x - x*|':>10} "
        f"{'evals to f<1e-6':>16} {'wall s':>7}"
    )
    print(header)
    print("-" * len(header))
    for name in names():
        budget = spec(name).kit.rosenbrock
        lr = budget.lr if budget is not None else 1e-3
        result = run(name, lr, args.steps)
        solved = "-" if math.isnan(result["solved_at"]) else f"{result['solved_at']:.0f}"
        print(
            f"{name:<12} {lr:>7g} {result['f']:>10.3g} {result['best']:>10.3g} "
            f"{result['distance']:>10.3g} "
            f"{solved:>16} {result['seconds']:>7.2f}"
        )
    print(
        "(lr: the contract kit's stated Rosenbrock lr; '-': not reached;"
        f" {', '.join(n for n in names() if spec(n).optlab_rule)} are optlab's rules)"
    )


if __name__ == "__main__":
    main()

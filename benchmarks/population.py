"""A population of N models in one process against the same N models trained one by one.

Each case trains N models for ``--steps`` steps with torch's Adam: the *loop* trains them one
after another, each with its own optimizer; the *population* stacks them
(``optlab.train.population.Population``: vmap over functional_call) and steps one Adam over
the stacked tensors. Same data, same steps, same process; each time is the median of
``--repeats`` runs. Prints a table (case, N, batch, loop ms, population ms, speed-up) and,
with ``--json``, one JSON object mapping each case to its speed-up.

Cases (goals from the population issue, 2 CPU cores): logreg-n16 (>= 3), logreg-n256 (>= 25),
mlp-2-2-1-n16 (>= 3), mlp-2-2-1-n256 (>= 25), mnist-mlp-b64-n16 (>= 1.5, offline mnist-5k);
with CUDA, cuda-mnist-mlp-b32-n64 (>= 20).

    python benchmarks/population.py [--steps 100] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from optlab import problems
from optlab.problems.base import DataSplits, ProblemInstance
from optlab.train.population import Population


def _synthetic(features: int, hidden: int | None, seed: int) -> ProblemInstance:
    """Binary classification on 100 points: logistic regression or an MLP features-hidden-1."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(100, features, generator=generator)
    targets = (inputs.sum(dim=1) > 0).float()
    torch.manual_seed(seed)
    if hidden is None:
        model: nn.Module = nn.Linear(features, 1)
    else:
        model = nn.Sequential(nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def loss(m: nn.Module, batch):
        return nn.functional.binary_cross_entropy_with_logits(m(batch[0]).squeeze(-1), batch[1])

    data = (inputs, targets)
    return ProblemInstance("synthetic", model, loss, DataSplits(data, data, data), target=0.0)


def _mnist(seed: int, device: torch.device) -> ProblemInstance:
    instance = problems.build("mnist-5k", problems.BuildContext(init_seed=seed, device=device))
    torch.manual_seed(seed)
    instance.model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)).to(device)
    return instance


def _batches(instance: ProblemInstance, batch: int | None, steps: int, device) -> list:
    inputs, targets = instance.data.train
    size = batch or len(inputs)
    return [
        (inputs[i * size % len(inputs) :][:size].to(device),
         targets[i * size % len(inputs) :][:size].to(device))
        for i in range(steps)
    ]  # fmt: skip


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_loop(build: Callable[[int], ProblemInstance], n: int, batches: list, device) -> float:
    instances = [build(seed) for seed in range(n)]
    optimizers = [torch.optim.Adam(i.model.parameters(), lr=1e-3) for i in instances]
    _sync(device)
    start = time.perf_counter()
    for instance, optimizer in zip(instances, optimizers, strict=True):
        for batch in batches:
            optimizer.zero_grad(set_to_none=True)
            instance.loss(instance.model, batch).backward()
            optimizer.step()
    _sync(device)
    return time.perf_counter() - start


def time_population(
    build: Callable[[int], ProblemInstance], n: int, batches: list, device
) -> float:
    population = Population([build(seed) for seed in range(n)], list(range(n)))
    optimizer = torch.optim.Adam(list(population.params.values()), lr=1e-3)
    _sync(device)
    start = time.perf_counter()
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        population.losses(batch).sum().backward()
        optimizer.step()
    _sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description="Population vs loop of N models.")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cpu = torch.device("cpu")
    cases: list[tuple[str, Callable[[int], ProblemInstance], int, int | None, torch.device]] = [
        ("logreg-n16", lambda s: _synthetic(3, None, s), 16, None, cpu),
        ("logreg-n256", lambda s: _synthetic(3, None, s), 256, None, cpu),
        ("mlp-2-2-1-n16", lambda s: _synthetic(2, 2, s), 16, None, cpu),
        ("mlp-2-2-1-n256", lambda s: _synthetic(2, 2, s), 256, None, cpu),
        ("mnist-mlp-b64-n16", lambda s: _mnist(s, cpu), 16, 64, cpu),
    ]
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        cases.append(("cuda-mnist-mlp-b32-n64", lambda s: _mnist(s, gpu), 64, 32, gpu))
    speedups = {}
    if not args.json:
        print(f"{'case':<24} {'N':>4} {'batch':>6} {'loop ms':>9} {'pop ms':>9} {'speed-up':>9}")
    for name, build, n, batch, device in cases:
        batches = _batches(build(0), batch, args.steps, device)
        loop = statistics.median(time_loop(build, n, batches, device) for _ in range(args.repeats))
        population = statistics.median(
            time_population(build, n, batches, device) for _ in range(args.repeats)
        )
        speedups[name] = loop / population
        if not args.json:
            print(
                f"{name:<24} {n:>4} {batch or 'full':>6} {loop * 1e3:9.1f} "
                f"{population * 1e3:9.1f} {loop / population:9.2f}"
            )
    if args.json:
        print(json.dumps({name: round(value, 3) for name, value in speedups.items()}))
    else:
        print(f"({args.steps} Adam steps per model, median of {args.repeats}, "
              f"{torch.get_num_threads()} threads, torch {torch.__version__})")  # fmt: skip


if __name__ == "__main__":
    main()

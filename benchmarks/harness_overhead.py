"""optlab's training loop against a bare PyTorch loop: same model, data, optimizer, steps.

Both loops train the same problem instance (default ``mnist-5k``: MLP 784-64-10, batch 64)
from the same initial weights with torch's Adam, over the same mini-batches (the same
seeded permutation), for the same number of steps, evaluating only at the end. They run
alternately, ``--repeats`` times each; the script prints the median time of each and the
ratio (optlab / bare). The must-hold bound is 1.05.

    python benchmarks/harness_overhead.py [--problem mnist-5k] [--steps 500] [--repeats 7]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from optlab import problems
from optlab.train.loop import TrainConfig, train


def bare_loop(instance: problems.ProblemInstance, steps: int, seed: int) -> float:
    """A plain loop: permutation per epoch, zero_grad, loss, backward, step; seconds."""
    model = instance.model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    inputs, targets = instance.data.train
    size = instance.batch_size or len(inputs)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    done = 0
    while done < steps:
        order = torch.randperm(len(inputs), generator=generator)
        for first in range(0, len(inputs), size):
            index = order[first : first + size]
            optimizer.zero_grad(set_to_none=True)
            loss = instance.loss(model, (inputs[index], targets[index]))
            loss.backward()
            optimizer.step()
            done += 1
            if done == steps:
                break
    with torch.no_grad():
        float(instance.loss(model, instance.data.validation))
    return time.perf_counter() - start


def optlab_loop(instance: problems.ProblemInstance, steps: int, seed: int) -> float:
    """optlab's ``train`` with one evaluation at the end and no early stopping; seconds."""
    optimizer = torch.optim.Adam(instance.model.parameters(), lr=1e-3)
    config = TrainConfig(steps=steps, eval_every=steps, patience=None, data_seed=seed)
    start = time.perf_counter()
    train(instance, optimizer, config)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description="optlab loop vs bare PyTorch loop.")
    parser.add_argument("--problem", default="mnist-5k")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    template = problems.build(args.problem, problems.BuildContext())
    if template.data is None:
        raise SystemExit(f"{args.problem} has no data; pick a problem with mini-batches")
    bare, ours = [], []
    for repeat in range(args.repeats):
        bare.append(bare_loop(copy.deepcopy(template), args.steps, repeat))
        ours.append(optlab_loop(copy.deepcopy(template), args.steps, repeat))
    bare_median, ours_median = statistics.median(bare), statistics.median(ours)
    print(
        f"{args.problem}, {args.steps} steps, Adam, {torch.get_num_threads()} threads, "
        f"{args.repeats} alternating repeats"
    )
    print(f"bare PyTorch loop  {bare_median * 1e3:8.1f} ms (median)")
    print(f"optlab train       {ours_median * 1e3:8.1f} ms (median)")
    ratio = ours_median / bare_median
    print(f"ratio optlab / bare: {ratio:.3f} (bound 1.05: {'ok' if ratio <= 1.05 else 'OVER'})")


if __name__ == "__main__":
    main()

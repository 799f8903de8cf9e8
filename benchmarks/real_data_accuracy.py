"""Test accuracy of the real-data problems under a fixed protocol: the published MNIST-1D
numbers (Greydanus 2020: logistic ~32%, MLP ~68%, CNN ~94%) and the Fashion-MNIST figures.

Each problem trains with torch's Adam at one learning rate, on batches drawn without
replacement from a permutation seeded with the seed (a new permutation each epoch), with
the problem's batch size, from the problem's initialisation at the init seed; the script
prints the lowest validation loss seen every ``--eval-every`` steps and the test accuracy at
the end, on the problem's test split and on validation + test together (the official test
set, e.g. MNIST-1D's 1,000 signals). The paper's protocol for MNIST-1D is the default:

    python benchmarks/real_data_accuracy.py                       # MNIST-1D, 6,000 steps, lr 1e-2
    python benchmarks/real_data_accuracy.py --problems fmnist-mlp --lr 1e-3 --steps 2000 \\
        --eval-every 200 --seeds 42 43 44
"""

from __future__ import annotations

import argparse
import time

import torch

from optlab import problems
from optlab.problems import BuildContext


def run(name: str, lr: float, steps: int, seed: int, eval_every: int) -> dict[str, float]:
    """Train ``name`` at ``seed`` (init and data order); losses, accuracies and seconds."""
    instance = problems.build(name, BuildContext(init_seed=seed))
    assert instance.data is not None and instance.accuracy is not None
    inputs, labels = instance.data.train
    size, batch = len(labels), instance.batch_size or len(labels)
    optimizer = torch.optim.Adam(instance.model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    order, position, lowest = torch.randperm(size, generator=generator), 0, float("inf")
    start = time.perf_counter()
    for step in range(1, steps + 1):
        if position + batch > size:
            order, position = torch.randperm(size, generator=generator), 0
        rows = order[position : position + batch]
        position += batch
        optimizer.zero_grad()
        instance.loss(instance.model, (inputs[rows], labels[rows])).backward()
        optimizer.step()
        if step % eval_every == 0:
            with torch.no_grad():
                value = float(instance.loss(instance.model, instance.data.validation))
            lowest = min(lowest, value)
    seconds = time.perf_counter() - start
    validation, test = instance.data.validation, instance.data.test
    both = (torch.cat([validation[0], test[0]]), torch.cat([validation[1], test[1]]))
    with torch.no_grad():
        return {
            "lowest validation loss": lowest,
            "test accuracy": float(instance.accuracy(instance.model, test)),
            "validation + test accuracy": float(instance.accuracy(instance.model, both)),
            "seconds": seconds,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--problems", nargs="+", default=["mnist1d-logistic", "mnist1d-mlp", "mnist1d-cnn"]
    )
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.problems:
        for seed in args.seeds:
            result = run(name, args.lr, args.steps, seed, args.eval_every)
            figures = ", ".join(
                f"{key} {value:.1%}" if "accuracy" in key else f"{key} {value:.3f}"
                for key, value in result.items()
            )
            print(f"{name} seed {seed}, Adam lr {args.lr:g}, {args.steps} steps: {figures}")


if __name__ == "__main__":
    main()

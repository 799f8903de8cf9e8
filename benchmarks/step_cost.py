"""Step cost of every registry optimizer against torch's Adam and a plain copy, same run.

For each elementwise optimizer: the median step time on 10M float32 parameters in 100
tensors (gradients fixed), the bytes a step must move (read parameter, gradient and each
state tensor once; write parameter and each state tensor once: (3 + 2 S) x 4 bytes per
parameter for S parameter-sized state tensors), the effective bandwidth, and the ratios to
torch.optim.Adam's default CPU step (its per-tensor loop) and to the copy floor (those
bytes at the bandwidth of a 10M-element tensor copy measured here). State memory is
measured from the optimizer's state after the timed steps.

The "budget" column is the issue's bound for optlab's rules: Adam-loop time x (bytes moved /
Adam's bytes moved) x 1.15. L-BFGS is not elementwise (its history is 2 x history_size
copies of the parameters) and is left out here, as DESIGN.md says.

    python benchmarks/step_cost.py [--numel 10000000] [--tensors 100] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from optlab.optim import create, names, spec

# (label, registry name, extra hyperparameters): every registry entry at its default path,
# then the other paths of the rules that have them.
ROWS: list[tuple[str, str, dict]] = [(name, name, {}) for name in names() if name != "lbfgs"] + [
    ("adam foreach", "adam", {"foreach": True}),
    ("adam fused", "adam", {"fused": True}),
    ("imo eager loop", "imo", {"compiled": False}),
    ("imo foreach", "imo", {"foreach": True}),
    ("mamgd eager loop", "mamgd", {"compiled": False}),
    ("mamgd as_published", "mamgd", {"as_published": True}),
    ("scaled-adam fused", "scaled-adam", {"fused": True}),
]
OPTLAB_DEFAULTS = {"imo", "mamgd", "scaled-adam", "mamgd as_published"}


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def copy_bandwidth(numel: int, repeats: int) -> float:
    """Bytes per second of a ``dst.copy_(src)`` of ``numel`` float32 (read + write)."""
    source, target = torch.randn(numel), torch.empty(numel)
    target.copy_(source)
    seconds = statistics.median(_timed(lambda: target.copy_(source)) for _ in range(repeats))
    return 2 * 4 * numel / seconds


def _optimizer(name: str, hyperparameters: dict, params: list[torch.Tensor]):
    for param in params:
        param.grad = torch.randn_like(param) * 1e-3
    return create(name, params, **hyperparameters)


def measure(
    name: str,
    hyperparameters: dict,
    params: list[torch.Tensor],
    baseline: torch.optim.Optimizer,
    repeats: int,
) -> tuple[float, float, float, int]:
    """(median step s, Adam's median step s interleaved with it, first step s, state tensors).

    The candidate's steps alternate with the baseline Adam's, so both medians see the same
    machine conditions (other load, frequency scaling) and their ratio is stable.
    """
    optimizer = _optimizer(name, hyperparameters, params)
    first = _timed(optimizer.step)
    optimizer.step()
    ours, theirs = [], []
    for _ in range(repeats):
        theirs.append(_timed(baseline.step))
        ours.append(_timed(optimizer.step))
    state = optimizer.state[params[0]]
    tensors = sum(
        1 for value in state.values() if isinstance(value, torch.Tensor) and value.numel() > 1
    )
    return statistics.median(ours), statistics.median(theirs), first, tensors


def main() -> None:
    parser = argparse.ArgumentParser(description="Step cost against torch Adam and a copy.")
    parser.add_argument("--numel", type=int, default=10_000_000)
    parser.add_argument("--tensors", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    size = args.numel // args.tensors
    numel = size * args.tensors
    params = [torch.randn(size, requires_grad=True) for _ in range(args.tensors)]
    adam_params = [torch.randn(size, requires_grad=True) for _ in range(args.tensors)]
    baseline = _optimizer("adam", {}, adam_params)
    baseline.step()
    bandwidth = copy_bandwidth(numel, args.repeats)
    print(
        f"{numel / 1e6:.0f}M float32 parameters in {args.tensors} tensors, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}; "
        f"copy bandwidth {bandwidth / 1e9:.1f} GB/s (read + write)"
    )
    adam_bytes = 7 * 4
    adam_times = []
    header = (
        f"{'optimizer':<20} {'ms/step':>8} {'1st step':>9} {'B moved':>8} {'B state':>8} "
        f"{'GB/s':>6} {'x floor':>8} {'x Adam':>7} {'budget':>7}"
    )
    print(header)
    print("-" * len(header))
    for label, name, extra in ROWS:
        seconds, adam_seconds, first, state_tensors = measure(
            name, extra, params, baseline, args.repeats
        )
        adam_times.append(adam_seconds)
        moved = (3 + 2 * state_tensors) * 4
        floor = moved * numel / bandwidth
        ratio = seconds / adam_seconds
        budget = ""
        if label in OPTLAB_DEFAULTS:
            limit = (moved / adam_bytes) * 1.15
            budget = f"{limit:.2f} {'ok' if ratio <= limit else 'OVER'}"
        print(
            f"{label:<20} {seconds * 1e3:8.2f} {first * 1e3:7.0f}ms {moved:8d} "
            f"{4 * state_tensors:8d} {moved * numel / seconds / 1e9:6.1f} "
            f"{seconds / floor:8.2f} {ratio:7.2f} {budget:>7}"
        )
    print(
        f"x Adam: against torch.optim.Adam's default step timed alternately with each row "
        f"(median {statistics.median(adam_times) * 1e3:.2f} ms, range "
        f"{min(adam_times) * 1e3:.2f}-{max(adam_times) * 1e3:.2f} ms). Elementwise: "
        f"{', '.join(n for n in names() if spec(n).elementwise)}."
    )


if __name__ == "__main__":
    main()

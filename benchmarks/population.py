"""A population of N models in one process against the same N models trained one by one.

Each case trains N models for ``--steps`` steps with torch's Adam: the *loop* trains them one
after another, each with its own optimizer; the *population* stacks them
(``optlab.train.population.Population``) and steps one Adam over the stacked tensors, with
each of its loss paths: ``vmap`` (vmap over functional_call, any model) and, where the model
is an MLP under cross-entropy, ``batched`` (one GEMM for the first layer over all members'
weights, ``baddbmm`` after it). ``auto`` is the path ``Population`` picks by itself. Same
data, same steps, same process; the three are timed alternately, each time is the median
of ``--repeats`` runs. Prints a table and, with ``--json``, one JSON object mapping each
case to the automatic path's speed-up. "loop MB" / "pop MB": the peak memory of one more
run of each arm above what the process held before it (CPU: resident set, from Linux's
resettable high-water mark; CUDA: torch's allocator peak).

Cases (goals from the population issue, 2 CPU cores): logreg-n16 (>= 3), logreg-n256 (>= 25),
mlp-2-2-1-n16 (>= 3), mlp-2-2-1-n256 (>= 25), mnist-mlp-b64-n16 (>= 1.5, offline mnist-5k).
With CUDA: cuda-mnist-mlp-b32-n64 (>= 20) and cuda-graph-mnist-mlp-b32-n16, the population's
training step captured as a CUDA graph and replayed (``GraphedStep``, Adam with
``capturable=True``) against a loop of 16 eager models (issue 9: >= 50).

    python benchmarks/population.py [--steps 100] [--repeats 5] [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from optlab import problems
from optlab.problems.base import DataSplits, ProblemInstance
from optlab.train.population import GraphedStep, Population


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
    starts = [i * size % (len(inputs) - size + 1) for i in range(steps)]  # all full batches
    return [(inputs[s : s + size].to(device), targets[s : s + size].to(device)) for s in starts]


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
    build: Callable[[int], ProblemInstance],
    n: int,
    batches: list,
    device,
    batched: bool | None,
    graph: bool = False,
) -> float:
    population = Population([build(seed) for seed in range(n)], list(range(n)), batched=batched)
    params = list(population.params.values())
    optimizer = torch.optim.Adam(params, lr=1e-3, capturable=graph)
    graphed = GraphedStep(population, optimizer) if graph else None
    _sync(device)
    start = time.perf_counter()
    for batch in batches:
        if graphed is not None:
            graphed.step(batch)  # 3 eager warm-up steps, one capture, then replays
            continue
        optimizer.zero_grad(set_to_none=True)
        population.losses(batch).sum().backward()
        optimizer.step()
    _sync(device)
    return time.perf_counter() - start


@dataclass
class Case:
    name: str
    build: Callable[[int], ProblemInstance]
    members: int
    batch: int | None
    device: torch.device
    graph: bool = False


def measure(case: Case, steps: int, repeats: int) -> dict[str, float]:
    """Median seconds of each arm (loop, vmap, batched where it applies), timed alternately."""
    template = case.build(0)
    batches = _batches(template, case.batch, steps, case.device)
    arms: dict[str, Callable[[list], float]] = {
        "loop": lambda b: time_loop(case.build, case.members, b, case.device)
    }
    if case.graph:
        arms["graph"] = lambda b: time_population(
            case.build, case.members, b, case.device, None, graph=True
        )
    else:
        arms["vmap"] = lambda b: time_population(case.build, case.members, b, case.device, False)
        if Population([template], [0]).path == "batched-mlp":
            arms["batched"] = lambda b: time_population(
                case.build, case.members, b, case.device, True
            )
    for arm in arms.values():  # warm-up (lazy initialisation, first-call costs)
        arm(batches[:5])
    times: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(repeats):
        for name, arm in arms.items():
            times[name].append(arm(batches))
    result = {name: statistics.median(values) for name, values in times.items()}
    for name, arm in arms.items():  # one more, untimed run each for its peak memory
        start = _reset_peak(case.device)
        arm(batches)
        result[f"{name}_peak_mb"] = _peak(case.device, start)
    return result


def _reset_peak(device: torch.device) -> int:
    """Reset the peak-memory mark; return the bytes in use now (the arm's baseline).

    CUDA: torch's allocator statistics. CPU: the process's resident set, whose high-water
    mark (VmHWM) Linux resets when 5 is written to /proc/self/clear_refs; elsewhere -1."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return _status_kb("VmRSS") * 1024
    except OSError:
        return -1


def _peak(device: torch.device, start: int) -> float:
    """MB above ``start`` at the peak since :func:`_reset_peak` (NaN where unknown)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - start) / 2**20
    if start < 0:
        return float("nan")
    return max(0, _status_kb("VmHWM") * 1024 - start) / 2**20


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description="Population vs loop of N models.")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    parser.add_argument("--cases", default=None, help="comma-separated subset of case names")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    cases = [
        Case("logreg-n16", lambda s: _synthetic(3, None, s), 16, None, cpu),
        Case("logreg-n256", lambda s: _synthetic(3, None, s), 256, None, cpu),
        Case("mlp-2-2-1-n16", lambda s: _synthetic(2, 2, s), 16, None, cpu),
        Case("mlp-2-2-1-n256", lambda s: _synthetic(2, 2, s), 256, None, cpu),
        Case("mnist-mlp-b64-n16", lambda s: _mnist(s, cpu), 16, 64, cpu),
    ]
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        cases.append(Case("cuda-mnist-mlp-b32-n64", lambda s: _mnist(s, gpu), 64, 32, gpu))
        cases.append(
            Case("cuda-graph-mnist-mlp-b32-n16", lambda s: _mnist(s, gpu), 16, 32, gpu, True)
        )
    if args.cases:
        wanted = set(args.cases.split(","))
        cases = [case for case in cases if case.name in wanted]
    speedups = {}
    if not args.json:
        print(
            f"{'case':<30} {'N':>4} {'batch':>6} {'loop ms':>9} {'vmap ms':>9} "
            f"{'batched ms':>10} {'auto':>8} {'speed-up':>9} {'loop MB':>8} {'pop MB':>8}"
        )
    for case in cases:
        times = measure(case, args.steps, args.repeats)
        auto = "graph" if case.graph else ("batched" if "batched" in times else "vmap")
        speedups[case.name] = times["loop"] / times[auto]
        if not args.json:
            vmap = times.get("vmap", times.get("graph"))
            batched = f"{times['batched'] * 1e3:10.1f}" if "batched" in times else f"{'-':>10}"
            print(
                f"{case.name:<30} {case.members:>4} {case.batch or 'full':>6} "
                f"{times['loop'] * 1e3:9.1f} {vmap * 1e3:9.1f} {batched} {auto:>8} "
                f"{speedups[case.name]:9.2f} {times['loop_peak_mb']:8.1f} "
                f"{times[auto + '_peak_mb']:8.1f}"
            )
    if args.json:
        print(json.dumps({name: round(value, 3) for name, value in speedups.items()}))
    else:
        print(f"({args.steps} Adam steps per model, median of {args.repeats} alternating runs, "
              f"{torch.get_num_threads()} threads, torch {torch.__version__}; the graph "
              "case's 'vmap ms' column is the graphed population)")  # fmt: skip


if __name__ == "__main__":
    main()

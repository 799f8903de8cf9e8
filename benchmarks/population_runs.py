"""The bench's populations against the same runs trained one after another.

For each problem x optimizer, a group of the bench's runs (:mod:`optlab.bench.population_runs`)
is trained twice in this process: *sequential*, one ``optlab.bench.runs.execute`` call a run
(what ``population = "off"`` runs), and *population*, one ``execute_population`` call (what
``population = "on"`` runs); both on one torch thread, as in the bench. The group
(``--kind``): ``lr``, the 6-point learning-rate grid of tuning (``Tuning().grid()``, the
tuning seed); ``seeds``, the reported seeds 42-46 of the standard suite at one lr (``--lr``).
Each at the problem's full budget. Timed alternately, median of ``--repeats`` runs, after one
warm-up of each. Prints a table (problem, optimizer, parameters, sequential s, population
s, speed-up) and the speed-up over all rows (total sequential / total population); with
``--json``, one JSON object mapping "problem/optimizer" to its speed-up.

    python benchmarks/population_runs.py [--kind lr|seeds] [--problems beale,digits-mlp]
        [--optimizers adam,imo] [--lr 0.001] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace

import torch

from optlab import problems
from optlab.bench.population_runs import execute_population
from optlab.bench.population_tuning import parameter_count
from optlab.bench.runs import DataOptions, RunConfig, execute
from optlab.bench.suite import STANDARD_SEEDS, Tuning, builtin_suites

TUNING_SEED = 1042


def _group(kind: str, problem: str, optimizer: str, lr: float) -> list[RunConfig]:
    spec = problems.spec(problem)
    config = RunConfig(
        problem=problem,
        optimizer=optimizer,
        hyperparameters={"lr": lr},
        instance_seed=42,
        init_seed=TUNING_SEED,
        data_seed=TUNING_SEED,
        steps=spec.steps,
        eval_every=spec.eval_every,
        purpose="tune" if kind == "lr" else "report",
    )
    if kind == "lr":
        return [replace(config, hyperparameters={"lr": x}) for x in Tuning().grid()]
    return [replace(config, init_seed=seed, data_seed=seed) for seed in STANDARD_SEEDS]


def _time(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    quick = builtin_suites()["quick"]
    parser.add_argument("--kind", choices=("lr", "seeds"), default="lr")
    parser.add_argument("--lr", type=float, default=1e-3, help="the seeds' lr (--kind seeds)")
    parser.add_argument("--problems", default=",".join(quick.problems))
    parser.add_argument("--optimizers", default="adam,sgd,imo,mamgd")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = DataOptions()
    rows, speedups = [], {}
    for problem in args.problems.split(","):
        for optimizer in args.optimizers.split(","):
            grid = _group(args.kind, problem, optimizer, args.lr)

            def sequential(grid=grid) -> None:
                for config in grid:
                    execute(config, data)

            def population(grid=grid) -> None:
                if execute_population(grid, data, "on") is None:
                    name = f"{grid[0].problem} / {grid[0].optimizer}"
                    raise SystemExit(f"{name} cannot train its runs as a population")

            sequential(), population()  # warm-up (lazy compiles, data loading, caches)
            times: dict[str, list[float]] = {"sequential": [], "population": []}
            for _ in range(args.repeats):
                times["sequential"].append(_time(sequential))
                times["population"].append(_time(population))
            seq, pop = (statistics.median(times[k]) for k in ("sequential", "population"))
            size = parameter_count(problems.build(problem, problems.BuildContext()))
            rows.append((problem, optimizer, size, seq, pop))
            speedups[f"{problem}/{optimizer}"] = round(seq / pop, 2)
            if not args.json:
                print(f"{problem:18s} {optimizer:10s} {size:7d} {seq:9.2f} {pop:9.2f} "
                      f"{seq / pop:8.2f}x", flush=True)  # fmt: skip
    total_seq, total_pop = sum(r[3] for r in rows), sum(r[4] for r in rows)
    if args.json:
        print(json.dumps({**speedups, "total": round(total_seq / total_pop, 2)}))
    else:
        print(f"{'all rows':18s} {'':10s} {'':7s} {total_seq:9.2f} {total_pop:9.2f} "
              f"{total_seq / total_pop:8.2f}x")  # fmt: skip
        print("columns: problem, optimizer, parameters, sequential s, population s, speed-up")


if __name__ == "__main__":
    main()

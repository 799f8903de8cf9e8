"""Grid tuning as one population against the same grid trained trial after trial.

For each problem x optimizer, the bench's 6-point learning-rate grid (``Tuning().grid()``,
the problem's full budget, the tuning seed) is trained twice in this process: *sequential*,
six ``optlab.bench.runner.execute`` calls (what ``population = "off"`` runs), and
*population*, one ``execute_population`` call (what ``population = "on"`` runs); both on
one torch thread, as in the bench. Timed alternately, median of ``--repeats`` runs, after
one warm-up of each. Prints a table (problem, optimizer, parameters, sequential s,
population s, speed-up) and the speed-up over all rows (total sequential / total
population); with ``--json``, one JSON object mapping "problem/optimizer" to its speed-up.

    python benchmarks/tuning_population.py [--problems beale,logistic,digits-mlp]
        [--optimizers adam,imo] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from optlab import problems
from optlab.bench.population_tuning import parameter_count
from optlab.bench.runner import DataOptions, RunConfig, execute, execute_population
from optlab.bench.suite import Tuning, builtin_suites

TUNING_SEED = 1042


def _grid(problem: str, optimizer: str) -> list[RunConfig]:
    spec = problems.spec(problem)
    return [
        RunConfig(
            problem=problem,
            optimizer=optimizer,
            hyperparameters={"lr": lr},
            instance_seed=42,
            init_seed=TUNING_SEED,
            data_seed=TUNING_SEED,
            steps=spec.steps,
            eval_every=spec.eval_every,
            purpose="tune",
        )
        for lr in Tuning().grid()
    ]


def _time(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    quick = builtin_suites()["quick"]
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
            grid = _grid(problem, optimizer)

            def sequential(grid=grid) -> None:
                for config in grid:
                    execute(config, data)

            def population(grid=grid) -> None:
                if execute_population(grid, data, "on") is None:
                    name = f"{grid[0].problem} / {grid[0].optimizer}"
                    raise SystemExit(f"{name} cannot train its grid as a population")

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

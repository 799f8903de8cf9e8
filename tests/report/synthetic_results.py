"""A synthetic results store for the report tests (and for an example report).

Four problems, three seeds, three optimizers (one named ``scaled-adam``):

- ``bowl-2d``: a 2-D analytic problem with trajectories, known optimum 0, target 1e-6;
- ``digits-mlp``: a problem with accuracy; adam's final validation losses are
  0.12, 0.15, 0.18 (mean 0.150, sample std 0.0300), one adam seed stopped early;
- ``wild-quad``: sgd diverged on every seed (NaN losses), scaled-adam on one seed;
- ``flat-3d``: no trajectory, no accuracy, no tuning record for scaled-adam (``-``).

Tuning records (six trials each, some diverged) and a few tuning-trial runs are included.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from optlab.bench.store import ResultsStore

SEEDS = (42, 43, 44)
OPTIMIZERS = ("adam", "scaled-adam", "sgd")
LRS = {"adam": 0.0251, "scaled-adam": 0.00398, "sgd": 0.158}
GRID = [1e-4, 6.31e-4, 0.00398, 0.0251, 0.158, 1.0]
ADAM_DIGITS_FINAL = {42: 0.12, 43: 0.15, 44: 0.18}


def run_config(problem: str, optimizer: str, seed: int, lr: float, purpose: str = "report"):
    return {
        "problem": problem,
        "optimizer": optimizer,
        "hyperparameters": {"lr": lr},
        "instance_seed": 42,
        "init_seed": seed,
        "data_seed": seed,
        "steps": 300,
        "eval_every": 10,
        "patience": 3,
        "purpose": purpose,
    }


def run_result(
    losses: list[float],
    *,
    target: float,
    optimum: float | None,
    eval_every: int = 10,
    accuracy: list[float] | None = None,
    test_accuracy: float | None = None,
    trajectory: list[list[float]] | None = None,
    seconds_per_eval: float = 1e-3,
) -> dict[str, Any]:
    """A result dict shaped like ``optlab.train.loop.TrainResult.as_dict()`` plus target."""
    n = len(losses)
    evaluations = [eval_every * (i + 1) for i in range(n)]
    seconds = [e * seconds_per_eval for e in evaluations]
    diverged = not all(math.isfinite(v) for v in losses)
    finite = [v for v in losses if math.isfinite(v)]
    reached = next((i for i, v in enumerate(losses) if math.isfinite(v) and v <= target), None)
    accuracies = accuracy if accuracy is not None else [None] * n
    return {
        "status": "diverged" if diverged else "ok",
        "steps": evaluations[-1],
        "evaluations": evaluations[-1],
        "seconds": seconds[-1],
        "stopped_early": False,
        "curve": {
            "step": evaluations,
            "evaluations": evaluations,
            "seconds": seconds,
            "train_loss": [v * 0.9 for v in losses],
            "val_loss": losses,
            "val_accuracy": accuracies,
        },
        "final_val_loss": losses[-1],
        "best_val_loss": min(finite) if finite else math.nan,
        "final_val_accuracy": accuracies[-1],
        "best_val_accuracy": max(accuracies) if accuracy is not None else None,
        "test_loss": math.nan if diverged else losses[-1] * 1.05,
        "test_accuracy": None if diverged else test_accuracy,
        "steps_to_target": None if reached is None else evaluations[reached],
        "evaluations_to_target": None if reached is None else evaluations[reached],
        "seconds_to_target": None if reached is None else seconds[reached],
        "trajectory": trajectory,
        "target": target,
        "optimum": optimum,
    }


def _spiral(rate: float, steps: int, phase: float) -> list[list[float]]:
    start = np.array([-1.2, 1.0])
    minimum = np.array([1.0, 1.0])
    points = []
    for t in range(steps + 1):
        radius = math.exp(-rate * t)
        angle = phase + 0.15 * t
        offset = (start - minimum) * radius
        rotation = np.array([[math.cos(angle - phase), -math.sin(angle - phase)],
                             [math.sin(angle - phase), math.cos(angle - phase)]])  # fmt: skip
        points.append((minimum + rotation @ offset).tolist())
    return points


def build_store(root: Path) -> ResultsStore:
    """Write the synthetic store under ``root`` (see the module docstring)."""
    store = ResultsStore(root)
    rates = {"adam": 0.045, "scaled-adam": 0.03, "sgd": 0.02}
    for index, seed in enumerate(SEEDS):
        jitter = 1.0 + 0.08 * (index - 1)
        for optimizer in OPTIMIZERS:
            lr = LRS[optimizer]
            rate = rates[optimizer] * jitter
            # bowl-2d: analytic, 2-D, trajectories, optimum 0.
            losses = [24.2 * math.exp(-rate * 15 * (i + 1)) for i in range(30)]
            trajectory = _spiral(rate, 300, 0.3 * index)
            if optimizer == "sgd" and index == 0:  # a path that escapes to 1e111 at the end
                trajectory = [*trajectory, [1.4e111, -3.1e110]]
            store.put(
                "runs",
                run_config("bowl-2d", optimizer, seed, lr),
                run_result(losses, target=1e-6, optimum=0.0, trajectory=trajectory),
            )
            # digits-mlp: accuracy; adam's final losses are fixed for a hand-checked mean.
            length = 18 if (optimizer == "adam" and seed == 43) else 30
            floor = ADAM_DIGITS_FINAL[seed] if optimizer == "adam" else 0.2 + 0.1 * rate * 10
            decay = [math.exp(-rate * 5 * (i + 1)) for i in range(length)]
            losses = [floor + 2.1 * (d - decay[-1]) for d in decay]
            accuracy = [min(0.99, 1.0 - v / 2.5) for v in losses]
            store.put(
                "runs",
                run_config("digits-mlp", optimizer, seed, lr),
                run_result(
                    losses,
                    target=0.3,
                    optimum=None,
                    accuracy=accuracy,
                    test_accuracy=0.93 + 0.01 * index + (0.02 if optimizer == "adam" else 0),
                    seconds_per_eval=2e-3 if optimizer == "sgd" else 3e-3,
                ),
            )
            # wild-quad: sgd always diverges, scaled-adam on seed 44.
            losses = [3.0 * math.exp(-rate * 8 * (i + 1)) for i in range(30)]
            if optimizer == "sgd":
                losses = [3.0, 40.0, 900.0, math.nan]
            elif optimizer == "scaled-adam" and seed == 44:
                losses = [*losses[:12], math.inf]
            store.put(
                "runs",
                run_config("wild-quad", optimizer, seed, lr),
                run_result(losses, target=1e-4, optimum=0.0),
            )
            # flat-3d: no trajectory, no accuracy.
            losses = [1.0 + 5.0 * math.exp(-rate * 3 * (i + 1)) for i in range(30)]
            store.put(
                "runs",
                run_config("flat-3d", optimizer, seed, lr),
                run_result(losses, target=1.05, optimum=1.0),
            )
    for problem in ("bowl-2d", "digits-mlp", "wild-quad", "flat-3d"):
        for optimizer in OPTIMIZERS:
            if problem == "flat-3d" and optimizer == "scaled-adam":
                continue  # untuned: the table shows "-"
            best = LRS[optimizer]
            values = [0.3 * abs(math.log10(lr / best)) + 0.01 for lr in GRID]
            trials = [{"lr": lr, "value": v} for lr, v in zip(GRID, values, strict=True)]
            trials[-1]["value"] = math.inf
            if problem == "wild-quad" and optimizer == "sgd":
                for trial in trials:
                    trial["value"] = math.inf
            config = {
                "problem": problem,
                "optimizer": optimizer,
                "hyperparameters": {},
                "instance_seed": 42,
                "seed": 1042,
                "trials": 6,
                "lr_range": [1e-4, 1.0],
                "sampler": "grid",
                "steps": 300,
            }
            all_diverged = all(not math.isfinite(t["value"]) for t in trials)
            store.put(
                "tuning",
                config,
                {
                    "best_lr": best,
                    "best_value": math.inf if all_diverged else 0.01,
                    "all_diverged": all_diverged,
                    "trials": trials,
                },
            )
    for lr in GRID[:2]:  # two tuning-trial runs (purpose "tune"): counted, not reported
        losses = [1.0, 0.5]
        store.put(
            "runs",
            run_config("bowl-2d", "adam", 1042, lr, purpose="tune"),
            run_result(losses, target=1e-6, optimum=0.0),
        )
    return store


def bowl(points: np.ndarray) -> np.ndarray:
    """The fake objective of ``bowl-2d``: minimum 0 at (1, 1)."""
    points = np.asarray(points, dtype=float)
    return (points[:, 0] - 1.0) ** 2 + 5.0 * (points[:, 1] - 1.0) ** 2


def fake_landscape(problem: str, instance_seed: int | None = None):
    """Stands in for ``optlab.report.landscape.load_landscape`` (no ``optlab.problems``)."""
    from optlab.report.landscape import Landscape

    if problem != "bowl-2d":
        return None
    return Landscape(
        function=bowl, bounds=((-2.0, 3.0), (-1.5, 2.5)), minima=((1.0, 1.0),), optimum=0.0
    )


HALVING_CONFIG = {"problem": "digits-mlp", "optimizer": "adam", "hyperparameters": {"lr": 0.001},
                  "members": 4, "reduce_factor": 0.5, "steps_per_round": 10, "data_seed": 42,
                  "instance_seed": 42, "data": "x"}  # fmt: skip


def add_halving(store: ResultsStore) -> None:
    """One halving run (4 members, winner init seed 4, seed 3 NaN) and one seed study
    (2 repeats of 3 steps, target 0.21) on ``digits-mlp`` with adam."""
    rounds = [
        {"seeds": [1, 2, 3, 4], "val_loss": [0.9, 0.5, math.nan, 0.7], "kept": [2, 4]},
        {"seeds": [2, 4], "val_loss": [0.4, 0.3], "kept": [4]},
    ]
    store.put(
        "halving",
        {**HALVING_CONFIG, "final_steps": 5, "init_seeds": [1, 2, 3, 4]},
        {"rounds": rounds, "winner_seed": 4, "final_val_loss": 0.2, "test_loss": 0.25},
    )
    curves = [
        {"step": [20.0, 40.0, 60.0], "winner": [0.5, 0.2, 0.1], "default": [0.6, 0.3, 0.2],
         "median": [0.55, 0.25, 0.15]},
        {"step": [20.0, 40.0, 60.0], "winner": [0.5, 0.3, 0.2], "default": [0.7, 0.5, 0.4],
         "median": [0.6, 0.35, 0.2]},
    ]  # fmt: skip
    study = {"study": "seed-study", "repeats": 2, "steps": 60, "eval_every": 20,
             "default_seed": 42, "first_seed": 1000}  # fmt: skip
    store.put(
        "halving",
        {**HALVING_CONFIG, **study},
        {"winner": [40.0, 60.0], "default": [50.0, math.inf], "median": [50.0, 50.0],
         "winner_seeds": [1003, 1005], "curves": curves, "target": 0.21, "summary": {}},
    )  # fmt: skip

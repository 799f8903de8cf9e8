"""``optlab rl bench``: a learned policy against tuned baselines on held-out instances.

For each held-out instance (an odd instance seed, :func:`optlab.rl.instances.instance_seeds`)
the baselines (Adam, SGD, momentum, L-BFGS by default) are run by the bench itself
(:func:`optlab.bench.runner.run_suite`: the same tuning procedure as ``optlab bench``, 6
learning rates on the validation split with the tuning seed, then the reported seeds 42,
43, ...), and the policy runs through the registry as ``learned:<path>`` at the step scale
it was trained with (its "tuning" was its training on the family's training instances),
with the policy file's SHA-256 in its run config. Every run is a record of the results
store under ``out`` (re-runs reuse them); the report (``out/rl-report.md`` and
``out/rl-figures/*.png``) gives, per optimizer, the final validation and test loss and the
test accuracy as mean +- std over all (instance, seed) runs, the spread over seeds (std of
the per-seed means), and the mean validation-loss curves.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optlab import problems
from optlab.bench.runner import run_suite
from optlab.bench.runs import DataOptions, RunConfig, execute_and_store
from optlab.bench.store import ResultsStore
from optlab.bench.suite import MAX_SEEDS, Suite, Tuning
from optlab.durable import atomic_writer, write_atomic
from optlab.optim.learned import file_digest, load_policy
from optlab.optim.registry import LEARNED_PREFIX
from optlab.rl.instances import (
    MAX_INSTANCES,
    RLError,
    check_count,
    instance_seeds,
    problem_name,
)

BASELINES = ("adam", "sgd", "momentum", "lbfgs")
LEARNED_LABEL = "learned"
Progress = Callable[[str, int, int], None]


@dataclass
class BenchOutcome:
    """Where the report went, and the summary rows it shows."""

    report_path: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    table_markdown: str = ""
    figures: list[Path] = field(default_factory=list)


def _spread(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0


def _fmt(mean: float, std: float, percent: bool = False) -> str:
    if not math.isfinite(mean):
        return "-"
    if percent:
        return f"{100 * mean:.1f}% ± {100 * std:.1f}"
    return f"{mean:.4g} ± {std:.2g}"


def bench_policy(
    policy_path: str | Path,
    problem: str,
    out: str | Path,
    *,
    instances: int = 5,
    seeds: int = 3,
    steps: int | None = None,
    baselines: Sequence[str] = BASELINES,
    tune: bool = True,
    split_seed: int = 0,
    workers: int = 1,
    progress: Progress | None = None,
) -> BenchOutcome:
    """Run the comparison into the store at ``out`` and write the report (module docstring)."""
    path = Path(policy_path).resolve()
    policy = load_policy(path)  # fails early, one line, on a bad file
    digest = file_digest(path)
    name = problem_name(problem)
    check_count("instances", instances, high=MAX_INSTANCES)
    check_count("seeds", seeds, high=MAX_SEEDS)
    spec = problems.spec(name)
    budget = spec.steps if steps is None else check_count("steps", steps)
    reported = tuple(42 + i for i in range(seeds))
    progress = progress or (lambda stage, done, total: None)
    store = ResultsStore(out)  # a writable folder, proven before any run
    for name_, folder in (("rl-report.md", False), ("rl-figures", True)):
        if (store.root / name_).exists() and (store.root / name_).is_dir() != folder:
            raise RLError(
                f"--out {out}: {name_} exists and is not a {'folder' if folder else 'file'}"
            )
    held_out = instance_seeds("heldout", instances, split_seed)
    keys: dict[str, list[str]] = {}
    learned_name = f"{LEARNED_PREFIX}{path}"
    for number, seeds_of in enumerate(held_out, start=1):
        suite = Suite(
            name=f"rl-{name}-{seeds_of.instance_seed}",
            problems=(name,),
            optimizers=tuple(baselines),
            seeds=reported,
            instance_seed=seeds_of.instance_seed,
            tuning=Tuning(enabled=tune),
            steps={name: budget},
        )

        def stage_progress(stage: str, done: int, total: int, n: int = number) -> None:
            progress(f"instance {n}/{instances}: {stage}", done, total)

        outcome = run_suite(suite, store, workers=workers, progress=stage_progress)
        for key in outcome.report_keys:
            keys.setdefault("baselines", []).append(key)
        for index, seed in enumerate(reported):
            config = RunConfig(
                problem=name,
                optimizer=learned_name,
                hyperparameters={"lr": policy.config.lr, "sha256": digest},
                instance_seed=seeds_of.instance_seed,
                init_seed=seed,
                data_seed=seed,
                steps=budget,
                eval_every=spec.eval_every,
                purpose="report",
            )
            execute_and_store(str(store.root), config, DataOptions())
            keys.setdefault("learned", []).append(config.key)
            progress(f"instance {number}/{instances}: learned", index + 1, len(reported))
    records = [store.get("runs", key) for group in keys.values() for key in group]
    return write_report([r for r in records if r is not None], Path(out), name, policy_path)


def _label(optimizer: str) -> str:
    return LEARNED_LABEL if optimizer.startswith(LEARNED_PREFIX) else optimizer


def write_report(
    records: Sequence[dict[str, Any]], out: Path, problem: str, policy_path: str | Path
) -> BenchOutcome:
    """Summary table (Markdown) and figures of the runs in ``records``."""
    if not records:
        raise RLError("no runs to report")
    by_label: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_label.setdefault(_label(record["config"]["optimizer"]), []).append(record)
    rows = []
    for label, group in by_label.items():
        results = [r["result"] for r in group]
        per_seed: dict[int, list[float]] = {}
        for record in group:
            value = record["result"].get("test_accuracy")
            if value is None:
                value = record["result"].get("test_loss", math.nan)
            per_seed.setdefault(record["config"]["init_seed"], []).append(value)
        seed_means = [statistics.fmean(v) for v in per_seed.values()]
        lrs = sorted({r["config"]["hyperparameters"].get("lr") for r in group})
        rows.append(
            {
                "optimizer": label,
                "runs": len(group),
                "diverged": sum(r["status"] != "ok" for r in results),
                "lr": lrs,
                "final_val_loss": _spread([r.get("final_val_loss", math.nan) for r in results]),
                "test_loss": _spread([r.get("test_loss", math.nan) for r in results]),
                "test_accuracy": _spread(
                    [r["test_accuracy"] for r in results if r.get("test_accuracy") is not None]
                ),
                "seed_spread": statistics.stdev(seed_means) if len(seed_means) > 1 else 0.0,
            }
        )
    has_accuracy = any(math.isfinite(row["test_accuracy"][0]) for row in rows)
    header = "| optimizer | runs | diverged | lr | final val loss | test loss |"
    header += " test accuracy |" if has_accuracy else ""
    header += " spread over seeds |"
    lines = [header, header_rule(header)]
    for row in rows:
        lr_text = ", ".join(f"{v:.3g}" for v in row["lr"] if v is not None)
        cells = [
            row["optimizer"],
            str(row["runs"]),
            str(row["diverged"]),
            lr_text,
            _fmt(*row["final_val_loss"]),
            _fmt(*row["test_loss"]),
        ]
        if has_accuracy:
            cells.append(_fmt(*row["test_accuracy"], percent=True))
        spread = row["seed_spread"]
        cells.append(f"{100 * spread:.2f} pt" if has_accuracy else f"{spread:.3g}")
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    figures = _figures(by_label, out, problem)
    instances = sorted({r["config"]["instance_seed"] for r in records})
    seeds = sorted({r["config"]["init_seed"] for r in records})
    metric = "test accuracy" if has_accuracy else "test loss"
    text = [
        f"# Learned optimizer on held-out {problem}",
        "",
        f"Policy: `{policy_path}`. Held-out instance seeds: {instances}; init / data-order "
        f"seeds {seeds}. Baselines tuned as in `optlab bench` (lr grid on the validation "
        "split, tuning seed apart); the learned policy runs at its trained step scale.",
        "mean ± std over every (instance, seed) run; spread over seeds = std over seeds of "
        f"the per-seed mean {metric}.",
        "",
        table,
        "",
        *[f"![{figure.stem}](rl-figures/{figure.name})" for figure in figures],
        "",
    ]
    report_path = out / "rl-report.md"
    write_atomic(report_path, "\n".join(text))
    return BenchOutcome(report_path, rows, table, figures)


def header_rule(header: str) -> str:
    """The Markdown separator row under ``header``."""
    return "|" + "---|" * (header.count("|") - 1)


def _figures(by_label: dict[str, list[dict[str, Any]]], out: Path, problem: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    folder = out / "rl-figures"
    folder.mkdir(parents=True, exist_ok=True)
    figure, (curves, finals) = plt.subplots(1, 2, figsize=(11, 4))
    labels = list(by_label)
    for label in labels:
        points: dict[int, list[float]] = {}
        for record in by_label[label]:
            curve = record["result"].get("curve", {})
            for x, y in zip(curve.get("evaluations", []), curve.get("val_loss", []), strict=False):
                if y is not None and math.isfinite(y):
                    points.setdefault(int(x), []).append(float(y))
        if points:
            xs = sorted(points)
            mean = np.array([np.mean(points[x]) for x in xs])
            std = np.array([np.std(points[x]) for x in xs])
            curves.plot(xs, mean, label=label)
            curves.fill_between(xs, mean - std, mean + std, alpha=0.15)
    curves.set_xlabel("gradient evaluations")
    curves.set_ylabel("validation loss (mean ± std)")
    curves.set_title(f"{problem}: held-out instances")
    curves.legend()
    finals_data = [
        [
            r["result"]["test_loss"]
            for r in by_label[label]
            if math.isfinite(r["result"].get("test_loss", math.nan))
        ]
        for label in labels
    ]
    finals.boxplot(finals_data, tick_labels=labels)
    finals.set_ylabel("final test loss")
    finals.set_title("final test loss over instances x seeds")
    figure.tight_layout()
    path = folder / f"{problem}-learned.png"
    with atomic_writer(path) as handle:
        figure.savefig(handle, dpi=100, format="png")
    plt.close(figure)
    return [path]

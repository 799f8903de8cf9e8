"""The claims' measurements: each runs one published comparison at a stated scale through
the library functions the benchmarks use, storing what it runs in the results store.

- :func:`imo_iterations`: IMO against Adam in iterations to converge on one 2-D function
  (:mod:`optlab.claims.iterations`, the NumPy reference rules; seeded starts);
- :func:`suite_accuracy`: test accuracy of an optimizer against Adam on a real-data problem,
  both tuned by the bench (:func:`optlab.bench.runner.run_suite`, the same lr grid on the
  validation split for each, then the reported seeds 42, 43, ...);
- :func:`halving_saving`: the seed study of ``optlab multi-init``
  (:func:`optlab.bench.multi_init.run_seed_study`): the halving winner's saving in steps to
  the target against the default init seed, per repeat;
- :func:`learned_accuracy`: a policy trained with PPO (:func:`optlab.rl.training.train_policy`)
  against tuned Adam on held-out instances (:func:`optlab.rl.bench.bench_policy`).

Each returns a :class:`Measurement`: per seed, the values of the compared optimizer and of
the reference (or the derived quantity alone), a sentence saying what was measured at what
scale, and details; or the reason it could not be measured.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from optlab import problems
from optlab.bench.multi_init import MultiInitRequest, prepare, reuse_seed_study, run_seed_study
from optlab.bench.runner import run_suite
from optlab.bench.store import ResultsStore, config_key
from optlab.bench.suite import Suite, Tuning
from optlab.claims.iterations import FUNCTIONS, LR, iterations, seeded_start
from optlab.claims.scale import Scale

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``."""
STOP = ("grad", 1e-4)
"""The iteration claims' stopping rule: ``||grad f|| < 1e-4`` (the rule under which
``benchmarks/imo_report_table.py`` finds the report's Adam counts closest)."""
SUITE_OPTIMIZERS = ("adam", "imo", "scaled-adam")
"""The accuracy claims' suite: one tuned run set serves both IMO's and ScaledAdam's claim."""


@dataclass
class Measurement:
    """What a claim's measurement gives.

    Attributes:
        values: per seed, the compared optimizer's value (or the claim's quantity itself
            when ``reference`` is None).
        reference: per seed (paired with ``values``), the reference optimizer's value; the
            quantity is then ``values - reference``.
        measured: what was measured, at what scale, in one or two sentences.
        details: further numbers for the record (counts, means, learning rates).
        not_checked: why it could not be measured (then the lists are empty).
    """

    values: list[float] = field(default_factory=list)
    reference: list[float] | None = None
    measured: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    not_checked: str = ""


def seeds_of(scale: Scale) -> list[int]:
    """The seeds of a claims run: 42, 43, ... (``scale.seeds`` of them)."""
    return [42 + i for i in range(scale.seeds)]


def imo_iterations(
    function: str, scale: Scale, store: ResultsStore, progress: Progress
) -> Measurement:
    """IMO's saving in iterations against Adam, ``100 (1 - IMO / Adam)`` per seeded start.

    Both at lr 0.01 (the report's) on the NumPy reference rules, IMO in its default form
    (``soft-nesterov``), until ``||grad f|| < 1e-4``; a run that does not converge within
    ``scale.iteration_cap`` counts at the cap (so a saving involving it is a bound).
    """
    value, gradient = FUNCTIONS[function]()
    seeds = seeds_of(scale)
    counts: dict[str, list[int | None]] = {"imo": [], "adam": []}
    starts, savings = [], []
    for done, seed in enumerate(seeds):
        start = seeded_start(function, seed)
        starts.append(list(start))
        imo = iterations("imo-soft-nesterov", value, gradient, start, STOP, scale.iteration_cap)
        adam = iterations("adam", value, gradient, start, STOP, scale.iteration_cap)
        counts["imo"].append(imo)
        counts["adam"].append(adam)
        capped = [scale.iteration_cap if c is None else c for c in (imo, adam)]
        savings.append(100.0 * (1.0 - capped[0] / capped[1]))
        progress(f"{function}: iterations", done + 1, len(seeds))
    missed = sum(c is None for group in counts.values() for c in group)
    measured = (
        f"iterations until ||∇f|| < 1e-4 at lr {LR:g} (IMO soft-nesterov, Adam with torch's "
        f"defaults; NumPy reference rules, float64) from {len(seeds)} seeded starts on the "
        f"{_FUNCTION_TEXT[function]}, cap {scale.iteration_cap:,}"
        + (f" ({missed} runs hit the cap and count at it)" if missed else "")
        + "; per start the saving 100 (1 − IMO/Adam)"
    )
    details = {
        "starts": starts,
        "imo_iterations": counts["imo"],
        "adam_iterations": counts["adam"],
        "imo_median": _median(counts["imo"], scale.iteration_cap),
        "adam_median": _median(counts["adam"], scale.iteration_cap),
    }
    return Measurement(values=savings, measured=measured, details=details)


_FUNCTION_TEXT = {
    "well-conditioned": "well-conditioned quadratic 0.5x² + 5y² (condition number 10; "
    "start coordinates ±U(1, 5))",
    "ill-conditioned": "ill-conditioned quadratic 0.5x² + 50y² (condition number 100; "
    "start coordinates ±U(1, 5))",
    "rosenbrock": "2-D Rosenbrock function (start (-1.2, 1) + U(-0.2, 0.2) per coordinate)",
}


def _median(values: list[int | None], cap: int) -> float:
    return float(statistics.median(cap if v is None else v for v in values))


def accuracy_suite(scale: Scale) -> Suite:
    """The suite of the accuracy claims: Adam, IMO and ScaledAdam on ``scale``'s problem,
    each tuned on the same lr grid, reported over ``scale.seeds`` seeds."""
    steps = {} if scale.accuracy_steps is None else {scale.accuracy_problem: scale.accuracy_steps}
    return Suite(
        name=f"claims-{scale.accuracy_problem}",
        problems=(scale.accuracy_problem,),
        optimizers=SUITE_OPTIMIZERS,
        seeds=tuple(seeds_of(scale)),
        tuning=Tuning(trials=scale.tuning_trials),
        steps=steps,
    )


def suite_accuracy(
    optimizer: str, scale: Scale, store: ResultsStore, progress: Progress
) -> Measurement:
    """Test accuracy (%) of ``optimizer`` and of Adam per reported seed, both tuned by the
    bench on ``scale.accuracy_problem`` (a diverged run has no accuracy: NaN, left out)."""
    suite = accuracy_suite(scale)
    problem = scale.accuracy_problem
    outcome = run_suite(suite, store, progress=progress)
    if problem in outcome.skipped:
        return Measurement(not_checked=f"{problem} could not run: {outcome.skipped[problem]}")
    accuracy: dict[str, dict[int, float]] = {}
    for key in outcome.report_keys:
        record = store.get("runs", key)
        if record is None:
            continue
        value = record["result"].get("test_accuracy")
        percent = math.nan if value is None else 100.0 * float(value)
        accuracy.setdefault(record["config"]["optimizer"], {})[record["config"]["init_seed"]] = (
            percent
        )
    seeds = seeds_of(scale)
    mine = [accuracy.get(optimizer, {}).get(seed, math.nan) for seed in seeds]
    adam = [accuracy.get("adam", {}).get(seed, math.nan) for seed in seeds]
    lrs = {f"{o}": lr for (p, o), lr in outcome.tuned_lrs.items() if p == problem}
    spec = problems.spec(problem)
    measured = (
        f"test accuracy (%) on {problem} ({spec.description}), "
        f"{suite.budget(problem):,} steps, {optimizer} and Adam each tuned on the bench's "
        f"{scale.tuning_trials}-point lr grid (validation split, tuning seed apart), "
        f"{len(seeds)} reported seeds paired by seed"
    )
    details = {
        "tuned_lrs": lrs,
        f"{optimizer}_accuracy": mine,
        "adam_accuracy": adam,
        f"{optimizer}_mean": _finite_mean(mine),
        "adam_mean": _finite_mean(adam),
    }
    return Measurement(values=mine, reference=adam, measured=measured, details=details)


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.fmean(finite) if finite else math.nan


def halving_saving(scale: Scale, store: ResultsStore, progress: Progress) -> Measurement:
    """The seed study of ``optlab multi-init``: per repeat, the halving winner's saving in
    steps to the validation target against the default init seed, ``100 (default - winner)
    / default`` (both retrained on the same fresh data order; a repeat where an arm missed
    the target within the budget has no saving)."""
    request = MultiInitRequest(
        problem=scale.halving_problem,
        optimizer="adam",
        num_models=scale.members,
        steps_per_round=scale.steps_per_round,
        lr=1e-3,
        seed_study=True,
        repeats=scale.seeds,
        study_steps=scale.study_steps,
        epochs=0.0,
    )
    run = prepare(request)
    record = reuse_seed_study(run, store)
    if record is None:
        record = run_seed_study(
            run, store, on_repeat=lambda r: progress("seed study", r + 1, scale.seeds)
        )
    result = record["result"]
    savings = [
        100.0 * (d - w) / d if math.isfinite(d) and math.isfinite(w) else math.nan
        for w, d in zip(result["winner"], result["default"], strict=True)
    ]
    measured = (
        f"steps to the validation target {result['target']:g} on {scale.halving_problem} "
        f"(Adam lr 1e-3): successive halving of {scale.members} initialisations (keep half "
        f"every {scale.steps_per_round} steps), its winner retrained against the default init "
        f"seed on a fresh data order, {scale.study_steps} steps, evaluated every "
        f"{record['config']['eval_every']}; {scale.seeds} repeats (fresh inits and data orders "
        "each); per repeat the saving 100 (default − winner)/default"
    )
    details = {
        "winner_steps": result["winner"],
        "default_steps": result["default"],
        "median_of_n_steps": result["median"],
        "winner_seeds": result["winner_seeds"],
    }
    return Measurement(values=savings, measured=measured, details=details)


def learned_accuracy(scale: Scale, store: ResultsStore, progress: Progress) -> Measurement:
    """Test accuracy (%) of a PPO-trained policy and of tuned Adam on held-out instances of
    ``scale.rl_problem``, paired by (instance, seed). The policy is trained once per
    training config and kept in ``<store>/claims-policies`` (a re-run reuses it)."""
    from optlab.optim.learned import file_digest
    from optlab.optim.registry import LEARNED_PREFIX
    from optlab.rl.bench import bench_policy
    from optlab.rl.training import TrainingConfig, config_path_of, train_policy

    training = TrainingConfig(
        problem=scale.rl_problem, num_problems=scale.rl_num_problems, timesteps=scale.rl_timesteps
    )
    folder = store.root / "claims-policies"
    policy = folder / f"{scale.rl_problem}-{config_key(training.as_dict())[:16]}.pt"
    if not _trained(policy, training.as_dict(), config_path_of(policy), file_digest):
        train_policy(
            training, policy, progress=lambda done, total: progress("PPO training", done, total)
        )
    digest = file_digest(policy)
    bench_store = store.root / "learned"
    outcome = bench_policy(
        policy, scale.rl_problem, bench_store, instances=scale.rl_instances,
        seeds=scale.seeds, baselines=("adam",), progress=progress,
    )  # fmt: skip
    learned: dict[tuple[int, int], float] = {}
    adam: dict[tuple[int, int], float] = {}
    for record in ResultsStore(bench_store).records("runs"):
        config = record["config"]
        if config["purpose"] != "report" or config["problem"] != problems_name(scale.rl_problem):
            continue
        pair = (config["instance_seed"], config["init_seed"])
        value = record["result"].get("test_accuracy")
        percent = math.nan if value is None else 100.0 * float(value)
        if config["optimizer"].startswith(LEARNED_PREFIX):
            if config["hyperparameters"].get("sha256") == digest:
                learned[pair] = percent
        elif config["optimizer"] == "adam":
            adam[pair] = percent
    pairs = sorted(set(learned) & set(adam))
    info = json.loads(config_path_of(policy).read_text(encoding="utf-8"))
    measured = (
        f"test accuracy (%) on {len({p[0] for p in pairs})} held-out {scale.rl_problem} "
        f"instances x {scale.seeds} seeds: the coordinate-wise policy trained with PPO "
        f"({info['timesteps']:,} steps on {scale.rl_num_problems} training instances, "
        f"{info['seconds']:.0f} s) at its trained step scale, against Adam tuned as in "
        f"`optlab bench`; paired by (instance, seed)"
    )
    details = {
        "policy": str(policy.relative_to(store.root)),
        "policy_sha256": digest,
        "training_seconds": info["seconds"],
        "training_timesteps": info["timesteps"],
        "learned_mean": _finite_mean([learned[p] for p in pairs]),
        "adam_mean": _finite_mean([adam[p] for p in pairs]),
        "pairs": [list(p) for p in pairs],
        "rl_report": str(outcome.report_path.relative_to(store.root)),
    }
    return Measurement(
        values=[learned[p] for p in pairs],
        reference=[adam[p] for p in pairs],
        measured=measured,
        details=details,
    )


def problems_name(family: str) -> str:
    """The registry problem of an RL family name."""
    from optlab.rl.instances import problem_name

    return problem_name(family)


def _trained(
    policy: Path, training: dict[str, Any], config_path: Path, digest: Callable[[Path], str]
) -> bool:
    """Whether ``policy`` was trained with ``training`` and is the file its record names."""
    if not (policy.is_file() and config_path.is_file()):
        return False
    try:
        info = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    same = json.loads(json.dumps(training)) == info.get("training")
    return bool(same and info.get("policy_sha256") == digest(policy))


def scale_fields(scale: Scale, names: tuple[str, ...]) -> dict[str, Any]:
    """The named fields of ``scale`` (a claim's record config holds those it uses)."""
    values = asdict(scale)
    return {name: values[name] for name in names}

"""Paired bootstrap verdicts: known answers (clearly better, clearly worse, pure noise),
degenerate cases without NaN, the seeds-needed estimate, the report section."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from synthetic_results import fake_landscape

from optlab.bench.store import ResultsStore
from optlab.report import ReportError, write_report
from optlab.report import landscape as landscape_module
from optlab.report.frames import Run
from optlab.report.statistics import (
    MIN_SEEDS,
    Tally,
    compare,
    paired_bootstrap,
    seeds_to_conclude,
    verdict_of,
    win_tie_loss,
)

SEEDS = 8


def _noise(seed: int, n: int = SEEDS) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, n)


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_a_clear_gain_is_better_or_worse_by_the_metric_direction(higher_is_better) -> None:
    reference = 10.0 + _noise(1)
    values = reference + 3.0 + 0.3 * _noise(2)  # +3 on every seed, little spread
    estimate = paired_bootstrap(values, reference, higher_is_better=higher_is_better)
    assert estimate.n == SEEDS
    assert estimate.low is not None and estimate.high is not None
    assert 0.0 < estimate.low < estimate.mean < estimate.high
    assert estimate.mean == pytest.approx(float(np.mean(values - reference)))
    assert estimate.verdict == ("better" if higher_is_better else "worse")
    assert estimate.seeds_needed is None


def test_a_clear_loss_in_loss_is_better() -> None:
    reference = 1.0 + 0.1 * _noise(3)
    values = reference - 0.5 + 0.05 * _noise(4)
    estimate = paired_bootstrap(values, reference, higher_is_better=False)
    assert estimate.high is not None and estimate.high < 0.0
    assert estimate.verdict == "better"


def test_pure_noise_is_inconclusive_and_says_how_many_seeds() -> None:
    reference = _noise(5)
    values = _noise(6)
    estimate = paired_bootstrap(values, reference, higher_is_better=True)
    assert estimate.low is not None and estimate.high is not None
    assert estimate.low < 0.0 < estimate.high
    assert estimate.verdict == "inconclusive"
    assert estimate.seeds_needed is not None and estimate.seeds_needed > SEEDS


def test_the_pairing_matters() -> None:
    """A small shift on top of a large seed effect: only the paired comparison sees it."""
    seed_effect = 5.0 * _noise(7)
    reference = seed_effect
    values = seed_effect + 1.0 + 0.1 * _noise(8)
    assert paired_bootstrap(values, reference, higher_is_better=True).verdict == "better"
    shuffled = values[np.random.default_rng(9).permutation(SEEDS)]
    assert paired_bootstrap(shuffled, reference, higher_is_better=True).verdict == "inconclusive"


def test_the_interval_is_deterministic() -> None:
    first = paired_bootstrap(_noise(10), _noise(11), higher_is_better=True)
    second = paired_bootstrap(_noise(10), _noise(11), higher_is_better=True)
    assert first == second


def test_too_few_seeds_is_inconclusive_not_nan() -> None:
    estimate = paired_bootstrap([2.0, 3.0], [0.0, 0.5], higher_is_better=True)
    assert estimate.n == 2 < MIN_SEEDS
    assert (estimate.verdict, estimate.reason) == ("inconclusive", "too few seeds")
    assert estimate.low is None and estimate.high is None
    empty = paired_bootstrap([], [], higher_is_better=True)
    assert (empty.n, empty.mean, empty.verdict) == (0, None, "inconclusive")


def test_non_finite_pairs_are_left_out() -> None:
    values = [1.0, math.nan, 2.0, math.inf, 1.5]
    reference = [0.0, 0.0, 1.0, 0.0, math.nan]
    estimate = paired_bootstrap(values, reference, higher_is_better=True)
    assert estimate.n == 2 and estimate.mean == pytest.approx(1.0)


def test_runs_that_ignore_the_seed_give_no_verdict() -> None:
    estimate = paired_bootstrap([1.0] * 5, [2.0] * 5, higher_is_better=True)
    assert estimate.verdict == "inconclusive"
    assert estimate.reason == "runs do not vary with the seed"
    same = paired_bootstrap([3.0, 4.0, 5.0], [3.0, 4.0, 5.0], higher_is_better=True)
    assert (same.verdict, same.mean) == ("inconclusive", 0.0)


def test_one_difference_on_every_varying_seed_is_decided_by_its_sign() -> None:
    estimate = paired_bootstrap(
        [110.0, 130.0, 150.0], [100.0, 120.0, 140.0], higher_is_better=False
    )
    assert (estimate.verdict, estimate.low, estimate.high) == ("worse", 10.0, 10.0)


def test_verdict_rule() -> None:
    assert verdict_of(0.1, 0.3, higher_is_better=True) == "better"
    assert verdict_of(0.1, 0.3, higher_is_better=False) == "worse"
    assert verdict_of(-0.3, -0.1, higher_is_better=False) == "better"
    assert verdict_of(-0.3, 0.1, higher_is_better=True) == "inconclusive"


def test_seeds_needed_scales_the_interval_by_one_over_sqrt_n() -> None:
    # mean 1, lower bound -1: the half towards 0 is 2, twice the mean, so n (2/1)^2 = 4n.
    assert seeds_to_conclude(1.0, -1.0, 3.0, 5) == 21
    assert seeds_to_conclude(-1.0, -2.0, 0.5, 4) == 10  # w = 1.5: 4 * 2.25 = 9 -> 10
    assert seeds_to_conclude(0.0, -1.0, 1.0, 5) is None
    needed = seeds_to_conclude(1.0, -1.0, 3.0, 5)
    assert needed is not None and 2.0 * math.sqrt(5 / needed) < 1.0


def _run(problem: str, optimizer: str, seed: int, **values) -> Run:
    fields = {
        "key": f"{problem}-{optimizer}-{seed}",
        "problem": problem,
        "optimizer": optimizer,
        "lr": 0.01,
        "seed": (42, seed, seed),
        "diverged": False,
        "steps": 100,
        "evaluations": 100,
        "seconds": 1.0,
        "final_val_loss": 1.0,
        "best_val_loss": 1.0,
        "test_loss": 1.0,
        "final_val_accuracy": None,
        "test_accuracy": None,
        "steps_to_target": None,
        "evaluations_to_target": None,
        "seconds_to_target": None,
        "target": 0.5,
        "optimum": None,
        "curve": {},
        "trajectory": None,
        "budget": 100,
    }
    fields.update(values)
    fields["series"] = optimizer
    return Run(**fields)


def _population(problem: str, shift: float, to_target: int | None) -> list[Run]:
    runs = []
    for index, seed in enumerate(range(42, 42 + SEEDS)):
        accuracy = 0.80 + 0.01 * float(_noise(20)[index])
        lag = 10 * (index % 3)  # the runs' times vary with the seed
        runs.append(
            _run(problem, "adam", seed, test_accuracy=accuracy, evaluations_to_target=60 + lag)
        )
        runs.append(
            _run(
                problem,
                "sgd",
                seed,
                test_accuracy=accuracy + shift + 0.001 * float(_noise(21)[index]),
                evaluations_to_target=None if to_target is None else to_target + lag,
            )
        )
    return runs


def test_compare_runs_and_tally_wins_ties_losses() -> None:
    runs = [
        *_population("a", +0.05, 40),  # sgd better accuracy, at the target in 40 < 60
        *_population("b", -0.05, None),  # sgd worse, never reaches the target (budget 100)
    ]
    comparisons = compare(runs, "adam")
    by = {(c.problem, c.quantity): c for c in comparisons}
    assert by[("a", "metric")].label == "test accuracy (%)"
    assert by[("a", "metric")].estimate.verdict == "better"
    assert by[("a", "metric")].estimate.mean == pytest.approx(5.0, abs=0.1)
    assert by[("a", "time")].estimate.verdict == "better"  # 40 vs 60 on every seed
    assert by[("b", "metric")].estimate.verdict == "worse"
    # never reached: counted at its budget, 100 against 60-80
    assert by[("b", "time")].estimate.verdict == "worse"
    assert win_tie_loss(comparisons) == {"sgd": {"metric": Tally(1, 0, 1), "time": Tally(1, 0, 1)}}


def test_times_counted_at_checks_may_repeat_over_seeds_that_differ() -> None:
    """The reference reaches the target at the first check on every seed, the other never:
    equal counts, but the runs differ by seed (final losses), so that is a verdict."""
    runs = []
    for seed in range(42, 47):
        loss = 0.1 + seed / 1000
        runs.append(_run("p", "adam", seed, final_val_loss=loss, evaluations_to_target=10))
        runs.append(_run("p", "sgd", seed, test_loss=2 * loss, evaluations_to_target=None))
    time = next(c for c in compare(runs, "adam") if c.quantity == "time")
    assert (time.estimate.verdict, time.estimate.mean) == ("worse", 90.0)
    assert time.estimate.reason == "the same difference on every seed"
    still = [replace(run, final_val_loss=1.0, test_loss=1.0) for run in runs]  # seeds: no effect
    time = next(c for c in compare(still, "adam") if c.quantity == "time")
    assert (time.estimate.verdict, time.estimate.reason) == (
        "inconclusive",
        "runs do not vary with the seed",
    )


def test_a_diverged_optimizer_is_worse() -> None:
    runs = []
    for seed in range(42, 45):
        runs.append(_run("p", "adam", seed, test_loss=0.1 + seed / 1000))
        runs.append(_run("p", "sgd", seed, test_loss=math.nan, diverged=True))
    metric = next(c for c in compare(runs, "adam") if c.quantity == "metric")
    assert metric.estimate.verdict == "worse" and metric.diverged == 3
    two_seeds = [run for run in runs if run.seed[1] != 44]
    metric = next(c for c in compare(two_seeds, "adam") if c.quantity == "metric")
    assert (metric.estimate.verdict, metric.estimate.reason) == ("inconclusive", "too few seeds")


@pytest.fixture(scope="module")
def landscape_patch():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(landscape_module, "load_landscape", fake_landscape)
        yield


def test_report_section_and_method(synthetic_store: ResultsStore, tmp_path, landscape_patch):
    paths = write_report(synthetic_store, tmp_path, reference="sgd")
    markdown = paths["markdown"].read_text()
    section = markdown.split("## Against the reference (sgd): verdicts over seeds", 1)[1]
    section = section.split("\n## ", 1)[0]
    assert "final metric: W/T/L" in section
    assert "| adam |" in section and "| scaled-adam |" in section
    assert "| digits-mlp | adam | test accuracy (%), higher is better |" in section
    assert "BCa bootstrap interval" in markdown.split("## How these numbers were measured")[1]
    assert "Verdicts: every optimizer against the reference `sgd`" in markdown
    assert "verdicts over seeds" in paths["html"].read_text()


def test_an_unknown_reference_is_an_error(synthetic_store: ResultsStore, tmp_path) -> None:
    with pytest.raises(ReportError, match=r"reference optimizer 'nope'.*adam, scaled-adam, sgd"):
        write_report(synthetic_store, tmp_path, reference="nope")

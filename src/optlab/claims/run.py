"""``optlab claims`` as a library: measure every claim, store each as a record, report.

:func:`run_claims` opens the results store at ``out`` and, per claim of
:data:`~optlab.claims.catalogue.CLAIMS`, reuses its stored ``claims`` record (keyed by the
claim, :data:`~optlab.claims.catalogue.CLAIMS_VERSION` and the scale fields it uses) or
measures it and stores the record atomically. What a measurement runs (bench runs, tuning
outcomes, the seed study, the PPO policy, the learned-optimizer runs) is stored in the same
folder as it completes, so a killed run continues where it stopped: finished claims are
read back, a half-measured one resumes from its stored runs. Then the report
(``claims.md``, ``claims.html``: :func:`optlab.report.claims.write_claims_report`).

The record's result holds everything the report shows: the claim, the claimed values, what
was measured at what scale, the per-seed values, the mean and 95% paired BCa bootstrap
interval (:func:`optlab.report.statistics.paired_bootstrap`) and the verdict
(:func:`optlab.claims.verdict.decide`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optlab.bench.store import ResultsStore, config_key
from optlab.claims.catalogue import CLAIMS, Claim, claimed_text
from optlab.claims.measures import Measurement, Progress
from optlab.claims.scale import ClaimsError, Scale
from optlab.claims.verdict import decide
from optlab.report.claims import write_claims_report
from optlab.report.statistics import paired_bootstrap

DEFAULT_SCALE = Scale()
"""The scale ``optlab claims`` runs at by default."""


@dataclass
class ClaimsOutcome:
    """The records of a claims run (in claim order), how many were measured now, and the
    report's files."""

    records: list[dict[str, Any]] = field(default_factory=list)
    measured: int = 0
    reused: int = 0
    paths: dict[str, Path] = field(default_factory=dict)


def evaluate(claim: Claim, measurement: Measurement) -> dict[str, Any]:
    """The record result of ``claim`` from its ``measurement``: estimate and verdict."""
    result: dict[str, Any] = {
        "claim": claim.id,
        "statement": claim.statement,
        "source": claim.source,
        "claimed": claim.claimed,
        "claimed_text": claimed_text(claim),
        "claimed_value": claim.claimed_value,
        "quantity": claim.quantity,
        "unit": claim.unit,
        "criterion": [claim.criterion.low, claim.criterion.high],
        "measured": measurement.measured,
        "values": measurement.values,
        "reference": measurement.reference,
        "details": measurement.details,
    }
    if measurement.not_checked or claim.measure is None:
        reason = measurement.not_checked or claim.not_checked
        return {**result, "verdict": "not checked", "reason": reason, "n": 0, "mean": None,
                "low": None, "high": None}  # fmt: skip
    reference = measurement.reference or [0.0] * len(measurement.values)
    estimate = paired_bootstrap(measurement.values, reference, higher_is_better=True)
    verdict, reason = decide(estimate, claim.criterion)
    inside = None
    if claim.claimed_value is not None and estimate.low is not None and estimate.high is not None:
        inside = bool(estimate.low <= claim.claimed_value <= estimate.high)
    return {
        **result,
        "verdict": verdict,
        "reason": reason,
        "n": estimate.n,
        "mean": estimate.mean,
        "low": estimate.low,
        "high": estimate.high,
        "claimed_value_in_interval": inside,
    }


def run_claims(
    out: str | os.PathLike[str],
    scale: Scale = DEFAULT_SCALE,
    *,
    claims: Sequence[Claim] = CLAIMS,
    progress: Progress | None = None,
    on_claim: Callable[[dict[str, Any]], None] | None = None,
) -> ClaimsOutcome:
    """Measure (or reuse) every claim into the store at ``out``; write the report there.

    ``progress(stage, done, total)`` reports stages (``claims`` counts claims);
    ``on_claim(record)`` is called as each claim's record is ready.
    """
    if not isinstance(scale, Scale):
        raise ClaimsError(f"scale must be a Scale, got {type(scale).__name__}")
    progress = progress or (lambda stage, done, total: None)
    store = ResultsStore(out)  # a writable folder, proven before any measurement
    outcome = ClaimsOutcome()
    for index, claim in enumerate(claims):
        progress("claims", index, len(claims))
        config = claim.config(scale)
        record = store.get("claims", config_key(config))
        if record is None:
            if claim.measure is None:
                measurement = Measurement(not_checked=claim.not_checked)
            else:
                measurement = claim.measure(scale, store, _staged(claim, progress))
            record = store.put("claims", config, evaluate(claim, measurement))
            outcome.measured += 1
        else:
            outcome.reused += 1
        outcome.records.append(record)
        if on_claim is not None:
            on_claim(record)
    progress("claims", len(claims), len(claims))
    outcome.paths = write_claims_report(outcome.records, store.root, scale_text(scale))
    return outcome


def _staged(claim: Claim, progress: Progress) -> Progress:
    return lambda stage, done, total: progress(f"{claim.id}: {stage}", done, total)


def scale_text(scale: Scale) -> str:
    """The scale in one sentence."""
    return (
        f"scale `{scale.name}`: {scale.seeds} seeds per claim (42, 43, ...); iteration cap "
        f"{scale.iteration_cap:,}; accuracy on {scale.accuracy_problem} "
        f"({'its budget' if scale.accuracy_steps is None else f'{scale.accuracy_steps} steps'}, "
        f"{scale.tuning_trials} lrs tuned per optimizer); multi-init on "
        f"{scale.halving_problem} (N = {scale.members}, {scale.study_steps} steps); learned "
        f"optimizer on {scale.rl_problem} ({scale.rl_timesteps:,} PPO steps, "
        f"{scale.rl_instances} held-out instances)."
    )


def verdict_rows(records: Sequence[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """Per record: claim, claimed, measured mean [95% CI] (n), verdict, as text."""
    rows = []
    for record in records:
        result = record["result"]
        rows.append((result["claim"], result["claimed_text"], estimate_text(result),
                     result["verdict"]))  # fmt: skip
    return rows


def estimate_text(result: dict[str, Any]) -> str:
    """``mean [low, high] (n = ...)`` with the unit, or a dash."""
    mean, unit = result.get("mean"), result.get("unit", "")
    if mean is None or not math.isfinite(mean):
        return "—"
    text = f"{mean:+.1f}{unit}"
    if result.get("low") is not None and result.get("high") is not None:
        text += f" [{result['low']:+.1f}, {result['high']:+.1f}]"
    return text + f" (n = {result['n']})"

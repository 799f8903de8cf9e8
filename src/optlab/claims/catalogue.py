"""The seeds' published claims, declared as data.

Each :class:`Claim` holds the claim as published (its statement, source and the claimed
values: the only numbers taken from the seeds), what is measured to check it (a
measurement of :mod:`optlab.claims.measures` and the :class:`~optlab.claims.scale.Scale`
fields it depends on) and the range the claim puts that quantity in
(:class:`~optlab.claims.verdict.Criterion`; :mod:`optlab.claims.verdict` says how the
verdict follows). A claim that cannot be checked here says why (``not_checked``).

Sources: the IMO report ("IMO — Inertial Mass Optimizer",
ashmithkp123-dotcom/Inertial-Mass-Optimizer-IMO-), the variance-scaled Adam and the
multi-init seeds of this project, the learned-optimizer seed (Li & Malik, "Learning to
Optimize", 2016, as restated by the seed), and the MAMGD paper (Sakovich et al.,
*Technologies* 2024, 12(9), 154).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from optlab import problems
from optlab.bench.store import ResultsStore
from optlab.claims import measures
from optlab.claims.iterations import REPORT_TABLE
from optlab.claims.measures import Measurement, Progress
from optlab.claims.scale import Scale
from optlab.claims.verdict import Criterion

Measure = Callable[[Scale, ResultsStore, Progress], Measurement]

CLAIMS_VERSION = 1
"""Part of every claim record's config: a change to how claims are measured bumps it."""


@dataclass(frozen=True)
class Claim:
    """One published claim and how it is checked.

    Attributes:
        id: a short stable name (the record's config holds it).
        statement: the claim, as the source states it.
        source: where it is stated.
        claimed: the claimed values (numbers from the source, by name).
        quantity: what the verdict is about, e.g. "IMO's saving in iterations vs Adam".
        unit: the quantity's unit (``%`` or `` pt``).
        criterion: the range the claim puts the quantity in.
        measure: the measurement (None: not checked).
        uses: the :class:`Scale` fields the measurement depends on (the record's key).
        not_checked: why the claim is not checked (with ``measure`` None).
    """

    id: str
    statement: str
    source: str
    claimed: dict[str, float]
    quantity: str
    unit: str
    criterion: Criterion
    measure: Measure | None
    uses: tuple[str, ...] = ()
    not_checked: str = ""
    claimed_value: float | None = field(default=None)

    def config(self, scale: Scale) -> dict[str, Any]:
        """The claim record's config: this claim, the version and the scale it used (and,
        for a claim on a data set read from disk, the data's fingerprint: other files are
        another measurement, never a stale reuse)."""
        config = {
            "claim": self.id,
            "version": CLAIMS_VERSION,
            "scale": measures.scale_fields(scale, ("seeds", *self.uses)),
        }
        if "accuracy_problem" in self.uses:
            config["data"] = problems.data_fingerprint(scale.accuracy_problem, None)
        return config


IMO_SOURCE = "IMO report (ashmithkp123-dotcom/Inertial-Mass-Optimizer-IMO-), iteration table"
_ITERATION_FIELDS = ("iteration_cap",)
_SUITE_FIELDS = ("accuracy_problem", "accuracy_steps", "tuning_trials")


def _iteration_claim(function: str, label: str) -> Claim:
    table = REPORT_TABLE[function]
    return Claim(
        id=f"imo-iterations-{function}",
        statement=(
            f"IMO needs 30–55% fewer iterations than Adam ({label}: {table['imo']:,} vs "
            f"{table['adam']:,} at lr 0.01)"
        ),
        source=IMO_SOURCE,
        claimed={
            "saving_low": 30.0,
            "saving_high": 55.0,
            "imo": table["imo"],
            "adam": table["adam"],
        },
        quantity="IMO's saving in iterations against Adam, 100 (1 − IMO/Adam)",
        unit="%",
        criterion=Criterion(low=30.0),
        measure=partial(measures.imo_iterations, function),
        uses=_ITERATION_FIELDS,
        claimed_value=100.0 * (1.0 - table["imo"] / table["adam"]),
    )


CLAIMS: tuple[Claim, ...] = (
    _iteration_claim("well-conditioned", "well-conditioned quadratic"),
    _iteration_claim("ill-conditioned", "ill-conditioned quadratic"),
    _iteration_claim("rosenbrock", "Rosenbrock"),
    Claim(
        id="imo-accuracy",
        statement=(
            "IMO loses accuracy against Adam on MNIST-like data (88.69% vs 95.45% on MNIST) "
            "and on CIFAR-10; checked on Fashion-MNIST (MNIST and CIFAR-10 are not installed "
            "here)"
        ),
        source="IMO report, MNIST and CIFAR-10 results",
        claimed={"imo_accuracy": 88.69, "adam_accuracy": 95.45},
        quantity="test accuracy of IMO minus Adam's",
        unit=" pt",
        criterion=Criterion(high=0.0),
        measure=partial(measures.suite_accuracy, "imo"),
        uses=_SUITE_FIELDS,
        claimed_value=88.69 - 95.45,
    ),
    Claim(
        id="scaled-adam-accuracy",
        statement="the variance-scaled Adam is within 1–2% of Adam",
        source="the variance-scaled Adam seed",
        claimed={"within_low": 1.0, "within_high": 2.0},
        quantity="test accuracy of ScaledAdam minus Adam's",
        unit=" pt",
        criterion=Criterion(low=-2.0, high=2.0),
        measure=partial(measures.suite_accuracy, "scaled-adam"),
        uses=_SUITE_FIELDS,
    ),
    Claim(
        id="multi-init-halving",
        statement=(
            "multi-init with elimination (successive halving) converges 14.3% faster than a "
            "single initialisation"
        ),
        source="the multi-init seed",
        claimed={"saving": 14.3},
        quantity="the halving winner's saving in steps to target against the default seed",
        unit="%",
        criterion=Criterion(low=0.0),
        measure=measures.halving_saving,
        uses=("halving_problem", "members", "steps_per_round", "study_steps"),
        claimed_value=14.3,
    ),
    Claim(
        id="learned-vs-adam-logistic",
        statement="the learned optimizer beats Adam on logistic regression (86% vs 83%)",
        source="the learned-optimizer seed (after Li & Malik 2016)",
        claimed={"learned_accuracy": 86.0, "adam_accuracy": 83.0},
        quantity="test accuracy of the learned optimizer minus Adam's",
        unit=" pt",
        criterion=Criterion(low=0.0),
        measure=measures.learned_accuracy,
        uses=("rl_problem", "rl_num_problems", "rl_timesteps", "rl_instances"),
        claimed_value=86.0 - 83.0,
    ),
    Claim(
        id="mamgd-table-1",
        statement="MAMGD's paper, Table 1",
        source="Sakovich et al., MAMGD, Technologies 2024, 12(9), 154",
        claimed={},
        quantity="—",
        unit="",
        criterion=Criterion(),
        measure=None,
        not_checked=(
            "claimed values not available offline: the stored copies of the paper "
            "(mdpi.com, doaj.org) hold its abstract and section headings, not Table 1, and "
            "the PDF in NekkittAY/MAMGD_Optimizer cannot be read as text here; no number "
            "is invented"
        ),
    ),
)
"""Every claim, in report order."""


def claim_named(name: str) -> Claim:
    """The claim with id ``name`` (KeyError listing the ids if unknown)."""
    for claim in CLAIMS:
        if claim.id == name:
            return claim
    raise KeyError(f"unknown claim {name!r}; claims: {', '.join(c.id for c in CLAIMS)}")


def claimed_text(claim: Claim) -> str:
    """The claimed range or value for people."""
    if claim.measure is None:
        return "—"
    text = claim.criterion.text(claim.unit)
    if claim.claimed_value is not None and math.isfinite(claim.claimed_value):
        text += f" (published: {claim.claimed_value:+.1f}{claim.unit})"
    return text

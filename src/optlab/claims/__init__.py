"""The seeds' published claims, each measured here at an affordable scale, with a verdict.

``optlab claims`` runs :func:`run_claims`: per claim of :data:`CLAIMS` (declared as data in
:mod:`optlab.claims.catalogue`) a measurement (:mod:`optlab.claims.measures`, through the
library functions the benchmarks use), a 95% paired bootstrap interval over seeds and a
verdict (:mod:`optlab.claims.verdict`), each stored as a ``claims`` record of the results
store (resumable), then a report (:mod:`optlab.report.claims`).

This package sits above ``report`` and ``rl`` (it uses the report's statistics and the RL
bench) and below the CLI.
"""

from optlab.claims.catalogue import CLAIMS, CLAIMS_VERSION, Claim, claim_named
from optlab.claims.measures import Measurement
from optlab.claims.run import ClaimsOutcome, estimate_text, evaluate, run_claims, verdict_rows
from optlab.claims.scale import SCALES, TINY, ClaimsError, Scale, scale_named
from optlab.claims.verdict import VERDICTS, Criterion, decide

__all__ = [
    "CLAIMS",
    "CLAIMS_VERSION",
    "SCALES",
    "TINY",
    "VERDICTS",
    "Claim",
    "ClaimsError",
    "ClaimsOutcome",
    "Criterion",
    "Measurement",
    "Scale",
    "claim_named",
    "decide",
    "estimate_text",
    "evaluate",
    "run_claims",
    "scale_named",
    "verdict_rows",
]

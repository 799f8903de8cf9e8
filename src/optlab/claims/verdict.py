"""How a claim's verdict is decided from the interval over seeds.

A claim says that a measured quantity (e.g. IMO's saving in iterations against Adam, in
percent; IMO's test accuracy minus Adam's, in points) lies in a range ``(low, high)``, either
end possibly infinite: :class:`Criterion`. The measurement gives, over seeds, the mean of
that quantity and its 95% paired BCa bootstrap interval
(:func:`optlab.report.statistics.paired_bootstrap`, the report's verdict machinery). Then:

- **supported**: the whole interval lies inside the claimed range;
- **not supported**: the whole interval lies outside it (on one side);
- **inconclusive**: the interval straddles an end of the range, or there is no interval
  (fewer than 3 seeds, or runs that do not vary with the seed: the reason is kept);
- **not checked**: the claim could not be measured here (e.g. its numbers are not
  available offline); the reason is given.

An interval that is a single point (the same difference on every seed while the runs vary)
is judged as that point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from optlab.errors import OptlabError
from optlab.report.statistics import PairedEstimate

ClaimVerdict = Literal["supported", "not supported", "inconclusive", "not checked"]
VERDICTS: tuple[ClaimVerdict, ...] = ("supported", "not supported", "inconclusive", "not checked")


@dataclass(frozen=True)
class Criterion:
    """The claimed range ``(low, high)`` of the measured quantity (ends excluded)."""

    low: float = -math.inf
    high: float = math.inf

    def __post_init__(self) -> None:
        if not (self.low < self.high) or math.isnan(self.low) or math.isnan(self.high):
            raise OptlabError(f"a criterion needs low < high, got ({self.low}, {self.high})")

    def text(self, unit: str = "") -> str:
        """The range for people, e.g. ``> 30%`` or ``between -2 and 2 pt``."""
        if math.isinf(self.low) and math.isinf(self.high):
            return "any value"
        if math.isinf(self.high):
            return f"> {self.low:g}{unit}"
        if math.isinf(self.low):
            return f"< {self.high:g}{unit}"
        return f"between {self.low:g}{unit} and {self.high:g}{unit}"


def decide(estimate: PairedEstimate, criterion: Criterion) -> tuple[ClaimVerdict, str]:
    """The verdict on ``criterion`` from ``estimate`` (see the module docstring), with its
    reason in a few words."""
    if estimate.low is None or estimate.high is None:
        return "inconclusive", estimate.reason or "no interval"
    low, high = estimate.low, estimate.high
    if criterion.low < low and high < criterion.high:
        return "supported", "the interval lies inside the claimed range"
    if high <= criterion.low or low >= criterion.high:
        return "not supported", "the interval lies outside the claimed range"
    return "inconclusive", "the interval straddles the claimed range's end"

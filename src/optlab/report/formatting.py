"""How numbers and names are written in a report: compact, three significant digits.

- :func:`compact` writes a number with three significant digits, in scientific notation
  for small (``< 1e-3``) or large (``>= 1e5``) magnitudes; integers-valued counts keep all
  their digits; ``None`` is ``"-"``.
- :func:`mean_std` writes ``mean ± std`` over seeds (the sample standard deviation); a single
  value is written alone.
- :func:`slug` turns a problem or optimizer name into a safe file-name part.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable

MISSING = "-"
"""What a table shows where a number does not apply or does not exist."""


def compact(value: float | None, *, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits (``"-"`` for None).

    >>> compact(0.000123456), compact(12.345), compact(1234.5), compact(2e6), compact(0)
    ('1.23e-4', '12.3', '1234', '2.00e6', '0')
    """
    if value is None:
        return MISSING
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude < 1e-3 or magnitude >= 1e5:
        mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
    return f"{value:.{decimals}f}"


def short(value: float | None) -> str:
    """``value`` with at most three significant digits and no trailing zeros (learning rates).

    >>> short(0.01), short(0.000398), short(1.0), short(1e-5)
    ('0.01', '0.000398', '1', '1e-5')
    """
    if value is None:
        return MISSING
    text = f"{float(value):.3g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}e{int(exponent)}"
    return text


def mean_std(values: Iterable[float], *, scale: float = 1.0) -> str:
    """``"mean ± std"`` of the finite ``values`` times ``scale`` (sample std, n - 1).

    One value is written alone; no finite value gives ``"-"``.
    """
    finite = [float(v) * scale for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return MISSING
    mean = math.fsum(finite) / len(finite)
    if len(finite) == 1:
        return compact(mean)
    variance = math.fsum((v - mean) ** 2 for v in finite) / (len(finite) - 1)
    return f"{compact(mean)} ± {compact(math.sqrt(variance))}"


def slug(name: str) -> str:
    """A lower-case file-name part made of ``[a-z0-9._-]`` (never empty)."""
    text = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.")
    return text or "unnamed"


def unique_names(stem: Callable[[str], str]) -> Callable[[str], str]:
    """Wrap ``stem`` so that two different inputs never get the same name (``-2``, ...)."""
    given: dict[str, str] = {}
    taken: set[str] = set()

    def name(key: str) -> str:
        if key not in given:
            base, candidate, count = stem(key), stem(key), 1
            while candidate in taken:
                count += 1
                candidate = f"{base}-{count}"
            given[key] = candidate
            taken.add(candidate)
        return given[key]

    return name

"""The report's section on the seeds' claims, from stored ``claims`` records.

Each record (written by ``optlab claims``, :mod:`optlab.claims`) holds a claim as
published, the claimed values, what was measured at what scale, the per-seed values, the
mean with its 95% paired BCa bootstrap interval and the verdict: supported (the interval
lies inside the claimed range), not supported (outside it), inconclusive (straddling it, or
no interval), or not checked (with the reason). This module only renders them, into any
document with ``heading``/``paragraph``/``table``/``bullets``
(:class:`optlab.report.document.Document`): one verdict table, then per claim what was
measured and the numbers behind the verdict. :func:`write_claims_report` writes
``claims.md`` and ``claims.html``; ``optlab report`` adds the section when its store holds
claims records.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from optlab.bench.store import ResultsStore
from optlab.durable import write_atomic
from optlab.report.statistics import CONFIDENCE, RESAMPLES
from optlab.report.tables import Table


def claims_records(store: ResultsStore, keys: Collection[str] | None = None) -> list[dict]:
    """The store's claims records (only those with ``keys`` when given), in file order."""
    return [r for r in store.records("claims") if keys is None or r["key"] in keys]


def _number(value: Any, unit: str) -> str:
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    return f"{value:+.1f}{unit}"


def _estimate(result: dict[str, Any]) -> str:
    unit = result.get("unit", "")
    if result.get("mean") is None:
        return "—"
    text = _number(result["mean"], unit)
    if result.get("low") is not None and result.get("high") is not None:
        text += f" [{_number(result['low'], '')}, {_number(result['high'], '')}]"
    return text


def verdict_table(records: Sequence[dict[str, Any]]) -> Table:
    """One row per claim: the claim, the claimed range, the quantity measured, its mean and
    95% interval over seeds, the seeds, the verdict and its reason."""
    rows, bold = [], set()
    for index, record in enumerate(records):
        result = record["result"]
        rows.append(
            (
                result["claim"],
                result["claimed_text"],
                result["quantity"],
                _estimate(result),
                str(result.get("n", 0)),
                result["verdict"],
                result.get("reason", ""),
            )
        )
        if result["verdict"] in ("supported", "not supported"):
            bold.add((index, 5))
    return Table(
        columns=(
            "claim",
            "claimed",
            "measured quantity",
            "mean [95% CI]",
            "seeds",
            "verdict",
            "why",
        ),
        rows=tuple(rows),
        bold=frozenset(bold),
        align=("l", "l", "l", "r", "r", "l", "l"),
        notes=(
            f"[95% CI]: paired BCa bootstrap interval of the mean over seeds "
            f"({RESAMPLES} resamples); supported: the interval lies inside the claimed range; "
            "not supported: outside it; inconclusive: it straddles an end of the range",
        ),
    )


def _claim_bullets(result: dict[str, Any]) -> list[str]:
    items = [
        f"**Claim** ({result['source']}): {result['statement']}.",
        f"**Measured**: {result['measured'] or '—'}.",
        f"**Verdict**: {result['verdict']} — {result.get('reason', '')}.",
    ]
    if result.get("claimed_value_in_interval") is not None:
        where = "inside" if result["claimed_value_in_interval"] else "outside"
        items.append(
            f"The published value {_number(result['claimed_value'], result['unit'])} lies "
            f"{where} the measured interval."
        )
    details = result.get("details") or {}
    shown = [
        f"{name.replace('_', ' ')} {_detail(value)}"
        for name, value in details.items()
        if isinstance(value, (int, float, str, dict)) and name != "policy_sha256"
    ]
    if shown:
        items.append("Numbers: " + "; ".join(shown) + ".")
    values = result.get("values") or []
    if values:
        per_seed = ", ".join(_detail(v) for v in values)
        if result.get("reference"):
            per_seed += " against " + ", ".join(_detail(v) for v in result["reference"])
        items.append(f"Per seed: {per_seed}.")
    return items


def _detail(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_detail(v)}" for k, v in value.items())
    return str(value)


def write_section(doc: Any, records: Sequence[dict[str, Any]], scale: str = "") -> None:
    """Add the claims section to ``doc`` (nothing when there are no records)."""
    if not records:
        return
    doc.heading(2, "The seeds' claims, checked", "claims")
    doc.paragraph(
        "Each published claim measured here, at a scale these machines afford: what was "
        f"measured, the mean over seeds with its {CONFIDENCE:.0%} paired bootstrap interval, "
        "and a verdict against the range the claim states. The claimed values are the only "
        "numbers taken from the sources. " + scale
    )
    doc.table(verdict_table(records))
    for record in records:
        result = record["result"]
        doc.heading(3, result["claim"], f"claim-{result['claim']}")
        doc.bullets(_claim_bullets(result))


def write_claims_report(
    records: Sequence[dict[str, Any]], out: Path, scale: str = ""
) -> dict[str, Path]:
    """Write ``claims.md`` and ``claims.html`` (self-contained) under ``out``."""
    from optlab.report.document import Document

    doc = Document(root=out)
    doc.heading(1, "optlab claims")
    write_section(doc, records, scale)
    markdown, page = out / "claims.md", out / "claims.html"
    write_atomic(markdown, doc.as_markdown())
    write_atomic(page, doc.as_html("optlab claims"))
    return {"markdown": markdown, "html": page}

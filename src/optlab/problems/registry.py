"""The problem registry: every problem by its stable name, in registration order.

``names()`` lists them; ``spec(name)`` returns the :class:`ProblemSpec`; ``build(name,
context)`` builds an instance; ``available(name, data_dir)`` says whether it can be built
without a download. The order is: analytic functions, convex problems, networks.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from optlab.problems import analytic, convex, datasets, fashion, mnist_1d, nets
from optlab.problems.base import BuildContext, ProblemError, ProblemInstance, ProblemSpec


def _index(specs: tuple[ProblemSpec, ...]) -> MappingProxyType[str, ProblemSpec]:
    table: dict[str, ProblemSpec] = {}
    for entry in specs:
        if entry.name in table:  # pragma: no cover - a programming error
            raise AssertionError(f"problem {entry.name!r} registered twice")
        table[entry.name] = entry
    return MappingProxyType(table)


REGISTRY = _index(analytic.SPECS + convex.SPECS + nets.SPECS + fashion.SPECS + mnist_1d.SPECS)
"""Name -> spec, read-only, in registration order."""


def names() -> tuple[str, ...]:
    """The registered problem names, in registration order."""
    return tuple(REGISTRY)


def spec(name: str) -> ProblemSpec:
    """The registry entry of ``name``; :class:`ProblemError` listing the names if unknown."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ProblemError(
            f"unknown problem {name!r}; known problems: {', '.join(REGISTRY)}"
        ) from None


def build(name: str, context: BuildContext | None = None) -> ProblemInstance:
    """Build problem ``name`` (default context: seeds 42, no data dir, CPU)."""
    return spec(name).build(BuildContext() if context is None else context)


def data_fingerprint(name: str, data_dir: Path | str | None) -> str | None:
    """Content hash of the data set ``name`` reads from ``data_dir`` (None: it needs none)."""
    needs = spec(name).needs_data
    if needs == fashion.DATASET:
        return fashion.fingerprint(data_dir)
    if needs is None or not datasets.files_present(needs, data_dir):
        return None
    return datasets.fingerprint(needs, data_dir)


def start_rule(name: str, init_seed: int) -> str | None:
    """The rule that drew the start of ``name`` at ``init_seed``, where it is not the one a
    store written before analytic problems drew starts would assume: the analytic problems'
    seeded start (:data:`optlab.problems.analytic.START_RULE`) at an init seed other than
    :data:`~optlab.problems.analytic.CLASSICAL_SEED`; None otherwise (and for unknown names).
    """
    entry = REGISTRY.get(name)
    if entry is None or not isinstance(entry.build, analytic.PointBuilder):
        return None
    if init_seed == analytic.CLASSICAL_SEED or entry.build.start_radius == 0.0:
        return None
    return analytic.START_RULE


def available(name: str, data_dir: Path | str | None) -> bool:
    """Whether ``name`` can be built without a download: no data needed, or files present."""
    needs = spec(name).needs_data
    if needs == fashion.DATASET:
        return fashion.files_present(data_dir)
    return needs is None or datasets.files_present(needs, data_dir)


def missing_data_message(name: str, data_dir: Path | str | None) -> str:
    """Why ``name`` cannot be built without a download, in one line (no problem name)."""
    needs = spec(name).needs_data
    if needs == fashion.DATASET:
        return fashion.missing_message(data_dir)
    return f"needs the {needs} files under --data-dir (or pass --download)"

"""Benchmark problems: analytic functions, convex ML problems, networks on data sets.

>>> from optlab import problems
>>> instance = problems.build("rosenbrock-2d")
>>> round(instance.loss(instance.model, None).item(), 6)
24.2

Every problem is a :class:`ProblemSpec` in the registry (:func:`names`, :func:`spec`);
``build(name, BuildContext(instance_seed=..., init_seed=..., data_dir=...))`` returns a
:class:`ProblemInstance`. Modules: :mod:`~optlab.problems.analytic` (functions of a point),
:mod:`~optlab.problems.convex` (linear models, float64, full batch),
:mod:`~optlab.problems.nets` (classifiers, float32, mini-batches),
:mod:`~optlab.problems.fashion` (Fashion-MNIST, full size, from the Debian package),
:mod:`~optlab.problems.mnist_1d` (MNIST-1D, generated offline from a seed),
:mod:`~optlab.problems.datasets` (loading data and splits), :mod:`~optlab.problems.registry`.
"""

from __future__ import annotations

from optlab.problems.base import (
    Batch,
    BuildContext,
    DataSplits,
    ProblemError,
    ProblemInstance,
    ProblemKind,
    ProblemSpec,
)
from optlab.problems.registry import (
    available,
    build,
    data_fingerprint,
    missing_data_message,
    names,
    spec,
    start_rule,
)

__all__ = [
    "Batch",
    "BuildContext",
    "DataSplits",
    "ProblemError",
    "ProblemInstance",
    "ProblemKind",
    "ProblemSpec",
    "available",
    "build",
    "data_fingerprint",
    "missing_data_message",
    "names",
    "spec",
    "start_rule",
]

"""What a benchmark problem is: an objective with data, built from explicit seeds.

A :class:`ProblemSpec` is the registry entry (name, kind, budget); ``spec.build(context)``
returns a :class:`ProblemInstance`: the parameters to optimise (an ``nn.Module``), the loss,
the data splits (None for analytic functions), an accuracy where it applies, the known
optimum where one exists, and the *target*: the validation loss at which the problem counts
as solved (time-to-target is measured against it).

Seeds (DESIGN.md, "Seeds are explicit"): the *instance seed* fixes which problem (generated
data, matrices, the validation/test split of a test set); the *init seed* fixes the starting
parameters (analytic functions start at a fixed point and ignore it); the data-order seed
belongs to the trainer, not to the problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from optlab.errors import OptlabError

Batch = tuple[torch.Tensor, torch.Tensor]
"""(inputs, targets)."""

ProblemKind = Literal["analytic", "convex", "net"]


class ProblemError(OptlabError):
    """A problem cannot be built (unknown name, missing data files, bad arguments)."""


@dataclass(frozen=True)
class DataSplits:
    """Full tensors of each split; the trainer batches ``train`` itself."""

    train: Batch
    validation: Batch
    test: Batch


@dataclass
class ProblemInstance:
    """One built problem, ready to train.

    Attributes:
        name: the registry name it was built from.
        model: holds the parameters to optimise (analytic functions: one parameter, the point).
        loss: ``loss(model, batch)`` -> scalar mean loss; ``batch`` is None for analytic
            functions (the objective has no data).
        data: the splits, or None for analytic functions (then train = validation = test =
            the objective itself).
        target: solved when the validation loss is <= target.
        accuracy: ``accuracy(model, batch)`` -> scalar fraction correct, where it applies.
        loss_and_accuracy: ``(loss, accuracy)`` of a batch from ONE forward pass, where the
            problem has both (evaluation uses it: a separate ``loss`` and ``accuracy`` would
            run the model twice); it must equal ``(loss(model, batch), accuracy(model, batch))``.
        optimum: the known minimum value of the loss (analytic functions, convex problems
            with a closed form), else None.
        batch_size: mini-batch size for training, None for full batch.
        plot_bounds: for 2-D analytic functions, ((xmin, xmax), (ymin, ymax)) of a contour
            plot that shows the start point and the minima; None otherwise.
        minima: known minimisers (2-D analytic functions, for plots), possibly several.
    """

    name: str
    model: torch.nn.Module
    loss: Callable[[torch.nn.Module, Batch | None], torch.Tensor]
    data: DataSplits | None
    target: float
    accuracy: Callable[[torch.nn.Module, Batch], torch.Tensor] | None = None
    loss_and_accuracy: (
        Callable[[torch.nn.Module, Batch], tuple[torch.Tensor, torch.Tensor]] | None
    ) = None
    optimum: float | None = None
    batch_size: int | None = None
    plot_bounds: tuple[tuple[float, float], tuple[float, float]] | None = None
    minima: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True)
class BuildContext:
    """Everything a problem needs to be built."""

    instance_seed: int = 42
    init_seed: int = 42
    data_dir: Path | None = None
    download: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


@dataclass(frozen=True)
class ProblemSpec:
    """A registry entry.

    Attributes:
        name: stable name (e.g. ``rosenbrock-2d``, ``digits-mlp``, ``mnist-5k``).
        kind: ``analytic``, ``convex`` or ``net``.
        description: one line for listings and reports.
        build: ``build(context) -> ProblemInstance``.
        steps: default budget in gradient evaluations (used by the built-in suites).
        eval_every: evaluate on the validation split every this many steps.
        needs_data: a data set that must be on disk under ``--data-dir`` (e.g. ``"MNIST"``),
            or None when the problem is generated or bundled with a package.
    """

    name: str
    kind: ProblemKind
    description: str
    build: Callable[[BuildContext], ProblemInstance]
    steps: int
    eval_every: int
    needs_data: str | None = None

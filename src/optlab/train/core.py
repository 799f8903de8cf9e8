"""The training core every trainer shares: the batch stream, the evaluation schedule, the
training step and the stop decisions.

Used by the lone training loop (:func:`optlab.train.loop.train`), the learning-rate
population of the bench's tuner (:mod:`optlab.bench.population_tuning`), the halving
trainer (:func:`optlab.train.population.successive_halving`), the seed study
(:func:`optlab.train.population.seed_study`) and the Ray trainer
(:mod:`optlab.bench.ray_backend`), so that they cannot drift apart:

- **batch stream** (:class:`BatchStream`): each epoch is a permutation of the training set
  drawn from a generator seeded with the data-order seed, cut into ``batch_size`` slices
  (the last one may be short); the whole set every time when ``batch_size`` is None or
  covers it; ``None`` forever for analytic problems (no data). Its state can be saved and
  restored (resumable halving).
- **evaluation schedule** (:class:`EvaluationSchedule`): evaluate each time another
  ``every`` gradient evaluations are spent and once at the end of the budget.
- **training step** (:func:`training_step`): zero the gradients, back-propagate the sum of
  the losses (one model's, or a population's one per member), step.
- **stop decisions**: a loss that is not finite means the run *diverged*
  (:func:`diverged`; in a selection a diverged member ranks last, :func:`rank` and
  :func:`ranked`); a validation loss at or below the problem's target *reached* it
  (:func:`reached_target`); training stops early once ``patience`` evaluations went by
  without a new best validation loss (:func:`patience_exhausted`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from optlab.problems.base import Batch, ProblemInstance


# ------------------------------------------------------------------------ batch stream
class BatchStream:
    """Endless mini-batches of ``instance``'s training split in the seeded data order (module
    docstring), with a state that can be saved and restored: the generator's state, this
    epoch's permutation and the position in it.

    Args:
        instance: the problem (its ``data.train`` and ``batch_size``; None data: analytic).
        seed: the data-order seed.
    """

    def __init__(self, instance: ProblemInstance, seed: int) -> None:
        train = instance.data.train if instance.data is not None else None
        self._start(train, instance.batch_size, seed)

    @classmethod
    def over(cls, train: Batch | None, batch_size: int | None, seed: int) -> BatchStream:
        """The stream of a training split given as tensors (None: analytic, no data)."""
        stream = cls.__new__(cls)
        stream._start(train, batch_size, seed)
        return stream

    def _start(self, train: Batch | None, batch_size: int | None, seed: int) -> None:
        self.train = train
        self.batch_size = batch_size
        rows = 0 if train is None else len(train[0])
        self.full = batch_size is None or batch_size >= rows
        self.generator = torch.Generator().manual_seed(seed)
        self.order: torch.Tensor | None = None
        self.position = 0

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Batch | None:
        if self.train is None:
            return None
        inputs, targets = self.train
        if self.full:
            return inputs, targets
        assert self.batch_size is not None
        if self.order is None or self.position >= len(self.order):
            self.order = torch.randperm(len(inputs), generator=self.generator)
            self.position = 0
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return inputs[index], targets[index]

    def state(self) -> dict[str, Any]:
        """What :meth:`restore` needs to continue the same sequence."""
        return {
            "generator": self.generator.get_state(),
            "order": self.order,
            "position": self.position,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state`."""
        self.generator.set_state(state["generator"])
        self.order = state["order"]
        self.position = int(state["position"])


def minibatches(train: Batch, batch_size: int | None, seed: int) -> BatchStream:
    """Endless mini-batches of the split ``train`` (a :class:`BatchStream`)."""
    return BatchStream.over(train, batch_size, seed)


# ------------------------------------------------------------------------ schedule
class EvaluationSchedule:
    """When to evaluate: each time another ``every`` gradient evaluations are spent, and at
    the end of the ``budget`` (the same checkpoints for every optimizer and trainer)."""

    def __init__(self, every: int, budget: int) -> None:
        self.every = every
        self.budget = budget
        self.next = every  # the next evaluation count that is due

    def left(self, spent: int) -> int:
        """Gradient evaluations left before the next evaluation (or the end)."""
        return min(self.budget, self.next) - spent

    def due(self, spent: int) -> bool:
        """Whether an evaluation is due after ``spent`` gradient evaluations (called once per
        step; a due answer moves the schedule on)."""
        if spent < self.next and spent < self.budget:
            return False
        self.next = (spent // self.every + 1) * self.every
        return True


# ------------------------------------------------------------------------ step
def training_step(
    optimizer: torch.optim.Optimizer,
    losses: Callable[[], torch.Tensor],
    *,
    set_to_none: bool = True,
) -> torch.Tensor:
    """One step: zero the gradients, back-propagate the sum of ``losses()`` (one model's
    loss, or a population's losses, one per member), step. Returns the losses."""
    optimizer.zero_grad(set_to_none=set_to_none)
    values = losses()
    values.sum().backward()
    optimizer.step()
    return values


# ------------------------------------------------------------------------ decisions
def diverged(*losses: float) -> bool:
    """Whether a run diverged: any of its losses is not finite (NaN or infinite)."""
    return not all(math.isfinite(loss) for loss in losses)


def rank(loss: float) -> float:
    """A loss as a selection ranks it: a diverged one (not finite) ranks last (``inf``)."""
    return loss if math.isfinite(loss) else math.inf


def ranked(losses: torch.Tensor) -> torch.Tensor:
    """:func:`rank` of every member's loss (a tensor, one per member)."""
    return torch.where(torch.isfinite(losses), losses, torch.inf)


def reached_target(loss: float, target: float) -> bool:
    """Whether a validation loss reached the problem's target (at or below it)."""
    return loss <= target


def patience_exhausted(val_losses: Sequence[float], patience: int | None) -> bool:
    """Whether ``patience`` evaluations went by since the first one that reached the best
    validation loss so far (None: never)."""
    if patience is None or not val_losses:
        return False
    losses = list(val_losses)
    first_best = losses.index(min(losses))
    return len(losses) - 1 - first_best >= patience

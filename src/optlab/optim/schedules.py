r"""Learning-rate decays as ``torch.optim.lr_scheduler.LRScheduler`` subclasses.

Both follow the seed notebooks (Andrew Ng's deep-learning course, "Optimization Methods"):

- :class:`InverseTimeDecay`: :math:`\eta_e = \eta_0 / (1 + r\,e)`
- :class:`StaircaseInverseTimeDecay`: :math:`\eta_e = \eta_0 / (1 + r \lfloor e / T \rfloor)`

where :math:`e` is the scheduler's epoch counter (one per ``scheduler.step()``),
:math:`r` the decay rate and :math:`T` the interval. The NumPy references are
``optlab.reference.update_lr`` and ``optlab.reference.schedule_lr_decay``.

Like torch's own schedulers, each step multiplies the group's *current* lr by the ratio of
successive factors, :math:`(1 + r(k-1)) / (1 + r k)`, so the decays chain with other
schedulers (``ChainedScheduler``, ``SequentialLR``); ``_get_closed_form_lr`` gives the
formula above directly (used when ``scheduler.step(epoch)`` jumps).
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LRScheduler

from optlab.optim.hyperparameters import check_non_negative, check_positive_int


class InverseTimeDecay(LRScheduler):
    """lr = initial_lr / (1 + decay_rate * epoch)."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, decay_rate: float, last_epoch: int = -1
    ) -> None:
        self.decay_rate = check_non_negative("InverseTimeDecay", "decay_rate", decay_rate)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """The current lr of each group times (1 + r (e-1)) / (1 + r e)."""
        epoch = self.last_epoch
        ratio = (
            1.0
            if epoch == 0
            else (1.0 + self.decay_rate * (epoch - 1)) / (1.0 + self.decay_rate * epoch)
        )
        return [group["lr"] * ratio for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        factor = 1.0 + self.decay_rate * self.last_epoch
        return [base / factor for base in self.base_lrs]


class StaircaseInverseTimeDecay(LRScheduler):
    """lr = initial_lr / (1 + decay_rate * floor(epoch / interval))."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        decay_rate: float,
        interval: int = 1000,
        last_epoch: int = -1,
    ) -> None:
        self.decay_rate = check_non_negative("StaircaseInverseTimeDecay", "decay_rate", decay_rate)
        self.interval = check_positive_int("StaircaseInverseTimeDecay", "interval", interval)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """The current lr, divided anew only when the epoch reaches a multiple of interval."""
        epoch = self.last_epoch
        if epoch == 0 or epoch % self.interval != 0:
            return [group["lr"] for group in self.optimizer.param_groups]
        stair = epoch // self.interval
        ratio = (1.0 + self.decay_rate * (stair - 1)) / (1.0 + self.decay_rate * stair)
        return [group["lr"] * ratio for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        factor = 1.0 + self.decay_rate * math.floor(self.last_epoch / self.interval)
        return [base / factor for base in self.base_lrs]

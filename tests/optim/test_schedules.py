"""LR decays equal their NumPy references and work with any optimizer."""

from __future__ import annotations

import pytest
import torch

from optlab import reference
from optlab.optim import IMO, InverseTimeDecay, StaircaseInverseTimeDecay


def _lrs(scheduler_factory, epochs: int) -> list[float]:
    param = torch.zeros(1, requires_grad=True)
    optimizer = IMO([param], lr=0.5)
    scheduler = scheduler_factory(optimizer)
    seen = []
    for _ in range(epochs):
        seen.append(optimizer.param_groups[0]["lr"])
        param.grad = torch.ones(1)
        optimizer.step()
        scheduler.step()
    return seen


def test_inverse_time_decay_matches_update_lr() -> None:
    seen = _lrs(lambda opt: InverseTimeDecay(opt, decay_rate=0.3), 20)
    expected = [reference.update_lr(0.5, epoch, 0.3) for epoch in range(20)]
    assert seen == pytest.approx(expected, rel=1e-13)


def test_staircase_matches_schedule_lr_decay() -> None:
    seen = _lrs(lambda opt: StaircaseInverseTimeDecay(opt, decay_rate=1.0, interval=4), 13)
    expected = [
        reference.schedule_lr_decay(0.5, epoch, 1.0, time_interval=4) for epoch in range(13)
    ]
    assert seen == pytest.approx(expected, rel=1e-13)
    assert seen[3] == 0.5 and seen[4] == 0.25 and seen[12] == pytest.approx(0.125)


def test_reference_values() -> None:
    assert reference.update_lr(0.5, 2, 1) == pytest.approx(0.5 / 3)
    assert reference.schedule_lr_decay(0.5, 100, 1) == 0.5
    assert reference.schedule_lr_decay(0.5, 1000, 1) == 0.25


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda opt: InverseTimeDecay(opt, decay_rate=-1.0), "decay_rate"),
        (lambda opt: StaircaseInverseTimeDecay(opt, decay_rate=0.1, interval=0), "interval"),
        (lambda opt: StaircaseInverseTimeDecay(opt, decay_rate=0.1, interval=2.5), "interval"),
    ],
)
def test_invalid_arguments_name_the_field(factory, field: str) -> None:
    optimizer = IMO([torch.zeros(1, requires_grad=True)])
    with pytest.raises((ValueError, TypeError), match=field):
        factory(optimizer)


def test_decays_chain_with_other_schedulers() -> None:
    param = torch.zeros(1, requires_grad=True)
    optimizer = IMO([param], lr=0.5)
    chained = torch.optim.lr_scheduler.ChainedScheduler(
        [
            InverseTimeDecay(optimizer, decay_rate=1.0),
            torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5),
        ]
    )
    seen = []
    for _ in range(4):
        seen.append(optimizer.param_groups[0]["lr"])
        param.grad = torch.ones(1)
        optimizer.step()
        chained.step()
    expected = [0.5 / (1 + epoch) * 0.5**epoch for epoch in range(4)]
    assert seen == pytest.approx(expected, rel=1e-13)


def test_jump_to_an_epoch_uses_the_closed_form() -> None:
    param = torch.zeros(1, requires_grad=True)
    optimizer = IMO([param], lr=0.5)
    scheduler = StaircaseInverseTimeDecay(optimizer, decay_rate=1.0, interval=10)
    param.grad = torch.ones(1)
    optimizer.step()
    with pytest.warns(UserWarning):  # torch deprecates step(epoch), but honours it
        scheduler.step(25)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5 / 3)

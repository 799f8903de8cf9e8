"""Elementwise twins of torch's baselines: equal to torch, contract-clean, per-member lr."""

from __future__ import annotations

import pytest
import torch

from optlab.optim import twins
from optlab.testing import CHECKS, ContractSubject, run_check

CASES = [
    ("sgd", twins.SGD, torch.optim.SGD, {"lr": 0.05}),
    ("sgd-wd", twins.SGD, torch.optim.SGD, {"lr": 0.05, "weight_decay": 0.1}),
    ("momentum", twins.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.1}),
    ("nesterov", twins.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("adam", twins.Adam, torch.optim.Adam, {"lr": 0.05, "weight_decay": 0.01}),
    ("adamw", twins.AdamW, torch.optim.AdamW, {"lr": 0.05}),
    ("adagrad", twins.Adagrad, torch.optim.Adagrad, {"lr": 0.1, "lr_decay": 0.01}),
    ("rmsprop", twins.RMSprop, torch.optim.RMSprop, {"lr": 0.01, "weight_decay": 0.01}),
]


def _trajectory(factory, steps: int = 100) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    params = [
        torch.randn(4, 3, generator=generator, dtype=torch.float64).requires_grad_(True),
        torch.randn(5, generator=generator, dtype=torch.float64).requires_grad_(True),
    ]
    optimizer = factory(params)
    for _ in range(steps):
        optimizer.zero_grad()
        sum(torch.sum(torch.cos(2 * p) + 0.5 * p**2) for p in params).backward()
        optimizer.step()
    return [p.detach() for p in params]


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(("name", "twin", "original", "hp"), CASES, ids=[c[0] for c in CASES])
def test_twin_equals_torch_over_100_float64_steps(name, twin, original, hp, foreach) -> None:
    ours = _trajectory(lambda p: twin(p, foreach=foreach, **hp))
    theirs = _trajectory(lambda p: original(p, foreach=foreach, **hp))
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    "check", [c for c in CHECKS if c not in ("reference", "converges", "fused")]
)  # twins have no fused flag
@pytest.mark.parametrize(
    ("name", "twin", "original", "hp"), CASES[::2], ids=[c[0] for c in CASES[::2]]
)
def test_twins_meet_the_contract(name, twin, original, hp, check) -> None:
    invalid = [("lr", -1.0), ("lr", float("nan")), ("weight_decay", -1.0)]
    subject = ContractSubject(
        f"twin-{name}", twin, hp, supports_foreach=True, supports_compiled=True, invalid=invalid
    )
    assert run_check(subject, check)  # every listed check applies to a twin, and passes


def test_per_member_learning_rates_equal_separate_torch_optimizers() -> None:
    lrs = [0.01, 0.05, 0.2]
    start = torch.randn(3, 4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    stacked = start.clone().requires_grad_(True)
    optimizer = twins.Adam([stacked], lr=torch.tensor(lrs, dtype=torch.float64))
    for _ in range(50):
        optimizer.zero_grad()
        torch.sum(torch.cos(2 * stacked) + 0.5 * stacked**2).backward()
        optimizer.step()
    for member, lr in enumerate(lrs):
        alone = start[member].clone().requires_grad_(True)
        torch_adam = torch.optim.Adam([alone], lr=lr)
        for _ in range(50):
            torch_adam.zero_grad()
            torch.sum(torch.cos(2 * alone) + 0.5 * alone**2).backward()
            torch_adam.step()
        torch.testing.assert_close(stacked[member].detach(), alone.detach(), rtol=1e-12, atol=1e-13)

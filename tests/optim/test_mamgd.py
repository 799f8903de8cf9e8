"""MAMGD: the paper's rule, the published code's arithmetic, the 0/0 guard."""

from __future__ import annotations

import math

import pytest
import torch

from optlab.optim import MAMGD
from optlab.optim.mamgd import mamgd_step_scalars


def _run(as_published: bool, steps: int = 30, **kwargs) -> torch.Tensor:
    param = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64, requires_grad=True)
    optimizer = MAMGD([param], lr=0.05, as_published=as_published, **kwargs)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.sum(param**4 + param**2)
        loss.backward()
        optimizer.step()
    return param.detach()


def test_paper_rule_and_published_code_differ_but_agree_on_the_first_step() -> None:
    # At t = 1 the secant term is 0 in both (no previous point yet).
    assert torch.equal(_run(False, steps=1), _run(True, steps=1))
    assert not torch.allclose(_run(False), _run(True))


def test_published_code_keeps_no_previous_point() -> None:
    param = torch.ones(2, requires_grad=True)
    optimizer = MAMGD([param], as_published=True)
    param.grad = torch.ones(2)
    optimizer.step()
    state = optimizer.state[param]
    assert state["prev_param"] is None and state["prev_grad"] is None


def test_published_code_is_adam_like_with_unrooted_bias_correction() -> None:
    param = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    optimizer = MAMGD([param], lr=0.1, as_published=True, k=0.0)
    param.grad = torch.tensor([3.0], dtype=torch.float64)
    optimizer.step()
    step_size = 0.1 * (1 - 0.999) / (1 - 0.9)  # no square root, as in the Keras code
    m, n = 0.1 * 3.0, 0.001 * 9.0
    expected = 1.0 - step_size * m / (math.sqrt(n) + 1e-7)
    assert float(param.detach()) == pytest.approx(expected, rel=1e-14)


def test_decayed_betas_enter_averages_and_bias_correction() -> None:
    step_size, beta1_t, one_minus_beta1, beta2_t, _ = mamgd_step_scalars(
        lr=1.0, beta1=0.9, beta2=0.99, k=0.1, step=3
    )
    decay = math.exp(-0.2)
    assert beta1_t == pytest.approx(0.9 * decay)
    assert beta2_t == pytest.approx(0.99 * decay)
    assert one_minus_beta1 == 1 - beta1_t
    assert step_size == pytest.approx((1 - beta2_t**3) / (1 - beta1_t**3))


def test_zero_over_zero_curvature_is_guarded() -> None:
    # eps = 0 and theta == theta_prev at the first steps: the secant would be 0/0.
    param = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    optimizer = MAMGD([param], lr=0.1, eps=0.0)
    for _ in range(3):
        param.grad = torch.tensor([1.0, 0.0], dtype=torch.float64)  # coordinate 1 never moves
        optimizer.step()
    assert torch.isfinite(param[0])
    # coordinate 1: g = 0 always, so m = n = 0 and 0/0 in the update itself is Adam's
    # behaviour with eps=0 (NaN); the curvature guard must not be the source of it.
    state = optimizer.state[param]
    assert torch.equal(state["prev_grad"], torch.tensor([1.0, 0.0], dtype=torch.float64))


def test_secant_is_zero_when_parameter_does_not_move() -> None:
    # lr = 0: theta never moves, gradients change: the secant denominator is eps only.
    param = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    optimizer = MAMGD([param], lr=0.0, eps=0.0)
    for grad in (1.0, 2.0, 3.0):
        param.grad = torch.tensor([grad], dtype=torch.float64)
        optimizer.step()
    assert float(param.detach()) == 1.0


@pytest.mark.parametrize(
    ("field", "value"),
    [("lr", -1.0), ("betas", (0.9, 1.0)), ("k", -1e-5), ("eps", float("inf"))],
)
def test_invalid_hyperparameters_name_the_field(field: str, value) -> None:
    with pytest.raises(ValueError, match=field):
        MAMGD([torch.zeros(1, requires_grad=True)], **{field: value})


def test_as_published_must_be_bool() -> None:
    with pytest.raises(TypeError, match="as_published"):
        MAMGD([torch.zeros(1, requires_grad=True)], as_published=1)

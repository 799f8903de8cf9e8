"""The registry: names, creation, validation of every hyperparameter (torch's included)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from optlab.optim import UnknownOptimizerError, create, names, spec
from optlab.optim.hyperparameters import check_betas, check_real

EXPECTED = [
    "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "lbfgs",
    "imo", "mamgd", "scaled-adam",
]  # fmt: skip


def test_names_are_the_stable_set() -> None:
    assert list(names()) == EXPECTED


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownOptimizerError, match="known optimizers: sgd, momentum"):
        create("adamax", [torch.zeros(1, requires_grad=True)])


def test_unknown_hyperparameter_lists_the_allowed_ones() -> None:
    with pytest.raises(TypeError, match=r"sgd: unknown hyperparameter 'betas'; allowed: .*lr"):
        create("sgd", [torch.zeros(1, requires_grad=True)], betas=(0.9, 0.99))


def test_baseline_defaults() -> None:
    param = [torch.zeros(1, requires_grad=True)]
    assert create("momentum", param).param_groups[0]["momentum"] == 0.9
    nesterov = create("nesterov", param).param_groups[0]
    assert nesterov["nesterov"] is True and nesterov["momentum"] == 0.9
    assert create("sgd", param).param_groups[0]["momentum"] == 0
    assert spec("lbfgs").requires_closure and not spec("lbfgs").elementwise


@pytest.mark.parametrize("name", EXPECTED)
@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, "1e-3", True])
def test_bad_lr_is_rejected_naming_lr_for_every_name(name: str, bad) -> None:
    with pytest.raises((TypeError, ValueError), match=r"\blr\b"):
        create(name, [torch.zeros(1, requires_grad=True)], lr=bad)


def test_nesterov_needs_positive_momentum() -> None:
    with pytest.raises(ValueError, match=r"momentum must be in \(0, 1\)"):
        create("nesterov", [torch.zeros(1, requires_grad=True)], momentum=0.0)


def test_tensor_lr_is_accepted_like_torch() -> None:
    optimizer = create("adam", [torch.zeros(1, requires_grad=True)], lr=torch.tensor(0.01))
    assert float(optimizer.param_groups[0]["lr"]) == pytest.approx(0.01)


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10)))
def test_check_real_accepts_exactly_finite_values_in_bounds(value) -> None:
    ok = math.isfinite(value) and 0.0 <= value < 1.0
    if ok:
        assert check_real("X", "f", value, low=0.0, high=1.0, high_inclusive=False) == value
    else:
        with pytest.raises(ValueError, match="X: f must be a finite number >= 0 and < 1"):
            check_real("X", "f", value, low=0.0, high=1.0, high_inclusive=False)


@given(st.tuples(st.floats(), st.floats()))
def test_check_betas_properties(pair) -> None:
    valid = all(math.isfinite(b) and 0.0 <= b < 1.0 for b in pair)
    if valid:
        assert check_betas("Y", pair) == pair
    else:
        with pytest.raises(ValueError, match=r"Y: betas\[[01]\]"):
            check_betas("Y", pair)


@given(st.one_of(st.text(), st.booleans(), st.none(), st.lists(st.floats(), max_size=1)))
def test_non_numbers_raise_type_error_naming_field(value) -> None:
    with pytest.raises(TypeError, match="Z: eps must be a real number"):
        check_real("Z", "eps", value)

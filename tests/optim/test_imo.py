"""IMO: both step forms, the mass dynamics, telemetry."""

from __future__ import annotations

import pytest
import torch

from optlab.optim import IMO


def _step_once(step_form: str, grads: list[list[float]]) -> IMO:
    param = torch.zeros(len(grads[0]), dtype=torch.float64, requires_grad=True)
    optimizer = IMO([param], lr=0.1, step_form=step_form)
    for grad in grads:
        param.grad = torch.tensor(grad, dtype=torch.float64)
        optimizer.step()
    return optimizer


def test_first_step_mass_follows_each_forms_rule() -> None:
    # At the first step g_prev = 0, so dir = 0: the equation grows the mass, the box keeps it.
    soft = _step_once("soft-nesterov", [[1.0, -2.0]])
    box = _step_once("algorithm-box", [[1.0, -2.0]])
    soft_mass = next(iter(soft.state.values()))["mass"]
    box_mass = next(iter(box.state.values()))["mass"]
    assert torch.allclose(soft_mass, torch.full((2,), 1.1, dtype=torch.float64))
    assert torch.equal(box_mass, torch.ones(2, dtype=torch.float64))


def test_mass_shrinks_on_agreement_grows_on_flip_and_is_clipped() -> None:
    agree = _step_once(
        "algorithm-box", [[1.0, 1.0]] + [[1.0, -1.0] if i % 2 else [1.0, 1.0] for i in range(60)]
    )
    mass = next(iter(agree.state.values()))["mass"]
    assert float(mass[0]) == pytest.approx(0.1)  # 60 agreements: 0.9**60 clipped to mass_min
    assert 0.1 <= float(mass[1]) <= 10.0


def test_soft_nesterov_step_matches_hand_computation() -> None:
    param = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    optimizer = IMO([param], lr=0.1, momentum=0.9)
    param.grad = torch.tensor([2.0], dtype=torch.float64)
    optimizer.step()
    mass = 1.1
    force = 2.0 / (mass**0.5 + 1e-8)
    velocity = 0.1 * force
    direction = 0.9 * velocity + 0.05 * force
    assert float(param.detach()) == pytest.approx(1.0 - 0.1 * direction, rel=1e-14)


def test_telemetry_reports_mass_and_can_be_removed() -> None:
    param = torch.ones(3, requires_grad=True)
    optimizer = IMO([param], lr=0.1)
    records = []
    handle = optimizer.register_telemetry_hook(lambda opt, record: records.append(record))
    param.grad = torch.tensor([1.0, -1.0, 0.5])
    optimizer.step()
    assert records[0]["mass_min"] == pytest.approx(1.1)
    assert records[0]["mass_max"] == pytest.approx(1.1)
    assert records[0]["effective_step_size"] == pytest.approx(0.1)
    assert records[0]["update_norm"] > 0
    handle.remove()
    optimizer.step()
    assert len(records) == 1


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("lr", -0.1, ValueError),
        ("momentum", 1.0, ValueError),
        ("alpha", 0.0, ValueError),
        ("mass_min", "0.1", TypeError),
        ("step_form", "nesterov", ValueError),
        ("eps", float("nan"), ValueError),
    ],
)
def test_invalid_hyperparameters_name_the_field(field: str, value, error) -> None:
    with pytest.raises(error, match=field):
        IMO([torch.zeros(1, requires_grad=True)], **{field: value})


def test_mass_bounds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="mass_min must be <= mass_max"):
        IMO([torch.zeros(1, requires_grad=True)], mass_min=2.0, mass_max=1.0)


def test_foreach_and_compiled_exclude_each_other() -> None:
    with pytest.raises(ValueError, match="foreach=True and compiled=True"):
        IMO([torch.zeros(1, requires_grad=True)], foreach=True, compiled=True)


def test_sparse_gradient_error_names_the_optimizer() -> None:
    param = torch.zeros(3, requires_grad=True)
    optimizer = IMO([param])
    param.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match="IMO does not support sparse gradients"):
        optimizer.step()

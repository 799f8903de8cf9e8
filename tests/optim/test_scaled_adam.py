"""ScaledAdam: the identity with Adam, and Adam == reference Adam == ScaledAdam(scale=1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from optlab import reference
from optlab.optim import ScaledAdam, create


def _trajectory(optimizer_factory, steps: int = 100) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    params = [
        torch.randn(5, 4, generator=generator, dtype=torch.float64).requires_grad_(True),
        torch.randn(4, generator=generator, dtype=torch.float64).requires_grad_(True),
    ]
    optimizer = optimizer_factory(params)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = sum(torch.sum(torch.cos(p) + 0.5 * p**2) for p in params)
        loss.backward()
        optimizer.step()
    return [p.detach() for p in params]


def test_scale_one_is_torch_adam_bit_for_bit() -> None:
    adam = _trajectory(lambda p: torch.optim.Adam(p, lr=0.01))
    scaled = _trajectory(lambda p: ScaledAdam(p, lr=0.01, scale=1.0))
    assert all(torch.equal(a, b) for a, b in zip(adam, scaled, strict=True))


@pytest.mark.parametrize("fused", [None, False, True])
@pytest.mark.parametrize("scale", [0.25, 1.1, 4.0])
def test_identity_adam_with_lr_and_eps_over_sqrt_scale(scale: float, fused: bool | None) -> None:
    """Bit for bit against torch's Adam on the same path (default on CPU: fused)."""
    root = math.sqrt(scale)
    adam = _trajectory(
        lambda p: torch.optim.Adam(p, lr=0.01 / root, eps=1e-3 / root, fused=fused is not False)
    )
    scaled = _trajectory(lambda p: ScaledAdam(p, lr=0.01, eps=1e-3, scale=scale, fused=fused))
    assert all(torch.equal(a, b) for a, b in zip(adam, scaled, strict=True))


def test_default_cpu_path_is_torch_fused_and_fused_false_is_torch_default() -> None:
    param = torch.zeros(3, requires_grad=True)
    param.grad = torch.ones(3)
    default, loop = ScaledAdam([param]), ScaledAdam([param], fused=False)
    default.step()
    loop.step()
    assert default.param_groups[0]["fused"] is True
    assert not loop.param_groups[0]["fused"]
    explicit_foreach = ScaledAdam([param], foreach=True)
    explicit_foreach.step()
    assert not explicit_foreach.param_groups[0]["fused"]


def test_torch_adam_equals_reference_adam_equals_scaled_reference_at_scale_one() -> None:
    rng = np.random.default_rng(0)
    start = {"W1": rng.standard_normal((3, 2)), "b1": rng.standard_normal(2)}
    params = {k: torch.tensor(v, requires_grad=True) for k, v in start.items()}
    optimizer = torch.optim.Adam(params.values(), lr=0.02)
    plain = dict(start)
    v, s = reference.initialize_adam(plain)
    scaled = dict(start)
    v2, s2 = reference.initialize_scaled_adam(scaled)
    for t in range(1, 101):
        for p in params.values():
            p.grad = torch.from_numpy(np.sin(p.detach().numpy()) + p.detach().numpy())
        optimizer.step()
        grads = {"d" + k: np.sin(x) + x for k, x in plain.items()}
        plain, v, s, _, _ = reference.update_parameters_with_adam(
            plain, grads, v, s, t, learning_rate=0.02
        )
        grads2 = {"d" + k: np.sin(x) + x for k, x in scaled.items()}
        scaled, v2, s2, _, _ = reference.update_parameters_with_scaled_adam(
            scaled, grads2, v2, s2, t, learning_rate=0.02, scale=1.0
        )
    for name, p in params.items():
        np.testing.assert_allclose(p.detach().numpy(), plain[name], rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(plain[name], scaled[name])


def test_state_dict_moves_between_scaled_adam_and_adam() -> None:
    params = [torch.randn(4, requires_grad=True)]
    scaled = ScaledAdam(params, lr=0.01, scale=2.0)
    params[0].grad = torch.ones(4)
    scaled.step()
    adam = torch.optim.Adam([torch.randn(4, requires_grad=True)], lr=0.01)
    adam.load_state_dict({**scaled.state_dict(), "param_groups": adam.state_dict()["param_groups"]})
    assert torch.equal(
        adam.state[adam.param_groups[0]["params"][0]]["exp_avg_sq"],
        scaled.state[params[0]]["exp_avg_sq"],
    )


def test_step_hooks_run_once_even_when_adam_is_hooked() -> None:
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # makes torch wrap Adam.step
    param = torch.zeros(2, requires_grad=True)
    optimizer = ScaledAdam([param])
    calls = []
    optimizer.register_step_post_hook(lambda *args: calls.append(1))
    param.grad = torch.ones(2)
    optimizer.step()
    assert calls == [1]


def test_group_lr_is_restored_after_step_and_errors_name_fields() -> None:
    param = torch.zeros(2, requires_grad=True)
    optimizer = ScaledAdam([param], lr=0.3, eps=1e-6, scale=4.0)
    param.grad = torch.ones(2)
    optimizer.step()
    assert optimizer.param_groups[0]["lr"] == 0.3
    assert optimizer.param_groups[0]["eps"] == 1e-6
    with pytest.raises(ValueError, match="scale"):
        ScaledAdam([param], scale=0.0)
    with pytest.raises(ValueError, match="scale"):
        create("scaled-adam", [param], scale=-1.0)


def _three_steps(optimizer_of, values: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Three steps from ``values`` held as a strided view ``[..., 0]`` of a (10, 5, 2) tensor."""
    holder = torch.zeros(10, 5, 2, dtype=values.dtype)
    holder[..., 0] = values
    param = holder[..., 0].detach().requires_grad_(True)
    assert not param.is_contiguous()
    optimizer = optimizer_of([param])
    for grad in grads:
        param.grad = grad.clone()
        optimizer.step()
    return param.detach()


@pytest.mark.parametrize("fused", [None, True])
def test_non_contiguous_parameters_step_as_adam_does(fused: bool | None) -> None:
    """The outside suite's case: ScaledAdam(1e-3) on ``randn(10, 5, 2)[..., 0]`` equals
    Adam(1e-3/sqrt(1.1), eps/sqrt(1.1)) on contiguous copies (was ~6e-3 off after 3 steps
    through torch 2.14.1's fused CPU Adam), by default and with fused=True."""
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(10, 5, generator=generator)
    grads = torch.randn(3, 10, 5, generator=generator)
    scaled = _three_steps(lambda p: ScaledAdam(p, lr=1e-3, fused=fused), values, grads)
    dense = values.clone().requires_grad_(True)
    adam = torch.optim.Adam([dense], lr=1e-3 / math.sqrt(1.1), eps=1e-8 / math.sqrt(1.1))
    for grad in grads:
        dense.grad = grad.clone()
        adam.step()
    torch.testing.assert_close(scaled, dense.detach(), rtol=1e-6, atol=1e-7)


def test_the_kit_catches_torchs_fused_adam_on_strides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kit's non_contiguous check fails on ScaledAdam without its stride fallback, where
    this torch's fused CPU Adam has the bug (the mutant the check was written for)."""
    from optlab.optim import scaled_adam
    from optlab.testing import ContractFailure, check_optimizer, subject_from_registry

    generator = torch.Generator().manual_seed(1)
    values, grads = (
        torch.randn(10, 5, generator=generator),
        torch.randn(3, 10, 5, generator=generator),
    )
    fused = _three_steps(lambda p: torch.optim.Adam(p, lr=1e-3, fused=True), values, grads)
    loop = _three_steps(lambda p: torch.optim.Adam(p, lr=1e-3, fused=False), values, grads)
    if torch.allclose(fused, loop, rtol=1e-6, atol=1e-7):
        pytest.skip(f"torch {torch.__version__}'s fused CPU Adam is right on strided params")
    subject = subject_from_registry("scaled-adam")
    check_optimizer(subject, ["non_contiguous"])
    monkeypatch.setattr(scaled_adam, "_strided_on_cpu", lambda group: False)
    with pytest.raises(ContractFailure, match="non-contiguous parameter"):
        check_optimizer(subject, ["non_contiguous"])

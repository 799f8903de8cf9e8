"""The compiled CPU path: same numbers as eager, no recompiles under a scheduler, fallback."""

from __future__ import annotations

import pytest
import torch

from optlab.optim import IMO, MAMGD, elementwise


def _train(factory, compiled: bool, steps: int = 20, dtype=torch.float64, scheduler=False):
    generator = torch.Generator().manual_seed(1)
    params = [
        torch.randn(7, 5, generator=generator, dtype=dtype).requires_grad_(True),
        torch.randn(11, generator=generator, dtype=dtype).requires_grad_(True),
    ]
    optimizer = factory(params, compiled=compiled)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, 3, 0.7) if scheduler else None
    for _ in range(steps):
        optimizer.zero_grad()
        loss = sum(torch.sum(torch.sin(p) + 0.3 * p**2) for p in params)
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
    return params, optimizer


FACTORIES = {
    "imo": lambda params, **kw: IMO(params, lr=0.05, **kw),
    "imo-box": lambda params, **kw: IMO(params, lr=0.05, step_form="algorithm-box", **kw),
    "mamgd": lambda params, **kw: MAMGD(params, lr=0.05, **kw),
    "mamgd-published": lambda params, **kw: MAMGD(params, lr=0.05, as_published=True, **kw),
}


@pytest.mark.parametrize("name", list(FACTORIES))
def test_compiled_equals_eager_within_rounding(name: str) -> None:
    eager, _ = _train(FACTORIES[name], compiled=False, scheduler=True)
    compiled, optimizer = _train(FACTORIES[name], compiled=True, scheduler=True)
    assert optimizer._choose_path(optimizer.param_groups[0], compiled) == "compiled"
    for a, b in zip(eager, compiled, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_no_recompilation_over_50_steps_with_a_scheduler() -> None:
    from torch._dynamo.utils import counters

    _train(FACTORIES["imo"], compiled=True, steps=2, scheduler=True)  # warm
    before = dict(counters["stats"])
    _train(FACTORIES["imo"], compiled=True, steps=50, scheduler=True)
    assert dict(counters["stats"]).get("unique_graphs", 0) == before.get("unique_graphs", 0)


def test_default_compiles_only_large_cpu_groups() -> None:
    small = IMO([torch.zeros(10, requires_grad=True)], fused=False)
    assert small._choose_path(small.param_groups[0], small.param_groups[0]["params"]) == "loop"
    large_param = torch.zeros(elementwise.COMPILE_MIN_NUMEL, requires_grad=True)
    # IMO has a fused kernel (the default where it builds); without it, the group compiles
    large = IMO([large_param], fused=False)
    assert large._choose_path(large.param_groups[0], [large_param]) == "compiled"
    eager = IMO([large_param], compiled=False)
    assert eager._choose_path(eager.param_groups[0], [large_param]) == "loop"


def test_falls_back_to_eager_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_compile(fn, **kwargs):
        def fail(*args, **kw):
            raise RuntimeError("no C++ compiler found")

        return fail

    monkeypatch.setattr(elementwise, "_compiled_rules", {})
    monkeypatch.setattr(elementwise, "_compile_failures", {})
    monkeypatch.setattr(elementwise.torch, "compile", broken_compile)
    with pytest.warns(RuntimeWarning, match="falling back to the eager"):
        fallback, _ = _train(FACTORIES["mamgd"], compiled=True, steps=5)
    eager, _ = _train(FACTORIES["mamgd"], compiled=False, steps=5)
    assert all(torch.equal(a, b) for a, b in zip(fallback, eager, strict=True))


def test_compile_time_is_reported_once(caplog) -> None:
    import logging

    elementwise._compile_seconds.pop(IMO._single_tensor_rule, None)
    with caplog.at_level(logging.INFO, logger="optlab.optim"):
        _train(FACTORIES["imo"], compiled=True, steps=3)
    reports = [r for r in caplog.records if "first compiled step took" in r.getMessage()]
    assert len(reports) == 1
    assert elementwise.compile_seconds()["imo_single_tensor_"] > 0

"""The flat layout: parameters and gradients as views of one buffer, one step per group."""

from __future__ import annotations

import copy

import pytest
import torch

from optlab.optim import IMO, MAMGD, elementwise, flat, twins
from optlab.optim.flat import FlatLayoutError, flat_span, flatten_parameters
from optlab.testing import ContractFailure, check_optimizer, subject_from_registry


def _model(dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3), torch.nn.Tanh()
    ).to(dtype)


def _data(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return (
        torch.randn(16, 5, generator=generator, dtype=dtype),
        torch.randn(16, 3, generator=generator, dtype=dtype),
    )


def _train(model, optimizer, steps: int, set_to_none: bool = True) -> None:
    inputs, targets = _data(next(model.parameters()).dtype)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=set_to_none)
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()


def test_parameters_become_views_of_one_buffer_and_keep_their_values() -> None:
    model = _model()
    before = copy.deepcopy(model.state_dict())
    inputs, _ = _data()
    expected = model(inputs)
    layout = flatten_parameters(model)
    assert len(layout.buffers) == 1
    buffer = layout.buffers[0]
    params = list(model.parameters())
    assert buffer.numel == sum(p.numel() for p in params) == layout.numel
    assert flat_span(params) == (buffer, 0, buffer.numel)
    for param, offset in zip(params, buffer.offsets, strict=True):
        assert param.data_ptr() == buffer.params.data_ptr() + offset * param.element_size()
    assert torch.equal(model(inputs), expected)
    after = model.state_dict()
    assert list(after) == list(before)
    for name in before:
        assert torch.equal(after[name], before[name])


def test_one_buffer_per_dtype_and_tied_weights_once() -> None:
    shared = torch.nn.Parameter(torch.randn(3, 3))
    other = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
    layout = flatten_parameters([shared, other, shared])
    assert sorted(buffer.numel for buffer in layout.buffers) == [4, 9]


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(FlatLayoutError, match="no parameters"):
        flatten_parameters([])
    param = torch.nn.Parameter(torch.randn(3))
    flatten_parameters([param])
    with pytest.raises(FlatLayoutError, match="already in a flat layout"):
        flatten_parameters([param])
    with pytest.raises(FlatLayoutError, match="leaf"):
        flatten_parameters([torch.randn(3, requires_grad=True) * 2])


FACTORIES = {
    "imo": lambda params: IMO(params, lr=0.05, compiled=False),
    "imo-box": lambda params: IMO(params, lr=0.05, step_form="algorithm-box", compiled=False),
    "mamgd": lambda params: MAMGD(params, lr=0.05, compiled=False),
    "mamgd-published": lambda params: MAMGD(params, lr=0.05, as_published=True, compiled=False),
    "sgd-nesterov": lambda params: twins.SGD(params, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda params: twins.Adam(params, lr=0.01),
    "adamw": lambda params: twins.AdamW(params, lr=0.01),
    "adagrad": lambda params: twins.Adagrad(params, lr=0.05),
    "rmsprop": lambda params: twins.RMSprop(params, lr=0.01),
}


@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("set_to_none", [True, False])
def test_flat_step_equals_the_per_tensor_step_bit_for_bit(name: str, set_to_none: bool) -> None:
    plain, flattened = _model(), _model()
    flatten_parameters(flattened)
    plain_opt, flat_opt = (
        FACTORIES[name](plain.parameters()),
        FACTORIES[name](flattened.parameters()),
    )
    _train(plain, plain_opt, 15, set_to_none)
    _train(flattened, flat_opt, 15, set_to_none)
    assert flat_opt._flat_cache, "the flat path did not run"
    assert not plain_opt._flat_cache
    for a, b in zip(plain.parameters(), flattened.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(
        plain_opt.state_dict()["state"].values(),
        flat_opt.state_dict()["state"].values(),
        strict=True,
    ):
        for key, value in a.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, b[key]), key


def test_state_is_flat_but_state_dict_stays_per_parameter() -> None:
    model = _model()
    layout = flatten_parameters(model)
    optimizer = IMO(model.parameters(), lr=0.05, compiled=False)
    _train(model, optimizer, 2)
    params = list(model.parameters())
    spans = optimizer._flat_cache[0].state_spans
    for name, span in zip(IMO.state_names, spans, strict=True):
        assert span.numel() == layout.numel
        for param, offset in zip(params, layout.buffers[0].offsets, strict=True):
            entry = optimizer.state[param][name]
            assert entry.shape == param.shape
            assert entry.data_ptr() == span.data_ptr() + offset * span.element_size()
    state = optimizer.state_dict()["state"]
    assert [state[i]["velocity"].shape for i in range(len(params))] == [p.shape for p in params]


def test_gradients_stay_in_the_buffer_when_not_set_to_none() -> None:
    model = _model()
    layout = flatten_parameters(model)
    optimizer = IMO(model.parameters(), lr=0.05, compiled=False)
    _train(model, optimizer, 1, set_to_none=False)
    grads = [param.grad for param in model.parameters()]
    _train(model, optimizer, 3, set_to_none=False)
    assert all(a is b for a, b in zip(grads, (p.grad for p in model.parameters()), strict=True))
    buffer = layout.buffers[0]
    for param, offset in zip(model.parameters(), buffer.offsets, strict=True):
        assert param.grad.data_ptr() == buffer.grads.data_ptr() + offset * 8


def test_a_replaced_gradient_is_read_never_the_stale_buffer() -> None:
    plain, flattened = _model(), _model()
    layout = flatten_parameters(flattened)
    plain_opt = IMO(plain.parameters(), lr=0.05, compiled=False)
    flat_opt = IMO(flattened.parameters(), lr=0.05, compiled=False)
    _train(plain, plain_opt, 2, set_to_none=False)
    _train(flattened, flat_opt, 2, set_to_none=False)
    # a fresh gradient object replaces the buffer's view; the buffer keeps the old values
    for a, b in zip(plain.parameters(), flattened.parameters(), strict=True):
        fresh = torch.full_like(a, 0.25)
        a.grad, b.grad = fresh.clone(), fresh.clone()
    stale = layout.buffers[0].grads.clone()
    plain_opt.step()
    flat_opt.step()
    for a, b in zip(plain.parameters(), flattened.parameters(), strict=True):
        assert torch.equal(a, b)
        assert b.grad.data_ptr() != a.grad.data_ptr()
    assert not torch.equal(layout.buffers[0].grads, stale)  # rebound: the buffer holds 0.25
    assert torch.all(layout.buffers[0].grads == 0.25)


def test_the_kit_catches_a_stale_gradient_buffer(monkeypatch) -> None:
    monkeypatch.setattr(elementwise, "bind_gradients", lambda buffer, params: 0)
    with pytest.raises(ContractFailure, match="flat layout"):
        check_optimizer(subject_from_registry("imo"), ["flat_layout"])


def test_a_parameter_without_gradient_takes_the_per_tensor_path_and_stays() -> None:
    model = _model()
    flatten_parameters(model)
    optimizer = IMO(model.parameters(), lr=0.05, compiled=False)
    frozen = model[2].bias
    frozen.requires_grad_(False)
    before = frozen.detach().clone()
    _train(model, optimizer, 3)
    assert not optimizer._flat_cache
    assert torch.equal(frozen, before)


def test_reassigned_parameter_data_leaves_the_layout() -> None:
    plain, flattened = _model(), _model()
    flatten_parameters(flattened)
    plain_opt = IMO(plain.parameters(), lr=0.05, compiled=False)
    flat_opt = IMO(flattened.parameters(), lr=0.05, compiled=False)
    _train(plain, plain_opt, 2)
    _train(flattened, flat_opt, 2)
    assert flat_opt._flat_cache
    with torch.no_grad():
        flattened[0].weight.data = flattened[0].weight.detach().clone()
    _train(plain, plain_opt, 3)
    _train(flattened, flat_opt, 3)
    assert not flat_opt._flat_cache
    for a, b in zip(plain.parameters(), flattened.parameters(), strict=True):
        assert torch.equal(a, b)


def test_flat_compiled_step_matches_eager_and_never_recompiles_under_a_scheduler() -> None:
    from torch._dynamo.utils import counters

    def run(compiled: bool, steps: int) -> torch.nn.Module:
        model = _model(seed=5)
        flatten_parameters(model)
        optimizer = MAMGD(model.parameters(), lr=0.05, compiled=compiled)
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, 3, 0.7)
        inputs, targets = _data()
        for _ in range(steps):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(inputs), targets).backward()
            optimizer.step()
            schedule.step()
        assert optimizer._flat_cache
        return model

    eager = run(False, 30)
    run(True, 3)  # warm
    before = dict(counters["stats"])
    compiled = run(True, 30)
    assert dict(counters["stats"]).get("unique_graphs", 0) == before.get("unique_graphs", 0)
    for a, b in zip(eager.parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_flat_module_exports() -> None:
    assert set(flat.__all__) >= {"flatten_parameters", "FlatLayout", "flat_span"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["imo", "mamgd", "adam"])
def test_cuda_flat_compiled_step_matches_per_tensor_eager(name: str) -> None:
    factories = {
        "imo": lambda params, **kw: IMO(params, lr=0.05, **kw),
        "mamgd": lambda params, **kw: MAMGD(params, lr=0.05, **kw),
        "adam": lambda params, **kw: twins.Adam(params, lr=0.01, **kw),
    }
    plain, flattened = _model(torch.float32).cuda(), _model(torch.float32).cuda()
    flattened.load_state_dict(plain.state_dict())
    layout = flatten_parameters(flattened)
    assert layout.buffers[0].params.is_cuda
    plain_opt = factories[name](plain.parameters(), compiled=False, foreach=False)
    flat_opt = factories[name](flattened.parameters(), compiled=True)
    inputs, targets = (t.float().cuda() for t in _data())
    for model, optimizer in ((plain, plain_opt), (flattened, flat_opt)):
        for _ in range(10):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(inputs), targets).backward()
            optimizer.step()
    assert flat_opt._flat_cache
    for a, b in zip(plain.parameters(), flattened.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


TWIN_FACTORIES = {
    "sgd-momentum": lambda params, **kw: twins.SGD(params, lr=0.05, momentum=0.9, **kw),
    "adam": lambda params, **kw: twins.Adam(params, lr=0.01, **kw),
    "adamw": lambda params, **kw: twins.AdamW(params, lr=0.01, **kw),
    "adagrad": lambda params, **kw: twins.Adagrad(params, lr=0.05, **kw),
    "rmsprop": lambda params, **kw: twins.RMSprop(params, lr=0.01, **kw),
}


@pytest.mark.parametrize("name", list(TWIN_FACTORIES))
def test_twins_compile_on_the_flat_layout_without_falling_back(name: str) -> None:
    import warnings

    plain, flattened = _model(), _model()
    flatten_parameters(flattened)
    plain_opt = TWIN_FACTORIES[name](plain.parameters(), compiled=False)
    flat_opt = TWIN_FACTORIES[name](flattened.parameters(), compiled=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the compile-failure fallback warns
        _train(plain, plain_opt, 6)
        _train(flattened, flat_opt, 6)
    assert flat_opt._flat_cache
    for a, b in zip(plain.parameters(), flattened.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_two_param_groups_each_step_their_own_span() -> None:
    def groups(model):
        return [
            {"params": list(model[0].parameters()), "lr": 0.02},
            {"params": list(model[2].parameters()), "lr": 0.1, "momentum": 0.5},
        ]

    plain, flattened = _model(), _model()
    flatten_parameters(flattened)
    plain_opt = IMO(groups(plain), compiled=False)
    flat_opt = IMO(groups(flattened), compiled=False)
    _train(plain, plain_opt, 8)
    _train(flattened, flat_opt, 8)
    assert sorted(flat_opt._flat_cache) == [0, 1]
    for a, b in zip(plain.parameters(), flattened.parameters(), strict=True):
        assert torch.equal(a, b)


def test_flattening_after_steps_keeps_the_optimizer_state() -> None:
    plain, flattened = _model(), _model()
    plain_opt = MAMGD(plain.parameters(), lr=0.05, compiled=False)
    flat_opt = MAMGD(flattened.parameters(), lr=0.05, compiled=False)
    _train(plain, plain_opt, 4)
    _train(flattened, flat_opt, 4)
    flatten_parameters(flattened)  # the optimizer already holds per-tensor state
    _train(plain, plain_opt, 6)
    _train(flattened, flat_opt, 6)
    assert flat_opt._flat_cache
    for a, b in zip(plain.parameters(), flattened.parameters(), strict=True):
        assert torch.equal(a, b)

"""optlab's fused CPU kernels: same numbers as the eager loop, path choice, fallback, build."""

from __future__ import annotations

import copy
import shutil
import warnings
from collections.abc import Callable

import pytest
import torch

from optlab.optim import IMO, MAMGD, elementwise, fused_cpu, fused_step
from optlab.optim.flat import flatten_parameters

FACTORIES: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "imo": lambda params, **kw: IMO(params, lr=0.05, **kw),
    "imo-box": lambda params, **kw: IMO(params, lr=0.05, step_form="algorithm-box", **kw),
    "mamgd": lambda params, **kw: MAMGD(params, lr=0.05, k=1e-3, **kw),
    "mamgd-published": lambda params, **kw: MAMGD(params, lr=0.05, as_published=True, **kw),
}

needs_kernels = pytest.mark.skipif(
    not fused_cpu.available(), reason=f"fused CPU kernels unavailable here: {fused_cpu._failure}"
)


def _params(shapes, dtype=torch.float64, seed=1) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [
        torch.randn(shape, generator=generator, dtype=dtype).requires_grad_(True)
        for shape in shapes
    ]


def _train(optimizer, params, steps: int, scheduler: bool = False) -> None:
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, 3, 0.7) if scheduler else None
    for _ in range(steps):
        optimizer.zero_grad()
        loss = sum(torch.sum(torch.sin(3 * p) + 0.3 * p**2) for p in params)
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()


def test_kernels_build_where_a_compiler_exists() -> None:
    if not any(shutil.which(name) for name in ("c++", "g++", "clang++")):
        pytest.skip("no C++ compiler on this machine")
    assert fused_cpu.available(), fused_cpu.unavailable_reason()


@needs_kernels
@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_equals_the_eager_loop_within_rounding(name: str, dtype: torch.dtype) -> None:
    # sizes on both sides of the kernel's one-thread cutoff (32,768 elements), odd ones
    shapes = [(7, 5), (11,), (40_001,), (3, 3, 3), ()]
    eager_params, fused_params = _params(shapes, dtype), _params(shapes, dtype)
    eager = FACTORIES[name](eager_params, compiled=False)
    fused = FACTORIES[name](fused_params, fused=True)
    _train(eager, eager_params, 30, scheduler=True)
    _train(fused, fused_params, 30, scheduler=True)
    assert fused._choose_path(fused.param_groups[0], fused_params) == "fused"
    plan = fused._fused_plans[0]
    assert plan.launches and not plan.rest  # every tensor went through the kernel
    rtol, atol = (1e-12, 1e-14) if dtype == torch.float64 else (1e-5, 1e-6)
    for a, b in zip(eager_params, fused_params, strict=True):
        torch.testing.assert_close(b, a, rtol=rtol, atol=atol)
    if dtype == torch.float32:
        # torch's CPU add(alpha=) fuses a multiply-add that the kernel does not: the IMO
        # masses then flip on a few near-zero gradient products; float64 checks the state
        return
    for a, b in zip(eager_params, fused_params, strict=True):
        for key, value in eager.state[a].items():
            if isinstance(value, torch.Tensor):
                torch.testing.assert_close(fused.state[b][key], value, rtol=rtol, atol=atol)


@needs_kernels
@pytest.mark.parametrize("name", ["imo", "mamgd"])
def test_thread_count_does_not_change_a_bit(name: str) -> None:
    shapes = [(50_000,), (17,), (30_001,), (64, 300)]  # 99k elements: the parallel branch
    results = []
    threads = torch.get_num_threads()
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            params = _params(shapes, torch.float32)
            _train(FACTORIES[name](params, fused=True), params, 5)
            results.append(params)
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other, strict=True))


@needs_kernels
def test_tensors_the_kernel_cannot_take_go_through_the_loop() -> None:
    def build() -> list[torch.Tensor]:
        base = _params([(6, 8), (5,), (4, 4)], torch.float64)
        wide = torch.randn(8, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
        transposed = wide.t().requires_grad_(True)  # non-contiguous
        half = torch.randn(9, dtype=torch.bfloat16).requires_grad_(True)  # no kernel dtype
        return [*base, transposed, half]

    eager_params, fused_params = build(), build()
    fused_params[-1].data.copy_(eager_params[-1].data)
    eager = IMO(eager_params, lr=0.05, compiled=False)
    fused = IMO(fused_params, lr=0.05, fused=True)
    _train(eager, eager_params, 10)
    _train(fused, fused_params, 10)
    assert not fused_params[3].is_contiguous()
    for a, b in zip(eager_params, fused_params, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


@needs_kernels
def test_state_dicts_cross_between_the_fused_and_the_loop_paths() -> None:
    shapes = [(20, 3), (7,)]
    reference_params = _params(shapes)
    reference = MAMGD(reference_params, lr=0.05, compiled=False)
    _train(reference, reference_params, 20)
    for first, second in (
        ({"fused": True}, {"compiled": False}),
        ({"compiled": False}, {"fused": True}),
    ):
        params = _params(shapes)
        optimizer = MAMGD(params, lr=0.05, **first)
        _train(optimizer, params, 10)
        resumed_params = [p.detach().clone().requires_grad_(True) for p in params]
        resumed = MAMGD(resumed_params, lr=0.05, **second)
        resumed.load_state_dict(copy.deepcopy(optimizer.state_dict()))
        _train(resumed, resumed_params, 10)
        for a, b in zip(reference_params, resumed_params, strict=True):
            torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


@needs_kernels
@pytest.mark.parametrize("name", ["imo", "mamgd"])
def test_flat_layout_takes_the_kernel_over_its_one_buffer(name: str) -> None:
    shapes = [(30, 20), (20,), (5, 7)]
    plain, flat = _params(shapes), _params(shapes)
    flatten_parameters(flat)
    _train(FACTORIES[name](plain, fused=True), plain, 12)
    _train(FACTORIES[name](flat, fused=True), flat, 12)
    # per element the same arithmetic: one span or several, bit for bit
    assert all(torch.equal(a, b) for a, b in zip(plain, flat, strict=True))


@needs_kernels
def test_a_fused_step_bumps_version_counters_as_in_place_ops_do() -> None:
    (param,) = _params([(10,)])
    optimizer = IMO([param], fused=True)
    param.grad = torch.ones_like(param)
    before = param._version
    optimizer.step()
    assert param._version > before
    assert optimizer.state[param]["mass"]._version > 0


@needs_kernels
def test_default_path_on_cpu_groups_is_the_kernel() -> None:
    large = torch.zeros(elementwise.COMPILE_MIN_NUMEL, requires_grad=True)
    small = torch.zeros(10, requires_grad=True)
    for cls in (IMO, MAMGD):
        for param in (small, large):
            optimizer = cls([param])
            assert optimizer._choose_path(optimizer.param_groups[0], [param]) == "fused"
        optimizer = cls([large], fused=False)
        assert optimizer._choose_path(optimizer.param_groups[0], [large]) == "compiled"
        optimizer = cls([large], compiled=False)
        assert optimizer._choose_path(optimizer.param_groups[0], [large]) == "loop"
        stacked = torch.zeros(3, 2, requires_grad=True)
        members = cls([stacked], lr=torch.tensor([0.1, 0.2, 0.3]))
        assert members._choose_path(members.param_groups[0], [stacked]) == "fused"
        members = cls([stacked], lr=torch.tensor([0.1, 0.2, 0.3]), compiled=False)
        assert members._choose_path(members.param_groups[0], [stacked]) == "loop"


def test_fused_flags_are_validated() -> None:
    param = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="foreach=True and fused=True exclude each other"):
        IMO([param], foreach=True, fused=True)
    with pytest.raises(ValueError, match="compiled=True and fused=True exclude each other"):
        MAMGD([param], compiled=True, fused=True)
    with pytest.raises(TypeError, match="fused"):
        IMO([param], fused="yes")


def test_fused_true_refuses_non_cpu_parameters() -> None:
    param = torch.zeros(3, device="meta", requires_grad=True)
    optimizer = IMO([param], fused=True)
    with pytest.raises(RuntimeError, match=r"fused=True runs on CPU tensors only.*meta"):
        optimizer._choose_path(optimizer.param_groups[0], [param])


def test_unavailable_kernels_warn_once_under_fused_true_and_default_compiles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fused_cpu, "_library", None)
    monkeypatch.setattr(fused_cpu, "_failure", "RuntimeError: no C++ compiler found")
    monkeypatch.setattr(fused_step, "_FUSED_WARNED", set())
    eager_params, fused_params = _params([(4, 3)]), _params([(4, 3)])
    with pytest.warns(RuntimeWarning, match="fused CPU kernels are unavailable.*no C"):
        _train(IMO(fused_params, lr=0.05, fused=True), fused_params, 3)
    _train(IMO(eager_params, lr=0.05, compiled=False), eager_params, 3)
    assert torch.equal(fused_params[0], eager_params[0])  # it ran the eager loop
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process and class
        more = _params([(2,)])
        _train(IMO(more, lr=0.05, fused=True), more, 1)
    large = torch.zeros(elementwise.COMPILE_MIN_NUMEL, requires_grad=True)
    optimizer = IMO([large])
    assert optimizer._choose_path(optimizer.param_groups[0], [large]) == "compiled"


def test_build_is_cached_atomic_and_keyed(monkeypatch, tmp_path) -> None:
    compiler = fused_cpu._compiler()
    if compiler is None:
        pytest.skip("no C++ compiler on this machine")
    monkeypatch.setenv("OPTLAB_CACHE_DIR", str(tmp_path))
    source = b'extern "C" int optlab_fused_cpu_abi() { return 1; }\n'
    first = fused_cpu._build(source, compiler)
    assert first.parent == tmp_path / "kernels" and first.exists()
    stamp = first.stat().st_mtime_ns
    assert fused_cpu._build(source, compiler) == first  # cached: not rebuilt
    assert first.stat().st_mtime_ns == stamp
    other = fused_cpu._build(source + b"// changed\n", compiler)
    assert other != first  # the source is in the key
    assert not list((tmp_path / "kernels").glob("*.tmp"))  # no partial files left


def test_a_failing_compiler_is_reported_in_one_line(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("OPTLAB_CACHE_DIR", str(tmp_path))
    compiler = fused_cpu._compiler()
    if compiler is None:
        pytest.skip("no C++ compiler on this machine")
    with pytest.raises(RuntimeError, match=r"failed \(exit [1-9]"):
        fused_cpu._build(b"this is not C++\n", compiler)
    monkeypatch.setattr(fused_cpu, "_library", None)
    monkeypatch.setattr(fused_cpu, "_failure", None)
    monkeypatch.setenv("CXX", "/nonexistent/compiler")
    monkeypatch.setenv("PATH", str(tmp_path))  # no c++/g++/clang++ either
    assert not fused_cpu.available()
    assert "no C++ compiler found" in (fused_cpu.unavailable_reason() or "")


@needs_kernels
def test_prepared_launches_follow_replaced_tensors_and_gradients() -> None:
    """The fused plan is reused between steps; it must notice a reloaded state, a
    parameter given new storage and a non-contiguous gradient (checked against the loop)."""
    shapes = [(6, 6), (9,)]

    def run(**flags) -> list[torch.Tensor]:
        params = _params(shapes)
        optimizer = IMO(params, lr=0.05, **flags)
        _train(optimizer, params, 3)
        snapshot = copy.deepcopy(optimizer.state_dict())
        _train(optimizer, params, 2)
        optimizer.load_state_dict(snapshot)  # new state tensors
        with torch.no_grad():
            params[1].data = params[1].data.clone()  # new storage, same Parameter
        _train(optimizer, params, 2)
        grad = torch.cos(params[0].detach()).t().contiguous().t()  # non-contiguous
        params[0].grad, params[1].grad = grad, torch.ones_like(params[1])
        optimizer.step()
        _train(optimizer, params, 2)
        return params

    for a, b in zip(run(compiled=False), run(fused=True), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


@needs_kernels
def test_an_empty_tensor_first_in_a_bucket_keeps_the_secant_term() -> None:
    shapes = [(0,), (1000,), (0, 3)]
    eager_params, fused_params = _params(shapes), _params(shapes)
    eager = FACTORIES["mamgd"](eager_params, compiled=False)
    fused = FACTORIES["mamgd"](fused_params, fused=True)
    _train(eager, eager_params, 5)
    _train(fused, fused_params, 5)
    torch.testing.assert_close(fused_params[1], eager_params[1], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(
        fused.state[fused_params[1]]["prev_param"], eager.state[eager_params[1]]["prev_param"]
    )


@needs_kernels
def test_a_parameter_reshaped_at_the_same_address_is_not_stepped_with_a_stale_plan() -> None:
    def run(**flags):
        params = _params([(64, 64), (8, 8)])
        optimizer = IMO(params, lr=0.05, **flags)
        _train(optimizer, params, 2)
        with torch.no_grad():
            params[1].data = params[1].data.t()  # same address, now non-contiguous
        _train(optimizer, params, 2)
        address = params[0].data_ptr()
        params[0].data = params[0].data[:16]  # same address, fewer elements
        assert params[0].data_ptr() == address
        with pytest.raises(RuntimeError, match="size"):  # the stale 4096-element grad
            optimizer.step()
        return params

    for a, b in zip(run(compiled=False), run(fused=True), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


@needs_kernels
def test_parameters_sharing_memory_are_stepped_one_after_the_other() -> None:
    def run(**flags):
        base = torch.randn(50_000, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        first = torch.nn.Parameter(base.clone())
        second = torch.nn.Parameter(first.data)  # another Parameter on the same memory
        optimizer = IMO([first, second], lr=0.05, **flags)
        for _ in range(3):
            first.grad = torch.sin(first.detach())
            second.grad = torch.cos(second.detach())
            optimizer.step()
        return first.detach().clone()

    assert torch.equal(run(fused=True), run(compiled=False))


@needs_kernels
@pytest.mark.parametrize("flags", [{"fused": True}, {}])
def test_a_flat_layout_in_a_dtype_without_kernel_takes_the_rule(flags) -> None:
    shapes = [(5, 4), (3,)]
    eager, other = _params(shapes, torch.bfloat16), _params(shapes, torch.bfloat16)
    flatten_parameters(eager)
    flatten_parameters(other)
    _train(IMO(eager, lr=0.05, compiled=False), eager, 3)
    _train(IMO(other, lr=0.05, **flags), other, 3)
    assert all(torch.equal(a, b) for a, b in zip(eager, other, strict=True))


def test_a_cached_library_that_does_not_load_is_rebuilt(monkeypatch, tmp_path) -> None:
    from importlib import resources

    compiler = fused_cpu._compiler()
    if compiler is None:
        pytest.skip("no C++ compiler on this machine")
    monkeypatch.setenv("OPTLAB_CACHE_DIR", str(tmp_path))
    source = resources.files("optlab.optim").joinpath(fused_cpu.SOURCE_NAME).read_bytes()
    target = fused_cpu._build(source, compiler)
    target.write_bytes(b"not a shared library")
    for name, value in (("_library", None), ("_failure", None), ("_kernels", {})):
        monkeypatch.setattr(fused_cpu, name, value)
    assert fused_cpu.available(), fused_cpu.unavailable_reason()
    assert target.read_bytes()[:4] == b"\x7fELF" or target.stat().st_size > 1000


def test_cxx_may_carry_arguments(monkeypatch, tmp_path) -> None:
    real = fused_cpu._compiler()
    env = shutil.which("env")
    if real is None or env is None:
        pytest.skip("no C++ compiler or env on this machine")
    monkeypatch.setenv("CXX", f"env {real[0]}")
    monkeypatch.setenv("OPTLAB_CACHE_DIR", str(tmp_path))
    assert fused_cpu._compiler() == [env, real[0]]
    built = fused_cpu._build(
        b'extern "C" int optlab_fused_cpu_abi() { return 2; }\n', [env, real[0]]
    )
    assert built.exists()


@needs_kernels
@pytest.mark.parametrize("name", list(FACTORIES))
def test_per_member_learning_rates_run_in_the_kernel(name: str) -> None:
    """A population (parameters stacked along a leading axis of N) with one learning rate
    per member: each member steps with its own rate, as N separate optimizers would."""
    lrs = torch.tensor([0.01, 0.05, 0.2], dtype=torch.float64)
    # members of 700 x 50 elements: the threads' split falls inside member rows
    stacked = _params([(3, 700, 50), (3, 7)], seed=2)
    separate = [[p[m].detach().clone().requires_grad_(True) for p in stacked] for m in range(3)]
    fused = FACTORIES[name](stacked)
    for group in fused.param_groups:
        group["lr"] = lrs.clone()
    threads = torch.get_num_threads()
    torch.set_num_threads(3)  # 3 splits of the 105,021 elements, inside member rows
    try:
        _train(fused, stacked, 6)
    finally:
        torch.set_num_threads(threads)
    assert fused._choose_path(fused.param_groups[0], stacked) == "fused"
    assert not fused._fused_plans[0].rest
    for member, params in enumerate(separate):
        optimizer = FACTORIES[name](params, compiled=False)
        for group in optimizer.param_groups:
            group["lr"] = float(lrs[member])
        _train(optimizer, params, 6)
        for tensor, alone in zip(stacked, params, strict=True):
            torch.testing.assert_close(tensor[member], alone, rtol=1e-12, atol=1e-14)


def test_per_member_rates_on_parameters_without_that_axis_fail_clearly() -> None:
    good = torch.zeros(3, 4, requires_grad=True)
    param = torch.zeros(4, 2, requires_grad=True)
    optimizer = IMO([good, param], lr=torch.tensor([0.1, 0.2, 0.3]))
    good.grad, param.grad = torch.ones_like(good), torch.ones_like(param)
    with pytest.raises(ValueError, match="3 per-member learning rates need parameters stacked"):
        optimizer.step()
    assert torch.equal(good, torch.zeros(3, 4))  # refused before any parameter moved
    optimizer = IMO([good], lr=torch.tensor([0.1, 0.2, 0.3]))
    optimizer.step()  # a prepared launch of 3 rows of 4
    with torch.no_grad():
        good.data = good.data.view(4, 3)  # same address and size, no longer 3 rows
    good.grad = torch.ones_like(good)
    with pytest.raises(ValueError, match="3 per-member learning rates need parameters stacked"):
        optimizer.step()


def test_an_unwritable_cache_folder_falls_back_to_the_temporary_directory(
    monkeypatch, tmp_path
) -> None:
    compiler = fused_cpu._compiler()
    if compiler is None:
        pytest.skip("no C++ compiler on this machine")
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("OPTLAB_CACHE_DIR", str(blocked))
    monkeypatch.setattr(fused_cpu.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    built = fused_cpu._build(b'extern "C" int optlab_fused_cpu_abi() { return 3; }\n', compiler)
    assert built.parent == tmp_path / "tmp" / f"optlab-{fused_cpu._user()}" / "kernels"
    assert built.exists()


def test_a_compiler_without_openmp_builds_one_thread_kernels(monkeypatch, tmp_path) -> None:
    real = fused_cpu._compiler()
    if real is None:
        pytest.skip("no C++ compiler on this machine")
    wrapper = tmp_path / "no-openmp-c++"
    wrapper.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do [ "$arg" = -fopenmp ] && { echo "unsupported option '
        "'-fopenmp'\" >&2; exit 1; }; done\n"
        f'exec {" ".join(real)} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("CXX", str(wrapper))
    monkeypatch.setenv("OPTLAB_CACHE_DIR", str(tmp_path / "cache"))
    for name, value in (("_library", None), ("_failure", None), ("_kernels", {})):
        monkeypatch.setattr(fused_cpu, name, value)
    assert fused_cpu.available(), fused_cpu.unavailable_reason()
    shapes = [(40_000,), (7,)]
    eager_params, fused_params = _params(shapes), _params(shapes)
    _train(IMO(eager_params, lr=0.05, compiled=False), eager_params, 5)
    _train(IMO(fused_params, lr=0.05, fused=True), fused_params, 5)
    for a, b in zip(eager_params, fused_params, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


def test_a_shared_temporary_folder_that_is_not_private_is_refused(monkeypatch, tmp_path) -> None:
    compiler = fused_cpu._compiler()
    if compiler is None or not hasattr(fused_cpu.os, "getuid"):
        pytest.skip("no C++ compiler, or no POSIX owners, on this machine")
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("OPTLAB_CACHE_DIR", str(blocked))
    monkeypatch.setattr(fused_cpu.tempfile, "tempdir", str(tmp_path))
    planted = tmp_path / f"optlab-{fused_cpu._user()}"
    planted.mkdir()
    planted.chmod(0o777)  # as if another user had made it first, open to all
    with pytest.raises(RuntimeError, match="not this user's private folder"):
        fused_cpu._build(b'extern "C" int optlab_fused_cpu_abi() { return 3; }\n', compiler)

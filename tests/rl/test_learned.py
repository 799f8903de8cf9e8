"""optlab.optim.Learned and its policy files: plain torch, no RL library needed."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from rl_policies import descent_policy

from optlab import optim
from optlab.optim.learned import (
    Learned,
    LearnedPolicy,
    PolicyConfig,
    PolicyFileError,
    coordinate_features,
    file_digest,
    load_policy,
    save_policy,
)
from optlab.testing import CHECKS, check_optimizer, subject_from_registry


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    return save_policy(descent_policy(), tmp_path / "descent.pt")


def _quadratic_closure(optimizer: torch.optim.Optimizer, params: list[torch.Tensor]):
    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = sum(((p - 1.0) ** 2).sum() for p in params)
        loss.backward()
        return loss

    return closure


@pytest.mark.parametrize("coordinates", [1, 7, 300])
def test_network_runs_on_any_number_of_coordinates(coordinates: int) -> None:
    policy = LearnedPolicy.fresh(PolicyConfig(history_len=5, hidden=8), seed=3)
    obs = torch.rand(2, coordinates, policy.config.features) * 2 - 1
    assert policy.net.mean(obs).shape == (2, coordinates)
    assert policy.net.value(obs).shape == (2, 1)
    # coordinate-wise: a coordinate's action depends on its own row (and not on N)
    alone = policy.net.mean(obs[:, :1])
    assert torch.allclose(alone, policy.net.mean(obs)[:, :1], atol=1e-6)


def test_network_rejects_wrong_feature_count() -> None:
    policy = LearnedPolicy.fresh(PolicyConfig(history_len=5))
    with pytest.raises(ValueError, match="16 features"):
        policy.net.mean(torch.zeros(3, 10))


def test_features_are_scaled_and_shared() -> None:
    grads = torch.tensor([[0.0, 2.0], [1.0, -4.0], [3.0, 1.0]], dtype=torch.float64)
    actions = torch.tensor([[0.0, 0.0], [0.5, -1.0], [1.0, 0.25]], dtype=torch.float64)
    objectives = torch.tensor([5.0, 3.0, 2.0], dtype=torch.float64)
    features = coordinate_features([(grads, actions, objectives)], action_clip=1.0)
    assert features.shape == (2, 10) and features.dtype == torch.float32
    assert torch.allclose(features[0, :3], torch.tensor([0.0, 1 / 3, 1.0]))
    assert torch.allclose(features[1, :3], torch.tensor([0.5, -1.0, 0.25]))
    # delta f_k = f_now - f_k = (-3, -1, 0) scaled by 3, the same for both coordinates
    assert torch.allclose(features[:, 3:6], torch.tensor([[-1.0, -1 / 3, 0.0]] * 2))
    assert torch.allclose(features[:, 6:9], actions.T.float())
    # relative size: s = (3, 4); r = log10(s / 3.5) / 3
    expected = torch.log10(torch.tensor([3.0, 4.0]) / 3.5) / 3
    assert torch.allclose(features[:, 9], expected, atol=1e-6)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    policy = LearnedPolicy.fresh(PolicyConfig(history_len=3, hidden=5, lr=0.02), seed=1)
    path = save_policy(policy, tmp_path / "p.pt")
    loaded = load_policy(path)
    assert loaded.config == policy.config
    obs = torch.rand(4, policy.config.features)
    assert torch.equal(loaded.net.mean(obs), policy.net.mean(obs))


def test_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="does not exist"):
        load_policy(tmp_path / "nope.pt")


def test_corrupt_file_is_one_clear_line(tmp_path: Path, policy_file: Path) -> None:
    data = policy_file.read_bytes()
    policy_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(PolicyFileError, match="not readable") as caught:
        load_policy(policy_file)
    assert "\n" not in str(caught.value)
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a policy")
    with pytest.raises(PolicyFileError, match="not readable"):
        load_policy(garbage)


def test_other_torch_files_and_versions_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(PolicyFileError, match="not an optlab learned-policy file"):
        load_policy(path)
    policy = descent_policy()
    save_policy(policy, path)
    payload = torch.load(path, weights_only=True)
    payload["version"] = 99
    torch.save(payload, path)
    with pytest.raises(PolicyFileError, match="version 99"):
        load_policy(path)


def test_weights_that_do_not_fit_the_config_are_rejected(tmp_path: Path) -> None:
    path = save_policy(descent_policy(hidden=4), tmp_path / "p.pt")
    payload = torch.load(path, weights_only=True)
    payload["config"]["hidden"] = 8
    torch.save(payload, path)
    with pytest.raises(PolicyFileError, match=r"hidden 8.*needs"):
        load_policy(path)
    payload["config"] = {"history_len": 4}
    torch.save(payload, path)
    with pytest.raises(PolicyFileError, match="config must have the keys"):
        load_policy(path)


def test_learned_lowers_a_loss_and_needs_a_closure() -> None:
    params = [torch.full((3, 2), 4.0, requires_grad=True)]
    optimizer = Learned(params, descent_policy(lr=0.1))
    closure = _quadratic_closure(optimizer, params)
    first = float(optimizer.step(closure).detach())
    for _ in range(30):
        last = float(optimizer.step(closure).detach())
    assert last < 0.1 * first
    with pytest.raises(RuntimeError, match="needs a closure"):
        optimizer.step()


@pytest.mark.parametrize("kind", ["descent", "random"])
def test_state_dict_round_trip_continues_identically(kind: str) -> None:
    torch.manual_seed(1)
    start = [torch.randn(4, 3, dtype=torch.float64), torch.randn(5, dtype=torch.float64)]
    params = [p.clone().requires_grad_(True) for p in start]
    # the random policy reads every history, so a history lost in the round trip shows
    policy = descent_policy() if kind == "descent" else LearnedPolicy.fresh(seed=5)
    optimizer = Learned(params, policy)
    for _ in range(6):
        optimizer.step(_quadratic_closure(optimizer, params))
    saved = copy.deepcopy(optimizer.state_dict())
    assert set(saved["state"][0]) == {
        "step",
        "grad_history",
        "action_history",
        "objective_history",
    }
    resumed_params = [p.detach().clone().requires_grad_(True) for p in params]
    resumed = Learned(resumed_params, policy)
    resumed.load_state_dict(saved)
    for _ in range(5):
        optimizer.step(_quadratic_closure(optimizer, params))
        resumed.step(_quadratic_closure(resumed, resumed_params))
    for a, b in zip(params, resumed_params, strict=True):
        assert torch.equal(a, b)
    # a fresh optimizer (empty history) would not continue the same way
    fresh_params = [p.detach().clone().requires_grad_(True) for p in params]
    fresh = Learned(fresh_params, policy)
    fresh.step(_quadratic_closure(fresh, fresh_params))
    optimizer.step(_quadratic_closure(optimizer, params))
    assert not all(torch.equal(a, b) for a, b in zip(params, fresh_params, strict=True))


def test_registry_creates_learned_from_a_path(policy_file: Path) -> None:
    params = [torch.zeros(3, requires_grad=True)]
    optimizer = optim.create(f"learned:{policy_file}", params, lr=0.01)
    assert isinstance(optimizer, Learned)
    assert optimizer.param_groups[0]["lr"] == 0.01
    default = optim.create(f"learned:{policy_file}", [torch.zeros(3, requires_grad=True)])
    assert default.param_groups[0]["lr"] == 0.05  # the policy's own step scale
    entry = optim.spec(f"learned:{policy_file}")
    assert entry.requires_closure and not entry.elementwise
    assert f"learned:{policy_file}" not in optim.names()
    assert optim.create(
        f"learned:{policy_file}",
        [torch.zeros(1, requires_grad=True)],
        sha256=file_digest(policy_file),
    )


def test_registry_errors_name_the_problem(tmp_path: Path, policy_file: Path) -> None:
    with pytest.raises(optim.UnknownOptimizerError, match="needs a policy file path"):
        optim.spec("learned:")
    with pytest.raises(PolicyFileError, match="does not exist"):
        optim.create(f"learned:{tmp_path / 'missing.pt'}", [torch.zeros(1, requires_grad=True)])
    with pytest.raises(ValueError, match="lr"):
        optim.create(f"learned:{policy_file}", [torch.zeros(1, requires_grad=True)], lr=-1.0)
    with pytest.raises(PolicyFileError, match="not the one asked for"):
        optim.create(
            f"learned:{policy_file}", [torch.zeros(1, requires_grad=True)], sha256="0" * 64
        )
    with pytest.raises(TypeError, match="policy must be"):
        Learned([torch.zeros(1, requires_grad=True)], policy=3)  # type: ignore[arg-type]


MUST_RUN = {
    "state_dict",
    "param_groups",
    "closure",
    "invalid_hyperparameters",
    "sparse_gradients",
    "loss_decreases",
    "lr_scheduler",
    "dtypes",
    "non_contiguous",
    "deepcopy",
    "repr",
    "create_graph",
    "scheduler_before_first_step",
    "group_default_lr",
}
# Declared not applicable by the entry's capabilities: no NumPy reference, no foreach path,
# no convergence budget claimed, not elementwise (population, non-finite coordinates).
NOT_APPLICABLE = {"reference", "foreach", "converges", "population", "nonfinite_gradients"}


def test_learned_meets_the_contract(policy_file: Path) -> None:
    subject = subject_from_registry(f"learned:{policy_file}", lr=0.05)
    ran = set(check_optimizer(subject))  # raises listing every applicable check that fails
    assert ran >= MUST_RUN
    assert not ran & NOT_APPLICABLE
    assert ran <= set(CHECKS)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float32_policy_drives_float32_and_float64_nets(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 1))
    net = net.to(dtype)
    x, y = torch.randn(32, 5, dtype=dtype), torch.randn(32, 1, dtype=dtype)
    policy = descent_policy(lr=0.01)
    assert next(policy.net.parameters()).dtype == torch.float32
    optimizer = Learned(net.parameters(), policy)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(net(x), y)
        loss.backward()
        return loss

    losses = [float(optimizer.step(closure).detach()) for _ in range(40)]
    assert losses[-1] < losses[0]
    assert all(param.dtype == dtype for param in net.parameters())
    state = optimizer.state[next(net.parameters())]
    assert state["grad_history"].dtype == dtype


def test_objective_history_is_at_least_float32_and_an_infinite_loss_makes_no_nan() -> None:
    param = torch.ones(3, dtype=torch.float16, requires_grad=True)
    optimizer = Learned([param], LearnedPolicy.fresh(seed=2))
    losses = iter([1e6, 5.0])  # above float16's range, then a normal value

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        (param.float().sum() * 0).backward()
        param.grad = torch.full_like(param, 0.5)
        return torch.tensor(next(losses))

    optimizer.step(closure)
    optimizer.step(closure)
    assert optimizer.state[param]["objective_history"].dtype == torch.float32
    assert optimizer.state[param]["objective_history"][-2] == 1e6
    values = iter([1e3, math.inf, 5.0, 4.0])
    other = torch.ones(3, dtype=torch.float64, requires_grad=True)
    learned = Learned([other], LearnedPolicy.fresh(seed=2))

    def finite_grads() -> torch.Tensor:
        learned.zero_grad()
        other.grad = torch.full_like(other, 0.1)
        return torch.tensor(next(values))

    for _ in range(4):
        learned.step(finite_grads)
    assert torch.isfinite(other).all()


def test_compare_on_instances_runs_everyone_from_the_same_starts_and_summarises() -> None:
    from optlab.rl.evaluation import LEARNED, compare_on_instances, summarise

    comparison = compare_on_instances(
        descent_policy(lr=0.05), "quadratic", baselines={"sgd": {"lr": 0.0}}, count=2, steps=5
    )
    assert set(comparison.final) == {LEARNED, "sgd"}
    assert all(len(values) == 2 for values in comparison.final.values())
    starts = {label: [curve[0] for curve in curves] for label, curves in comparison.curves.items()}
    assert starts[LEARNED] == starts["sgd"]  # same instances, same starting points
    assert comparison.final["sgd"] == starts["sgd"]  # lr 0 leaves the start unchanged
    table = summarise(comparison)
    assert table["sgd"]["learned_wins"] == 1.0  # descent lowers every instance's objective
    assert table[LEARNED]["learned_wins"] == 0.0


@pytest.mark.parametrize("returned", [None, torch.ones(3)])
def test_a_closure_without_a_scalar_loss_is_refused_clearly(returned) -> None:
    param = torch.ones(2, requires_grad=True)
    optimizer = Learned([param], descent_policy())

    def closure():
        param.grad = torch.ones(2)
        return returned

    with pytest.raises(TypeError, match="closure must return the loss"):
        optimizer.step(closure)


def test_a_state_of_another_history_length_is_refused_on_load() -> None:
    params = [torch.ones(3, dtype=torch.float64, requires_grad=True)]
    short = Learned(params, descent_policy(history_len=3))
    short.step(_quadratic_closure(short, params))
    longer = Learned(params, descent_policy(history_len=4))
    with pytest.raises(ValueError, match="history_len=4"):
        longer.load_state_dict(short.state_dict())

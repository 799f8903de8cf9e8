"""The Gymnasium environment: API, seeds, instances, bad actions, and Learned parity."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from rl_policies import descent_policy

from optlab.optim.learned import Learned, LearnedPolicy, PolicyConfig
from optlab.rl.env import EnvConfig, OptimizationEnv
from optlab.rl.instances import RLError, instance_seeds


@pytest.mark.parametrize("observation", ["coordinate", "seeds"])
@pytest.mark.parametrize("problem", ["quadratic", "robust-regression"])
def test_env_passes_check_env(problem: str, observation: str) -> None:
    env = OptimizationEnv(problem=problem, num_problems=3, observation=observation)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium's advice about unbounded boxes
        check_env(env)


def test_seeds_formulation_has_the_seeds_shapes() -> None:
    env = OptimizationEnv(problem="quadratic", num_problems=2, observation="seeds")
    assert env.observation_space.shape == (25, 21)
    assert env.action_space.shape == (20,)
    assert env.action_space.low.min() == -10 and env.action_space.high.max() == 10
    obs, info = env.reset(seed=0)
    assert np.all(obs[:-1] == 0)  # no history before the start
    start = info["objective"]
    x0 = env._current.flat().clone()
    action = np.full(20, 0.5, dtype=np.float32)
    obs, reward, terminated, truncated, info = env.step(action * 100)  # clipped to 10
    assert torch.allclose(env._current.flat(), x0 + 10.0)
    assert reward == pytest.approx(-info["objective"])
    assert obs[-1, 0] == 0.0 and obs[-2, 0] == pytest.approx(1.0)  # f_now - f_prev > 0, scaled
    assert info["objective"] > start and not terminated and not truncated


def test_episodes_last_40_steps() -> None:
    env = OptimizationEnv(problem="quadratic", num_problems=2)
    env.reset(seed=1)
    for step in range(1, 41):
        _, _, terminated, truncated, _ = env.step(np.zeros(20, dtype=np.float32))
        assert not terminated
        assert truncated == (step == 40)


def _rollout(seed: int, episodes: int = 3) -> tuple[list[int], list[np.ndarray]]:
    env = OptimizationEnv(problem="quadratic", num_problems=5)
    visited, observations = [], []
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=seed)
    for _ in range(episodes):
        visited.append(info["instance_seed"])
        for _ in range(3):
            obs, *_ = env.step(rng.uniform(-1, 1, 20).astype(np.float32))
            observations.append(obs)
        obs, info = env.reset()
    return visited, observations


def test_seeded_reproducibility() -> None:
    first, first_obs = _rollout(seed=7)
    second, second_obs = _rollout(seed=7)
    assert first == second
    assert all(np.array_equal(a, b) for a, b in zip(first_obs, second_obs, strict=True))
    orders = {tuple(_rollout(seed=s, episodes=5)[0]) for s in range(4)}
    assert len(orders) > 1  # the seed changes the order of instances
    assert len(set(_rollout(seed=7, episodes=5)[0])) == 5  # one pass = every instance once


def test_train_and_heldout_instances_are_disjoint() -> None:
    train = {s.instance_seed for s in instance_seeds("train", 90)}
    held = {s.instance_seed for s in instance_seeds("heldout", 90)}
    assert len(train) == 90 and len(held) == 90 and not train & held
    assert instance_seeds("train", 5, split_seed=1) != instance_seeds("train", 5, split_seed=2)
    env = OptimizationEnv(problem="quadratic", split="heldout", num_problems=4)
    assert {s.instance_seed for s in env.instances} <= held | {
        s.instance_seed for s in instance_seeds("heldout", 4)
    }
    assert all(s.instance_seed % 2 == 1 for s in env.instances)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (np.full(20, np.nan, dtype=np.float32), "must be finite"),
        (np.zeros(19, dtype=np.float32), r"shape \(20,\)"),
        (np.zeros((2, 20), dtype=np.float32), r"got \(2, 20\)"),
        ("left", "array of 20 numbers"),
    ],
)
def test_bad_actions_are_rejected(action: object, message: str) -> None:
    env = OptimizationEnv(problem="quadratic", num_problems=1)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


def test_invalid_config_names_the_field() -> None:
    with pytest.raises(RLError, match="unknown problem 'cubic'"):
        EnvConfig(problem="cubic")
    with pytest.raises(RLError, match="num_problems must be an integer >= 1, got 0"):
        EnvConfig(num_problems=0)
    with pytest.raises(RLError, match="observation must be"):
        EnvConfig(observation="pixels")
    env = OptimizationEnv(problem="quadratic", num_problems=2)
    with pytest.raises(RLError, match="instance"):
        env.reset(options={"instance": 5})
    with pytest.raises(RLError, match="reset"):
        OptimizationEnv(problem="quadratic", num_problems=1).step(np.zeros(20))


@pytest.mark.parametrize("kind", ["descent", "random"])
def test_env_and_learned_take_the_same_steps(kind: str) -> None:
    """The env's coordinate observation is exactly what Learned feeds its policy. The
    random policy reads every feature (gradient, objective and action histories, relative
    scale), so a history either side mishandles shows up here."""
    if kind == "descent":
        policy = descent_policy(lr=0.1, history_len=4)
    else:
        policy = LearnedPolicy.fresh(PolicyConfig(history_len=4, lr=0.1), seed=3)
    env = OptimizationEnv(problem="robust-regression", num_problems=2, history_len=4, lr=0.1)
    obs, _ = env.reset(seed=0, options={"instance": 1})
    for _ in range(8):
        with torch.no_grad():
            action = policy.net.act(torch.as_tensor(obs)).numpy()
        obs, *_ = env.step(action)
    through_env = env._current.flat()

    objective = env._objective(1)
    objective.reset()
    model, batch = objective.instance.model, objective.batch
    optimizer = Learned(objective.parameters, policy)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = objective.instance.loss(model, batch)
        loss.backward()
        return loss

    for _ in range(8):
        optimizer.step(closure)
    assert torch.allclose(objective.flat(), through_env, rtol=0, atol=1e-12)

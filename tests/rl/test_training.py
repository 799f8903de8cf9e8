"""PPO (Stable-Baselines3) trains the coordinate-wise policy; the file drives Learned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from optlab import problems
from optlab.optim.learned import Learned, PolicyConfig, file_digest, load_policy
from optlab.rl.env import OptimizationEnv
from optlab.rl.instances import RLError
from optlab.rl.policy import CoordinatewisePolicy
from optlab.rl.training import PPOSettings, TrainingConfig, config_path_of, train_policy

TINY = TrainingConfig(
    problem="quadratic",
    num_problems=4,
    timesteps=80,
    seed=3,
    policy=PolicyConfig(history_len=3, hidden=8),
    ppo=PPOSettings(n_envs=2, n_steps=40, batch_size=40, n_epochs=2),
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("policy") / "quadratic.pt"
    seen: list[tuple[int, int]] = []
    outcome = train_policy(TINY, out, progress=lambda done, total: seen.append((done, total)))
    assert outcome.timesteps >= 80 and seen[-1] == (80, 80)
    return out


def test_ppo_changes_the_network_and_saves_a_loadable_policy(trained: Path) -> None:
    policy = load_policy(trained)
    assert policy.config == TINY.policy
    untrained = CoordinatewisePolicy(
        OptimizationEnv(TINY.env_config()).observation_space,
        OptimizationEnv(TINY.env_config()).action_space,
        lambda _: 1e-3,
        policy_config=TINY.policy,
    )
    assert untrained.coordinate_net.log_std.shape == (1,)
    # PPO moved the weights: the exploration scale starts at a constant and was trained
    assert not torch.equal(policy.net.log_std.detach(), untrained.coordinate_net.log_std.detach())
    record = json.loads(config_path_of(trained).read_text())
    assert record["training"]["problem"] == "quadratic"
    assert record["training"]["num_problems"] == 4
    assert record["policy_sha256"] == file_digest(trained)
    assert record["timesteps"] >= 80


def test_training_is_seeded(trained: Path, tmp_path: Path) -> None:
    again = train_policy(TINY, tmp_path / "again.pt").policy_path
    first, second = load_policy(trained), load_policy(again)
    for a, b in zip(first.net.parameters(), second.net.parameters(), strict=True):
        assert torch.equal(a, b)


def test_trained_policy_runs_on_other_dimensions_and_the_digits_mlp(trained: Path) -> None:
    for name in ("robust-regression", "digits-mlp"):  # 11 and 4,810 parameters (trained on 20)
        instance = problems.build(name)
        model = instance.model
        inputs, targets = instance.data.train
        batch = (inputs[:256], targets[:256])
        optimizer = Learned(model.parameters(), trained)

        def closure(optimizer=optimizer, instance=instance, batch=batch) -> torch.Tensor:
            optimizer.zero_grad()
            loss = instance.loss(instance.model, batch)
            loss.backward()
            return loss

        before = [p.detach().clone() for p in model.parameters()]
        losses = [float(optimizer.step(closure).detach()) for _ in range(3)]
        assert all(torch.isfinite(torch.tensor(losses)))
        moved = any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
        assert moved
        state = optimizer.state_dict()["state"]
        assert len(state) == len(before) and state[0]["grad_history"].shape[0] == 3


def test_invalid_training_config_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(RLError, match="num_problems must be an integer >= 1, got 0"):
        TrainingConfig(num_problems=0)
    with pytest.raises(RLError, match="timesteps"):
        TrainingConfig(timesteps=-5)
    with pytest.raises(RLError, match=r"ppo.n_envs"):
        PPOSettings(n_envs=0)
    with pytest.raises(RLError, match="folder"):
        train_policy(TINY, tmp_path)
    assert TrainingConfig().total_timesteps == 90 * 20 * 40


def test_seeds_formulation_trains_with_sb3s_own_mlp_policy() -> None:
    """The seeds' exact formulation: a (25, n+1) matrix, SB3's MlpPolicy tied to n."""
    from stable_baselines3 import PPO

    env = OptimizationEnv(problem="quadratic", num_problems=2, observation="seeds")
    model = PPO("MlpPolicy", env, n_steps=40, batch_size=40, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=40)
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert action.shape == (20,)

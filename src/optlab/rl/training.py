"""Train a coordinate-wise policy with PPO (Stable-Baselines3) and save it.

:func:`train_policy` builds ``n_envs`` copies of the :class:`~optlab.rl.env.OptimizationEnv`
over the family's training instances (the seeds: 90 instances, 20 passes of 40-step
episodes = 72,000 steps by default), runs SB3's ``PPO`` with
:class:`~optlab.rl.policy.CoordinatewisePolicy` unchanged, and writes two files: the policy
(``optlab.optim.learned`` format, torch only) and ``<policy>.json`` with the full training
config, the time taken and the SHA-256 of the policy file.

Seeds: ``seed`` seeds PPO (network initialisation, exploration noise) and the order of
instances in every environment; which instances are trained on is ``split_seed``'s
(:func:`optlab.rl.instances.instance_seeds`, train split: even instance seeds).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from optlab.durable import write_atomic
from optlab.optim.learned import LearnedPolicy, PolicyConfig, file_digest, save_policy
from optlab.rl.env import EnvConfig, OptimizationEnv
from optlab.rl.instances import MAX_INSTANCES, RLError, check_count, problem_name

Progress = Callable[[int, int], None]
"""``progress(timesteps_done, timesteps_total)``."""


@dataclass(frozen=True)
class PPOSettings:
    """Stable-Baselines3 PPO hyperparameters (per environment ``n_steps``)."""

    n_envs: int = 8
    n_steps: int = 80
    batch_size: int = 128
    n_epochs: int = 5
    learning_rate: float = 1e-3
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5

    def __post_init__(self) -> None:
        for name in ("n_envs", "n_steps", "batch_size", "n_epochs"):
            check_count(f"ppo.{name}", getattr(self, name))
        for name in ("learning_rate", "gamma", "gae_lambda", "clip_range", "max_grad_norm"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise RLError(f"ppo.{name} must be a finite number > 0, got {value!r}")


@dataclass(frozen=True)
class TrainingConfig:
    """Everything a training run depends on (it is written beside the policy).

    Attributes:
        problem: the family (``quadratic``, ``logistic``, ``robust-regression``, ``mlp``)
            or a problem name.
        num_problems: training instances (the seeds: 90).
        passes: passes over them when ``timesteps`` is None (the seeds: 20).
        timesteps: total environment steps (None: ``num_problems * passes *
            episode_length``).
        seed: PPO's seed and the instance order's.
        split_seed: which instances (see :mod:`optlab.rl.instances`).
        episode_length: steps per episode (the seeds: 40).
        policy: the network's shape and step scale.
        ppo: PPO hyperparameters.
        threads: torch threads while training.
    """

    problem: str = "quadratic"
    num_problems: int = 90
    passes: int = 20
    timesteps: int | None = None
    seed: int = 42
    split_seed: int = 0
    episode_length: int = 40
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    ppo: PPOSettings = field(default_factory=PPOSettings)
    threads: int = 1

    def __post_init__(self) -> None:
        problem_name(self.problem)
        check_count("num_problems", self.num_problems, high=MAX_INSTANCES)
        check_count("passes", self.passes)
        if self.timesteps is not None:
            check_count("timesteps", self.timesteps)
        check_count("seed", self.seed, low=0)
        check_count("split_seed", self.split_seed, low=0)
        check_count("episode_length", self.episode_length)
        check_count("threads", self.threads)
        if not isinstance(self.policy, PolicyConfig):
            raise RLError(f"policy must be a PolicyConfig, got {type(self.policy).__name__}")
        if self.policy.action_clip != 1.0:
            raise RLError(
                f"policy.action_clip must be 1.0 for training (the environment's action "
                f"bound; the step scale is policy.lr), got {self.policy.action_clip}"
            )
        if not isinstance(self.ppo, PPOSettings):
            raise RLError(f"ppo must be a PPOSettings, got {type(self.ppo).__name__}")

    @property
    def total_timesteps(self) -> int:
        """The environment steps to take."""
        if self.timesteps is not None:
            return self.timesteps
        return self.num_problems * self.passes * self.episode_length

    def env_config(self, split: str = "train", num_problems: int | None = None) -> EnvConfig:
        """The environment these settings train in (or evaluate on, with ``split``)."""
        return EnvConfig(
            problem=self.problem,
            split=split,
            num_problems=self.num_problems if num_problems is None else num_problems,
            split_seed=self.split_seed,
            observation="coordinate",
            history_len=self.policy.history_len,
            episode_length=self.episode_length,
            lr=self.policy.lr,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        data = asdict(self)
        data["problem_name"] = problem_name(self.problem)
        data["total_timesteps"] = self.total_timesteps
        return data


@dataclass(frozen=True)
class TrainingOutcome:
    """What :func:`train_policy` wrote and measured."""

    policy_path: Path
    config_path: Path
    seconds: float
    timesteps: int
    mean_episode_reward: float | None


def config_path_of(policy_path: str | Path) -> Path:
    """The JSON beside a policy file: ``<policy>.json``."""
    path = Path(policy_path)
    return path.with_name(path.name + ".json")


def _check_writable(out: Path) -> None:
    """Fail before training, not after it, when ``out`` cannot be written."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.probe"):
            pass  # created exclusively: never through a link
    except OSError as error:
        raise RLError(f"--out {out} cannot be written: {error.strerror or error}") from None


def train_policy(
    config: TrainingConfig, out: str | Path, progress: Progress | None = None
) -> TrainingOutcome:
    """Train with PPO and write the policy to ``out`` and its config to ``out.json``."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from optlab.rl.policy import CoordinatewisePolicy

    if not isinstance(config, TrainingConfig):
        raise RLError(f"config must be a TrainingConfig, got {type(config).__name__}")
    out = Path(out)
    if out.exists() and out.is_dir():
        raise RLError(f"--out must be a file path, got the folder {out}")
    _check_writable(out)
    env_config = config.env_config()
    settings = config.ppo
    total = config.total_timesteps
    rollout = settings.n_envs * settings.n_steps
    batch_size = min(settings.batch_size, rollout)

    def make(index: int) -> Callable[[], Monitor]:
        return lambda: Monitor(OptimizationEnv(env_config))

    rewards: list[float] = []

    class Report(BaseCallback):
        def _on_step(self) -> bool:
            for info in self.locals.get("infos", []):
                episode = info.get("episode")
                if episode is not None:
                    rewards.append(float(episode["r"]))
            if progress is not None:
                progress(min(self.num_timesteps, total), total)
            return True

    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    started = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[]):
            vec_env = DummyVecEnv([make(i) for i in range(settings.n_envs)])
            model = PPO(
                CoordinatewisePolicy,
                vec_env,
                learning_rate=settings.learning_rate,
                n_steps=settings.n_steps,
                batch_size=batch_size,
                n_epochs=settings.n_epochs,
                gamma=settings.gamma,
                gae_lambda=settings.gae_lambda,
                clip_range=settings.clip_range,
                ent_coef=settings.ent_coef,
                max_grad_norm=settings.max_grad_norm,
                policy_kwargs={"policy_config": asdict(config.policy)},
                seed=config.seed,
                device="cpu",
                verbose=0,
            )
            model.learn(total_timesteps=total, callback=Report())
            vec_env.close()
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - started
    net = model.policy.coordinate_net
    policy = LearnedPolicy(net, config.policy)
    save_policy(policy, out)
    recent = rewards[-max(1, len(rewards) // 10) :] if rewards else []
    mean_reward = sum(recent) / len(recent) if recent else None
    record = {
        "training": config.as_dict(),
        "seconds": seconds,
        "timesteps": int(model.num_timesteps),
        "episodes": len(rewards),
        "mean_episode_reward_last_10pct": mean_reward,
        "policy_sha256": file_digest(out),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
    }
    config_path = config_path_of(out)
    write_atomic(config_path, json.dumps(record, indent=2))
    return TrainingOutcome(out, config_path, seconds, int(model.num_timesteps), mean_reward)

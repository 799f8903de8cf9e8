r"""A Gymnasium environment in which the agent is the optimizer (Li & Malik 2016).

Every episode takes one instance of a problem family (:mod:`optlab.rl.instances`), starts
at its initial parameters :math:`x_0` and lasts ``episode_length`` steps (40, as in the
seeds). At each step the agent sees the recent history of the objective :math:`f` and its
gradient :math:`g` (both computed with torch at the current point), chooses an update, and
the parameters move. Two formulations (``observation=``):

``"seeds"``: Li & Malik's, exactly as the seeds state it.
    Observation: an ``(H, n + 1)`` float32 matrix (``H = history_len``, 25 by default);
    row :math:`k` is :math:`[\Delta f_k, g_{k,1}, \dots, g_{k,n}]` with
    :math:`\Delta f_k = f_t - f_k` divided by the largest :math:`|\Delta f|` in the window
    (so in [-1, 1]), oldest row first, rows before the start zero (their :math:`\Delta f`
    too). Action: the update itself, a vector of ``n`` numbers clipped to [-10, 10];
    :math:`x_{t+1} = x_t + a_t`. Reward: :math:`-f(x_{t+1})`. The policy is tied to ``n``.

``"coordinate"`` (the default): the coordinate-wise formulation of
:mod:`optlab.optim.learned` (after Andrychowicz et al. 2016). Observation: an
``(n, 3H + 1)`` float32 matrix in [-1, 1], one row per coordinate (its scaled gradient
history, the scaled :math:`\Delta f` history, its own past actions, its relative gradient
size): :func:`optlab.optim.learned.coordinate_features`, the very function ``Learned``
runs. Action: ``n`` numbers in [-1, 1], one per coordinate, scaled by the step scale
:math:`\eta` (``lr``): :math:`x_{t+1} = x_t + \eta a_t`. Reward: the seeds' :math:`-f`,
shifted and divided per episode so that instances of any scale weigh alike:
:math:`r_t = \operatorname{clip}((f(x_0) - f(x_{t+1})) / |f(x_0)|, -10, 10)` (the sum over
an episode is still the area under the objective curve, up to a constant).

An objective that becomes non-finite ends the episode (``terminated``) with reward -10
(coordinate) or -1e6 (seeds); otherwise it ends by time (``truncated``). Actions of the
wrong shape or with NaN/inf raise :class:`ValueError`. ``reset(seed=...)`` seeds the order
in which instances are visited: each pass over the ``num_problems`` instances is a fresh
permutation; ``reset(options={"instance": i})`` picks instance ``i`` instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch

from optlab.errors import InvalidValueError
from optlab.optim.learned import PolicyConfig, coordinate_features
from optlab.rl.instances import (
    MAX_INSTANCES,
    SPLITS,
    InstanceSeeds,
    Objective,
    RLError,
    check_count,
    instance_seeds,
    problem_name,
)

Observation = Literal["coordinate", "seeds"]
SEEDS_HISTORY = 25
SEEDS_ACTION_BOUND = 10.0
SEEDS_DIVERGED_REWARD = -1e6
COORDINATE_REWARD_CLIP = 10.0


@dataclass(frozen=True)
class EnvConfig:
    """What an environment is: the family, the instances, the formulation.

    Attributes:
        problem: a family (``quadratic``, ``logistic``, ``robust-regression``, ``mlp``) or
            any problem name.
        split: ``train`` or ``heldout`` instances.
        num_problems: how many instances the split holds (the seeds: 90 for training).
        split_seed: seeds which instances those are (:func:`instance_seeds`).
        observation: ``coordinate`` (default) or ``seeds``.
        history_len: ``H`` (None: 25 for ``seeds``, 10 for ``coordinate``).
        episode_length: steps per episode (the seeds: 40).
        lr: the step scale ``eta`` of the coordinate formulation.
    """

    problem: str = "quadratic"
    split: str = "train"
    num_problems: int = 90
    split_seed: int = 0
    observation: str = "coordinate"
    history_len: int | None = None
    episode_length: int = 40
    lr: float = 0.1

    def __post_init__(self) -> None:
        problem_name(self.problem)
        if self.split not in SPLITS:
            raise RLError(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        check_count("num_problems", self.num_problems, high=MAX_INSTANCES)
        check_count("split_seed", self.split_seed, low=0)
        if self.observation not in ("coordinate", "seeds"):
            raise RLError(f"observation must be 'coordinate' or 'seeds', got {self.observation!r}")
        if self.history_len is not None:
            check_count("history_len", self.history_len)
        check_count("episode_length", self.episode_length)
        if (
            isinstance(self.lr, bool)
            or not isinstance(self.lr, (int, float))
            or not (math.isfinite(self.lr) and self.lr > 0)
        ):
            raise RLError(f"lr must be a finite number > 0, got {self.lr!r}")

    @property
    def history(self) -> int:
        """``H`` in effect."""
        if self.history_len is not None:
            return self.history_len
        return SEEDS_HISTORY if self.observation == "seeds" else PolicyConfig().history_len


class OptimizationEnv(gym.Env):
    """The optimizer as an agent (see the module docstring)."""

    metadata = {"render_modes": []}  # noqa: RUF012 (gymnasium's convention)

    def __init__(self, config: EnvConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        if config is None:
            config = EnvConfig(**overrides)
        elif overrides:
            raise RLError("give an EnvConfig or keyword arguments, not both")
        if not isinstance(config, EnvConfig):
            raise RLError(f"config must be an EnvConfig, got {type(config).__name__}")
        self.config = config
        self.problem = problem_name(config.problem)
        self.instances: list[InstanceSeeds] = instance_seeds(
            config.split, config.num_problems, config.split_seed
        )
        self._objectives: dict[int, Objective] = {}
        first = self._objective(0)
        self.size = first.size
        self.history = config.history
        self.action_clip = 1.0
        if config.observation == "seeds":
            low = np.full((self.history, self.size + 1), -np.inf, dtype=np.float32)
            high = np.full((self.history, self.size + 1), np.inf, dtype=np.float32)
            low[:, 0], high[:, 0] = -1.0, 1.0
            self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
            self.action_space = gym.spaces.Box(
                -SEEDS_ACTION_BOUND, SEEDS_ACTION_BOUND, (self.size,), dtype=np.float32
            )
        else:
            features = 3 * self.history + 1
            self.observation_space = gym.spaces.Box(
                -1.0, 1.0, (self.size, features), dtype=np.float32
            )
            self.action_space = gym.spaces.Box(
                -self.action_clip, self.action_clip, (self.size,), dtype=np.float32
            )
        self._order: list[int] = []
        self._current: Objective | None = None
        self._index = 0
        self._steps = 0

    # ------------------------------------------------------------------ instances
    def _objective(self, index: int) -> Objective:
        if index not in self._objectives:
            self._objectives[index] = Objective(self.problem, self.instances[index])
        return self._objectives[index]

    def _next_index(self) -> int:
        if not self._order:
            self._order = [int(i) for i in self.np_random.permutation(len(self.instances))]
        return self._order.pop(0)

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode on the next instance (or ``options["instance"]``)."""
        super().reset(seed=seed)
        if seed is not None:
            self._order = []
        options = options or {}
        if "instance" in options:
            index = options["instance"]
            if (
                isinstance(index, bool)
                or not isinstance(index, int)
                or not 0 <= index < len(self.instances)
            ):
                raise RLError(
                    f"options['instance'] must be an integer in [0, {len(self.instances)}), "
                    f"got {index!r}"
                )
        else:
            index = self._next_index()
        objective = self._objective(index)
        if objective.size != self.size:
            raise RLError(
                f"instance {index} of {self.problem} has {objective.size} parameters, "
                f"the environment {self.size}"
            )
        objective.reset()
        self._current, self._index = objective, index
        self._steps = 0
        dtype = objective.dtype
        self._grads = torch.zeros((self.history, self.size), dtype=dtype)
        self._actions = torch.zeros((self.history, self.size), dtype=dtype)
        value, grad = objective.evaluate()
        self._start_value = value
        self._objectives_window = torch.full((self.history,), value, dtype=dtype)
        self._filled = 0
        self._record(value, grad)
        return self._observation(), self._info(index, value)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply an update; return (observation, reward, terminated, truncated, info)."""
        if self._current is None:
            raise RLError("call reset() before step()")
        vector = self._check_action(action)
        bound = float(self.action_space.high[0])
        clipped = np.clip(vector, -bound, bound)
        if self.config.observation == "seeds":
            update = torch.as_tensor(clipped, dtype=torch.float64)
        else:
            update = self.config.lr * torch.as_tensor(clipped, dtype=torch.float64)
        self._current.move(update)
        self._actions = torch.roll(self._actions, -1, dims=0)
        self._actions[-1] = torch.as_tensor(clipped, dtype=self._actions.dtype)
        value, grad = self._current.evaluate()
        self._steps += 1
        truncated = self._steps >= self.config.episode_length
        terminated = not (math.isfinite(value) and bool(torch.isfinite(grad).all()))
        if terminated:
            reward = (
                SEEDS_DIVERGED_REWARD
                if self.config.observation == "seeds"
                else -COORDINATE_REWARD_CLIP
            )
            observation = np.zeros(self.observation_space.shape, dtype=np.float32)
        else:
            self._record(value, grad)
            reward = self._reward(value)
            observation = self._observation()
        info = self._info(self._index, value)
        return observation, float(reward), terminated, truncated and not terminated, info

    # ------------------------------------------------------------------ pieces
    def _check_action(self, action: Any) -> np.ndarray:
        try:
            vector = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidValueError(
                f"action must be an array of {self.size} numbers, got {type(action).__name__}"
            ) from None
        if vector.shape != self.action_space.shape:
            raise InvalidValueError(
                f"action must have shape {self.action_space.shape}, got {vector.shape}"
            )
        bad = np.flatnonzero(~np.isfinite(vector))
        if bad.size:
            raise InvalidValueError(
                f"action must be finite; got {vector[bad[0]]} at index {int(bad[0])} "
                f"({bad.size} non-finite entries)"
            )
        return vector

    def _record(self, value: float, grad: torch.Tensor) -> None:
        self._grads = torch.roll(self._grads, -1, dims=0)
        self._grads[-1] = grad
        self._objectives_window = torch.roll(self._objectives_window, -1, dims=0)
        self._objectives_window[-1] = value
        self._filled = min(self._filled + 1, self.history)

    def _reward(self, value: float) -> float:
        if self.config.observation == "seeds":
            return -value
        scale = abs(self._start_value) or 1.0
        gain = (self._start_value - value) / scale
        return float(np.clip(gain, -COORDINATE_REWARD_CLIP, COORDINATE_REWARD_CLIP))

    def _observation(self) -> np.ndarray:
        if self.config.observation == "coordinate":
            features = coordinate_features(
                [(self._grads, self._actions, self._objectives_window)], self.action_clip
            )
            return features.numpy()
        delta = self._objectives_window[-1] - self._objectives_window
        delta[: self.history - self._filled] = 0.0  # rows before the start
        largest = float(delta.abs().max())
        scaled = delta / largest if largest > 0 else torch.zeros_like(delta)
        matrix = torch.cat([scaled.unsqueeze(1), self._grads], dim=1)
        limit = float(np.finfo(np.float32).max)
        return np.clip(matrix.numpy(), -limit, limit).astype(np.float32)

    def _info(self, index: int, value: float) -> dict[str, Any]:
        seeds = self.instances[index]
        return {
            "objective": value,
            "instance": index,
            "instance_seed": seeds.instance_seed,
            "init_seed": seeds.init_seed,
            "step": self._steps,
        }

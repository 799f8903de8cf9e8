"""Problem families and their seeded train / held-out instances.

A *family* is an optlab problem whose instance seed varies the problem (data, matrix):
``quadratic`` (``spd-quadratic``), ``logistic``, ``robust-regression`` (Geman-McClure) and
``mlp`` (``mlp-synthetic``, the 2-layer MLP), the four domains of Li & Malik; any other
registry name is accepted as it is. One *instance* is an (instance seed, init seed) pair.

Train and held-out instances never share an instance seed: train seeds are even, held-out
seeds odd, each drawn without replacement from ``numpy.random.default_rng([split_seed,
split])``; the init seed of each is drawn from the same generator.

The objective an episode sees is the training loss (the whole training split, full batch)
of the problem, evaluated with torch; analytic problems have no data and use ``f(x)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from optlab import problems
from optlab.errors import OptlabError
from optlab.problems.base import Batch, BuildContext, ProblemInstance

Split = Literal["train", "heldout"]
SPLITS: tuple[str, ...] = ("train", "heldout")

FAMILIES: dict[str, str] = {
    "quadratic": "spd-quadratic",
    "logistic": "logistic",
    "robust-regression": "robust-regression",
    "mlp": "mlp-synthetic",
}
"""Li & Malik's four domains -> optlab problem names."""

MAX_DRAW = 2**30


class RLError(OptlabError):
    """Invalid input to the RL environment, training or evaluation."""


def problem_name(family: str) -> str:
    """The registry problem of a family name (or the registry name itself)."""
    if not isinstance(family, str):
        raise RLError(f"problem must be a string, got {family!r}")
    name = FAMILIES.get(family, family)
    if name not in problems.names():
        raise RLError(
            f"unknown problem {family!r}; families: {', '.join(FAMILIES)}; or a problem: "
            f"{', '.join(problems.names())}"
        )
    return name


MAX_INSTANCES = 100_000
"""At most this many instances (``--instances``, ``--num-problems``): each is a seed pair
held in memory and a problem built, so a larger count is a typo."""


def check_count(field_name: str, value: object, low: int = 1, high: int | None = None) -> int:
    """An integer >= ``low`` (and <= ``high``, where given) or :class:`RLError` naming the
    field."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RLError(f"{field_name} must be an integer >= {low}, got {value!r}")
    if high is not None and value > high:
        raise RLError(f"{field_name} must be an integer <= {high:,}, got {value:,}")
    return value


@dataclass(frozen=True)
class InstanceSeeds:
    """One problem instance: which problem (instance seed) and where it starts (init seed)."""

    instance_seed: int
    init_seed: int


def instance_seeds(split: str, count: int, split_seed: int = 0) -> list[InstanceSeeds]:
    """``count`` instances of ``split`` (``train``: even instance seeds, ``heldout``: odd)."""
    if split not in SPLITS:
        raise RLError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    check_count("count", count, high=MAX_INSTANCES)
    check_count("split_seed", split_seed, low=0)
    parity = SPLITS.index(split)
    rng = np.random.default_rng([split_seed, parity])
    draws = rng.choice(MAX_DRAW, size=count, replace=False)
    inits = rng.integers(0, MAX_DRAW, size=count)
    return [
        InstanceSeeds(int(2 * draw + parity), int(init))
        for draw, init in zip(draws, inits, strict=True)
    ]


class Objective:
    """A built instance as a function of its flat parameter vector (torch autograd)."""

    def __init__(self, problem: str, seeds: InstanceSeeds) -> None:
        context = BuildContext(instance_seed=seeds.instance_seed, init_seed=seeds.init_seed)
        self.instance: ProblemInstance = problems.build(problem, context)
        self.seeds = seeds
        self.parameters = [p for p in self.instance.model.parameters() if p.requires_grad]
        self.start = self.flat().clone()
        self.batch: Batch | None = self.instance.data.train if self.instance.data else None

    @property
    def size(self) -> int:
        """Number of coordinates."""
        return int(self.start.numel())

    @property
    def dtype(self) -> torch.dtype:
        """The problem's float type."""
        return self.start.dtype

    def flat(self) -> torch.Tensor:
        """The current parameters as one vector (a copy)."""
        return torch.cat([p.detach().reshape(-1) for p in self.parameters])

    def assign(self, vector: torch.Tensor) -> None:
        """Set the parameters from one vector."""
        offset = 0
        with torch.no_grad():  # copies: the parameters never share memory with ``vector``
            for parameter in self.parameters:
                count = parameter.numel()
                parameter.copy_(vector[offset : offset + count].reshape(parameter.shape))
                offset += count

    def reset(self) -> None:
        """Back to the instance's starting point."""
        self.assign(self.start)

    def move(self, update: torch.Tensor) -> None:
        """``x <- x + update``."""
        self.assign(self.flat() + update.to(self.dtype))

    def evaluate(self) -> tuple[float, torch.Tensor]:
        """(objective, flat gradient) at the current parameters."""
        with torch.enable_grad():
            loss = self.instance.loss(self.instance.model, self.batch)
            grads = torch.autograd.grad(loss, self.parameters, allow_unused=True)
        flat = torch.cat(
            [
                torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1)
                for p, g in zip(self.parameters, grads, strict=True)
            ]
        )
        return float(loss.detach()), flat.detach()

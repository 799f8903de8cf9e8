"""The scale a claims run measures at: seeds, budgets, sizes (``optlab claims --scale``).

``default`` is what ``optlab claims`` runs (under 10 minutes on 2 CPU cores; the README
gives the measured time); ``tiny`` is a smoke test of seconds (every claim measured, at a
scale too small for its verdict to mean anything).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from optlab.errors import OptlabError

MAX_SEEDS = 1000
"""At most this many seeds (``--seeds``)."""


class ClaimsError(OptlabError):
    """Invalid input to a claims run."""


@dataclass(frozen=True)
class Scale:
    """What a claims run measures at.

    Attributes:
        name: ``default`` or ``tiny``.
        seeds: seeds (starts, reported seeds, repeats) per claim: 42, 43, ...
        iteration_cap: most iterations of the iteration claims.
        accuracy_problem: the real-data problem of the accuracy claims (the seeds used
            MNIST and CIFAR-10; ``fmnist-mlp`` is Fashion-MNIST, installed here).
        accuracy_steps: its budget (None: the problem's).
        tuning_trials: learning rates tried per optimizer (the bench's grid).
        halving_problem: the multi-init claim's problem.
        members: initialisations in the halving (the seeds' N).
        steps_per_round: steps between eliminations.
        study_steps: each seed-study arm's budget.
        rl_problem: the learned-optimizer claim's family.
        rl_num_problems: PPO training instances.
        rl_timesteps: PPO environment steps.
        rl_instances: held-out instances the policy and Adam are compared on.
    """

    name: str = "default"
    seeds: int = 10
    iteration_cap: int = 20_000
    accuracy_problem: str = "fmnist-mlp"
    accuracy_steps: int | None = None
    tuning_trials: int = 6
    halving_problem: str = "digits-mlp"
    members: int = 16
    steps_per_round: int = 50
    study_steps: int = 600
    rl_problem: str = "logistic"
    rl_num_problems: int = 90
    rl_timesteps: int = 72_000
    rl_instances: int = 5

    def __post_init__(self) -> None:
        seeds = self.seeds
        if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
            raise ClaimsError(f"--seeds must be an integer in [1, {MAX_SEEDS}], got {seeds!r}")


TINY = Scale(
    name="tiny",
    seeds=3,
    iteration_cap=2_000,
    accuracy_problem="digits-mlp",
    accuracy_steps=40,
    halving_problem="logistic",
    members=4,
    steps_per_round=5,
    study_steps=30,
    rl_num_problems=4,
    rl_timesteps=640,
    rl_instances=1,
)
SCALES = {"default": Scale(), "tiny": TINY}


def scale_named(name: str, seeds: int | None = None) -> Scale:
    """The scale ``name`` (``default`` or ``tiny``), with ``seeds`` seeds when given."""
    if name not in SCALES:
        raise ClaimsError(f"--scale must be one of {', '.join(SCALES)}, got {name!r}")
    return SCALES[name] if seeds is None else replace(SCALES[name], seeds=seeds)

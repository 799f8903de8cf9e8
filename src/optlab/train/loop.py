"""One training loop for every problem: analytic, convex or net; full batch or mini-batch.

``train(instance, optimizer, config)`` runs until ``config.steps`` gradient evaluations are
spent (an L-BFGS closure call is one evaluation, so every optimizer gets the same budget),
evaluates the validation split each time another ``eval_every`` gradient evaluations are
spent and at the end (the same checkpoints for every optimizer, L-BFGS included: its steps
are capped at the evaluations left), stops early when the validation loss has not improved
for ``patience`` evaluations (problems with data only; analytic objectives run their whole
budget), and records a non-finite loss as a *diverged* run instead of raising. The test
split is evaluated once, at the end, with the final parameters. Time is training time:
evaluation is not counted in ``seconds``.

Mini-batches: each epoch is a permutation of the training set drawn from a generator seeded
with ``config.data_seed``, cut into ``instance.batch_size`` slices (the last one may be
short). Full batch when ``batch_size`` is None.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from optlab.problems.base import Batch, ProblemInstance

EVAL_CHUNK = 2048  # validation/test batches are evaluated in chunks of this many rows
CURVE_FIELDS = ("step", "evaluations", "seconds", "train_loss", "val_loss", "val_accuracy")


@dataclass(frozen=True)
class TrainConfig:
    """How long and how to train.

    Attributes:
        steps: budget in gradient evaluations (>= 1).
        eval_every: evaluate the validation split every this many gradient evaluations (>= 1).
        patience: early stopping after this many evaluations without a new best validation
            loss (problems with data only); None disables it.
        data_seed: seeds the order of mini-batches.
        record_trajectory: keep the parameter vector after every step (2-D analytic plots).
    """

    steps: int
    eval_every: int
    patience: int | None = 3
    data_seed: int = 42
    record_trajectory: bool = False

    def __post_init__(self) -> None:
        for name in ("steps", "eval_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig: {name} must be an integer >= 1, got {value!r}")
        if self.patience is not None and (
            isinstance(self.patience, bool)
            or not isinstance(self.patience, int)
            or self.patience < 1
        ):
            raise ValueError(
                f"TrainConfig: patience must be an integer >= 1 or None, got {self.patience!r}"
            )


@dataclass
class TrainResult:
    """What one run measured (all plain Python values: it goes to JSON as is)."""

    status: str = "ok"  # "ok" or "diverged"
    steps: int = 0
    evaluations: int = 0
    seconds: float = 0.0
    stopped_early: bool = False
    curve: dict[str, list[float | None]] = field(default_factory=dict)
    final_val_loss: float = math.nan
    best_val_loss: float = math.nan
    final_val_accuracy: float | None = None
    best_val_accuracy: float | None = None
    test_loss: float = math.nan
    test_accuracy: float | None = None
    steps_to_target: int | None = None
    evaluations_to_target: int | None = None
    seconds_to_target: float | None = None
    trajectory: list[list[float]] | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def minibatches(train: Batch, batch_size: int | None, seed: int) -> Iterator[Batch]:
    """Endless mini-batches: a seeded permutation per epoch, cut into ``batch_size`` slices
    (the whole set each time when ``batch_size`` is None)."""
    inputs, targets = train
    if batch_size is None or batch_size >= len(inputs):
        while True:
            yield inputs, targets
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), batch_size):
            index = order[start : start + batch_size]
            yield inputs[index], targets[index]


@torch.no_grad()
def evaluate(instance: ProblemInstance, split: Batch | None) -> tuple[float, float | None]:
    """(mean loss, accuracy or None) of the model on a split (None: the analytic objective)."""
    model = instance.model
    if split is None:
        return float(instance.loss(model, None)), None
    inputs, targets = split
    total_loss, total_correct, count = 0.0, 0.0, 0
    for start in range(0, len(inputs), EVAL_CHUNK):
        chunk = (inputs[start : start + EVAL_CHUNK], targets[start : start + EVAL_CHUNK])
        size = len(chunk[0])
        total_loss += float(instance.loss(model, chunk)) * size
        if instance.accuracy is not None:
            total_correct += float(instance.accuracy(model, chunk)) * size
        count += size
    accuracy = total_correct / count if instance.accuracy is not None and count else None
    return total_loss / max(count, 1), accuracy


def check_lr_fits(optimizer: torch.optim.Optimizer) -> None:
    """:class:`ValueError` (one line, before any step) if a group's ``lr`` is larger than
    its parameters' dtype can hold (e.g. 1e5 for float16): torch's kernels fail on it."""
    for index, group in enumerate(optimizer.param_groups):
        lr = group.get("lr")
        if lr is None:
            continue
        largest = float(torch.as_tensor(lr).abs().max()) if torch.is_tensor(lr) else abs(lr)
        for param in group["params"]:
            if param.is_floating_point() and largest > torch.finfo(param.dtype).max:
                raise ValueError(
                    f"lr {largest:g} of parameter group {index} is larger than its "
                    f"{param.dtype} parameters can hold (at most {torch.finfo(param.dtype).max:g})"
                )


def train(
    instance: ProblemInstance,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    *,
    on_evaluation: Callable[[TrainResult], None] | None = None,
) -> TrainResult:
    """Train ``instance.model`` with ``optimizer`` (see the module docstring)."""
    check_lr_fits(optimizer)
    model = instance.model
    data = instance.data
    batches = minibatches(data.train, instance.batch_size, config.data_seed) if data else None
    validation = data.validation if data else None
    result = TrainResult(
        curve={name: [] for name in CURVE_FIELDS},
        trajectory=[] if config.record_trajectory else None,
    )
    parameters = [p for p in model.parameters() if p.requires_grad]
    if config.record_trajectory:
        result.trajectory.append(_flat(parameters))
    batch: Batch | None = None
    evaluations = 0

    def closure() -> torch.Tensor:
        nonlocal evaluations
        evaluations += 1
        optimizer.zero_grad(set_to_none=True)
        loss = instance.loss(model, batch)
        loss.backward()
        return loss

    steps, seconds, next_evaluation = 0, 0.0, config.eval_every
    train_loss: torch.Tensor | float = math.nan
    limited = _EvaluationLimits(optimizer)
    try:
        while evaluations < config.steps:
            limited.cap(min(config.steps, next_evaluation) - evaluations)
            started = time.perf_counter()
            if batches is not None:
                batch = next(batches)
            train_loss = optimizer.step(closure)
            steps += 1
            seconds += time.perf_counter() - started
            if config.record_trajectory:
                result.trajectory.append(_flat(parameters))
            last = evaluations >= config.steps
            if evaluations < next_evaluation and not last:
                continue
            next_evaluation = (evaluations // config.eval_every + 1) * config.eval_every
            if _checkpoint(instance, validation, config, result, steps, evaluations, seconds,
                           train_loss, on_evaluation):  # fmt: skip
                break
    finally:
        limited.restore()
    result.steps, result.evaluations, result.seconds = steps, evaluations, seconds
    summarise(instance, result)
    return result


class _EvaluationLimits:
    """Caps an L-BFGS-like optimizer's closure calls per step.

    torch's L-BFGS makes up to ``max_eval`` closure calls (``max_iter`` iterations) in one
    ``step``; capping both at the evaluations left before the next checkpoint keeps every
    optimizer within the same budget and evaluated at the same checkpoints (its history
    carries over from step to step). Groups without ``max_eval`` are left alone.
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.groups = [g for g in optimizer.param_groups if "max_eval" in g and "max_iter" in g]
        self.saved = [(g["max_eval"], g["max_iter"]) for g in self.groups]

    def cap(self, remaining: int) -> None:
        for group, (max_eval, max_iter) in zip(self.groups, self.saved, strict=True):
            group["max_eval"] = min(max_eval, remaining)
            group["max_iter"] = min(max_iter, remaining)

    def restore(self) -> None:
        for group, (max_eval, max_iter) in zip(self.groups, self.saved, strict=True):
            group["max_eval"], group["max_iter"] = max_eval, max_iter


def _checkpoint(
    instance: ProblemInstance,
    validation: Batch | None,
    config: TrainConfig,
    result: TrainResult,
    steps: int,
    evaluations: int,
    seconds: float,
    train_loss: torch.Tensor | float | None,
    on_evaluation: Callable[[TrainResult], None] | None,
) -> bool:
    """Evaluate, record, and say whether training stops (divergence or early stopping)."""
    value, accuracy = evaluate(instance, validation)
    current_train = _as_float(train_loss)
    _append(result, steps, evaluations, seconds, current_train, value, accuracy)
    if not (math.isfinite(value) and math.isfinite(current_train)):
        result.status = "diverged"
        return True
    if value <= instance.target and result.steps_to_target is None:
        result.steps_to_target = steps
        result.evaluations_to_target = evaluations
        result.seconds_to_target = seconds
    if on_evaluation is not None:
        on_evaluation(result)
    if instance.data is None or config.patience is None:
        return False
    losses = result.curve["val_loss"]
    first_best = losses.index(min(losses))  # the first evaluation that reached the best
    if len(losses) - 1 - first_best >= config.patience:
        result.stopped_early = True
        return True
    return False


def _as_float(loss: torch.Tensor | float | None) -> float:
    if loss is None:
        return math.nan
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)


def _flat(parameters: list[torch.Tensor]) -> list[float]:
    return torch.cat([p.detach().reshape(-1) for p in parameters]).double().tolist()


def _append(
    result: TrainResult,
    steps: int,
    evaluations: int,
    seconds: float,
    train_loss: float,
    value: float,
    accuracy: float | None,
) -> None:
    curve = result.curve
    curve["step"].append(steps)
    curve["evaluations"].append(evaluations)
    curve["seconds"].append(seconds)
    curve["train_loss"].append(train_loss)
    curve["val_loss"].append(value)
    curve["val_accuracy"].append(accuracy)


def summarise(instance: ProblemInstance, result: TrainResult) -> None:
    """Fill ``result``'s final/best validation values from its curve and, for a run that
    ended ``ok``, read the test split once (with the model as it ended)."""
    losses = [v for v in result.curve["val_loss"] if v is not None]
    if losses:
        result.final_val_loss = losses[-1]
        finite = [v for v in losses if math.isfinite(v)]
        result.best_val_loss = min(finite) if finite else math.nan
    accuracies = [a for a in result.curve["val_accuracy"] if a is not None]
    if accuracies:
        result.final_val_accuracy = accuracies[-1]
        result.best_val_accuracy = max(accuracies)
    if result.status == "ok":
        test = instance.data.test if instance.data else None
        result.test_loss, result.test_accuracy = evaluate(instance, test)

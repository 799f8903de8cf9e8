"""The training loop: budgets, evaluation, early stopping, divergence, L-BFGS, time-to-target."""

from __future__ import annotations

import math

import pytest
import torch

from optlab.optim import create
from optlab.problems.base import DataSplits, ProblemInstance
from optlab.train.loop import TrainConfig, train


class Point(torch.nn.Module):
    def __init__(self, start: list[float]) -> None:
        super().__init__()
        self.x = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))


def quadratic(target: float = 1e-6) -> ProblemInstance:
    return ProblemInstance(
        name="q",
        model=Point([1.0, -2.0]),
        loss=lambda model, batch: torch.sum(model.x**2),
        data=None,
        target=target,
        optimum=0.0,
        plot_bounds=((-3.0, 3.0), (-3.0, 3.0)),
    )


def regression(batch_size: int | None = 8, noise: float = 0.1) -> ProblemInstance:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(96, 3, generator=generator)
    targets = inputs @ torch.tensor([1.0, -2.0, 0.5]) + noise * torch.randn(96, generator=generator)

    def split(a: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        return inputs[a:b], targets[a:b]

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    return ProblemInstance(
        name="r",
        model=model,
        loss=lambda m, batch: torch.mean((m(batch[0]).squeeze(-1) - batch[1]) ** 2),
        data=DataSplits(split(0, 64), split(64, 80), split(80, 96)),
        target=0.05,
        batch_size=batch_size,
    )


def test_budget_counts_gradient_evaluations_and_curve_is_complete() -> None:
    instance = quadratic()
    result = train(instance, create("sgd", instance.model.parameters(), lr=0.1),
                   TrainConfig(steps=50, eval_every=10))  # fmt: skip
    assert result.steps == result.evaluations == 50
    assert result.curve["step"] == [10, 20, 30, 40, 50]
    assert all(len(v) == 5 for v in result.curve.values())
    assert result.final_val_loss == result.curve["val_loss"][-1] < 1e-6
    assert result.steps_to_target is not None and result.steps_to_target <= 50
    assert result.test_loss == pytest.approx(result.final_val_loss)


def test_lbfgs_closure_calls_count_against_the_budget() -> None:
    instance = quadratic()
    optimizer = create("lbfgs", instance.model.parameters(), lr=1.0, max_iter=5)
    result = train(instance, optimizer, TrainConfig(steps=12, eval_every=12))
    assert result.evaluations == 12 and result.steps < result.evaluations


def test_divergence_is_recorded_not_raised() -> None:
    instance = quadratic()
    optimizer = create("sgd", instance.model.parameters(), lr=10.0)
    result = train(instance, optimizer, TrainConfig(steps=2000, eval_every=5))
    assert result.status == "diverged"
    assert result.steps < 2000
    assert not math.isfinite(result.final_val_loss)


def test_early_stopping_after_patience_evaluations_without_improvement() -> None:
    instance = regression(noise=1.0)
    optimizer = create("sgd", instance.model.parameters(), lr=0.5)
    result = train(instance, optimizer, TrainConfig(steps=5000, eval_every=5, patience=3))
    assert result.stopped_early and result.steps < 5000
    losses = result.curve["val_loss"]
    assert min(losses[-3:]) >= min(losses[:-3])


def test_minibatch_order_follows_the_data_seed() -> None:
    def run(seed: int) -> torch.Tensor:
        instance = regression()
        optimizer = create("sgd", instance.model.parameters(), lr=0.05)
        train(instance, optimizer, TrainConfig(steps=20, eval_every=20, data_seed=seed))
        return instance.model.weight.detach().clone()

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_trajectory_is_recorded_from_the_start_point() -> None:
    instance = quadratic()
    optimizer = create("sgd", instance.model.parameters(), lr=0.1)
    result = train(instance, optimizer, TrainConfig(steps=5, eval_every=5, record_trajectory=True))
    assert result.trajectory[0] == [1.0, -2.0]
    assert len(result.trajectory) == 6


@pytest.mark.parametrize(
    ("field", "value"), [("steps", 0), ("eval_every", -1), ("patience", 0), ("steps", 2.5)]
)
def test_invalid_config_names_the_field(field: str, value) -> None:
    arguments = {"steps": 10, "eval_every": 1, field: value}
    with pytest.raises(ValueError, match=field):
        TrainConfig(**arguments)


@pytest.mark.parametrize("budget", [3, 30, 57])
def test_lbfgs_never_exceeds_the_budget_and_is_evaluated_on_the_same_checkpoints(budget) -> None:
    instance = regression(batch_size=None)
    optimizer = create("lbfgs", instance.model.parameters(), lr=0.5)
    config = TrainConfig(steps=budget, eval_every=10, patience=None)
    result = train(instance, optimizer, config)
    assert result.evaluations == budget
    expected = [*range(10, budget + 1, 10)] + ([budget] if budget % 10 else [])
    assert result.curve["evaluations"] == expected
    assert optimizer.param_groups[0]["max_eval"] == 25  # restored after training


def test_evaluation_runs_the_model_once_per_chunk_and_equals_loss_and_accuracy() -> None:
    """A net's validation pass computes its loss and accuracy from ONE forward pass per chunk
    (the problems' ``loss_and_accuracy``), with the numbers of the separate functions."""
    from optlab.problems.nets import class_accuracy, cross_entropy_and_accuracy, cross_entropy_loss
    from optlab.train.loop import EVAL_CHUNK, evaluate

    torch.manual_seed(0)
    rows = 2 * EVAL_CHUNK + 3  # two full chunks and a short one
    inputs, labels = torch.randn(rows, 5), torch.randint(0, 3, (rows,))
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    calls = []
    model.register_forward_hook(lambda module, args, output: calls.append(len(args[0])))
    split = (inputs, labels)
    instance = ProblemInstance(
        name="n",
        model=model,
        loss=cross_entropy_loss,
        data=DataSplits(split, split, split),
        target=0.0,
        accuracy=class_accuracy,
        loss_and_accuracy=cross_entropy_and_accuracy,
        batch_size=8,
    )
    loss, accuracy = evaluate(instance, split)
    assert calls == [EVAL_CHUNK, EVAL_CHUNK, 3]
    with torch.no_grad():
        assert loss == pytest.approx(float(cross_entropy_loss(model, split)), rel=1e-6)
        assert accuracy == pytest.approx(float(class_accuracy(model, split)), rel=1e-6)
    calls.clear()
    separate = ProblemInstance(**{**instance.__dict__, "loss_and_accuracy": None})
    assert evaluate(separate, split) == (loss, accuracy)  # the same numbers, chunk by chunk
    assert calls == [EVAL_CHUNK, EVAL_CHUNK, EVAL_CHUNK, EVAL_CHUNK, 3, 3]

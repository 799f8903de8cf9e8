"""The population's loss paths (batched MLP == vmap == separate models, float64) and the
CUDA-graph step: its requirement errors everywhere, its numbers where CUDA exists."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from optlab import problems
from optlab.optim import create
from optlab.problems import BuildContext
from optlab.train.population import (
    GraphedStep,
    HalvingConfig,
    Population,
    PopulationError,
    capturable_problem,
    mlp_plan,
    population_optimizer,
    static_shape_problem,
    successive_halving,
)

pytestmark = pytest.mark.usefixtures("one_thread")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def digits(seed: int, dtype: torch.dtype = torch.float64, device: str = "cpu"):
    instance = problems.build(
        "digits-mlp", BuildContext(instance_seed=7, init_seed=seed, device=device)
    )
    data = instance.data
    instance.data = dataclasses.replace(
        data, **{name: (getattr(data, name)[0].to(dtype), getattr(data, name)[1])
                 for name in ("train", "validation", "test")},
    )  # fmt: skip
    instance.model = instance.model.to(dtype)
    return instance


def test_mlp_plan_covers_mlps_under_cross_entropy_only() -> None:
    assert [kind for kind, _ in mlp_plan(digits(1))] == ["flatten", "linear", "activation",
                                                         "linear"]  # fmt: skip
    assert mlp_plan(problems.build("logistic", BuildContext())) is None  # its own loss
    cnn = digits(1)
    cnn.model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2, 10))
    assert mlp_plan(cnn) is None
    normed = digits(1)
    normed.model = nn.Sequential(nn.Linear(64, 8), nn.BatchNorm1d(8), nn.Linear(8, 10))
    assert mlp_plan(normed) is None
    with pytest.raises(PopulationError, match=r"batched=True needs an nn\.Sequential"):
        Population([problems.build("logistic", BuildContext())], [0], batched=True)


def test_batched_losses_and_gradients_equal_vmap_in_float64() -> None:
    seeds = [1, 2, 3]
    batched = Population([digits(s) for s in seeds], seeds)
    vmapped = Population([digits(s) for s in seeds], seeds, batched=False)
    assert (batched.path, vmapped.path) == ("batched-mlp", "vmap")
    batch = (batched.template.data.train[0][:64], batched.template.data.train[1][:64])
    a, b = batched.losses(batch), vmapped.losses(batch)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    a.sum().backward()
    b.sum().backward()
    for name, param in batched.params.items():
        torch.testing.assert_close(param.grad, vmapped.params[name].grad, rtol=1e-10,
                                   atol=1e-12)  # fmt: skip
    torch.testing.assert_close(
        batched.evaluate(batched.template.data.validation),
        vmapped.evaluate(vmapped.template.data.validation), rtol=1e-12, atol=1e-12,
    )  # fmt: skip


def test_a_batched_population_equals_its_members_trained_alone_in_float64() -> None:
    seeds = [1, 2, 3]
    population = Population([digits(s) for s in seeds], seeds)
    assert population.path == "batched-mlp"
    stacked = create("adam", list(population.params.values()), lr=1e-2)
    inputs, labels = population.template.data.train
    batches = [(inputs[i : i + 64], labels[i : i + 64]) for i in range(0, 15 * 64, 64)]
    for batch in batches:
        stacked.zero_grad()
        population.losses(batch).sum().backward()
        stacked.step()
    for member, seed in enumerate(seeds):
        alone = digits(seed)
        opt = create("adam", alone.model.parameters(), lr=1e-2)
        for batch in batches:
            opt.zero_grad()
            alone.loss(alone.model, batch).backward()
            opt.step()
        for name, param in alone.model.named_parameters():
            torch.testing.assert_close(
                population.params[f"model.{name}"][member], param.detach(), rtol=1e-10,
                atol=1e-10,
            )  # fmt: skip


# ---------------------------------------------------------------- CUDA graphs: the errors
def test_cuda_graph_setting_is_validated() -> None:
    with pytest.raises(PopulationError, match="cuda_graph must be True or False, got 'yes'"):
        HalvingConfig(cuda_graph="yes")


def test_cuda_graph_on_cpu_tensors_is_an_error_that_says_why() -> None:
    config = HalvingConfig(members=2, steps_per_round=2, cuda_graph=True)
    expected = "cuda_graph=True needs (CUDA|every parameter on one CUDA device)"
    with pytest.raises(PopulationError, match=expected):
        successive_halving(digits, [1, 2], "adam", {"lr": 1e-3}, config)


def test_which_optimizers_a_graph_can_capture() -> None:
    params = [torch.zeros(3, 2, requires_grad=True)]
    assert capturable_problem(torch.optim.Adam(params, capturable=True)) is None
    assert capturable_problem(torch.optim.SGD(params, lr=0.1, momentum=0.9)) is None
    assert "needs capturable=True" in capturable_problem(torch.optim.Adam(params))
    assert "host" in capturable_problem(create("imo", params))
    adam = population_optimizer("adam", params, {"lr": 1e-3}, capturable=True)
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["capturable"]
    with pytest.raises(PopulationError, match=r"IMO \(.*\) is not capturable"):
        population_optimizer("imo", params, {}, capturable=True)
    with pytest.raises(PopulationError, match="per-member learning rates"):
        population_optimizer("adam", params, {"lr": torch.tensor([0.1, 0.2, 0.3])},
                             capturable=True)  # fmt: skip


def test_static_shape_problems_are_explained() -> None:
    static = (torch.zeros(64, 8), torch.zeros(64, dtype=torch.long))
    assert static_shape_problem((torch.ones(64, 8), torch.ones(64, dtype=torch.long)),
                                static) is None  # fmt: skip
    short = static_shape_problem((torch.ones(54, 8), torch.ones(54, dtype=torch.long)), static)
    assert short == (
        "inputs of shape (54, 8), but the graph was captured for (64, 8) "
        "(a CUDA graph replays fixed shapes)"
    )
    dtype = static_shape_problem((torch.ones(64, 8).double(), static[1]), static)
    assert dtype == "inputs of dtype torch.float64, but the graph was captured for torch.float32"
    assert "captured with a batch" in static_shape_problem(None, static)


# ---------------------------------------------------------------- CUDA graphs: the numbers
@cuda
def test_a_graphed_population_step_equals_the_eager_step() -> None:
    seeds = [1, 2, 3, 4]

    def trained(graph: bool) -> Population:
        population = Population([digits(s, torch.float32, "cuda") for s in seeds], seeds)
        optimizer = torch.optim.Adam(list(population.params.values()), lr=1e-3, capturable=True)
        step = GraphedStep(population, optimizer) if graph else None
        inputs, labels = population.template.data.train
        for start in [*range(0, 20 * 64, 64), len(inputs) - 10]:  # ends on a short batch
            batch = (inputs[start : start + 64], labels[start : start + 64])
            if step is None:
                optimizer.zero_grad(set_to_none=True)
                population.losses(batch).sum().backward()
                optimizer.step()
            else:
                step.step(batch)
        if step is not None:
            assert step.graph is not None and step.replays == 17  # 3 warm-up, 1 short batch
        return population

    graphed, eager = trained(True), trained(False)
    for name, param in graphed.params.items():
        torch.testing.assert_close(param, eager.params[name], rtol=1e-5, atol=1e-6)


@cuda
def test_graphed_halving_recaptures_after_each_elimination_and_matches_eager() -> None:
    def build(seed: int):
        return digits(seed, torch.float32, "cuda")

    config = HalvingConfig(members=4, steps_per_round=25, final_steps=10)
    graphed, _ = successive_halving(build, [1, 2, 3, 4], "adam", {"lr": 1e-3},
                                    dataclasses.replace(config, cuda_graph=True))  # fmt: skip
    eager, _ = successive_halving(build, [1, 2, 3, 4], "adam", {"lr": 1e-3}, config)
    assert [r["kept"] for r in graphed.rounds] == [r["kept"] for r in eager.rounds]
    assert graphed.final_val_loss == pytest.approx(eager.final_val_loss, rel=1e-4)

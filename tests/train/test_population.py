"""Population core: stacked == separate, exact survivors, optimizer state carried over."""

from __future__ import annotations

import math

import pytest
import torch

from optlab import problems
from optlab.optim import create
from optlab.problems import BuildContext
from optlab.train.population import (
    HalvingConfig,
    Population,
    PopulationError,
    successive_halving,
    survivors,
)


def _logistic(seed: int):
    return problems.build("logistic", BuildContext(instance_seed=7, init_seed=seed))


def _digits(seed: int):
    return problems.build("digits-mlp", BuildContext(instance_seed=7, init_seed=seed))


# Forward/backward through vmap rounds a matmul differently from a lone model (last bit);
# on the same gradients the rules are bit for bit population-safe (contract "population").
# MAMGD's secant (g - g_prev) / (theta - theta_prev) amplifies that last bit, so its float64
# tolerance is wider; digits-mlp runs in float32.
@pytest.mark.parametrize(("build", "optimizer", "lr", "rtol"), [
    (_logistic, "imo", 0.05, 1e-10), (_logistic, "adam", 0.05, 1e-10),
    (_logistic, "mamgd", 0.05, 1e-7), (_digits, "adam", 1e-3, 1e-5),
])  # fmt: skip
def test_a_population_equals_its_members_trained_alone(build, optimizer, lr, rtol) -> None:
    seeds = [1, 2, 3]
    population = Population([build(seed) for seed in seeds], seeds)
    stacked = create(optimizer, list(population.params.values()), lr=lr)
    template = population.template
    batch = (template.data.train[0][:64], template.data.train[1][:64])
    for _ in range(15):
        stacked.zero_grad()
        population.losses(batch).sum().backward()
        stacked.step()
    for member, seed in enumerate(seeds):
        alone = build(seed)
        opt = create(optimizer, alone.model.parameters(), lr=lr)
        for _ in range(15):
            opt.zero_grad()
            alone.loss(alone.model, batch).backward()
            opt.step()
        for name, param in alone.model.named_parameters():
            torch.testing.assert_close(
                population.params[f"model.{name}"][member], param.detach(), rtol=rtol, atol=rtol
            )


def test_elimination_keeps_ceil_n_r_and_carries_the_optimizer_state() -> None:
    seeds = list(range(5))
    population = Population([_logistic(seed) for seed in seeds], seeds)
    opt = create("adam", list(population.params.values()), lr=0.05)
    batch = None if population.template.data is None else population.template.data.train
    for _ in range(3):
        opt.zero_grad()
        population.losses(batch).sum().backward()
        opt.step()
    before = {
        name: {k: v.clone() for k, v in opt.state[param].items()}
        for name, param in population.params.items()
    }
    values = {name: p.detach().clone() for name, p in population.params.items()}
    kept = survivors(population.evaluate(population.template.data.validation), 0.5)
    assert len(kept) == math.ceil(5 * 0.5) == 3
    population.keep(kept, opt)
    assert population.seeds == [seeds[i] for i in kept]
    for name, param in population.params.items():
        assert torch.equal(param.detach(), values[name][kept])
        state = opt.state[param]
        assert torch.equal(state["exp_avg"], before[name]["exp_avg"][kept])
        assert torch.equal(state["exp_avg_sq"], before[name]["exp_avg_sq"][kept])
        assert torch.equal(state["step"], before[name]["step"])
    opt.zero_grad()
    population.losses(batch).sum().backward()
    opt.step()  # keeps working on the sliced tensors


def test_successive_halving_rounds_and_winner() -> None:
    config = HalvingConfig(members=6, reduce_factor=0.5, steps_per_round=5, final_steps=5)
    result, population = successive_halving(_logistic, list(range(6)), "imo", {"lr": 0.05}, config)
    sizes = [len(r["seeds"]) for r in result.rounds]
    assert sizes == [6, 3, 2]
    assert [len(r["kept"]) for r in result.rounds] == [3, 2, 1]
    assert len(population) == 1 and result.winner_seed == result.rounds[-1]["kept"][0]
    assert math.isfinite(result.final_val_loss)


def test_survivors_rank_nan_last_and_keep_at_least_one() -> None:
    losses = torch.tensor([0.3, math.nan, 0.1, 0.2])
    assert survivors(losses, 0.5) == [2, 3]
    assert survivors(losses, 0.01) == [2]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"members": 0}, "members must be an integer >= 1"),
        ({"reduce_factor": 1.0}, r"reduce_factor must be in \(0, 1\)"),
        ({"reduce_factor": 0}, r"reduce_factor must be in \(0, 1\)"),
        ({"steps_per_round": 0}, "steps_per_round"),
    ],
)
def test_bad_settings_name_the_field(arguments: dict, message: str) -> None:
    with pytest.raises(PopulationError, match=message):
        HalvingConfig(**arguments)


def test_lbfgs_is_refused_clearly() -> None:
    with pytest.raises(PopulationError, match="lbfgs cannot be vectorised"):
        successive_halving(_logistic, [1, 2], "lbfgs", {}, HalvingConfig(members=2))


@pytest.mark.parametrize("optimizer", ["imo", "mamgd"])
def test_per_member_learning_rates_equal_separate_optimizers(optimizer: str) -> None:
    seeds, lrs = [1, 1, 1], [0.01, 0.05, 0.2]  # one init, a learning-rate sweep
    population = Population([_logistic(seed) for seed in seeds], seeds)
    stacked = create(
        optimizer, list(population.params.values()), lr=torch.tensor(lrs, dtype=torch.float64)
    )
    batch = population.template.data.train
    for _ in range(15):
        stacked.zero_grad()
        population.losses(batch).sum().backward()
        stacked.step()
    rtol = 1e-10 if optimizer == "imo" else 1e-7  # see the comment above the first test
    for member, lr in enumerate(lrs):
        alone = _logistic(seeds[member])
        opt = create(optimizer, alone.model.parameters(), lr=lr)
        for _ in range(15):
            opt.zero_grad()
            alone.loss(alone.model, batch).backward()
            opt.step()
        for name, param in alone.model.named_parameters():
            torch.testing.assert_close(
                population.params[f"model.{name}"][member], param.detach(), rtol=rtol, atol=rtol
            )


def test_per_member_learning_rates_are_validated() -> None:
    param = torch.zeros(3, 2, requires_grad=True)
    with pytest.raises(ValueError, match=r"imo: lr must hold finite numbers >= 0"):
        create("imo", [param], lr=torch.tensor([0.1, -0.1, 0.1]))
    optimizer = create("imo", [param], lr=torch.tensor([0.1, 0.2]))
    param.grad = torch.ones(3, 2)
    with pytest.raises(ValueError, match="2 per-member learning rates need parameters stacked"):
        optimizer.step()


def test_torch_baselines_take_per_member_lrs_through_their_twins() -> None:
    from optlab.optim import twins
    from optlab.train.population import population_optimizer

    stacked = [torch.zeros(3, 2, requires_grad=True)]
    lrs = torch.tensor([0.1, 0.2, 0.3])
    assert isinstance(population_optimizer("adam", stacked, {"lr": lrs}), twins.Adam)
    momentum = population_optimizer("momentum", stacked, {"lr": lrs})
    assert isinstance(momentum, twins.SGD) and momentum.param_groups[0]["momentum"] == 0.9
    assert isinstance(population_optimizer("adam", stacked, {"lr": 0.1}), torch.optim.Adam)


def test_seed_study_measures_three_arms_per_repeat() -> None:
    from optlab.train.population import seed_study, steps_to_target

    config = HalvingConfig(members=4, reduce_factor=0.5, steps_per_round=5)
    study = seed_study(_logistic, "adam", {"lr": 0.05}, config, steps=60, eval_every=10,
                       repeats=2)  # fmt: skip
    assert len(study.winner) == len(study.default) == len(study.median) == 2
    assert study.winner_seeds[0] in range(1000, 1004)
    assert study.winner_seeds[1] in range(1004, 1008)
    for value in (*study.winner, *study.default, *study.median):
        assert value == math.inf or (10 <= value <= 60 and value % 10 == 0)
    assert study.target == _logistic(0).target
    for curve in study.curves:  # evaluated at 10, 20, ..., 60: one loss per arm and step
        assert curve["step"] == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
        assert all(len(curve[arm]) == 6 for arm in ("winner", "default", "median"))
    summary = study.summary()
    assert set(summary) >= {"winner_mean", "default_mean", "median_mean", "saving_vs_default_mean"}
    # steps_to_target on its own: a member that starts at the optimum region reaches it
    population = Population([_logistic(1)], [1])
    opt = create("adam", list(population.params.values()), lr=0.05)
    reached = steps_to_target(population, opt, 200, 10, 0)
    assert reached[0] <= 200


@pytest.mark.parametrize("factor", [0.5, 0.6, 0.9, 0.99])
def test_every_round_eliminates_someone_whatever_the_factor(factor: float) -> None:
    from optlab.bench.ray_backend import halving_rounds
    from optlab.train.population import kept_count

    alive, rounds = 16, 0
    while alive > 1:
        kept = kept_count(alive, factor)
        assert kept == min(alive - 1, math.ceil(alive * factor))
        alive, rounds = kept, rounds + 1
    assert rounds == halving_rounds(16, factor)
    assert kept_count(2, factor) == 1 and kept_count(1, factor) == 1


def test_per_member_data_orders_equal_lone_models_with_their_own_orders() -> None:
    from optlab.train.loop import minibatches
    from optlab.train.population import MemberBatches

    seeds, data_seeds = [1, 2, 3], [42, 43, 44]
    population = Population([_digits(seed) for seed in seeds], seeds)
    stacked = create("adam", list(population.params.values()), lr=1e-3)
    stream = MemberBatches(population.template, data_seeds)
    for _ in range(6):
        stacked.zero_grad()
        population.losses(next(stream), per_member=True).sum().backward()
        stacked.step()
    different = 0
    for member, (seed, data_seed) in enumerate(zip(seeds, data_seeds, strict=True)):
        alone = _digits(seed)
        opt = create("adam", alone.model.parameters(), lr=1e-3)
        batches = minibatches(alone.data.train, alone.batch_size, data_seed)
        for _ in range(6):
            opt.zero_grad()
            alone.loss(alone.model, next(batches)).backward()
            opt.step()
        for name, param in alone.model.named_parameters():
            torch.testing.assert_close(
                population.params[f"model.{name}"][member], param.detach(), rtol=1e-5, atol=1e-5
            )
        shared = _digits(seed)  # the same member on the shared order (data seed 42) differs
        opt = create("adam", shared.model.parameters(), lr=1e-3)
        batches = minibatches(shared.data.train, shared.batch_size, 42)
        for _ in range(6):
            opt.zero_grad()
            shared.loss(shared.model, next(batches)).backward()
            opt.step()
        different += not torch.allclose(shared.model[-1].weight, alone.model[-1].weight)
    assert different == 2  # members 2 and 3 saw other batches than the shared order


def test_per_member_halving_resumes_to_the_same_result(tmp_path) -> None:
    config = HalvingConfig(
        members=4, reduce_factor=0.5, steps_per_round=4, final_steps=2, data_order="per-member"
    )

    def halve(folder=None, on_round=None):
        return successive_halving(
            _digits, [1, 2, 3, 4], "adam", {"lr": 1e-3}, config, checkpoint_dir=folder,
            on_round=on_round,
        )[0]  # fmt: skip

    whole = halve()
    shared = successive_halving(
        _digits, [1, 2, 3, 4], "adam", {"lr": 1e-3},
        HalvingConfig(members=4, reduce_factor=0.5, steps_per_round=4, final_steps=2),
    )[0]  # fmt: skip
    assert whole.rounds[0]["val_loss"] != shared.rounds[0]["val_loss"]

    def stop(record):
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        halve(tmp_path, stop)
    assert halve(tmp_path) == whole


def test_data_order_is_validated() -> None:
    with pytest.raises(PopulationError, match="data_order must be one of shared, per-member"):
        HalvingConfig(data_order="random")
    with pytest.raises(PopulationError, match="needs data_order='shared'"):
        HalvingConfig(cuda_graph=True, data_order="per-member")

"""Network problems: forward/backward, accuracy, init seed, splits, every model's shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from optlab import problems
from optlab.problems import BuildContext
from optlab.problems.datasets import halve_indices, split_indices
from optlab.problems.nets import SPECS

BUNDLED = ["mlp-synthetic", "digits-mlp", "mnist-5k"]
SIZES = {"mlp-synthetic": (1000, 2, 2), "digits-mlp": (1797, 64, 10), "mnist-5k": (5000, 784, 10)}
INPUTS = {"MNIST": (1, 28, 28), "CIFAR10": (3, 32, 32), "CIFAR100": (3, 32, 32)}


def _parameters(instance: problems.ProblemInstance) -> list[torch.Tensor]:
    return [p.detach().clone() for p in instance.model.parameters()]


def test_the_net_set() -> None:
    assert all(entry.kind == "net" for entry in SPECS)
    assert [entry.name for entry in SPECS][:3] == BUNDLED


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_problem(name: str) -> None:
    instance = problems.build(name, BuildContext(instance_seed=3, init_seed=4))
    total, features, classes = SIZES[name]
    data = instance.data
    sizes = [len(y) for _, y in (data.train, data.validation, data.test)]
    assert sum(sizes) == total
    assert sizes[0] == pytest.approx(0.6 * total, abs=10)
    assert sizes[1] == pytest.approx(0.2 * total, abs=10)
    x, y = data.train
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape[1] == features
    assert set(y.tolist()) == set(range(classes))
    if name != "mlp-synthetic":
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    # stratified: each class keeps its share in every split
    for _, labels in (data.train, data.validation, data.test):
        shares = torch.bincount(labels, minlength=classes) / len(labels)
        assert float(shares.max() - shares.min()) < 0.05

    batch = (x[:64], y[:64])
    loss = instance.loss(instance.model, batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in instance.model.parameters())
    accuracy = float(instance.accuracy(instance.model, data.validation))
    assert 0.0 <= accuracy <= 1.0
    assert instance.optimum is None and instance.target > 0

    again = problems.build(name, BuildContext(instance_seed=3, init_seed=4))
    pairs = zip(_parameters(again), _parameters(instance), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    assert torch.equal(again.data.validation[0], data.validation[0])
    other_init = problems.build(name, BuildContext(instance_seed=3, init_seed=5))
    assert not torch.equal(_parameters(other_init)[0], _parameters(instance)[0])
    assert torch.equal(other_init.data.train[0], x)
    other_instance = problems.build(name, BuildContext(instance_seed=8, init_seed=4))
    assert torch.equal(_parameters(other_instance)[0], _parameters(again)[0])
    assert not torch.equal(other_instance.data.validation[0], data.validation[0])


def test_batch_sizes() -> None:
    sizes = {entry.name: entry.build.batch_size for entry in SPECS}
    assert sizes["digits-mlp"] == sizes["mnist-5k"] == 64
    assert sizes["mnist-mlp"] == sizes["mnist-cnn"] == 64
    assert sizes["cifar10-cnn"] == sizes["cifar100-cnn"] == 128


@pytest.mark.parametrize("entry", [e for e in SPECS if e.needs_data], ids=lambda e: e.name)
def test_data_set_models_take_images(entry: problems.ProblemSpec) -> None:
    model = entry.build.model()
    images = torch.rand(3, *INPUTS[entry.needs_data])
    classes = 100 if entry.needs_data == "CIFAR100" else 10
    assert model(images).shape == (3, classes)


def test_split_indices_are_disjoint_and_cover() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=101)
    for parts in (split_indices(101, rng), split_indices(101, rng, labels)):
        joined = np.concatenate(parts)
        assert sorted(joined.tolist()) == list(range(101))
        assert [len(p) for p in parts] == pytest.approx([60.6, 20.2, 20.2], abs=2)
    validation, test = halve_indices(11, rng)
    assert len(validation) == 5 and sorted([*validation, *test]) == list(range(11))

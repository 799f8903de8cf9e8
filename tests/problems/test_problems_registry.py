"""The problem registry: stable names, unknown names, seeds, availability, pickling."""

from __future__ import annotations

import pickle

import pytest
import torch

from optlab import problems
from optlab.problems import BuildContext, ProblemError

EXPECTED = (
    "quadratic-well", "quadratic-ill", "rosenbrock-2d", "rosenbrock-10d", "beale",
    "rastrigin", "himmelblau", "spd-quadratic", "logistic", "robust-regression",
    "breast-cancer", "mlp-synthetic", "digits-mlp", "mnist-5k", "mnist-mlp", "mnist-mlp-64",
    "mnist-cnn", "cifar10-mlp", "cifar10-cnn", "cifar100-cnn", "fmnist-mlp", "fmnist-2c2d",
    "mnist1d-logistic", "mnist1d-mlp", "mnist1d-cnn",
)  # fmt: skip
NEEDS = {
    "mnist-mlp": "MNIST",
    "mnist-mlp-64": "MNIST",
    "mnist-cnn": "MNIST",
    "cifar10-mlp": "CIFAR10",
    "cifar10-cnn": "CIFAR10",
    "cifar100-cnn": "CIFAR100",
    "fmnist-mlp": "FashionMNIST",
    "fmnist-2c2d": "FashionMNIST",
}


def test_names_are_the_stable_set_in_registration_order() -> None:
    assert problems.names() == EXPECTED


def test_specs_are_consistent() -> None:
    for name in EXPECTED:
        entry = problems.spec(name)
        assert entry.name == name
        assert entry.kind in ("analytic", "convex", "net")
        assert 0 < entry.eval_every <= entry.steps
        assert entry.description and "\n" not in entry.description
        assert entry.needs_data == NEEDS.get(name)
        assert (entry.kind == "net") == (name in EXPECTED[11:])


@pytest.mark.parametrize("call", [problems.spec, problems.build])
def test_unknown_name_lists_the_known_ones(call) -> None:
    with pytest.raises(ProblemError) as caught:
        call("rosenbrok")
    message = str(caught.value)
    assert "'rosenbrok'" in message and "\n" not in message
    assert ", ".join(EXPECTED) in message


def test_available_without_data(tmp_path, monkeypatch) -> None:
    from optlab.problems import fashion

    monkeypatch.setattr(fashion, "SYSTEM_DIR", tmp_path)  # as if the Debian package were absent
    for name in EXPECTED:
        assert problems.available(name, None) == (problems.spec(name).needs_data is None)
    with pytest.raises(ProblemError, match="known problems"):
        problems.available("nope", None)


@pytest.mark.parametrize("field", ["instance_seed", "init_seed"])
@pytest.mark.parametrize("value", [-1, 1.5, "3", True])
def test_bad_seeds_name_the_field(field: str, value: object) -> None:
    context = BuildContext(**{field: value})
    with pytest.raises(ProblemError, match=rf"rosenbrock-2d: {field} must be an integer >= 0"):
        problems.build("rosenbrock-2d", context)


def test_build_leaves_the_global_rng_alone() -> None:
    state = torch.get_rng_state()
    for name in ("rosenbrock-2d", "spd-quadratic", "logistic", "mlp-synthetic"):
        problems.build(name, BuildContext(instance_seed=7, init_seed=9))
    assert torch.equal(state, torch.get_rng_state())


def test_specs_and_instances_pickle() -> None:
    for name in EXPECTED:
        entry = pickle.loads(pickle.dumps(problems.spec(name)))
        assert entry.name == name
    instance = problems.build("logistic")
    copied = pickle.loads(pickle.dumps(instance))
    batch = instance.data.validation
    assert copied.loss(copied.model, batch).item() == instance.loss(instance.model, batch).item()


def test_default_context() -> None:
    assert problems.build("beale").name == "beale"
    assert problems.build("beale", BuildContext()).target == problems.build("beale").target

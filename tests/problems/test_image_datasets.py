"""MNIST and CIFAR from a data dir: tiny files in torchvision's formats, splits, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_datasets import TEST_IMAGES, TRAIN_IMAGES, write_cifar10, write_cifar100, write_mnist

from optlab import problems
from optlab.problems import BuildContext, ProblemError
from optlab.problems.datasets import expected_files

MNIST_PROBLEMS = ("mnist-mlp", "mnist-mlp-64", "mnist-cnn")
CIFAR_PROBLEMS = ("cifar10-mlp", "cifar10-cnn", "cifar100-cnn")


def _ids(images: torch.Tensor) -> list[int]:
    """The value each tiny image is filled with (its identity)."""
    return [round(float(v) * 255) for v in images.flatten(1)[:, 0]]


def _check_splits(instance: problems.ProblemInstance, channels: int, side: int) -> None:
    data = instance.data
    assert data is not None
    x_train, y_train = data.train
    assert x_train.shape == (TRAIN_IMAGES, channels, side, side)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert float(x_train.min()) >= 0.0 and float(x_train.max()) <= 1.0
    assert _ids(x_train) == list(range(TRAIN_IMAGES))
    validation, test = _ids(data.validation[0]), _ids(data.test[0])
    assert len(validation) == TEST_IMAGES // 2
    assert set(validation).isdisjoint(test)
    assert sorted(validation + test) == [100 + i for i in range(TEST_IMAGES)]
    # labels travel with their images
    assert [i % 10 for i in validation] == [int(v) % 10 for v in data.validation[1]]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_mnist_loads_from_idx_files(tmp_path: Path, compress: bool) -> None:
    write_mnist(tmp_path, compress=compress)
    assert problems.available("mnist-mlp", tmp_path)
    for name in MNIST_PROBLEMS:
        instance = problems.build(name, BuildContext(data_dir=tmp_path))
        _check_splits(instance, channels=1, side=28)
        assert instance.batch_size == 64
        loss = instance.loss(instance.model, instance.data.train)
        loss.backward()
        assert torch.isfinite(loss)
        assert 0.0 <= float(instance.accuracy(instance.model, instance.data.test)) <= 1.0


def test_cifar10_loads_from_pickles(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    cifar10_dir = tmp_path
    assert problems.available("cifar10-cnn", cifar10_dir)
    assert not problems.available("cifar100-cnn", cifar10_dir)
    for name in ("cifar10-mlp", "cifar10-cnn"):
        instance = problems.build(name, BuildContext(data_dir=cifar10_dir))
        _check_splits(instance, channels=3, side=32)
        assert instance.batch_size == 128
        instance.loss(instance.model, instance.data.validation).backward()


def test_cifar100_loads_from_pickles(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    instance = problems.build("cifar100-cnn", BuildContext(data_dir=tmp_path))
    _check_splits(instance, channels=3, side=32)
    assert instance.model(instance.data.test[0]).shape == (TEST_IMAGES - TEST_IMAGES // 2, 100)


def test_validation_test_halves_follow_the_instance_seed(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    mnist_dir = tmp_path

    def halves(seed: int) -> list[int]:
        built = problems.build("mnist-mlp-64", BuildContext(instance_seed=seed, data_dir=mnist_dir))
        return _ids(built.data.validation[0])

    assert halves(3) == halves(3)
    assert any(halves(seed) != halves(3) for seed in (4, 5, 6))


def test_data_problems_are_unavailable_without_files(tmp_path: Path) -> None:
    for name in MNIST_PROBLEMS + CIFAR_PROBLEMS:
        assert not problems.available(name, tmp_path)
        assert not problems.available(name, None)


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("mnist-cnn", "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte(.gz)"),
        ("cifar10-cnn", "cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}"),
        ("cifar100-cnn", "cifar-100-python/{train,test,meta}"),
    ],
)
def test_missing_files_name_the_data_dir_and_the_files(
    tmp_path: Path, name: str, files: str
) -> None:
    with pytest.raises(ProblemError) as caught:
        problems.build(name, BuildContext(data_dir=tmp_path))
    message = str(caught.value)
    assert "\n" not in message
    assert str(tmp_path) in message and files in message and "--download" in message


def test_no_data_dir_says_so() -> None:
    with pytest.raises(ProblemError, match=r"no data dir was given.*--download") as caught:
        problems.build("mnist-mlp")
    assert "\n" not in str(caught.value)


def test_a_partial_set_is_missing(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    assert not problems.available("cifar10-mlp", tmp_path)
    with pytest.raises(ProblemError, match="not found under data dir"):
        problems.build("cifar10-mlp", BuildContext(data_dir=tmp_path))


def test_unreadable_files_raise_problem_error(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "train").write_bytes(b"not a pickle")
    with pytest.raises(ProblemError, match="cannot read CIFAR100") as caught:
        problems.build("cifar100-cnn", BuildContext(data_dir=tmp_path))
    assert "\n" not in str(caught.value)


def test_expected_files_lists_every_file() -> None:
    assert len(expected_files("MNIST")) == 4
    assert len(expected_files("CIFAR10")) == 7
    assert expected_files("CIFAR100") == (
        "cifar-100-python/train",
        "cifar-100-python/test",
        "cifar-100-python/meta",
    )


def test_data_fingerprint_follows_file_contents(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    write_mnist(first)
    write_mnist(second)
    assert problems.data_fingerprint("mnist-mlp", first) == problems.data_fingerprint(
        "mnist-mlp", second
    )
    image_file = second / "MNIST" / "raw" / "train-images-idx3-ubyte"
    content = bytearray(image_file.read_bytes())
    content[-1] ^= 0xFF  # one pixel differs
    image_file.write_bytes(bytes(content))
    assert problems.data_fingerprint("mnist-mlp", first) != problems.data_fingerprint(
        "mnist-mlp", second
    )
    assert problems.data_fingerprint("beale", first) is None


class _Payload:
    """Unpickling this runs ``open(marker, "w")``: what a planted pickle could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_that_is_not_a_known_file_is_never_unpickled(tmp_path: Path) -> None:
    import pickle

    write_cifar10(tmp_path)
    marker = tmp_path / "payload-ran"
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(pickle.dumps({"data": _Payload(marker), "labels": [0]}))
    with pytest.raises(ProblemError, match=r"data_batch_2 is not the official CIFAR10 file"):
        problems.build("cifar10-mlp", BuildContext(data_dir=tmp_path))
    assert not marker.exists()


def test_official_digests_are_torchvisions() -> None:
    from optlab.problems.datasets import official_digests

    ten = official_digests("CIFAR10")
    assert ten["data_batch_1"] == "c99cafc152244af753f735de768cd75f"
    assert len(ten) == 7 and len(official_digests("CIFAR100")) == 3

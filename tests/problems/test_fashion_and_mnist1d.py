"""Fashion-MNIST (tiny IDX files: default folder, --data-dir, --download, missing, corrupt)
and MNIST-1D (a tiny regenerated set): splits, seeds, models, one-line errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_datasets import _idx
from typer.testing import CliRunner

from optlab import problems
from optlab.problems import BuildContext, ProblemError, fashion, mnist_1d

TRAIN, TEST = 20, 10
FASHION_PROBLEMS = ("fmnist-mlp", "fmnist-2c2d")
MNIST1D_PROBLEMS = ("mnist1d-logistic", "mnist1d-mlp", "mnist1d-cnn")


def write_fashion(folder: Path, compress: bool = True, offset: int = 0) -> Path:
    """The four IDX files in ``folder``; train image ``i`` is filled with ``offset + i``,
    test image ``i`` with ``offset + 100 + i``; label ``i % 10``."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, count, start in (("train", TRAIN, offset), ("t10k", TEST, offset + 100)):
        values = np.arange(count) + start
        images = np.broadcast_to(values[:, None, None], (count, 28, 28))
        for name, payload in (
            (f"{prefix}-images-idx3-ubyte", _idx(images, 0x803)),
            (f"{prefix}-labels-idx1-ubyte", _idx(np.arange(count) % 10, 0x801)),
        ):
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
            else:
                (folder / name).write_bytes(payload)
    return folder


@pytest.fixture
def system_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The Debian folder, moved to an (empty) temporary folder."""
    folder = tmp_path / "usr-share-datasets-fashion-mnist"
    folder.mkdir()
    monkeypatch.setattr(fashion, "SYSTEM_DIR", folder)
    return folder


def _ids(images: torch.Tensor) -> list[int]:
    return [round(float(v) * 255) for v in images.flatten(1)[:, 0]]


def test_found_in_the_debian_folder_by_default(system_dir: Path) -> None:
    write_fashion(system_dir)
    for name in FASHION_PROBLEMS:
        assert problems.available(name, None)
        instance = problems.build(name, BuildContext())
        data = instance.data
        assert data.train[0].shape == (TRAIN, 1, 28, 28) and data.train[0].dtype == torch.float32
        assert _ids(data.train[0]) == list(range(TRAIN))
        assert [int(v) for v in data.train[1]] == [i % 10 for i in range(TRAIN)]
        validation, test = _ids(data.validation[0]), _ids(data.test[0])
        assert len(validation) == len(test) == TEST // 2
        assert sorted(validation + test) == [100 + i for i in range(TEST)]
        assert [i % 10 for i in validation] == [int(v) % 10 for v in data.validation[1]]
        loss = instance.loss(instance.model, data.train)
        loss.backward()
        assert torch.isfinite(loss) and instance.batch_size == 64
        assert 0.0 <= float(instance.accuracy(instance.model, data.test)) <= 1.0


@pytest.mark.parametrize("layout", ["torchvision", "flat"])
def test_a_data_dir_holding_the_files_comes_first(system_dir: Path, tmp_path: Path, layout):
    write_fashion(system_dir)
    data_dir = tmp_path / "data"
    folder = data_dir / "FashionMNIST" / "raw" if layout == "torchvision" else data_dir
    write_fashion(folder, compress=False, offset=50)
    instance = problems.build("fmnist-mlp", BuildContext(data_dir=data_dir))
    assert _ids(instance.data.train[0]) == [50 + i for i in range(TRAIN)]
    assert problems.data_fingerprint("fmnist-mlp", data_dir) != problems.data_fingerprint(
        "fmnist-mlp", None
    )
    empty = tmp_path / "empty"  # a data dir without the files: the Debian folder still serves
    empty.mkdir()
    assert _ids(problems.build("fmnist-mlp", BuildContext(data_dir=empty)).data.train[0])[0] == 0


def test_missing_data_is_one_line_naming_package_folder_and_download(system_dir, tmp_path):
    for data_dir in (None, tmp_path):
        assert not problems.available("fmnist-2c2d", data_dir)
        assert problems.data_fingerprint("fmnist-2c2d", data_dir) is None
        with pytest.raises(ProblemError) as caught:
            problems.build("fmnist-2c2d", BuildContext(data_dir=data_dir))
        message = str(caught.value)
        assert "\n" not in message and message.startswith("fmnist-2c2d: ")
        assert "dataset-fashion-mnist" in message and str(system_dir) in message
        assert "--download" in message
    reason = problems.missing_data_message("fmnist-mlp", None)
    assert "dataset-fashion-mnist" in reason and "--download" in reason


def test_the_cli_says_the_same_in_one_line(system_dir: Path) -> None:
    from optlab.cli import app

    result = CliRunner().invoke(app, ["bench", "--problems", "fmnist-mlp"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "dataset-fashion-mnist" in lines[0] and "Traceback" not in lines[0]


def test_download_goes_through_torchvision_into_the_data_dir(system_dir, tmp_path, monkeypatch):
    import torchvision

    calls = []

    class FakeFashionMNIST:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append((root, train, download))
            write_fashion(Path(root) / "FashionMNIST" / "raw", compress=False, offset=7)

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashionMNIST)
    context = BuildContext(data_dir=tmp_path / "dl", download=True)
    instance = problems.build("fmnist-mlp", context)
    assert calls and all(download for _, _, download in calls)
    assert _ids(instance.data.train[0])[:2] == [7, 8]


def test_a_corrupt_file_is_a_one_line_error(system_dir: Path) -> None:
    write_fashion(system_dir)
    (system_dir / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x01\x02garbage"))
    with pytest.raises(ProblemError, match=r"^fmnist-mlp: cannot read Fashion-MNIST") as caught:
        problems.build("fmnist-mlp", BuildContext())
    assert "\n" not in str(caught.value)


def test_read_idx_round_trip(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(_idx(array, 0x803))
    assert np.array_equal(fashion.read_idx(path), array)
    path.write_bytes(_idx(array, 0x803)[:-1])
    with pytest.raises(ValueError, match="values for the shape"):
        fashion.read_idx(path)


# --------------------------------------------------------------------------- MNIST-1D


@pytest.fixture
def tiny_mnist1d(monkeypatch: pytest.MonkeyPatch) -> int:
    """MNIST-1D with 100 signals (80 train, 20 test) instead of 5,000."""
    monkeypatch.setattr(mnist_1d, "SAMPLES", 100)
    return 100


def test_mnist1d_is_regenerated_offline_and_split(tiny_mnist1d: int) -> None:
    state = np.random.get_state()
    instance = problems.build("mnist1d-mlp", BuildContext())
    assert np.array_equal(np.random.get_state()[1], state[1])  # global RNG left alone
    data = instance.data
    assert data.train[0].shape == (80, mnist_1d.LENGTH) and data.train[0].dtype == torch.float32
    assert data.validation[0].shape == (10, 40) and data.test[0].shape == (10, 40)
    assert data.train[1].dtype == torch.int64 and set(data.train[1].tolist()) <= set(range(10))
    assert instance.batch_size == 100
    x_train, _, x_test, _ = mnist_1d.generate(42, tiny_mnist1d)
    assert np.array_equal(data.train[0].numpy(), x_train)
    held_out = torch.cat([data.validation[0], data.test[0]])
    assert sorted(map(tuple, held_out.tolist())) == sorted(map(tuple, x_test.tolist()))
    again = problems.build("mnist1d-mlp", BuildContext())
    assert torch.equal(again.data.test[0], data.test[0])
    other = problems.build("mnist1d-mlp", BuildContext(instance_seed=7))
    assert not torch.equal(other.data.train[0], data.train[0])  # another draw of the data


@pytest.mark.parametrize("name", MNIST1D_PROBLEMS)
def test_mnist1d_models(tiny_mnist1d: int, name: str) -> None:
    instance = problems.build(name, BuildContext(init_seed=3))
    loss = instance.loss(instance.model, instance.data.train)
    loss.backward()
    assert torch.isfinite(loss)
    assert instance.model(instance.data.test[0]).shape == (10, 10)
    other = problems.build(name, BuildContext(init_seed=4))
    first = next(instance.model.parameters())
    assert not torch.equal(first, next(other.model.parameters()))


def test_the_cnn_is_the_papers_conv_base() -> None:
    model = mnist_1d.conv_base()
    assert sum(p.numel() for p in model.parameters()) == 5210  # ConvBase's parameter count
    assert model(torch.zeros(3, 40)).shape == (3, 10)


def test_new_problems_are_registered() -> None:
    for name in (*FASHION_PROBLEMS, *MNIST1D_PROBLEMS):
        assert problems.spec(name).kind == "net"
    assert problems.spec("fmnist-mlp").needs_data == "FashionMNIST"
    assert all(problems.spec(name).needs_data is None for name in MNIST1D_PROBLEMS)

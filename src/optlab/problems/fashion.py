"""Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): full size, offline, and its two problems.

Data: 60,000 train and 10,000 test 28x28 grey images of 10 kinds of clothing, in the IDX
format of MNIST (``{train,t10k}-{images-idx3,labels-idx1}-ubyte``, gzip or plain), the
format torchvision's ``FashionMNIST`` reads and writes. Where the files are looked for, in
this order (the first folder holding all four wins):

1. ``--data-dir DIR``: ``DIR/FashionMNIST/raw/`` (torchvision's layout, what ``--download``
   writes) or ``DIR`` itself (a copy of the Debian folder);
2. ``/usr/share/datasets/fashion-mnist/``, where the Debian package
   ``dataset-fashion-mnist`` installs them (:data:`SYSTEM_DIR`: the default, no option);
3. ``--download`` with ``--data-dir DIR``: torchvision downloads them into
   ``DIR/FashionMNIST/raw/``.

Missing files give one line naming the package, the folder and ``--download``
(:func:`missing_message`). The files are read here with NumPy (:func:`read_idx`; the IDX
header is a zero word, a type byte ``0x08`` = uint8, the number of dimensions, then each
dimension as a big-endian uint32), so the read-only system folder is never written to.

Splits, as for MNIST and CIFAR (:mod:`optlab.problems.datasets`): the official 60,000 are
the train split; the official test set is halved at random by the instance seed into
validation (5,000) and test (5,000). Images float32 ``(N, 1, 28, 28)`` in [0, 1].

Problems (float32, cross-entropy, batch 64, like the other image nets):

- ``fmnist-mlp``: MLP 784-128-10 (ReLU), the network of the seeds' per-run script;
- ``fmnist-2c2d``: a small CNN after DeepOBS's ``fmnist_2c2d`` (Schneider, Balles and
  Hennig 2019: conv 32 5x5 + max-pool, conv 64 5x5 + max-pool, fc 1024, fc 10; 3.3M
  parameters), narrowed to conv 8 / conv 16 / fc 64 (54k parameters) so that an epoch takes
  seconds on 2 CPU cores; same layer pattern (5x5 'same' convolutions, 2x2 max-pools).

Budgets: ``fmnist-mlp`` 2,000 steps (2.1 epochs), validation every 200; ``fmnist-2c2d``
1,000 steps (1.1 epochs), validation every 100. Targets (validation cross-entropy,
:data:`TARGETS`), set like the bundled nets' (:mod:`optlab.problems.nets`) but from Adam at
one learning rate, not a grid: the largest lowest validation loss over the seeds checked,
plus 10%. ``fmnist-mlp``: Adam lr 1e-3, seeds 42-44: 0.405, 0.411, 0.409 -> 0.45 (test
accuracy 86.5%, 85.2%, 86.3%). ``fmnist-2c2d``: Adam lr 3e-3, seeds 42-44, checks every
200 steps: 0.359, 0.395, 0.367 -> 0.44 (test accuracy 87.9%, 85.6%, 87.9%; seed 42 went on
to 0.328 and 88.9% at 2,000 steps). Cost (one torch thread, CPU
time per step on this project's 2-core machine, torch 2.14): ``fmnist-mlp`` 1.0 ms a step
(0.9 s an epoch, 0.02 s a validation pass); ``fmnist-2c2d`` 10.9 ms a step (10 s an epoch
on one thread; 0.8 s a validation pass), so a run of its budget takes about 19 s. Two
threads could not be timed fairly on that shared machine.
"""

from __future__ import annotations

import functools
import gzip
import struct
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from optlab.problems import datasets
from optlab.problems.base import BuildContext, DataSplits, ProblemError, ProblemSpec
from optlab.problems.nets import NetBuilder, mlp

DATASET = "FashionMNIST"
"""The data set name (``ProblemSpec.needs_data``, torchvision's class and folder)."""

DEBIAN_PACKAGE = "dataset-fashion-mnist"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where the Debian package puts the four ``.gz`` files (looked in by default)."""

FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

_IDX_TYPES = {0x08: np.uint8}


def _file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _complete(folder: Path) -> bool:
    return all(_file(folder, name) is not None for name in FILES)


def find_folder(data_dir: Path | str | None) -> Path | None:
    """The first folder holding all four files (module docstring's order), or None."""
    candidates = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        candidates += [root / DATASET / "raw", root]
    candidates.append(SYSTEM_DIR)
    return next((folder for folder in candidates if _complete(folder)), None)


def files_present(data_dir: Path | str | None) -> bool:
    """Whether Fashion-MNIST can be read without a download."""
    return find_folder(data_dir) is not None


def _paths(folder: Path) -> list[Path]:
    paths = [_file(folder, name) for name in FILES]
    if any(path is None for path in paths):
        raise ProblemError(f"Fashion-MNIST files incomplete in {folder}")
    return [path for path in paths if path is not None]


def fingerprint(data_dir: Path | str | None) -> str | None:
    """SHA-256 over the names and contents of the files that would be read (None: absent).

    Part of a run's store key, as for MNIST and CIFAR (:func:`datasets.fingerprint`). The
    bytes hashed are the files' as stored, so the same images gzip-compressed (the Debian
    files) and plain (torchvision decompresses its download) count as other data.
    """
    folder = find_folder(data_dir)
    if folder is None:
        return None
    stamps = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in _paths(folder))
    return datasets._fingerprint(stamps)


def missing_message(data_dir: Path | str | None) -> str:
    """What to do when the files are absent (one line, no problem name)."""
    where = f" or under --data-dir {data_dir}" if data_dir is not None else ""
    return (
        f"Fashion-MNIST not found in {SYSTEM_DIR}/{where}: install the Debian package "
        f"{DEBIAN_PACKAGE} (apt-get install {DEBIAN_PACKAGE}), or put "
        f"{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte(.gz) under --data-dir DIR, or "
        "pass --data-dir DIR --download"
    )


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (plain or gzip) as a NumPy array (uint8 only, as Fashion-MNIST uses).

    Raises:
        ValueError: the header is not IDX uint8 or the payload has the wrong size.
    """
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        payload = handle.read()
    if len(payload) < 4 or payload[0] != 0 or payload[1] != 0 or payload[2] not in _IDX_TYPES:
        raise ValueError(f"{path.name} is not an IDX uint8 file")
    ndim = payload[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", payload[4:header])
    data = np.frombuffer(payload, dtype=_IDX_TYPES[payload[2]], offset=header)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path.name}: {data.size} values for the shape {shape}")
    return data.reshape(shape)


@functools.lru_cache(maxsize=2)
def _read(
    paths: tuple[Path, ...], signature: tuple[Any, ...]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 images ``(N, 1, 28, 28)`` and int64 labels of the train and test files."""
    del signature  # part of the cache key only: replaced files are read again
    arrays = [read_idx(path) for path in paths]
    images, labels, test_images, test_labels = arrays
    if images.ndim != 3 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"train images {images.shape} do not match labels {labels.shape}")
    if test_images.ndim != 3 or test_images.shape[0] != test_labels.shape[0]:
        raise ValueError(f"test images {test_images.shape} do not match {test_labels.shape}")
    return (
        torch.from_numpy(images.copy()).unsqueeze(1),
        torch.from_numpy(labels.astype(np.int64)),
        torch.from_numpy(test_images.copy()).unsqueeze(1),
        torch.from_numpy(test_labels.astype(np.int64)),
    )


def _download(problem: str, data_dir: Path) -> None:
    from torchvision import datasets as tv_datasets

    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            tv_datasets.FashionMNIST(str(data_dir), train=train, download=True)
    except Exception as error:  # network, checksum, disk: all end the build the same way
        first = str(error).strip().splitlines()
        reason = f"{type(error).__name__}: {first[0]}" if first else type(error).__name__
        raise ProblemError(
            f"{problem}: downloading Fashion-MNIST into {data_dir} failed ({reason})"
        ) from error


def load(problem: str, context: BuildContext) -> DataSplits:
    """The splits of the module docstring; :class:`ProblemError` (one line) when the files
    are absent (and no download was asked for or possible), or cannot be read."""
    folder = find_folder(context.data_dir)
    if folder is None and context.download and context.data_dir is not None:
        _download(problem, Path(context.data_dir).expanduser())
        folder = find_folder(context.data_dir)
    if folder is None:
        raise ProblemError(f"{problem}: {missing_message(context.data_dir)}")
    try:
        paths = tuple(_paths(folder))
        signature = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
        images, labels, test_images, test_labels = _read(paths, signature)
    except (OSError, ValueError, EOFError, struct.error) as error:
        raise ProblemError(
            f"{problem}: cannot read Fashion-MNIST in {folder} ({type(error).__name__}: "
            f"{str(error).strip().splitlines()[0] if str(error).strip() else ''})"
        ) from error
    halves = datasets.halve_indices(len(test_labels), np.random.default_rng(context.instance_seed))
    validation, test = (torch.as_tensor(half, dtype=torch.long) for half in halves)

    def floats(rows: torch.Tensor) -> torch.Tensor:
        return rows.to(torch.float32).mul_(1.0 / 255.0)

    return DataSplits(
        train=(floats(images), labels.clone()),
        validation=(floats(test_images[validation]), test_labels[validation]),
        test=(floats(test_images[test]), test_labels[test]),
    )


def cnn_2c2d(widths: tuple[int, int] = (8, 16), hidden: int = 64, classes: int = 10) -> nn.Module:
    """DeepOBS's 2c2d pattern at the given widths: two (5x5 'same' conv, ReLU, 2x2 max-pool)
    blocks on 28x28x1, then ``Linear -> ReLU -> Linear``."""
    return nn.Sequential(
        nn.Conv2d(1, widths[0], 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(widths[0], widths[1], 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(widths[1] * 7 * 7, hidden),
        nn.ReLU(),
        nn.Linear(hidden, classes),
    )


TARGETS = {"fmnist-mlp": 0.45, "fmnist-2c2d": 0.44}
"""Validation cross-entropy at which each problem counts as solved."""

SPECS: tuple[ProblemSpec, ...] = (
    ProblemSpec(
        "fmnist-mlp",
        "net",
        "MLP 784-128-10 on Fashion-MNIST (60k train, 5k validation, 5k test), batch 64",
        NetBuilder("fmnist-mlp", load, partial(mlp, 784, 128, 10), TARGETS["fmnist-mlp"], 64),
        steps=2000,
        eval_every=200,
        needs_data=DATASET,
    ),
    ProblemSpec(
        "fmnist-2c2d",
        "net",
        "CNN 2c2d (conv8-conv16-fc64, after DeepOBS fmnist_2c2d) on Fashion-MNIST (60k/5k/5k), "
        "batch 64",
        NetBuilder("fmnist-2c2d", load, cnn_2c2d, TARGETS["fmnist-2c2d"], 64),
        steps=1000,
        eval_every=100,
        needs_data=DATASET,
    ),
)
"""The Fashion-MNIST problems."""

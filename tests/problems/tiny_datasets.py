"""Tiny data sets in the on-disk formats torchvision reads, written by the tests themselves.

MNIST: IDX files (optionally gzip); CIFAR-10/100: python pickles with ``data`` (uint8
``(N, 3072)``) and ``labels`` / ``fine_labels``, plus the meta pickle torchvision reads.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

from optlab.problems.datasets import register_trusted_digest

TRAIN_IMAGES = 20
TEST_IMAGES = 10


def _idx(array: np.ndarray, magic: int) -> bytes:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(root: Path, compress: bool = False) -> None:
    """``MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (IDX, optionally gzip).

    Image ``i`` of a file is filled with the value ``i`` (train) or ``100 + i`` (test), so
    rows can be identified after loading; label ``i % 10``.
    """
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, count, offset in (("train", TRAIN_IMAGES, 0), ("t10k", TEST_IMAGES, 100)):
        values = np.arange(count) + offset
        images = np.broadcast_to(values[:, None, None], (count, 28, 28))
        labels = np.arange(count) % 10
        for name, payload in (
            (f"{prefix}-images-idx3-ubyte", _idx(images, 0x803)),
            (f"{prefix}-labels-idx1-ubyte", _idx(labels, 0x801)),
        ):
            if compress:
                (raw / f"{name}.gz").write_bytes(gzip.compress(payload))
            else:
                (raw / name).write_bytes(payload)


def _cifar_batch(count: int, offset: int, classes: int, fine: bool) -> dict[str, object]:
    values = np.arange(count) + offset
    data = np.broadcast_to(values[:, None], (count, 3 * 32 * 32)).astype(np.uint8)
    labels = [int(i % classes) for i in range(count)]
    key = "fine_labels" if fine else "labels"
    return {"data": np.ascontiguousarray(data), key: labels}


def _pickle(path: Path, payload: object) -> None:
    """Write a CIFAR pickle and register its digest: optlab opens only pickles whose MD5 is
    official or registered."""
    path.write_bytes(pickle.dumps(payload))
    register_trusted_digest(path)


def write_cifar10(root: Path) -> None:
    """``cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` (4 images a batch)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    per_batch = TRAIN_IMAGES // 5
    for index in range(5):
        batch = _cifar_batch(per_batch, index * per_batch, 10, fine=False)
        _pickle(folder / f"data_batch_{index + 1}", batch)
    _pickle(folder / "test_batch", _cifar_batch(TEST_IMAGES, 100, 10, fine=False))
    _pickle(folder / "batches.meta", {"label_names": [f"class{i}" for i in range(10)]})


def write_cifar100(root: Path) -> None:
    """``cifar-100-python/{train,test,meta}``."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    _pickle(folder / "train", _cifar_batch(TRAIN_IMAGES, 0, 100, fine=True))
    _pickle(folder / "test", _cifar_batch(TEST_IMAGES, 100, 100, fine=True))
    _pickle(folder / "meta", {"fine_label_names": [f"class{i}" for i in range(100)]})

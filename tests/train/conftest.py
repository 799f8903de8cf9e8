"""Fixtures of the trainer tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Run a module on one torch thread: population tests multiply tiny matrices, and on a
    loaded 2-core machine two OpenMP threads made them up to 40x slower (measured: a
    4-member digits halving took 6.6 s on 2 threads, 0.17 s on 1). Results are compared
    within one thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

"""Fixtures of the report tests: the synthetic store (see ``synthetic_results``)."""

from __future__ import annotations

import pytest
from synthetic_results import build_store

from optlab.bench.store import ResultsStore


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory: pytest.TempPathFactory) -> ResultsStore:
    """The synthetic store, built once per test session."""
    return build_store(tmp_path_factory.mktemp("store"))

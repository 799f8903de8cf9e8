"""The bench: suites as data, equal-budget tuning, a results store that never loses a run."""

from optlab.bench.runner import SuiteOutcome, run_suite
from optlab.bench.runs import DataOptions, RunConfig, execute
from optlab.bench.store import ResultsStore, StoreError, config_key
from optlab.bench.suite import Suite, SuiteError, Tuning, builtin_suites, load_suite

__all__ = [
    "DataOptions",
    "ResultsStore",
    "RunConfig",
    "StoreError",
    "Suite",
    "SuiteError",
    "SuiteOutcome",
    "Tuning",
    "builtin_suites",
    "config_key",
    "execute",
    "load_suite",
    "run_suite",
]

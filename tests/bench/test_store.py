"""The results store: atomic, keyed by config, never clobbered, readable into pandas."""

from __future__ import annotations

import json
import math
import multiprocessing
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optlab.bench.store import ResultsStore, StoreError, config_key

CONFIG = {"problem": "p", "optimizer": "adam", "hyperparameters": {"lr": 0.1}, "init_seed": 1}


def test_put_get_has_and_key_is_config_hash(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    assert not store.has("runs", config_key(CONFIG))
    record = store.put("runs", CONFIG, {"status": "ok", "final_val_loss": 0.5})
    assert record["key"] == config_key(CONFIG)
    assert store.has("runs", record["key"])
    assert store.get("runs", record["key"])["result"]["final_val_loss"] == 0.5
    assert len(store) == 1


def test_key_ignores_dict_order_and_distinguishes_values() -> None:
    reordered = dict(reversed(list(CONFIG.items())))
    assert config_key(reordered) == config_key(CONFIG)
    assert config_key({**CONFIG, "init_seed": 2}) != config_key(CONFIG)


def test_existing_record_is_never_overwritten(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    first = store.put("runs", CONFIG, {"value": 1})
    second = store.put("runs", CONFIG, {"value": 2})
    assert second["result"] == {"value": 1} == first["result"]
    assert list((tmp_path / "runs").iterdir()) == [store.path("runs", first["key"])]


def test_non_finite_results_round_trip(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.put("runs", CONFIG, {"status": "diverged", "final_val_loss": math.nan, "x": math.inf})
    frame = store.runs_frame()
    assert math.isnan(frame.loc[0, "final_val_loss"]) and frame.loc[0, "x"] == math.inf
    assert bool(frame.loc[0, "diverged"]) is True
    assert frame.loc[0, "lr"] == 0.1


def test_dead_writers_temporaries_are_removed_live_ones_kept(tmp_path: Path) -> None:
    import os
    import platform
    import subprocess
    import sys

    (tmp_path / "runs").mkdir(parents=True)
    host = platform.node().replace(".", "-") or "host"
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(finished.stdout)
    stale = tmp_path / "runs" / f".abcdef0123456789.{host}.{dead_pid}.x1y2.tmp"
    live = tmp_path / "runs" / f".abcdef0123456789.{host}.{os.getpid()}.x1y2.tmp"
    other_host = tmp_path / "runs" / f".abcdef0123456789.elsewhere.{dead_pid}.x1y2.tmp"
    for path in (stale, live, other_host):
        path.write_text('{"half a rec')
    store = ResultsStore(tmp_path)
    assert not stale.exists() and live.exists() and other_host.exists()
    assert list(store.records("runs")) == []


def test_corrupt_record_raises_naming_the_file(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    (tmp_path / "runs" / "bad.json").write_text("not json")
    with pytest.raises(StoreError, match=r"bad\.json"):
        list(store.records("runs"))


def test_store_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(StoreError, match="not a folder"):
        ResultsStore(file)


def _writer(root: str, value: int) -> None:
    store = ResultsStore(root)
    for i in range(30):
        store.put("runs", {"i": i}, {"writer": value})


def test_concurrent_writers_never_clobber(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(str(tmp_path), v)) for v in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    store = ResultsStore(tmp_path)
    records = list(store.records("runs"))
    assert len(records) == 30
    assert all(r["result"]["writer"] in (1, 2) for r in records)
    assert not list((tmp_path / "runs").glob(".*.tmp"))


RESERVED = {"NaN", "Infinity", "-Infinity"}  # how a result stores non-finite floats
scalars = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(),
    st.text(max_size=8).filter(lambda text: text not in RESERVED),
    st.booleans(),
    st.none(),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


finite_values = st.recursive(
    st.one_of(st.integers(-(10**6), 10**6), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=8), st.booleans(), st.none()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)  # fmt: skip


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@settings(max_examples=40, deadline=None)
@given(config=st.dictionaries(st.text(max_size=6), finite_values, max_size=4), result=json_values)
def test_any_config_and_result_round_trip_as_strict_json(tmp_path_factory, config, result) -> None:
    store = ResultsStore(tmp_path_factory.mktemp("store"))
    record = store.put("runs", config, {"payload": result})
    path = store.path("runs", record["key"])
    json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"bare {name}"))
    read = store.get("runs", record["key"])
    assert read["config"] == json.loads(json.dumps(config))
    assert _same(result, read["result"]["payload"])

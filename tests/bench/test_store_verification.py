"""The store uses a record only if it is the record its file name says, and well formed
(issue 17, item 3)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from optlab.bench.store import ResultsStore, StoreError, config_key

A = {"problem": "p", "optimizer": "adam", "hyperparameters": {"lr": 0.1}, "init_seed": 1}
B = {**A, "init_seed": 2}


def _two(tmp_path: Path) -> tuple[ResultsStore, str, str]:
    store = ResultsStore(tmp_path)
    store.put("runs", A, {"status": "ok", "final_val_loss": 1.0})
    store.put("runs", B, {"status": "ok", "final_val_loss": 2.0})
    return store, config_key(A), config_key(B)


@pytest.mark.parametrize("how", ["copy", "symlink"])
def test_a_record_swapped_under_another_key_is_not_reused(tmp_path, caplog, how) -> None:
    store, a, b = _two(tmp_path)
    store.path("runs", a).unlink()
    if how == "copy":
        shutil.copy(store.path("runs", b), store.path("runs", a))
    else:
        store.path("runs", a).symlink_to(store.path("runs", b))
    with caplog.at_level(logging.WARNING, logger="optlab.bench"):
        assert not store.has("runs", a)
        assert store.get("runs", a) is None
        assert [r["key"] for r in store.records("runs")] == [b]
    assert len(store) == 1
    warned = [r.getMessage() for r in caplog.records if "ignoring" in r.getMessage()]
    assert len(warned) == 1 and a in warned[0] and "\n" not in warned[0]
    # the run is done again and stored under its name; the impostor is kept aside
    record = store.put("runs", A, {"status": "ok", "final_val_loss": 1.5})
    assert (
        store.get("runs", a)["result"]["final_val_loss"]
        == 1.5
        == record["result"]["final_val_loss"]
    )
    (aside,) = store.path("runs", a).parent.glob(f"{a}.json.rejected.*")
    assert aside.is_symlink() or json.loads(aside.read_text())["key"] == b
    assert store.get("runs", b)["result"]["final_val_loss"] == 2.0  # the original is intact
    # a second impostor under the same name is kept aside too, beside the first
    shutil.copy(store.path("runs", b), store.path("runs", a))
    store.put("runs", A, {"status": "ok", "final_val_loss": 1.5})
    assert len(list(store.path("runs", a).parent.glob(f"{a}.json.rejected.*"))) == 2


def test_extra_json_files_are_not_extra_seeds(tmp_path) -> None:
    store, a, b = _two(tmp_path)
    shutil.copy(store.path("runs", b), tmp_path / "runs" / "copy of b.json")
    os.link(store.path("runs", a), tmp_path / "runs" / "backup.json")
    frame = store.runs_frame()
    assert sorted(frame["key"]) == sorted([a, b])
    assert sorted(frame["init_seed"]) == [1, 2]


def test_a_record_whose_config_does_not_hash_to_its_key_is_ignored(tmp_path) -> None:
    store, a, _ = _two(tmp_path)
    path = store.path("runs", a)
    record = json.loads(path.read_text())
    record["config"]["init_seed"] = 99  # edited by hand: no longer the run its key names
    path.write_text(json.dumps(record))
    assert not store.has("runs", a)
    record["kind"] = "tuning"  # a record moved to another folder
    record["config"]["init_seed"] = 1
    path.write_text(json.dumps(record))
    assert store.get("runs", a) is None


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.pop("config"), "field 'config' is missing"),
        (lambda r: r.update(result=[1, 2]), "field 'result' must be a dict, got list"),
        (lambda r: r.update(key=7), "field 'key' must be a str, got int"),
        (lambda r: r["result"].update(status=0), "field 'result.status' must be a str"),
        (lambda r: r.update(schema="1"), "not an optlab schema-1 record"),
    ],
)
def test_malformed_records_fail_in_one_line_naming_the_field(tmp_path, edit, message) -> None:
    store, a, _ = _two(tmp_path)
    path = store.path("runs", a)
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))
    with pytest.raises(StoreError, match=message) as error:
        store.runs_frame()
    assert "\n" not in str(error.value) and a in str(error.value)


def test_the_report_command_says_one_line_for_a_malformed_record(tmp_path) -> None:
    from typer.testing import CliRunner

    from optlab.cli import app

    store, a, _ = _two(tmp_path)
    path = store.path("runs", a)
    record = json.loads(path.read_text())
    record["config"] = "not a table"
    path.write_text(json.dumps(record))
    done = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert done.exit_code == 2, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 1 and "field 'config' must be a dict" in lines[0]

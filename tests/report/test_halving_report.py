"""The report's halving section: survivor curves and eliminations; the seed study."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from optlab.bench.store import ResultsStore
from optlab.report import write_report
from optlab.report.halving import (
    halving_records,
    repeats_table,
    rounds_table,
    study_table,
    survivor_curves,
)

BASE = {"problem": "digits-mlp", "optimizer": "adam", "hyperparameters": {"lr": 0.001},
        "members": 4, "reduce_factor": 0.5, "steps_per_round": 10, "data_seed": 42,
        "instance_seed": 42, "data": "x"}  # fmt: skip
HALVING = {
    "rounds": [
        {"seeds": [1, 2, 3, 4], "val_loss": [0.9, 0.5, math.nan, 0.7], "kept": [2, 4]},
        {"seeds": [2, 4], "val_loss": [0.4, 0.3], "kept": [4]},
    ],
    "winner_seed": 4,
    "final_val_loss": 0.2,
    "test_loss": 0.25,
}
STUDY = {
    "winner": [40.0, 60.0],
    "default": [50.0, math.inf],
    "median": [50.0, 50.0],
    "winner_seeds": [1003, 1005],
    "curves": [
        {
            "step": [20.0, 40.0, 60.0],
            "winner": [0.5, 0.2, 0.1],
            "default": [0.6, 0.3, 0.2],
            "median": [0.55, 0.25, 0.15],
        },
        {
            "step": [20.0, 40.0, 60.0],
            "winner": [0.5, 0.3, 0.2],
            "default": [0.7, 0.5, 0.4],
            "median": [0.6, 0.35, 0.2],
        },
    ],
    "target": 0.21,
    "summary": {},
}


@pytest.fixture
def store(tmp_path: Path) -> ResultsStore:
    store = ResultsStore(tmp_path / "store")
    store.put("halving", {**BASE, "final_steps": 5, "init_seeds": [1, 2, 3, 4]}, HALVING)
    study_config = {**BASE, "study": "seed-study", "repeats": 2, "steps": 60,
                    "eval_every": 20, "default_seed": 42, "first_seed": 1000}  # fmt: skip
    store.put("halving", study_config, STUDY)
    return store


def test_rounds_table_names_the_eliminated_and_curves_end_there(store) -> None:
    (run,) = [r for r in halving_records(store) if "study" not in r["config"]]
    table = rounds_table(run)
    assert table.rows[0][:2] == ("1", "4") and table.rows[0][4:] == ("2, 4", "1, 3")
    assert table.rows[1][4:] == ("4", "2")
    curves = survivor_curves(run)
    assert curves[4] == ([1, 2], [0.7, 0.3], 0)  # the winner lives through every round
    assert curves[2][0] == [1, 2] and curves[2][2] == 2
    assert curves[1][2] == 1 and math.isnan(curves[3][1][0])


def test_study_tables_give_mean_std_and_say_when_a_target_was_missed(store) -> None:
    (study,) = [r for r in halving_records(store) if "study" in r["config"]]
    rows = dict(study_table(study).rows)
    assert rows["winner (fresh data order)"] == "50.0 ± 14.1"
    assert rows["default init seed"] == "not reached in 1 of 2"
    assert rows["median of the N inits"] == "50.0 ± 0.0"
    assert rows["winner's saving vs default seed"] == "20.0% ± 0.0%"  # only finite pairs
    assert repeats_table(study).rows[1] == ("2", "1005", "60", "not reached", "50")


def test_write_report_includes_both_sections_with_figures(store, tmp_path: Path) -> None:
    paths = write_report(store, tmp_path / "out")
    text = Path(paths["markdown"]).read_text()
    assert "## Successive halving (multi-init)" in text
    assert "## Seed study: is the halving winner better, or lucky?" in text
    assert "| winner's saving vs default seed | 20.0% ± 0.0% |" in text
    names = sorted(p.name for p in (tmp_path / "out" / "figures").glob("*.png"))
    assert any("halving-" in n for n in names) and any("seed-study-" in n for n in names)
    assert "seed-study" in Path(paths["html"]).read_text()


def test_a_ray_record_says_its_scheduler_and_that_survivors_may_differ(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "store")
    scheduler = {"name": "ASHAScheduler", "reduction_factor": 2, "grace_period": 1, "max_t": 2}
    config = {**BASE, "final_steps": 5, "init_seeds": [1, 2, 3, 4], "backend": "ray"}
    store.put("halving", config, {**HALVING, "backend": "ray", "scheduler": scheduler})
    store.put("halving", {**BASE, "final_steps": 5, "init_seeds": [1, 2, 3, 4]}, HALVING)
    text = Path(write_report(store, tmp_path / "out")["markdown"]).read_text()
    assert text.count("Ran on Ray Tune under ASHAScheduler (reduction factor 2") == 1
    assert "survivors can differ from the exact in-process rule" in text

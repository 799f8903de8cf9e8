"""optlab multi-init as a library: validation before work, the record config, the rows."""

from __future__ import annotations

import math

import pytest

from optlab import problems
from optlab.bench.multi_init import MultiInitRequest, prepare, round_rows, study_config
from optlab.errors import OptlabError


def test_the_record_config_is_the_one_the_command_always_stored() -> None:
    run = prepare(MultiInitRequest("logistic", num_models=4, lr=0.05, steps_per_round=5,
                                   epochs=0))  # fmt: skip
    assert run.record_config == {
        "problem": "logistic",
        "optimizer": "adam",
        "hyperparameters": {"lr": 0.05},
        "members": 4,
        "reduce_factor": 0.5,
        "steps_per_round": 5,
        "final_steps": 0,
        "init_seeds": [42, 43, 44, 45],
        "data_seed": 42,
        "instance_seed": 42,
        "data": problems.data_fingerprint("logistic", None),
    }
    study = study_config(run)
    assert study["first_seed"] == 46 and study["default_seed"] == 42
    assert "init_seeds" not in study and "final_steps" not in study


@pytest.mark.parametrize(("changes", "message"), [
    ({"seed": -1}, "--seed must be in"),
    ({"epochs": math.nan}, "--epochs must be >= 0"),
    ({"seed_study": True, "repeats": 0}, "--repeats and --study-steps must be >= 1"),
    ({"optimizer": "lbfgs"}, "cannot be vectorised"),
    ({"backend": "cloud"}, "--backend must be one of"),
])  # fmt: skip
def test_bad_requests_are_refused_before_any_work(changes, message) -> None:
    with pytest.raises(OptlabError, match=message):
        prepare(MultiInitRequest("logistic", **changes))


def test_round_rows_leave_diverged_members_out_of_best_and_median() -> None:
    result = {"rounds": [{"seeds": [1, 2, 3], "val_loss": [0.5, math.nan, 0.25], "kept": [3]}]}
    assert round_rows(result) == [("1", "3", "0.25", "0.5", "3")]

"""Resumable halving: a run killed after round k and re-run equals an uninterrupted run."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from optlab import problems
from optlab.problems import BuildContext
from optlab.train.loop import minibatches
from optlab.train.population import (
    BatchStream,
    CheckpointWarning,
    HalvingConfig,
    remove_checkpoints,
    save_checkpoint,
    successive_halving,
)

# digits: 1,078 training rows, batch 64 -> 17 batches an epoch; 4 -> 2 -> 1 members in two
# rounds of 10 steps, so the second round crosses an epoch boundary (generator state).
CONFIG = HalvingConfig(members=4, reduce_factor=0.5, steps_per_round=10, final_steps=6)
SEEDS = [3, 4, 5, 6]
pytestmark = pytest.mark.usefixtures("one_thread")


def digits64(seed: int) -> problems.ProblemInstance:
    """digits-mlp in float64 (bit-for-bit comparisons)."""
    instance = problems.build("digits-mlp", BuildContext(instance_seed=7, init_seed=seed))
    data = instance.data
    instance.data = dataclasses.replace(
        data, **{name: (getattr(data, name)[0].double(), getattr(data, name)[1])
                 for name in ("train", "validation", "test")},
    )  # fmt: skip
    instance.model = instance.model.double()
    return instance


class Killed(Exception):
    """Stands for a kill after a round (raised from on_round, after its checkpoint)."""


def run(folder: Path | None, kill_after: int | None = None, calls: list | None = None):
    def on_round(record: dict) -> None:
        if calls is not None:
            calls.append(record)
        if kill_after is not None and len(record["seeds"]) == CONFIG.members // 2 ** (
            kill_after - 1
        ):
            raise Killed

    return successive_halving(
        counted(calls), SEEDS, "adam", {"lr": 0.01}, CONFIG, on_round=on_round,
        checkpoint_dir=folder,
    )  # fmt: skip


def counted(calls: list | None):
    def build(seed: int):
        if calls is not None:
            calls.append(("build", seed))
        return digits64(seed)

    return build


def assert_same(first, second) -> None:
    (result_a, population_a), (result_b, population_b) = first, second
    assert result_a == result_b  # rounds, losses, winner, final and test loss: exact
    for name, value in population_a.params.items():
        assert torch.equal(value, population_b.params[name])


@pytest.fixture(scope="module")
def uninterrupted(one_thread):
    return run(None)


@pytest.mark.parametrize("kill_after", [1, 2])
def test_a_killed_run_resumes_to_the_same_result(tmp_path: Path, uninterrupted, kill_after):
    folder = tmp_path / "key.partial"
    with pytest.raises(Killed):
        run(folder, kill_after=kill_after)
    assert sorted(p.name for p in folder.iterdir()) == [f"round-{kill_after}.pt"]
    calls: list = []
    resumed = run(folder, calls=calls)
    assert_same(resumed, uninterrupted)
    rounds_redone = [c for c in calls if isinstance(c, dict)]
    assert len(rounds_redone) == 2 - kill_after  # only what was not completed
    built = [c[1] for c in calls if isinstance(c, tuple)]
    assert built == uninterrupted[0].rounds[kill_after - 1]["kept"]  # survivors only
    remove_checkpoints(folder)
    assert not folder.exists()


def test_a_corrupt_or_foreign_checkpoint_is_ignored_with_a_warning(tmp_path, uninterrupted):
    folder = tmp_path / "key.partial"
    with pytest.raises(Killed):
        run(folder, kill_after=1)
    path = folder / "round-1.pt"
    path.write_bytes(path.read_bytes()[:1000])  # a torn file
    with pytest.warns(CheckpointWarning, match="ignoring halving checkpoint"):
        assert_same(run(folder), uninterrupted)
    remove_checkpoints(folder)
    save_checkpoint(folder, 1, {"format": "something else"})
    with pytest.warns(CheckpointWarning, match="not an optlab halving checkpoint"):
        assert_same(run(folder), uninterrupted)
    remove_checkpoints(folder)
    with pytest.raises(Killed):
        run(folder, kill_after=1)
    other = dataclasses.replace(CONFIG, final_steps=7)  # other arguments: not this run's
    with pytest.warns(CheckpointWarning, match="other arguments"):
        successive_halving(digits64, SEEDS, "adam", {"lr": 0.01}, other, checkpoint_dir=folder)


def test_a_real_kill_leaves_a_checkpoint_the_rerun_resumes(tmp_path: Path, uninterrupted):
    folder = tmp_path / "key.partial"
    script = f"""
import os, signal, sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_population_resume import CONFIG, SEEDS, digits64
from optlab.train.population import successive_halving
successive_halving(digits64, SEEDS, "adam", {{"lr": 0.01}}, CONFIG,
                   on_round=lambda r: os.kill(os.getpid(), signal.SIGKILL),
                   checkpoint_dir={str(folder)!r})
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    assert [p.name for p in folder.iterdir() if not p.name.startswith(".")] == ["round-1.pt"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)
        assert_same(run(folder), uninterrupted)


def test_batch_stream_equals_minibatches_and_restores_mid_epoch() -> None:
    instance = digits64(1)
    stream, reference = BatchStream(instance, 5), minibatches(instance.data.train, 64, 5)
    for _ in range(23):  # into the second epoch
        a, b = next(stream), next(reference)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    saved = stream.state()
    expected = [next(stream) for _ in range(20)]
    again = BatchStream(instance, 999)
    again.restore(saved)
    for batch in expected:
        assert torch.equal(next(again)[0], batch[0])


def test_per_member_learning_rates_survive_elimination_and_resume(tmp_path: Path) -> None:
    lrs = torch.tensor([0.001, 0.01, 0.05, 0.1], dtype=torch.float64)
    config = HalvingConfig(members=4, reduce_factor=0.5, steps_per_round=5, final_steps=2)

    def halve(folder=None, on_round=None):
        return successive_halving(
            digits64, [1, 1, 1, 1], "adam", {"lr": lrs}, config, checkpoint_dir=folder,
            on_round=on_round,
        )  # fmt: skip

    whole, population = halve()
    assert len(population) == 1 and math.isfinite(whole.final_val_loss)

    def stop(record):
        raise Killed

    with pytest.raises(Killed):
        halve(tmp_path, stop)
    rounds_run: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointWarning)  # the lrs must load back
        resumed, _ = halve(tmp_path, rounds_run.append)
    assert resumed == whole
    assert len(rounds_run) == len(whole.rounds) - 1  # round 1 came from the checkpoint


def test_a_checkpoint_of_another_problem_is_not_resumed(tmp_path: Path, uninterrupted) -> None:
    def halve(key, on_round=None):
        return successive_halving(
            counted(None), SEEDS, "adam", {"lr": 0.01}, CONFIG, on_round=on_round,
            checkpoint_dir=tmp_path, checkpoint_key=key,
        )  # fmt: skip

    def stop(record):
        raise Killed

    with pytest.raises(Killed):
        halve("problem-a", stop)
    with pytest.warns(CheckpointWarning):
        halve("problem-b")


def test_checkpoint_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 1, {"a": torch.ones(2)})
    save_checkpoint(tmp_path, 2, {"a": torch.zeros(2)})
    assert sorted(os.listdir(tmp_path)) == ["round-2.pt"]

"""Killing `optlab bench` with SIGKILL at any moment loses no completed run (must hold)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SUITE = """
name = "kill-test"
problems = ["rosenbrock-2d", "logistic"]
optimizers = ["adam", "imo"]
seeds = 2
[tuning]
trials = 6
[steps]
rosenbrock-2d = 300
logistic = 200
"""
EXPECTED_RUNS = 2 * 2 * (6 + 2)  # problems x optimizers x (tuning trials + reported seeds)


def _bench(out: Path, suite: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "optlab.cli", "bench", "--suite", str(suite), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _children(pid: int) -> list[int]:
    listed = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                            text=True, check=False)  # fmt: skip
    return [int(line) for line in listed.stdout.split()]


def _assert_gone(pids: list[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _alive(pid)]
        time.sleep(0.1)
    assert not alive, f"orphaned processes still running: {alive}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(")")[-1].split()[0] == "Z")


def _records(out: Path) -> dict[str, bytes]:
    runs = out / "runs"
    return {p.name: p.read_bytes() for p in runs.glob("*.json")} if runs.exists() else {}


@pytest.mark.parametrize("kill_after", [1, 9])
def test_sigkill_then_rerun_completes_and_keeps_every_completed_run(
    tmp_path: Path, kill_after: int
) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    out = tmp_path / "results"
    process = _bench(out, suite)
    deadline = time.monotonic() + 120
    while len(_records(out)) < kill_after and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"bench ended early: {process.stderr.read().decode()[-500:]}")
        time.sleep(0.01)
    workers = _children(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    _assert_gone(workers)  # pool workers do not outlive a killed bench
    before = _records(out)
    assert kill_after <= len(before) < EXPECTED_RUNS
    rerun = _bench(out, suite)
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr.decode()[-1000:]
    after = _records(out)
    assert len(after) == EXPECTED_RUNS
    for name, content in before.items():
        assert after[name] == content, f"completed run {name} changed or vanished"
    assert not list((out / "runs").glob(".*.tmp"))  # the killed writer's file was cleaned
    assert (out / "report.md").exists() and (out / "report.html").exists()

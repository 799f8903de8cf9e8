"""Files optlab writes replace a symbolic link at their name instead of writing through it
(issue 17, item 4): report.md / report.html, figure PNGs, MNIST's decompressed files,
policy files; each written to a fresh temporary file and renamed."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

from synthetic_results import run_config, run_result

from optlab.bench.store import ResultsStore
from optlab.durable import write_atomic
from optlab.report import write_report

sys.path.insert(0, str(Path(__file__).parents[1] / "problems"))
from tiny_datasets import write_mnist

SECRET = b"someone else's file\n"


def _victim(tmp_path: Path, name: str) -> Path:
    victim = tmp_path / "outside" / name
    victim.parent.mkdir(exist_ok=True)
    victim.write_bytes(SECRET)
    return victim


def test_write_atomic_replaces_a_link_not_its_target(tmp_path: Path) -> None:
    victim = _victim(tmp_path, "target")
    link = tmp_path / "out.txt"
    link.symlink_to(victim)
    write_atomic(link, "new")
    assert victim.read_bytes() == SECRET
    assert not link.is_symlink() and link.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_the_report_and_its_figures_never_write_through_links(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "store")
    for seed in (42, 43):
        store.put(
            "runs",
            run_config("beale", "adam", seed, 0.01),
            run_result([1.0, 0.5, 0.25 * seed / 42], target=0.3, optimum=0.0),
        )
    out = tmp_path / "report"
    first = write_report(store, out)
    assert first["figures"]
    victims = []
    for path in [first["markdown"], first["html"], *first["figures"]]:
        victim = _victim(tmp_path, path.name)
        path.unlink()
        path.symlink_to(victim)
        victims.append(victim)
    again = write_report(store, out)
    assert [victim.read_bytes() for victim in victims] == [SECRET] * len(victims)
    for path in [again["markdown"], again["html"], *again["figures"]]:
        assert not path.is_symlink() and path.stat().st_size > 0


def test_decompressing_mnist_never_writes_through_a_link(tmp_path: Path) -> None:
    from optlab import problems
    from optlab.problems import BuildContext

    write_mnist(tmp_path, compress=True)
    raw = tmp_path / "MNIST" / "raw"
    victim = _victim(tmp_path, "partial")
    (raw / ".train-images-idx3-ubyte.partial").symlink_to(victim)  # the old fixed name
    problems.build("mnist-mlp", BuildContext(data_dir=tmp_path))
    assert victim.read_bytes() == SECRET
    plain = raw / "train-images-idx3-ubyte"
    assert plain.read_bytes() == gzip.decompress((raw / "train-images-idx3-ubyte.gz").read_bytes())


def test_a_policy_file_is_never_written_through_a_link(tmp_path: Path) -> None:
    from optlab.optim.learned import LearnedPolicy, load_policy, save_policy

    victim = _victim(tmp_path, "policy")
    path = tmp_path / "policy.pt"
    (tmp_path / ".policy.pt.tmp").symlink_to(victim)  # the old fixed temporary name
    path.symlink_to(_victim(tmp_path, "policy-target"))
    save_policy(LearnedPolicy.fresh(), path)
    assert victim.read_bytes() == SECRET == (tmp_path / "outside" / "policy-target").read_bytes()
    assert not path.is_symlink() and load_policy(path).config.hidden == 32

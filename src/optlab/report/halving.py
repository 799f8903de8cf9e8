"""The report's section on successive-halving runs (``optlab multi-init``, ``halving/``).

For each stored halving run: a table of its rounds (members alive, best and median
validation loss, the seeds kept) and a figure of every member's validation loss per round,
the survivors filled and the eliminated hollow, the winner's path drawn through the rounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from optlab.bench.store import ResultsStore
from optlab.report.formatting import compact
from optlab.report.tables import Table


def halving_records(
    store: ResultsStore, keys: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """The store's halving records (only those in ``keys`` when given), oldest config first."""
    records = list(store.records("halving"))
    if keys is not None:
        wanted = set(keys)
        records = [r for r in records if r["key"] in wanted]
    return sorted(records, key=lambda r: (r["config"]["problem"], r["config"]["optimizer"]))


def rounds_table(record: dict[str, Any]) -> Table:
    """One row per round: alive, best and median validation loss, kept seeds."""
    rows = []
    for number, round_ in enumerate(record["result"]["rounds"], start=1):
        finite = sorted(v for v in round_["val_loss"] if isinstance(v, float) and math.isfinite(v))
        best = compact(finite[0]) if finite else "-"
        median = compact(finite[len(finite) // 2]) if finite else "-"
        kept = ", ".join(str(seed) for seed in round_["kept"])
        rows.append((str(number), str(len(round_["seeds"])), best, median, kept))
    return Table(
        columns=("round", "alive", "best val loss", "median val loss", "kept init seeds"),
        rows=tuple(rows),
    )


def rounds_figure(record: dict[str, Any]) -> Figure:
    """Every member's validation loss per round; survivors filled, the winner's path drawn."""
    figure = Figure(figsize=(7.5, 4.2))
    axes = figure.add_subplot()
    rounds = record["result"]["rounds"]
    winner = record["result"]["winner_seed"]
    path_x, path_y = [], []
    for number, round_ in enumerate(rounds, start=1):
        count = len(round_["seeds"])
        for position, (seed, value) in enumerate(zip(round_["seeds"], round_["val_loss"],
                                                     strict=True)):  # fmt: skip
            if not (isinstance(value, float) and math.isfinite(value)):
                continue
            x = number + (position - (count - 1) / 2) * min(0.5 / max(count, 1), 0.06)
            kept = seed in round_["kept"]
            axes.scatter(
                [x], [value], s=28, facecolors="C0" if kept else "none", edgecolors="C0",
                zorder=3,
            )  # fmt: skip
            if seed == winner:
                path_x.append(x)
                path_y.append(value)
    axes.plot(path_x, path_y, color="C3", linewidth=1.5, label=f"winner (init seed {winner})")
    axes.set_xticks(range(1, len(rounds) + 1))
    axes.set_xlabel("round (filled: kept, hollow: eliminated)")
    axes.set_ylabel("validation loss")
    values = [v for r in rounds for v in r["val_loss"] if isinstance(v, float) and v > 0]
    if values and max(values) / min(values) > 20:  # log scale only where it helps
        axes.set_yscale("log")
    axes.legend(loc="best", fontsize=8)
    config = record["config"]
    axes.set_title(
        f"{config['optimizer']} on {config['problem']}: {config['members']} inits, "
        f"keep {config['reduce_factor']:g} per round", fontsize=10,
    )  # fmt: skip
    figure.tight_layout()
    return figure


def write_section(
    doc: Any,
    records: list[dict[str, Any]],
    save: Callable[[Figure, str, str], Path],
) -> None:
    """Add the halving section to ``doc`` (nothing when there are no records)."""
    if not records:
        return
    doc.heading(2, "Successive halving (multi-init)", "halving")
    doc.paragraph(
        "N initialisations trained at once; after every round the best fraction by "
        "validation loss is kept, the rest eliminated, until one remains and trains on."
    )
    for record in records:
        config, result = record["config"], record["result"]
        doc.heading(3, f"{config['optimizer']} on {config['problem']}")
        doc.paragraph(
            f"{config['members']} inits (seeds {config['init_seeds'][0]}-"
            f"{config['init_seeds'][-1]}), {config['steps_per_round']} steps per round, keep "
            f"{config['reduce_factor']:g}; the winner, init seed {result['winner_seed']}, "
            f"then trained {config['final_steps']} steps: validation loss "
            f"{compact(result['final_val_loss'])}, test loss {compact(result['test_loss'])}."
        )
        doc.table(rounds_table(record))
        name = f"{config['problem']}-{config['optimizer']}"
        path = save(rounds_figure(record), name, f"halving-{record['key'][:8]}")
        doc.figure(path, f"Validation loss of every member per round, {name}")

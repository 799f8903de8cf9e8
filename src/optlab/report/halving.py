"""The report's section on successive-halving runs (``optlab multi-init``, ``halving/``).

For each stored halving run: a table of its rounds (members alive, best and median
validation loss, the seeds kept and the seeds eliminated) and a figure of the survivor
curves: every member's validation loss at the end of each round it was alive, drawn as a
line through those rounds and ending with a cross at the round that eliminated it; the
winner's curve in red.

For each stored seed study (``optlab multi-init --seed-study``, a halving-kind record whose
config has ``"study": "seed-study"``; :class:`optlab.train.population.SeedStudy`): the steps
to the validation target of the three arms as mean ± std over the repeats (sample std,
n - 1), the winner's relative saving against the default seed, ``(default - winner) /
default`` per repeat, one row per repeat, and a figure of the validation-loss curves of the
winner (retrained with a fresh data order), the default init seed (same data order) and the
median of the N inits at each step, one thin line per repeat and their median bold.
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

STUDY = "seed-study"
ARMS = (("winner", "winner (fresh data order)", "C3"), ("default", "default init seed", "C0"),
        ("median", "median of the N inits", "C2"))  # fmt: skip


def halving_records(
    store: ResultsStore, keys: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """The store's halving-kind records, halving runs and seed studies (only those in
    ``keys`` when given), ordered by problem and optimizer."""
    records = list(store.records("halving"))
    if keys is not None:
        wanted = set(keys)
        records = [r for r in records if r["key"] in wanted]
    return sorted(records, key=lambda r: (r["config"]["problem"], r["config"]["optimizer"]))


def is_seed_study(record: dict[str, Any]) -> bool:
    """Whether a halving-kind record is a seed study (else a halving run)."""
    return record["config"].get("study") == STUDY


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def rounds_table(record: dict[str, Any]) -> Table:
    """One row per round: alive, best and median validation loss, kept and eliminated."""
    rows = []
    for number, round_ in enumerate(record["result"]["rounds"], start=1):
        finite = sorted(v for v in round_["val_loss"] if _finite(v))
        best = compact(finite[0]) if finite else "-"
        median = compact(finite[len(finite) // 2]) if finite else "-"
        kept = ", ".join(str(seed) for seed in round_["kept"])
        out = ", ".join(str(seed) for seed in round_["seeds"] if seed not in round_["kept"])
        rows.append((str(number), str(len(round_["seeds"])), best, median, kept, out or "-"))
    return Table(
        columns=(
            "round",
            "alive",
            "best val loss",
            "median val loss",
            "kept init seeds",
            "eliminated",
        ),
        rows=tuple(rows),
    )


def survivor_curves(record: dict[str, Any]) -> dict[int, tuple[list[int], list[float], int]]:
    """Per init seed: (rounds it was evaluated in, its validation loss there, the round it
    was eliminated in, or 0 for the winner)."""
    curves: dict[int, tuple[list[int], list[float], int]] = {}
    for number, round_ in enumerate(record["result"]["rounds"], start=1):
        for seed, value in zip(round_["seeds"], round_["val_loss"], strict=True):
            xs, ys, _ = curves.setdefault(seed, ([], [], 0))
            xs.append(number)
            ys.append(value if _finite(value) else math.nan)
            if seed not in round_["kept"]:
                curves[seed] = (xs, ys, number)
    return curves


def rounds_figure(record: dict[str, Any]) -> Figure:
    """Survivor curves (module docstring): a line per member through the rounds it lived,
    a cross where it was eliminated, the winner's line red."""
    figure = Figure(figsize=(7.5, 4.2))
    axes = figure.add_subplot()
    rounds = record["result"]["rounds"]
    winner = record["result"]["winner_seed"]
    for seed, (xs, ys, eliminated) in survivor_curves(record).items():
        if seed == winner:
            continue
        axes.plot(xs, ys, color="0.55", linewidth=0.9, marker="o", markersize=3, zorder=2)
        if eliminated and _finite(ys[-1]):
            axes.scatter([xs[-1]], [ys[-1]], marker="x", color="C0", s=30, zorder=3)
    xs, ys, _ = survivor_curves(record).get(winner, ([], [], 0))
    axes.plot(xs, ys, color="C3", linewidth=2, marker="o", markersize=4, zorder=4,
              label=f"winner (init seed {winner})")  # fmt: skip
    axes.scatter([], [], marker="x", color="C0", label="eliminated after this round")
    axes.set_xticks(range(1, len(rounds) + 1))
    axes.set_xlabel("round (validation loss at its end)")
    axes.set_ylabel("validation loss")
    values = [v for r in rounds for v in r["val_loss"] if _finite(v) and v > 0]
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


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if not all(_finite(v) for v in values):
        reached = sum(1 for v in values if _finite(v))
        return f"not reached in {len(values) - reached} of {len(values)}"
    mean = sum(values) / len(values)
    std = (
        math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        if len(values) > 1
        else 0.0
    )
    return f"{mean:.1f} ± {std:.1f}"


def study_table(record: dict[str, Any]) -> Table:
    """Steps to the target, mean ± std over the repeats, per arm; the winner's saving."""
    result = record["result"]
    rows = [(label, _mean_std([float(v) for v in result[arm]])) for arm, label, _ in ARMS]
    savings = [
        (d - w) / d for w, d in zip(result["winner"], result["default"], strict=True)
        if _finite(d) and _finite(w) and d
    ]  # fmt: skip
    if savings:
        mean = sum(savings) / len(savings)
        std = (
            math.sqrt(sum((s - mean) ** 2 for s in savings) / (len(savings) - 1))
            if len(savings) > 1
            else 0.0
        )
        rows.append(("winner's saving vs default seed", f"{mean:.1%} ± {std:.1%}"))
    return Table(columns=("arm", "steps to target, mean ± std"), rows=tuple(rows))


def repeats_table(record: dict[str, Any]) -> Table:
    """One row per repeat: the winner's init seed and each arm's steps to the target."""
    result = record["result"]
    rows = []
    for index, seed in enumerate(result["winner_seeds"]):
        cells = [f"{result[arm][index]:g}" if _finite(result[arm][index]) else "not reached"
                 for arm, _, _ in ARMS]  # fmt: skip
        rows.append((str(index + 1), str(seed), *cells))
    return Table(
        columns=("repeat", "winner init seed", "winner", "default seed", "median of N"),
        rows=tuple(rows),
    )


def study_figure(record: dict[str, Any], target: float | None = None) -> Figure:
    """Validation loss against steps: winner, default seed and median of N (module
    docstring); ``target`` drawn as a dashed line when given."""
    figure = Figure(figsize=(7.5, 4.2))
    axes = figure.add_subplot()
    curves = record["result"]["curves"]
    positive = []
    for arm, label, color in ARMS:
        rows = [curve[arm] for curve in curves if curve.get(arm)]
        for curve in curves:
            axes.plot(curve["step"], curve[arm], color=color, alpha=0.3, linewidth=0.8)
        if rows and all(len(row) == len(rows[0]) for row in rows):
            steps = curves[0]["step"]
            middle = [sorted(column)[len(column) // 2] for column in zip(*rows, strict=True)]
            axes.plot(steps, middle, color=color, linewidth=2, label=label)
        positive += [v for row in rows for v in row if _finite(v) and v > 0]
    if target is not None and _finite(target):
        axes.axhline(target, color="0.3", linestyle="--", linewidth=1, label="target")
    if positive and max(positive) / min(positive) > 20:
        axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("validation loss")
    axes.legend(loc="best", fontsize=8)
    config = record["config"]
    axes.set_title(
        f"{config['optimizer']} on {config['problem']}: halving winner vs default seed vs "
        f"median of {config['members']} ({len(curves)} repeats; bold: median)", fontsize=10,
    )  # fmt: skip
    figure.tight_layout()
    return figure


def write_section(
    doc: Any,
    records: list[dict[str, Any]],
    save: Callable[[Figure, str, str], Path],
    chart: Callable[[dict[str, Any]], Any] | None = None,
) -> None:
    """Add the halving section (runs, then seed studies) to ``doc`` (nothing when there are
    no records); ``chart(record)``, when given, is the interactive figure of a record."""
    runs = [record for record in records if not is_seed_study(record)]
    studies = [record for record in records if is_seed_study(record)]
    if runs:
        doc.heading(2, "Successive halving (multi-init)", "halving")
        doc.paragraph(
            "N initialisations trained at once; after every round the best fraction by "
            "validation loss is kept, the rest eliminated, until one remains and trains on."
        )
    for record in runs:
        config, result = record["config"], record["result"]
        doc.heading(3, f"{config['optimizer']} on {config['problem']}")
        doc.paragraph(
            f"{config['members']} inits (seeds {config['init_seeds'][0]}-"
            f"{config['init_seeds'][-1]}), {config['steps_per_round']} steps per round, keep "
            f"{config['reduce_factor']:g}; the winner, init seed {result['winner_seed']}, "
            f"then trained {config['final_steps']} steps: validation loss "
            f"{compact(result['final_val_loss'])}, test loss {compact(result['test_loss'])}."
        )
        scheduler = result.get("scheduler")
        if result.get("backend") == "ray" and isinstance(scheduler, dict):
            doc.paragraph(
                f"Ran on Ray Tune under {scheduler.get('name', 'a scheduler')} (reduction "
                f"factor {scheduler.get('reduction_factor')}, grace period "
                f"{scheduler.get('grace_period')} round, at most {scheduler.get('max_t')} "
                "rounds): asynchronous, so trials stop at rounds 1, 2, 4, ... and the "
                "survivors can differ from the exact in-process rule above; the rounds below "
                "are what Ray reported."
            )
        doc.table(rounds_table(record))
        name = f"{config['problem']}-{config['optimizer']}"
        path = save(rounds_figure(record), name, f"halving-{record['key'][:8]}")
        interactive = chart(record) if chart else None
        doc.figure(path, f"Survivor curves per round (crosses: eliminated), {name}", interactive)
    if studies:
        doc.heading(2, "Seed study: is the halving winner better, or lucky?", "seed-study")
        doc.paragraph(
            "Per repeat, a fresh block of N init seeds is halved on one data order; the "
            "winner is then retrained alone on a fresh data order, beside the default init "
            "seed on that same order, and all N inits are trained without elimination. "
            "Steps to the validation target (first evaluated step at or below it) are "
            "mean ± std over the repeats (sample std)."
        )
    for record in studies:
        config = record["config"]
        doc.heading(3, f"{config['optimizer']} on {config['problem']} (seed study)")
        doc.paragraph(
            f"{config['members']} inits per repeat, {config['repeats']} repeats, "
            f"{config['steps_per_round']} steps per round, keep {config['reduce_factor']:g}; "
            f"each arm trains {config['steps']} steps, evaluated every "
            f"{config['eval_every']}; default init seed {config['default_seed']}."
        )
        doc.table(study_table(record))
        doc.table(repeats_table(record))
        name = f"{config['problem']}-{config['optimizer']}"
        figure = study_figure(record, record["result"].get("target"))
        path = save(figure, name, f"seed-study-{record['key'][:8]}")
        interactive = chart(record) if chart else None
        doc.figure(path, f"Winner vs default seed vs median of N, {name}", interactive)

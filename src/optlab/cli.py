"""The ``optlab`` command line: thin Typer commands over library functions, Rich output.

User errors (unknown optimizer or problem, bad suite file, missing data, invalid values)
print one line ``optlab: error: ...`` on stderr and exit with status 2.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from optlab.errors import OptlabError

app = typer.Typer(
    name="optlab",
    help="A laboratory for gradient-based optimizers on PyTorch.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

BUG_HINT = (
    "optlab: this is a bug in optlab, not in your input: please report it with the "
    "traceback below and the command you ran"
)


def _user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn an :class:`OptlabError` (invalid input) into one line on stderr and exit
    status 2; any other exception is a bug: a hint to report it, then the exception goes on
    (Python prints its traceback and exits 1)."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except OptlabError as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            typer.echo(f"optlab: error: {message}", err=True)
            raise typer.Exit(code=2) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt, SystemExit):
            raise
        except Exception:
            typer.echo(BUG_HINT, err=True)
            raise

    return wrapper


def _names(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    if not names:
        raise OptlabError("an empty list of names was given")
    return names


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _stages(progress: Progress) -> Callable[[str, int, int], None]:
    """A ``progress(stage, done, total)`` callback drawing one bar per stage."""
    tasks: dict[str, Any] = {}

    def show(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage[:60], total=None)
        progress.update(tasks[stage], completed=done, total=total)

    return show


@app.command()
@_user_errors
def bench(
    suite: Annotated[str, typer.Option(help="quick, standard, full, or a .toml file")] = "quick",
    optimizers: Annotated[str | None, typer.Option(help="comma-separated subset")] = None,
    problems: Annotated[str | None, typer.Option(help="comma-separated subset")] = None,
    seeds: Annotated[int | None, typer.Option(help="reported seeds (42, 43, ...)")] = None,
    out: Annotated[Path, typer.Option(help="results store and report folder")] = Path("results"),
    data_dir: Annotated[Path | None, typer.Option(help="where MNIST/CIFAR live")] = None,
    download: Annotated[bool, typer.Option(help="download missing data sets")] = False,
    tune: Annotated[
        bool | None,
        typer.Option(
            "--tune/--no-tune",
            help="tune lr per optimizer and problem (default: the suite's [tuning] enabled)",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="processes (default: one per core, at most 2)")
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            help="local (this machine) or ray (Ray Tune trials, same store; extra ray: "
            "pip install 'optlab[ray]')"
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            help="with --backend ray: auto or HOST:PORT of a running Ray cluster "
            "(default: start a local Ray with --workers CPUs)"
        ),
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="optimizer the report compares every other with (adam)")
    ] = None,
) -> None:
    """Tune and run a suite, store every run, and write report.md / report.html.

    A learning-rate grid trains as one population where it pays (suite option [tuning]
    population = "auto" | "on" | "off"); the stored records are the same either way."""
    from optlab.bench.ray_backend import check_backend
    from optlab.bench.runner import default_workers, run_suite
    from optlab.bench.runs import DataOptions
    from optlab.bench.store import ResultsStore
    from optlab.bench.suite import load_suite, seed_range
    from optlab.report import check_destination, write_report

    check_backend(backend, address)
    if workers is None:
        workers = default_workers()
    if workers < 1:
        raise OptlabError(f"--workers must be >= 1, got {workers}")
    chosen = load_suite(suite)
    chosen = chosen.restricted(
        problems_=_names(problems),
        optimizers=_names(optimizers),
        seeds=None if seeds is None else seed_range("--seeds", seeds),
        tune=tune,
    )
    chosen.__post_init__()  # re-validate the restricted names
    if reference is not None and reference not in chosen.optimizers:  # before hours of runs
        raise OptlabError(f"--reference {reference!r} is not among the suite's optimizers")
    if problems is not None:  # asked for by name: a problem that cannot run is an error
        from optlab import problems as problem_registry

        for name in chosen.problems:
            if not download and not problem_registry.available(name, data_dir):
                reason = problem_registry.missing_data_message(name, data_dir)
                raise OptlabError(f"{name} {reason}")
    store, _ = ResultsStore(out), check_destination(out)  # both writable, before any run
    with _progress() as progress:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            label = "tuning" if stage.startswith("tune") else stage
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=None)
            description = stage if len(stage) < 60 else stage[:57] + "..."
            progress.update(tasks[label], completed=done, total=total, description=description)

        data = DataOptions(str(data_dir) if data_dir else None, download)
        if backend == "ray":
            from optlab.bench.ray_backend import run_suite_on_ray

            outcome = run_suite_on_ray(
                chosen, store, data=data, address=address, workers=workers, progress=report
            )
        else:
            outcome = run_suite(chosen, store, data=data, workers=workers, progress=report)
    notes = [f"skipped {name}: {reason}" for name, reason in outcome.skipped.items()]
    for note in notes:
        console.print(f"[yellow]{note}[/]")
    paths = write_report(
        store,
        out,
        title=f"optlab benchmark: suite {chosen.name}",
        notes=notes,
        keys=outcome.keys,
        reference=reference,
    )
    console.print(
        f"{outcome.ran} runs ran, {outcome.reused} reused from {out}; "
        f"report: {paths['markdown']} and {paths['html']}"
    )


@app.command()
@_user_errors
def train(
    problem: Annotated[str, typer.Option(help="problem name (optlab list)")],
    optimizer: Annotated[str, typer.Option(help="optimizer name (optlab list)")],
    epochs: Annotated[float | None, typer.Option(help="passes over the training set")] = None,
    steps: Annotated[int | None, typer.Option(help="gradient evaluations")] = None,
    lr: Annotated[float | None, typer.Option(help="learning rate (default: torch's)")] = None,
    seed: Annotated[int, typer.Option(help="init and data-order seed")] = 42,
    instance_seed: Annotated[int, typer.Option(help="problem instance seed")] = 42,
    data_dir: Annotated[Path | None, typer.Option(help="where MNIST/CIFAR live")] = None,
    download: Annotated[bool, typer.Option(help="download missing data sets")] = False,
) -> None:
    """Train one optimizer on one problem and print its curve (the seeds' per-run script)."""
    import torch

    from optlab import optim
    from optlab import problems as problem_registry
    from optlab.train.loop import TrainConfig
    from optlab.train.loop import train as train_loop

    for option, value in (("--seed", seed), ("--instance-seed", instance_seed)):
        if not 0 <= value <= 2**63 - 1:
            raise OptlabError(f"{option} must be in [0, 2**63 - 1], got {value}")
    if epochs is not None and steps is not None:
        raise OptlabError("give --epochs or --steps, not both")
    spec = problem_registry.spec(problem)
    optim.spec(optimizer)
    context = problem_registry.BuildContext(
        instance_seed=instance_seed, init_seed=seed, data_dir=data_dir, download=download
    )
    torch.manual_seed(seed)
    instance = problem_registry.build(problem, context)
    hyperparameters = {} if lr is None else {"lr": lr}
    opt = optim.create(optimizer, instance.model.parameters(), **hyperparameters)
    budget = spec.steps if steps is None else steps
    if budget < 1:
        raise OptlabError(f"--steps must be >= 1, got {budget}")
    if epochs is not None:
        if not (epochs > 0 and math.isfinite(epochs)):
            raise OptlabError(f"--epochs must be > 0, got {epochs}")
        rows = len(instance.data.train[0]) if instance.data else 1
        per_epoch = math.ceil(rows / instance.batch_size) if instance.batch_size else 1
        budget = max(1, round(epochs * per_epoch))
    config = TrainConfig(steps=budget, eval_every=spec.eval_every, data_seed=seed)
    table = Table(title=f"{optimizer} on {problem}")
    for column in ("step", "grad evals", "seconds", "train loss", "val loss", "val acc"):
        table.add_column(column, justify="right")
    with _progress() as progress:
        task = progress.add_task("training", total=budget)

        def show(result: Any) -> None:
            progress.update(task, completed=result.curve["evaluations"][-1])

        result = train_loop(instance, opt, config, on_evaluation=show)
    curve = result.curve
    for i in range(len(curve["step"])):
        accuracy = curve["val_accuracy"][i]
        table.add_row(
            str(curve["step"][i]),
            str(curve["evaluations"][i]),
            f"{curve['seconds'][i]:.2f}",
            f"{curve['train_loss'][i]:.4g}",
            f"{curve['val_loss'][i]:.4g}",
            "-" if accuracy is None else f"{accuracy:.2%}",
        )
    console.print(table)
    accuracy = "" if result.test_accuracy is None else f", test accuracy {result.test_accuracy:.2%}"
    console.print(
        f"status {result.status}; test loss {result.test_loss:.4g}{accuracy}; "
        f"target {instance.target:g} reached at step {result.steps_to_target or '-'}"
    )


@app.command(name="multi-init")
@_user_errors
def multi_init(
    problem: Annotated[str, typer.Option(help="problem name (optlab list)")],
    optimizer: Annotated[str, typer.Option(help="an elementwise optimizer")] = "adam",
    num_models: Annotated[int, typer.Option(help="initialisations trained at once")] = 16,
    reduce_factor: Annotated[float, typer.Option(help="fraction kept per round")] = 0.5,
    steps_per_round: Annotated[int, typer.Option(help="steps between eliminations")] = 100,
    epochs: Annotated[float, typer.Option(help="epochs the survivor trains afterwards")] = 1.0,
    lr: Annotated[float | None, typer.Option(help="learning rate (default: torch's)")] = None,
    seed: Annotated[int, typer.Option(help="first init seed (then seed+1, ...)")] = 42,
    data_order: Annotated[
        str,
        typer.Option(
            help="shared (every member sees the same batches, seeded by --seed) or "
            "per-member (member i draws its own order, seed + i)"
        ),
    ] = "shared",
    out: Annotated[Path, typer.Option(help="results store folder")] = Path("results"),
    data_dir: Annotated[Path | None, typer.Option(help="where MNIST/CIFAR live")] = None,
    download: Annotated[bool, typer.Option(help="download missing data sets")] = False,
    backend: Annotated[
        str,
        typer.Option(
            help="local (exact halving in one process) or ray (one Ray Tune trial per init "
            "seed under ASHA, reduction factor 1/reduce-factor: asynchronous, so survivors "
            "may differ from the exact rule; stored as a separate record)"
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="with --backend ray: auto or HOST:PORT (default: a local Ray)"),
    ] = None,
    seed_study: Annotated[
        bool,
        typer.Option(
            help="also measure the winner against the default seed and the median of N: "
            "steps to the validation target over --repeats fresh blocks of inits"
        ),
    ] = False,
    repeats: Annotated[int, typer.Option(help="seed-study repeats")] = 3,
    study_steps: Annotated[
        int | None, typer.Option(help="seed-study budget per arm (default: the problem's)")
    ] = None,
) -> None:
    """Train N initialisations at once and keep the best fraction each round (the seeds'
    multi-initialisation framework), then train the survivor; stored under OUT/halving.
    A killed run resumes from its last completed round (OUT/halving/<key>.partial)."""
    from optlab.bench import multi_init as library
    from optlab.bench.store import ResultsStore

    request = library.MultiInitRequest(
        problem=problem, optimizer=optimizer, num_models=num_models,
        reduce_factor=reduce_factor, steps_per_round=steps_per_round, epochs=epochs, lr=lr,
        seed=seed, data_order=data_order, data_dir=data_dir, download=download,
        backend=backend, address=address, seed_study=seed_study, repeats=repeats,
        study_steps=study_steps,
    )  # fmt: skip
    run = library.prepare(request)
    store = ResultsStore(out)
    stored = library.reuse_halving(run, store)
    if stored is None and backend == "ray":
        with console.status(f"successive halving of {num_models} Ray trials (ASHA)"):
            stored = library.run_halving(run, store)
    elif stored is None:
        with _progress() as progress:
            task = progress.add_task(f"round 1: {num_models} models", total=None)

            def show(record: dict[str, list[Any]]) -> None:
                progress.update(
                    task,
                    description=f"kept {len(record['kept'])} of {len(record['seeds'])}",
                    advance=1,
                )

            stored = library.run_halving(run, store, on_round=show)
    else:
        console.print(f"already in {out}: reused")
    table = Table(title=f"successive halving: {optimizer} on {problem}")
    for column in ("round", "alive", "best val loss", "median val loss", "kept seeds"):
        table.add_column(column, justify="right")
    for row in library.round_rows(stored["result"]):
        table.add_row(*row)
    console.print(table)
    result = stored["result"]
    console.print(
        f"winner: init seed {result['winner_seed']}; validation loss "
        f"{result['final_val_loss']:.4g}, test loss {result['test_loss']:.4g}"
    )
    if not seed_study:
        return
    study = library.reuse_seed_study(run, store)
    if study is None:
        with _progress() as progress:
            task = progress.add_task("seed study: repeats", total=repeats)
            study = library.run_seed_study(
                run, store, on_repeat=lambda _: progress.update(task, advance=1)
            )
    else:
        console.print(f"seed study already in {out}: reused")
    console.print(library.study_sentence(run, study["result"]))


@app.command()
@_user_errors
def claims(
    out: Annotated[Path, typer.Option(help="results store and report folder")] = Path(
        "results-claims"
    ),
    seeds: Annotated[int | None, typer.Option(help="seeds per claim (default: 10)")] = None,
    scale: Annotated[str, typer.Option(help="default, or tiny (a smoke test)")] = "default",
) -> None:
    """Check the seeds' published claims: measured values, 95% intervals, verdicts."""
    from optlab.claims import run_claims, scale_named, verdict_rows

    chosen = scale_named(scale, seeds)
    with _progress() as progress:
        show = _stages(progress)
        outcome = run_claims(out, chosen, progress=show)
    table = Table(title=f"claims ({outcome.measured} measured, {outcome.reused} reused)")
    for column in ("claim", "claimed", "measured: mean [95% CI] (n)", "verdict"):
        table.add_column(column)
    for row in verdict_rows(outcome.records):
        table.add_row(*row)
    console.print(table)
    console.print(f"report: {outcome.paths['markdown']} and {outcome.paths['html']}")


@app.command()
@_user_errors
def report(
    directory: Annotated[Path, typer.Argument(help="a results folder written by optlab bench")],
    reference: Annotated[
        str | None, typer.Option(help="optimizer every other is compared with (adam)")
    ] = None,
) -> None:
    """Write report.md and report.html from a results folder."""
    from optlab.report import results_folder, write_report

    paths = write_report(results_folder(directory), directory, reference=reference)
    console.print(f"report: {paths['markdown']} and {paths['html']}")


@app.command(name="list")
@_user_errors
def list_(
    data_dir: Annotated[Path | None, typer.Option(help="check which data sets are present")] = None,
) -> None:
    """List optimizers, problems and suites."""
    from optlab import optim
    from optlab import problems as problem_registry
    from optlab.bench.suite import builtin_suites

    table = Table(title="optimizers")
    table.add_column("name")
    table.add_column("what")
    for name in optim.names():
        table.add_row(name, optim.spec(name).summary)
    console.print(table)
    table = Table(title="problems")
    for column in ("name", "kind", "budget", "available", "what"):
        table.add_column(column)
    for name in problem_registry.names():
        spec = problem_registry.spec(name)
        present = problem_registry.available(name, data_dir)
        table.add_row(
            name, spec.kind, str(spec.steps), "yes" if present else f"needs {spec.needs_data}",
            spec.description,
        )  # fmt: skip
    console.print(table)
    for suite in builtin_suites().values():
        console.print(f"suite [bold]{suite.name}[/]: {', '.join(suite.problems)}")


@app.command()
@_user_errors
def demo(steps: Annotated[int, typer.Option(help="gradient evaluations each")] = 3000) -> None:
    """Every optimizer on 2-D Rosenbrock (a quick look, no store)."""
    from optlab.demo import main

    main(["--steps", str(steps)])


rl_app = typer.Typer(
    name="rl",
    help="The learned optimizer: train a policy with PPO, bench it on held-out instances.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(rl_app, name="rl")


@rl_app.command(name="train")
@_user_errors
def rl_train(
    problem: Annotated[
        str, typer.Option(help="family (quadratic, logistic, robust-regression, mlp) or problem")
    ] = "quadratic",
    num_problems: Annotated[int, typer.Option(help="training instances")] = 90,
    timesteps: Annotated[
        int | None, typer.Option(help="environment steps (default: instances x passes x 40)")
    ] = None,
    passes: Annotated[int, typer.Option(help="passes over the instances")] = 20,
    seed: Annotated[int, typer.Option(help="PPO and instance-order seed")] = 42,
    lr: Annotated[float, typer.Option(help="step scale of the policy's updates")] = 0.1,
    history_len: Annotated[int, typer.Option(help="steps of history each coordinate sees")] = 10,
    out: Annotated[Path, typer.Option(help="policy file to write (and OUT.json)")] = Path(
        "policy.pt"
    ),
) -> None:
    """Train a coordinate-wise policy with PPO; write the policy and its training config."""
    from optlab.optim.learned import PolicyConfig
    from optlab.rl.training import TrainingConfig, train_policy

    config = TrainingConfig(
        problem=problem,
        num_problems=num_problems,
        passes=passes,
        timesteps=timesteps,
        seed=seed,
        policy=PolicyConfig(history_len=history_len, lr=lr),
    )
    with _progress() as progress:
        task = progress.add_task("PPO timesteps", total=config.total_timesteps)

        def show(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        outcome = train_policy(config, out, progress=show)
    console.print(
        f"trained {outcome.timesteps} steps in {outcome.seconds:.0f} s; "
        f"policy: {outcome.policy_path}, config: {outcome.config_path}"
    )


@rl_app.command(name="bench")
@_user_errors
def rl_bench(
    policy: Annotated[Path, typer.Option(help="a policy file written by optlab rl train")],
    problem: Annotated[str, typer.Option(help="family or problem name")] = "quadratic",
    instances: Annotated[int, typer.Option(help="held-out instances")] = 5,
    seeds: Annotated[int, typer.Option(help="init / data-order seeds per instance")] = 3,
    steps: Annotated[int | None, typer.Option(help="budget (default: the problem's)")] = None,
    out: Annotated[Path, typer.Option(help="results store and report folder")] = Path("results-rl"),
    tune: Annotated[bool, typer.Option(help="tune the baselines' lr as the bench does")] = True,
    workers: Annotated[int, typer.Option(help="processes for the baselines' runs")] = 1,
) -> None:
    """The policy against tuned Adam, SGD, momentum and L-BFGS on held-out instances."""
    from optlab.rl.bench import bench_policy

    with _progress() as progress:
        show = _stages(progress)
        outcome = bench_policy(
            policy,
            problem,
            out,
            instances=instances,
            seeds=seeds,
            steps=steps,
            tune=tune,
            workers=workers,
            progress=show,
        )
    console.print(outcome.table_markdown)
    console.print(f"report: {outcome.report_path}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    sys.exit(main())

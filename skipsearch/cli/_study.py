"""``skipsearch run``, ``worker``, ``recover`` and ``migrate``: running search studies and their storage."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from skipsearch.cli._common import DEFAULT_STORAGE, StorageOption, finite
from skipsearch.errors import UserError

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from skipsearch.search import StudyConfig

# skipsearch.search (and with it torch) and Optuna are imported inside the commands that run
# studies, so that the other commands, and --help, start without loading them.

StudyNameOption = Annotated[str, typer.Option("--study", envvar="SKIPSEARCH_STUDY", help="Name of the study.")]


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("worker")(worker)
    app.command("recover")(recover)
    app.command("migrate")(migrate)


def run(
    study_file: Annotated[Path, typer.Argument(help="Study file (studies/*.yaml).")],
    storage: StorageOption = DEFAULT_STORAGE,
    study: Annotated[str | None, typer.Option(help="Study name (default: the file's name field).")] = None,
    n_trials: Annotated[int | None, typer.Option(min=1, help="Total trial target (default: the file's).")] = None,
    more: Annotated[
        int | None, typer.Option("--more", min=1, help="Run N trials more than the study has (raises the target).")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=1, callback=finite, help="Stop starting trials after S seconds.")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes on this machine.")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", help="Log lines instead of a live progress bar.")] = False,
) -> None:
    """Create (or resume) a study from a study file and run it; print its Pareto front."""
    from skipsearch.search import (
        counted_trials,
        create_study,
        load_study_config,
        run_local_workers,
        run_worker,
        safe_url,
    )

    if more is not None and n_trials is not None:
        raise UserError("give --n-trials (a total) or --more (an increment), not both")
    config = load_study_config(study_file)
    _set_logging(quiet)
    created = create_study(config, storage, study)
    name = created.study_name
    done = counted_trials(created.get_trials(deepcopy=False))
    target = done + more if more is not None else n_trials or config.trials
    console = Console(stderr=True)
    if done >= target:
        console.print(
            f"study [bold]{name}[/] has reached its target: {done} of {target} {_plural(target, 'trial')} done. "
            f"To add more, run with --more N or raise 'trials' in {study_file}."
        )
        _print_front(storage, name, config)
        return
    console.print(
        f"study [bold]{name}[/] on {safe_url(storage)}: {target - done} {_plural(target - done, 'trial')} to run"
        f"{f' ({done} done, target {target})' if done else ''}, {workers} {_plural(workers, 'worker')}"
    )
    with _progress(config, target, quiet) as progress:
        if workers == 1:
            run_worker(storage, name, target=target, timeout=timeout, progress=progress)
        else:
            command = worker_command(name, target=target, timeout=timeout)
            code = run_local_workers(storage, name, workers, command, progress=progress)
            if code != 0:
                raise UserError(f"a worker exited with code {code}; see its output above")
    _print_front(storage, name, config)


def worker_command(
    study_name: str, *, target: int | None = None, timeout: float | None = None
) -> Callable[[int], list[str]]:
    """The command line of local worker ``i`` of ``run --workers``: this CLI's ``worker`` command
    (the storage URL goes through the environment, never the command line)."""
    base = [sys.executable, "-m", "skipsearch", "worker", "--study", study_name, "--quiet"]
    if target:
        base += ["--n-trials", str(target)]
    if timeout:
        base += ["--timeout", str(timeout)]
    return lambda i: [*base, "--worker-index", str(i)]


def worker(
    study: StudyNameOption,
    storage: StorageOption = DEFAULT_STORAGE,
    n_trials: Annotated[int | None, typer.Option(min=1, help="Total trial target (default: the study's).")] = None,
    timeout: Annotated[
        float | None, typer.Option(min=1, callback=finite, help="Stop starting trials after S seconds.")
    ] = None,
    worker_index: Annotated[
        int | None,
        typer.Option(
            min=0,
            envvar="SKIPSEARCH_WORKER_INDEX",
            help="Offsets the sampler seed (default: derived from host and process id, distinct per worker).",
        ),
    ] = None,
    max_trials: Annotated[
        int | None, typer.Option(min=1, help="Stop after this worker ran N trials (e.g. a batch job's share).")
    ] = None,
    stop_grace: Annotated[
        float | None,
        typer.Option(
            min=0,
            callback=finite,
            envvar="SKIPSEARCH_STOP_GRACE",
            help="On SIGTERM, seconds the running trial may take to finish before it is failed and re-queued "
            "(default: 30).",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Log lines instead of a live progress bar.")] = False,
) -> None:
    """Join a running study from any machine (workers share only the storage).

    SIGTERM stops the worker cleanly: the running trial finishes (or is re-queued after
    --stop-grace seconds) and the worker exits with code 0.
    """
    from skipsearch.search import STOP_GRACE, default_worker_index, run_worker

    _set_logging(quiet)
    run_worker(
        storage,
        study,
        target=n_trials,
        timeout=timeout,
        worker_index=default_worker_index() if worker_index is None else worker_index,
        max_trials=max_trials,
        stop_grace=STOP_GRACE if stop_grace is None else stop_grace,
    )


def recover(
    study: Annotated[
        str | None,
        typer.Option(
            "--study", envvar="SKIPSEARCH_STUDY", help="Study whose dead workers' trials to recover (optional)."
        ),
    ] = None,
    storage: StorageOption = DEFAULT_STORAGE,
    wait: Annotated[
        bool, typer.Option(help="Wait one grace period for trials of just-killed workers to go stale.")
    ] = True,
) -> None:
    """Fail the trials of dead workers, re-queue their parameters and write missing results rows; move
    the results rows of renamed studies to their new name and delete those of deleted studies.

    For when every worker died: running workers do this by themselves. Without --study, only the
    results rows are repaired.
    """
    from skipsearch.search import recover_study, repair_orphan_rows

    _set_logging(True)
    console = Console()
    if study is not None:
        report = recover_study(storage, study, wait=wait)
        console.print(
            f"{study}: {len(report.failed)} stale trial(s) failed {report.failed}, "
            f"{len(report.requeued)} re-queued {report.requeued}, {report.synced} results row(s) written "
            f"({report.seconds:.1f} s)"
        )
        if report.alive:
            console.print(f"still running with a live heartbeat (left alone): {report.alive}")
    repair = repair_orphan_rows(storage)
    moved = ", ".join(f"{old!r} -> {new!r}: {rows}" for old, (new, rows) in repair.moved.items())
    deleted = ", ".join(f"{name!r}: {rows}" for name, rows in repair.deleted.items())
    console.print(
        f"results rows of studies no longer in the storage: {sum(r for _, r in repair.moved.values())} moved to "
        f"renamed studies{f' ({moved})' if moved else ''}, {sum(repair.deleted.values())} of deleted studies "
        f"deleted{f' ({deleted})' if deleted else ''}",
        highlight=False,
        soft_wrap=True,
    )


def migrate(
    storage: StorageOption = DEFAULT_STORAGE,
    study_file: Annotated[
        Path | None,
        typer.Option(envvar="SKIPSEARCH_STUDY_FILE", help="Also create (or resume) the study of this file."),
    ] = None,
    study: Annotated[
        str | None, typer.Option(envvar="SKIPSEARCH_STUDY", help="Study name (default: the file's name field).")
    ] = None,
) -> None:
    """Set up a database once: Optuna's tables, the results schema and optionally a study.

    Run it before starting many workers on a fresh database (the compose ``migrate`` service).
    """
    from skipsearch.search import load_study_config, migrate_storage, safe_url

    _set_logging(True)
    config = load_study_config(study_file) if study_file is not None else None
    name = migrate_storage(storage, config, study if config is not None else None)
    suffix = f"; study {name!r} ready" if name else ""
    Console().print(f"storage {safe_url(storage)}: schema up to date{suffix}")


class _progress:
    """A rich progress bar fed by study callbacks (or by polling while worker processes run)."""

    def __init__(self, config: StudyConfig, target: int, quiet: bool) -> None:
        self.config, self.target, self.quiet = config, target, quiet
        self.bar: Progress | None = None

    def __enter__(self) -> _progress | None:
        if self.quiet:
            return None
        self.bar = Progress(
            TextColumn("[bold]trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
        )
        self.task = self.bar.add_task("", total=self.target)
        self.bar.start()
        return self

    def __call__(self, study: optuna.Study, trial: FrozenTrial | None) -> None:
        from skipsearch.search import counted_trials

        if self.bar is None:
            return
        trials = study.get_trials(deepcopy=False)
        self.bar.update(
            self.task, completed=min(counted_trials(trials), self.target), description=self._summary(trials)
        )

    def _summary(self, trials: list[FrozenTrial]) -> str:
        import numpy as np
        from optuna.trial import TrialState

        done = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
        if not done:
            return "no finished trial yet"
        values = np.array([t.values for t in done])
        first = self.config.objectives[0]
        best = values[:, 0].max() if first.direction == "maximize" else values[:, 0].min()
        from skipsearch.results import objective_label
        from skipsearch.tasks import TASKS

        text = f"best {objective_label(first.name, TASKS[self.config.task.name].metric)} {best:.4g}"
        if len(self.config.objectives) > 1:
            from skipsearch.results import front_mask

            ways = [way for _, way in self.config.objective_pairs]
            text += f" | pareto {int(front_mask(values, ways).sum())}"
        return text

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _set_logging(quiet: bool) -> None:
    """Optuna's per-trial log lines with --quiet; only warnings under the progress bar."""
    import optuna

    optuna.logging.set_verbosity(logging.INFO if quiet else logging.WARNING)
    # Heartbeats and metric names are marked experimental; skipsearch relies on them knowingly.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _plural(count: int, word: str) -> str:
    return word if count == 1 else f"{word}s"


def _print_front(storage: str, study_name: str, config: StudyConfig) -> None:
    """The run summary: the front's trials with their quality, cost, active skips and state."""
    from skipsearch.cli._results import pareto_footer, print_table
    from skipsearch.results import connect, pareto
    from skipsearch.search import study_reference_point
    from skipsearch.tasks import TASKS

    reference, _ = study_reference_point(storage, study_name)
    objectives = config.objective_pairs
    result = pareto(connect(storage), [study_name], objectives, reference_point=[reference[n] for n, _ in objectives])
    result.reference_source = "study"
    metric = TASKS[config.task.name].metric
    count = len(result.front)
    Console().print(f"[bold]Pareto front[/] of {study_name} ({count} {'topology' if count == 1 else 'topologies'})")
    names = [n for n, _ in objectives]
    columns = ["trial_number", *names, "active_skips", "state", "params", "macs", "name", "hash", "latency_ms"]
    print_table(result.front, task_metric=metric, columns=columns)
    Console().print(pareto_footer(result, metric))

"""Progress of the commands that take more than a couple of seconds: epochs with an ETA, steps.

Shown on stderr, and only on a terminal: piped output and logs stay clean. Training runs report
their epochs through :func:`skipsearch.tasks.observe_epochs`, so a command wraps the work in
:func:`training_progress` without handing anything down to the code that trains.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.fields[what]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    )


@contextmanager
def training_progress(what: str, metric: str | None = None) -> Iterator[Callable[[str], None]]:
    """A progress bar for each model trained inside the block (``what``: "training", "retraining",
    ...), epochs done of all with an ETA and the last validation ``metric``. Yields a function that
    names the current step (``analyze`` and ``report`` run several)."""
    from skipsearch.results import metric_label
    from skipsearch.tasks import observe_epochs

    console = Console(stderr=True)
    if not console.is_terminal:
        with observe_epochs(lambda epoch, epochs, value: None):
            yield lambda step: None
        return
    label = metric_label(metric) if metric else "validation"
    runs: list[TaskID] = []
    steps: list[TaskID] = []
    current = [what]
    with _progress(console) as bar:

        def on_epoch(epoch: int, epochs: int, value: float) -> None:
            if epoch == 0:  # a new run: a new bar
                runs.append(bar.add_task("", total=epochs, what=f"{current[0]} (run {len(runs) + 1})"))
                return
            shown = f"{label} {value:.4f}" if math.isfinite(value) else ""
            bar.update(runs[-1], completed=epoch, description=shown)

        def step(name: str) -> None:
            current[0] = name
            if steps:
                bar.update(steps[0], what=name)
            else:
                steps.append(bar.add_task("", total=None, what=name))

        with observe_epochs(on_epoch):
            yield step

"""Many worker processes on one study: trial numbers stay dense and unique on PostgreSQL and SQLite."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from optuna.trial import TrialState
from reliability_helpers import SHORT, Processes, assert_nothing_lost, create, no_traceback, output

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

WORKERS, PER_WORKER = 8, 25


def _many_workers(url: str, processes: Processes) -> None:
    total = WORKERS * PER_WORKER
    name = create(url, {**SHORT, "trials": total})
    workers = [processes.worker(url, name, "--max-trials", str(PER_WORKER)) for _ in range(WORKERS)]
    codes = processes.wait(workers, timeout=400)
    logs = [output(p) for p in workers]
    assert codes == [0] * WORKERS, [log[-1500:] for log in logs]
    stored = assert_nothing_lost(url, name, total)
    numbers = [t.number for t in stored]
    assert sorted(numbers) == list(range(total)), f"duplicates: {[n for n, c in Counter(numbers).items() if c > 1]}"
    assert all(t.state == TrialState.COMPLETE for t in stored), Counter(t.state.name for t in stored)
    for log in logs:
        assert no_traceback(log) and "OperationalError" not in log.replace("database error (", "")
    retried = sum(log.count("database error (") for log in logs)
    print(f"{WORKERS}x{PER_WORKER} on {url.split(':', 1)[0]}: {total} trials, {retried} handled database errors")


@pytest.mark.postgres
def test_many_workers_on_postgres(postgres_url: str, processes: Processes) -> None:
    _many_workers(postgres_url, processes)


def test_many_workers_on_sqlite(tmp_path: Path, processes: Processes) -> None:
    _many_workers(f"sqlite:///{tmp_path / 'many.db'}", processes)

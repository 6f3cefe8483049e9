"""PostgreSQL connections killed under running workers (``pg_terminate_backend``, as a server
restart or a network cut does): the workers reconnect and finish, nothing is lost."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa
from optuna.trial import TrialState
from reliability_helpers import SLOW, Processes, assert_nothing_lost, create, no_traceback, output
from sqlalchemy.pool import NullPool

from skipsearch.search import CONNECTIONS_PER_WORKER

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.postgres]


def _backends(admin: sa.Engine, database: str, terminate: bool) -> int:
    """Connections of the other sessions to ``database``; with ``terminate``, kills them."""
    what = "pg_terminate_backend(pid)" if terminate else "pid"
    with admin.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT {what} FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"),
            {"db": database},
        ).all()
    return len(rows)


def test_workers_survive_killed_connections(postgres_url: str, processes: Processes) -> None:
    target, workers_n = 8, 2
    name = create(postgres_url, {**SLOW, "trials": target, "training": {**SLOW["training"], "epochs": 3}})
    database = sa.make_url(postgres_url).database
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    workers = [processes.worker(postgres_url, name) for _ in range(workers_n)]
    killed, rounds, peak = 0, 0, 0
    started = time.monotonic()
    try:
        while any(p.poll() is None for p in workers) and time.monotonic() - started < 240:
            time.sleep(1.5)
            peak = max(peak, _backends(admin, database, terminate=False))
            killed += _backends(admin, database, terminate=True)
            rounds += 1
    finally:
        admin.dispose()
    codes = processes.wait(workers, timeout=120)
    logs = [output(p) for p in workers]
    assert codes == [0] * workers_n, [log[-2000:] for log in logs]
    assert rounds >= 3 and killed >= 3, (rounds, killed)
    stored = assert_nothing_lost(postgres_url, name, target)
    failed = [
        t.user_attrs["failure_reason"]
        for t in stored
        if t.state == TrialState.FAIL and "failure_reason" in t.user_attrs
    ]
    assert not failed
    assert all(no_traceback(log) for log in logs)
    # The budget: the Optuna pool plus the results engine's connection, per worker.
    assert peak <= workers_n * (CONNECTIONS_PER_WORKER + 2), peak
    figures = {
        "rounds": rounds,
        "connections_killed": killed,
        "handled_errors": sum(log.count("database error (") + log.count("missed") for log in logs),
        "retried_trials": sum(1 for t in stored if t.system_attrs.get("retry_history")),
        "peak_connections": peak,
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(figures))

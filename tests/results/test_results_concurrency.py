"""Eight processes opening the same fresh database at once all succeed (Optuna issue #4621)."""

from __future__ import annotations

import multiprocessing
import traceback
from pathlib import Path

import pytest

from skipsearch.results import EvaluationRecord, connect, evaluations, head_revision, record_evaluation, schema_revision
from skipsearch.topology import families

pytestmark = pytest.mark.slow  # eight processes at once

PROCESSES = 8


def _child(url: str, number: int, barrier: multiprocessing.synchronize.Barrier, errors: multiprocessing.Queue) -> None:
    # Forked after every import, so all children reach connect() within milliseconds of each other.
    try:
        barrier.wait(timeout=60)
        engine = connect(url)
        topology = families.mlp(8, [8, 8], 3, name="concurrent")
        record_evaluation(engine, EvaluationRecord("race", number, topology, "t", 0, "COMPLETE", {"accuracy": 0.5}))
        engine.dispose()
    except BaseException:
        errors.put(traceback.format_exc())
        raise


def _initialise_at_once(url: str) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier, errors = ctx.Barrier(PROCESSES), ctx.Queue()
    children = [ctx.Process(target=_child, args=(url, i, barrier, errors)) for i in range(PROCESSES)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
    failures = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
    assert not failures, failures[0]
    assert [c.exitcode for c in children] == [0] * PROCESSES
    engine = connect(url)
    try:
        assert schema_revision(engine) == head_revision()
        assert sorted(evaluations(engine)["trial_number"]) == list(range(PROCESSES))
    finally:
        engine.dispose()


def test_eight_processes_initialise_one_sqlite_database(tmp_path: Path) -> None:
    _initialise_at_once(f"sqlite:///{tmp_path / 'fresh.db'}")


@pytest.mark.postgres
def test_eight_processes_initialise_one_postgres_database(postgres_url: str) -> None:
    _initialise_at_once(postgres_url)

"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from cli_runner import Invoke, invoke

POSTGRES_ENV = "SKIPSEARCH_TEST_POSTGRES_URL"

# One torch thread unless the caller says otherwise, set before anything imports torch: the tests'
# models are tiny, so a second thread mostly spins (on a shared 2-core machine it made the nn tests
# several times slower in CPU time). It used to happen by accident: the first in-process study's
# worker set one thread for the rest of the session.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def cli() -> Invoke:
    """The real ``skipsearch`` entry point in-process: ``cli(args) -> (exit code, stdout, stderr)``."""
    return invoke


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test.

    Needs ``SKIPSEARCH_TEST_POSTGRES_URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``):
    a database on a server where that user may create databases; skips the test when it is unset.
    """
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    url = sa.make_url(base)
    if url.drivername == "postgresql":  # psycopg 3 is the driver skipsearch installs
        url = url.set(drivername="postgresql+psycopg")
    name = f"skipsearch_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:  # set but unreachable: a broken setup, not a reason to skip
        pytest.fail(f"{POSTGRES_ENV}: cannot create a database ({str(exc.orig).splitlines()[0]})")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()

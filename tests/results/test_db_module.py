"""The one database module: both the results tables and Optuna's storage open databases through it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import sqlalchemy as sa

from skipsearch.db import (
    DatabaseURLError,
    backoff,
    engine_kwargs,
    is_connection_error,
    mask_password,
    normalise_url,
    parse_url,
    safe_url,
)

PACKAGE = Path(__file__).resolve().parents[2] / "skipsearch"


def test_urls_are_normalised_parsed_and_shown_without_the_password() -> None:
    assert normalise_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
    assert parse_url("postgres://u:hunter2@h/db").drivername == "postgresql+psycopg"
    assert safe_url("postgresql+psycopg://u:hunter2@h/db") == "postgresql+psycopg://u:***@h/db"
    assert (
        mask_password("could not connect to postgresql://u:hunter2@h/db")
        == "could not connect to postgresql://u:***@h/db"
    )
    with pytest.raises(DatabaseURLError) as exc:
        parse_url("not a url hunter2")
    assert "hunter2" not in str(exc.value)


def test_engines_share_timeouts_and_pool_sizes() -> None:
    sqlite = engine_kwargs(sa.make_url("sqlite:///x.db"), pool_size=2, max_overflow=1)
    assert sqlite == {"pool_pre_ping": True, "connect_args": {"timeout": 60.0}}
    postgres = engine_kwargs(parse_url("postgres://u@h/db"), pool_size=2, max_overflow=1, pool_recycle=300)
    assert postgres["pool_size"] == 2 and postgres["max_overflow"] == 1 and postgres["pool_recycle"] == 300
    assert postgres["connect_args"] == {"connect_timeout": 10} and postgres["pool_pre_ping"]


def test_lost_connections_are_retried_and_bad_queries_are_not() -> None:
    lost = sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
    missing = sa.exc.OperationalError("SELECT 1", {}, Exception('database "x" does not exist'))
    assert is_connection_error(RuntimeError("wrapped")) is False
    assert is_connection_error(lost) and not is_connection_error(missing)
    assert [backoff(a) for a in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_only_the_database_module_builds_engines_or_sets_pragmas() -> None:
    """No second copy: engines, pragmas and URL parsing live in skipsearch/db."""
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "db":
            continue
        tree = ast.parse(path.read_text())
        names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}  # sa.create_engine
        names |= {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy")
            for alias in node.names
        }
        text = path.read_text()
        assert "create_engine" not in names, path
        assert "PRAGMA journal_mode" not in text and "busy_timeout" not in text, path

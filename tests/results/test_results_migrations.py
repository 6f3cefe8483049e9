"""Schema migrations, tested the Optuna way: one fixture database per revision, upgraded to head.

A fixture is made with ``python tests/results/make_fixture.py`` when its revision is the newest;
see docs/results-schema.md.
"""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from skipsearch.errors import UserError
from skipsearch.results import VERSION_TABLE, connect, evaluations, head_revision, pareto, schema_revision
from skipsearch.results._schema import alembic_config

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.sqlite"))
TABLES = ("topologies", "edges", "evaluations")
LATER_TABLES = ("metric_values", "study_configs")
"""Tables later revisions added (0003, 0004): dumped where the fixture has them."""


def _dump(path: Path) -> dict[str, list[dict[str, object]]]:
    """Every row of the results tables, by table, as column -> value."""
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        have = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        tables = [*TABLES, *(t for t in LATER_TABLES if t in have)]
        return {t: [dict(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY rowid")] for t in tables}


def test_every_revision_has_a_fixture() -> None:
    revisions = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    assert {p.stem for p in FIXTURES} == revisions, "run tests/results/make_fixture.py for the new revision"


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_upgrading_a_fixture_keeps_every_row(fixture: Path, tmp_path: Path) -> None:
    path = tmp_path / fixture.name
    shutil.copy(fixture, path)
    with closing(sqlite3.connect(path)) as conn:
        (version,) = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
    assert version == fixture.stem
    before = _dump(path)
    assert all(before[t] for t in TABLES)

    engine = connect(f"sqlite:///{path}")
    assert schema_revision(engine) == head_revision()
    after = _dump(path)
    assert set(after) == {*TABLES, *LATER_TABLES}
    for table in before:
        assert len(after[table]) == len(before[table]), table
        # Columns a later revision adds may appear; every old value must be unchanged.
        for old, new in zip(before[table], after[table], strict=True):
            assert {k: new[k] for k in old} == old
    frame = evaluations(engine)
    assert len(frame) == len(before["evaluations"])
    assert len(pareto(engine, sorted(set(frame["study"]))).front) > 0
    if "metric_values" in before:  # probes survive the upgrade and answer --where and Pareto queries
        assert frame["synflow"].notna().sum() == len({r["evaluation_id"] for r in before["metric_values"]})
        assert len(evaluations(engine, where=["synflow>10"])) == int((frame["synflow"] > 10).sum()) > 0
        assert len(pareto(engine, sorted(set(frame["study"])), "naswot:max,macs:min").front) > 0
    engine.dispose()


def test_connecting_twice_is_a_no_op(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    first = connect(url)
    second = connect(url)
    assert schema_revision(first) == schema_revision(second) == head_revision()
    first.dispose()
    second.dispose()


def test_a_newer_schema_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    connect(url).dispose()
    with closing(sqlite3.connect(tmp_path / "x.db")) as conn, conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version_num = '9999'")
    with pytest.raises(UserError, match="schema revision '9999', newer than this skipsearch knows"):
        connect(url)

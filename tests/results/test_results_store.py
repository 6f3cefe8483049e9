"""Opening the results database, the schema and writing evaluations."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import optuna
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from results_helpers import mlp_backbone, random_record, random_topology

from skipsearch.errors import UserError
from skipsearch.results import (
    VERSION_TABLE,
    EvaluationRecord,
    connect,
    evaluations,
    head_revision,
    record_evaluation,
    record_evaluations,
    recorded_trial_numbers,
    schema_revision,
    study_names,
)
from skipsearch.results._models import Base
from skipsearch.topology import SkipEdge, get_preset


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    """A fresh results database: an SQLite file, and a PostgreSQL database where one is configured."""
    if request.param == "sqlite":
        eng = connect(f"sqlite:///{tmp_path / 'results.db'}")
    else:
        eng = connect(request.getfixturevalue("postgres_url"))
    yield eng
    eng.dispose()


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def test_connect_creates_the_schema_at_head(engine) -> None:
    assert schema_revision(engine) == head_revision()
    tables = set(sa.inspect(engine).get_table_names())
    assert {"topologies", "edges", "evaluations", VERSION_TABLE} <= tables
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_migrations_match_the_models(engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_lives_beside_optuna_in_one_database(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    study = optuna.create_study(study_name="s", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    eng = connect(url)
    record_evaluation(eng, random_record(random.Random(0), "s", 0, mlp_backbone(), state="COMPLETE"))
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 2  # Optuna's schema is untouched
    with eng.connect() as conn:
        optuna_version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
        ours = conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalar_one()
    assert ours == head_revision() and optuna_version != ours
    eng.dispose()


def test_record_stores_topology_edges_and_metrics(engine) -> None:
    base = mlp_backbone(4)  # x h1 h2 h3 h4 head
    topo = base.with_skips(
        [SkipEdge("x", "h2", "concat"), SkipEdge("h1", "h3", "add"), SkipEdge("h2", "h4", "off")]
    ).with_name("two-skips")
    started = datetime(2025, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    record = EvaluationRecord(
        "s",
        7,
        topo,
        "mnist1d",
        3,
        "COMPLETE",
        {"accuracy": 0.8, "params": 1234, "macs": 99, "latency_ms": 0.5, "loss": math.nan},
        curve=[0.5, 0.8],
        started_at=started,
    )
    record_evaluation(engine, record)
    with engine.connect() as conn:
        edges = conn.exec_driver_sql(
            "SELECT src, dst, src_index, dst_index, span, kind, align FROM edges ORDER BY src_index"
        ).all()
        topo_row = conn.exec_driver_sql("SELECT hash, name, nodes, active_skips, paths_exact FROM topologies").one()
    assert [tuple(e) for e in edges] == [
        ("x", "h2", 0, 2, 2, "concat", "identity"),
        ("h1", "h3", 1, 3, 2, "add", "identity"),
    ]
    assert topo_row.hash == topo.hash and topo_row.name == "two-skips" and topo_row.nodes == 6
    assert topo_row.active_skips == 2
    row = evaluations(engine).iloc[0]
    assert (row.study, row.trial_number, row.hash, row.seed, row.state) == ("s", 7, topo.hash, 3, "COMPLETE")
    assert row.params == 1234 and row.macs == 99 and row.accuracy == 0.8
    assert math.isnan(row.loss)  # NaN is stored as NULL
    assert row.curve == [0.5, 0.8]
    assert row.started_at == datetime(2025, 3, 1, 12, 0)  # stored as naive UTC


def test_paths_beyond_float_precision_are_kept_exactly(engine) -> None:
    topo = get_preset("resnet110")
    record_evaluation(engine, EvaluationRecord("s", 0, topo, "cifar10", 0, "COMPLETE", {"accuracy": 0.9}))
    with engine.connect() as conn:
        paths, exact = conn.exec_driver_sql("SELECT paths, paths_exact FROM topologies").one()
    assert int(exact) == 2**54 and paths == float(2**54)


def test_rewriting_a_trial_replaces_its_row(engine) -> None:
    rng = random.Random(1)
    topo = random_topology(rng)
    first = random_record(rng, "s", 5, topo, state="PRUNED")
    record_evaluation(engine, first)
    record_evaluation(engine, first)  # a retried write
    second = random_record(rng, "s", 5, random_topology(rng), state="COMPLETE")
    record_evaluation(engine, second)
    frame = evaluations(engine)
    assert len(frame) == 1
    assert frame.iloc[0].state == "COMPLETE" and frame.iloc[0].hash == second.topology.hash
    assert _count(engine, "topologies") == len({topo.hash, second.topology.hash})


def test_a_topology_is_stored_once(engine) -> None:
    topo = mlp_backbone(3).with_skips([SkipEdge("h1", "h3", "add")])
    records = [random_record(random.Random(i), s, i, topo.with_name(f"n{i}")) for i in range(4) for s in ("a", "b")]
    assert record_evaluations(engine, records) == 4 * 2 - 4 + 4  # (a, i) and (b, i) for i in 0..3
    assert _count(engine, "topologies") == 1 and _count(engine, "edges") == 1
    assert study_names(engine) == ["a", "b"]
    assert recorded_trial_numbers(engine, "a") == {0, 1, 2, 3}


def test_record_rejects_unknown_metrics_and_states(engine) -> None:
    topo = mlp_backbone()
    with pytest.raises(ValueError, match="unknown metric 'acc'"):
        record_evaluation(engine, EvaluationRecord("s", 0, topo, "t", 0, "COMPLETE", {"acc": 1.0}))
    with pytest.raises(ValueError, match="state"):
        record_evaluation(engine, EvaluationRecord("s", 0, topo, "t", 0, "RUNNING", {}))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:////proc/no/such/dir/x.db", "cannot open results database sqlite:////proc/no/such/dir/x.db"),
        ("mysql://user:hunter2@localhost/db", "unsupported database mysql://user:***@localhost/db"),
        ("oracle+nodriver://user:hunter2@h/db", "unsupported database"),
        ("not a url hunter2", "not a database URL"),
        (
            "postgresql+psycopg://user:hunter2@127.0.0.1:1/db",
            "cannot open results database postgresql+psycopg://user:***@",
        ),
        ("postgresql+nodriver://user:hunter2@127.0.0.1:1/db", "cannot open results database"),
    ],
)
def test_bad_urls_are_one_line_user_errors_without_password(url: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        connect(url)
    text = str(info.value)
    assert message in text
    assert "hunter2" not in text and "\n" not in text


def test_rows_move_to_a_renamed_study_and_go_with_a_deleted_one(engine) -> None:
    from skipsearch.results import delete_study_rows, rename_study_rows, study_row_keys

    rng = random.Random(7)
    topologies = [random_topology(rng) for _ in range(6)]
    records = [random_record(rng, "old", i, topologies[i]) for i in range(4)]
    records += [random_record(rng, "new", i, topologies[i]) for i in range(2, 6)]
    record_evaluations(engine, records)
    keys = study_row_keys(engine, "old")
    assert set(keys) == {0, 1, 2, 3} and keys[0][0] == topologies[0].hash
    assert rename_study_rows(engine, "old", "new") == (2, 2)  # 0 and 1 move; 2 and 3 are "new"'s already
    assert study_names(engine) == ["new"] and recorded_trial_numbers(engine, "new") == set(range(6))
    assert _count(engine, "evaluations") == 6
    assert delete_study_rows(engine, "new") == 6 and study_names(engine) == []
    assert _count(engine, "topologies") == 6  # topologies stay: other studies may share them
    assert delete_study_rows(engine, "new") == 0

"""The --where mini-language and the evaluations query."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from results_helpers import random_record, random_topology

from skipsearch.errors import FieldError, UserError
from skipsearch.results import Condition, connect, evaluations, parse_where, record_evaluations
from skipsearch.topology import Topology, get_preset


@pytest.mark.parametrize(
    ("expr", "field", "op", "value"),
    [
        ("accuracy>=0.9", "accuracy", ">=", 0.9),
        (" macs < 1e6 ", "macs", "<", 1e6),
        ("latency_ms!=-0.5", "latency_ms", "!=", -0.5),
        ("params==42", "params", "=", 42.0),
        ("state=complete", "state", "=", "COMPLETE"),
        ("study=my-study.v2", "study", "=", "my-study.v2"),
        ("name!=resnet20-proj", "name", "!=", "resnet20-proj"),
        ("kind=concat", "kind", "=", "concat"),
        ("kind!=GATED", "kind", "!=", "gated"),
        ("edge=2->5", "edge", "=", (2, 5)),
        ("edge!=s1b1->s2b1", "edge", "!=", ("s1b1", "s2b1")),
        ("edge=x->7", "edge", "=", ("x", 7)),
    ],
)
def test_parse_where_accepts_the_grammar(expr: str, field: str, op: str, value: object) -> None:
    cond = parse_where(expr)
    assert (cond.field, cond.op, cond.value) == (field, op, value)


REJECTED = [
    ("accuracy>0.5'", "quotes"),
    ('study="x"', "quotes"),
    ("accuracy>0.5; DROP TABLE evaluations", "semicolons"),
    ("accuracy>0 -- comment", "comment"),
    ("accuracy>0/**/", "comment"),
    ("accuracy>(0)", "parentheses"),
    ("study=x#", "comment"),
    ("accuracy>0 OR 1=1", "SQL"),
    ("state=COMPLETE UNION SELECT 1", "SQL"),
    ("study=select", "SQL"),
    ("1=1", "expected COLUMN OP VALUE"),
    ("accuracy", "expected COLUMN OP VALUE"),
    ("accuracy ~ 1", "expected COLUMN OP VALUE"),
    ("bogus>1", "unknown column 'bogus' (valid: study, hash"),
    ("accuracy>high", "accuracy is a number"),
    ("study>b", "study is text"),
    ("state=RUNNING", "state is one of"),
    ("kind=off", "kind is one of"),
    ("kind<add", "takes = or !="),
    ("edge=2-5", "edge=SRC->DST"),
    ("study=a%b", "bare word"),
]


@pytest.mark.parametrize(("expr", "message"), REJECTED)
def test_parse_where_rejects_cleanly(expr: str, message: str) -> None:
    with pytest.raises(UserError, match=None) as info:
        parse_where(expr)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_parse_where_never_fails_otherwise(expr: str) -> None:
    try:
        cond = parse_where(expr)
    except UserError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(cond, Condition)
    cond.clause()  # always compiles to an expression


def _kinds(topo: Topology) -> set[str]:
    return {e.kind for e in topo.active_skips}


def _edges(topo: Topology) -> set[tuple[int, int]]:
    return {(topo.index[e.src], topo.index[e.dst]) for e in topo.active_skips}


def _accurate_and_small(record) -> bool:
    accuracy = record.metrics.get("accuracy")
    return accuracy is not None and accuracy >= 0.6 and record.metrics["macs"] < 30000


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    engine = connect(f"sqlite:///{tmp_path_factory.mktemp('query') / 'results.db'}")
    rng = random.Random(3)
    topologies = [random_topology(rng) for _ in range(12)] + [get_preset("unet-small")]
    records = [random_record(rng, s, i, topologies[i % len(topologies)]) for s in ("a", "b") for i in range(40)]
    record_evaluations(engine, records)
    yield engine, {(r.study, r.trial_number): r for r in records}
    engine.dispose()


def _keys(frame) -> set[tuple[str, int]]:
    return set(zip(frame["study"], frame["trial_number"], strict=True))


@pytest.mark.parametrize(
    ("where", "keep"),
    [
        (["kind=concat"], lambda r: "concat" in _kinds(r.topology)),
        (["kind!=add"], lambda r: "add" not in _kinds(r.topology)),
        (["edge=0->2"], lambda r: (0, 2) in _edges(r.topology)),
        (["edge!=1->3", "state=COMPLETE"], lambda r: (1, 3) not in _edges(r.topology) and r.state == "COMPLETE"),
        (["edge=h1->h4"], lambda r: (1, 4) in _edges(r.topology) and r.topology.nodes[1].id == "h1"),
        (["edge=e1b->d1a"], lambda r: r.topology.name == "unet-small"),
        (["accuracy>=0.6", "macs<30000"], lambda r: _accurate_and_small(r)),
        (["name=unet-small"], lambda r: r.topology.name == "unet-small"),
        (["active_skips>=3"], lambda r: len(r.topology.active_skips) >= 3),
    ],
)
def test_where_filters_match_python(filled, where, keep) -> None:
    engine, records = filled
    expected = {k for k, r in records.items() if keep(r)}
    assert expected, "the filter should keep some rows"
    assert _keys(evaluations(engine, where=where)) == expected


def test_study_sort_and_limit(filled) -> None:
    engine, records = filled
    frame = evaluations(engine, studies=["b"], sort="accuracy:desc", limit=7)
    assert len(frame) == 7 and set(frame["study"]) == {"b"}
    complete = sorted((r.metrics.get("accuracy") for k, r in records.items() if k[0] == "b"), key=lambda v: -(v or -1))
    assert list(frame["accuracy"]) == complete[:7]
    ascending = evaluations(engine, sort="-macs")
    assert list(ascending["macs"]) == sorted(ascending["macs"], reverse=True)
    assert list(evaluations(engine)["trial_number"][:3]) == [0, 1, 2]  # default order: study, trial
    for bad in ("bogus", "accuracy:sideways"):
        with pytest.raises(FieldError, match=f"^sort '{bad}': "):
            evaluations(engine, sort=bad)

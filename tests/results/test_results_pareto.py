"""Non-dominated sorting, hypervolume and the Pareto query, against brute force on data with ties."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from results_helpers import brute_ranks, random_record, random_topology

from skipsearch.errors import UserError
from skipsearch.results import (
    connect,
    evaluations,
    front_mask,
    hypervolume,
    hypervolume_improvements,
    non_dominated_ranks,
    pareto,
    parse_objectives,
    record_evaluations,
)


def brute_hypervolume(values: np.ndarray, ref: np.ndarray, directions: list[str]) -> float:
    """Counts the unit cells dominated by integer points (exact for integer data)."""
    sign = np.array([-1 if d == "max" else 1 for d in directions])
    loss, ref = (values * sign).astype(int), (ref * sign).astype(int)
    low = loss.min(axis=0) if len(loss) else ref
    count = 0
    for cell in itertools.product(*(range(lo, hi) for lo, hi in zip(low, ref, strict=True))):
        if any(np.all(p <= np.array(cell)) for p in loss):
            count += 1
    return float(count)


def _random_values(rng: np.random.Generator, n: int, m: int, levels: int) -> np.ndarray:
    values = rng.integers(0, levels, size=(n, m)).astype(float)
    if n > 3:
        values[-2:] = values[:2]  # exact duplicates as well as ties in single objectives
    return values


DIRECTIONS = [["min"], ["max", "min"], ["min", "min"], ["max", "min", "min"], ["min", "max", "max", "min"]]


@pytest.mark.parametrize("directions", DIRECTIONS, ids=lambda d: "-".join(d))
@pytest.mark.parametrize("seed", range(6))
def test_ranks_match_brute_force_with_ties(directions: list[str], seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 60))
    values = _random_values(rng, n, len(directions), levels=int(rng.integers(2, 6)))
    expected = brute_ranks(values, directions)
    np.testing.assert_array_equal(non_dominated_ranks(values, directions), expected)
    np.testing.assert_array_equal(front_mask(values, directions), expected == 0)


def test_duplicates_share_their_rank_and_all_stay_on_the_front() -> None:
    values = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 2.0], [2.0, 2.0], [1.0, 2.0]])
    np.testing.assert_array_equal(non_dominated_ranks(values, ["min", "min"]), [0, 0, 0, 2, 1])


def test_rank_input_checks() -> None:
    with pytest.raises(ValueError, match="shape"):
        non_dominated_ranks(np.zeros((3, 2)), ["min"])
    with pytest.raises(ValueError, match="NaN"):
        non_dominated_ranks(np.array([[np.nan, 1.0]]), ["min", "min"])
    with pytest.raises(ValueError, match="directions"):
        non_dominated_ranks(np.zeros((1, 1)), ["down"])


@pytest.mark.parametrize("directions", [["max", "min"], ["min", "min", "max"]], ids=lambda d: "-".join(d))
@pytest.mark.parametrize("seed", range(4))
def test_hypervolume_matches_cell_counting(directions: list[str], seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = _random_values(rng, 12, len(directions), levels=5)
    sign = np.array([-1 if d == "max" else 1 for d in directions])
    ref = np.where(sign > 0, 5.0, -1.0)  # beyond every value in each direction
    front = values[front_mask(values, directions)]
    assert hypervolume(front, ref, directions) == pytest.approx(brute_hypervolume(values, ref, directions))


def test_points_beyond_the_reference_point_add_nothing() -> None:
    front = np.array([[1.0, 1.0], [3.0, 0.5]])
    assert hypervolume(front, [2.0, 2.0], ["min", "min"]) == pytest.approx(1.0)
    assert hypervolume(front, [0.0, 0.0], ["min", "min"]) == 0.0


@pytest.mark.parametrize(
    "directions", [["max", "min"], ["min", "max"], ["min", "min", "max"]], ids=lambda d: "-".join(d)
)
@pytest.mark.parametrize("seed", range(4))
def test_hypervolume_improvements_are_each_points_gain(directions: list[str], seed: int) -> None:
    """Each point's improvement is what adding it alone adds; dominated, duplicate and out-of-box
    points (beyond the reference point) add exactly nothing."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(15, len(directions)))
    front = values[front_mask(values, directions)]
    ref = [5.0 if d == "min" else -5.0 for d in directions]
    points = np.vstack(
        [rng.normal(size=(40, len(directions))), front[:2], [[9.0 if d == "min" else -9.0 for d in directions]]]
    )
    base = hypervolume(front, ref, directions)
    expected = [hypervolume(np.vstack([front, p]), ref, directions) - base for p in points]
    got = hypervolume_improvements(points, front, ref, directions)
    assert got == pytest.approx(expected, abs=1e-9)
    assert (got[-3:] == 0).all()
    assert hypervolume_improvements(points[:1], front[:0], ref, directions)[0] == pytest.approx(
        hypervolume(points[:1], ref, directions)
    )


def test_objectives_parse() -> None:
    assert parse_objectives("accuracy:max, macs:min") == [("accuracy", "max"), ("macs", "min")]
    assert parse_objectives("test_accuracy,latency_ms") == [("test_accuracy", "max"), ("latency_ms", "min")]
    for bad in ("bogus:max", "macs:up", "macs,macs", ""):
        with pytest.raises(UserError):
            parse_objectives(bad)


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """Two studies of coarse random results (many ties), every state, some missing objectives."""
    path = tmp_path_factory.mktemp("pareto") / "results.db"
    engine = connect(f"sqlite:///{path}")
    rng = random.Random(7)
    topologies = [random_topology(rng) for _ in range(15)]
    records = [random_record(rng, s, i, rng.choice(topologies), levels=4) for s in ("a", "b") for i in range(150)]
    for rec in records[::17]:
        rec.metrics["latency_ms"] = None  # a COMPLETE trial without latency drops out of latency fronts only
    record_evaluations(engine, records)
    yield engine
    engine.dispose()


OBJECTIVES = [
    [("accuracy", "max"), ("macs", "min")],
    [("accuracy", "max"), ("macs", "min"), ("latency_ms", "min")],
    [("test_accuracy", "max"), ("params", "min"), ("latency_ms", "min")],
]


def expected_front(engine, studies, objectives, where=()) -> set[tuple[str, int]]:
    rows = evaluations(engine, studies, where)
    names = [c for c, _ in objectives]
    rows = rows[(rows["state"] == "COMPLETE") & rows[names].notna().all(axis=1)]
    ranks = brute_ranks(rows[names].to_numpy(dtype=float), [d for _, d in objectives])
    return set(zip(rows["study"][ranks == 0], rows["trial_number"][ranks == 0].astype(int), strict=True))


@pytest.mark.parametrize("objectives", OBJECTIVES, ids=lambda o: "-".join(c for c, _ in o))
@pytest.mark.parametrize("studies", [["a"], ["a", "b"]])
def test_pareto_front_is_exactly_the_non_dominated_rows(filled, objectives, studies) -> None:
    result = pareto(filled, studies, objectives)
    got = list(zip(result.front["study"], result.front["trial_number"], strict=True))
    assert len(got) == len(set(got))
    assert set(got) == expected_front(filled, studies, objectives)
    assert set(result.front["state"]) == {"COMPLETE"}
    first, direction = objectives[0]
    assert list(result.front[first]) == sorted(result.front[first], reverse=direction == "max")
    ranks = result.ranks
    assert set(ranks.index[ranks == 0]) == set(result.front["id"])
    assert len(ranks) == len(result.candidates)


def test_pareto_where_and_reference_point(filled) -> None:
    objectives = [("accuracy", "max"), ("macs", "min")]
    where = ["kind=add", "params<=3000"]
    result = pareto(filled, ["a", "b"], objectives, where=where, reference_point=[0.0, 50_000])
    got = set(zip(result.front["study"], result.front["trial_number"], strict=True))
    assert got and got == expected_front(filled, ["a", "b"], objectives, where)
    assert (result.front["params"] <= 3000).all()
    assert result.reference_point == (0.0, 50_000.0)
    values = result.front[["accuracy", "macs"]].to_numpy(dtype=float)
    assert result.hypervolume == pytest.approx(hypervolume(values, [0.0, 50_000], ["max", "min"]))


def test_default_reference_point_is_worse_than_every_candidate(filled) -> None:
    result = pareto(filled, ["a"])
    acc_ref, macs_ref = result.reference_point
    assert acc_ref < result.candidates["accuracy"].min() and macs_ref > result.candidates["macs"].max()
    assert result.hypervolume > 0


def test_pareto_of_nothing(filled) -> None:
    result = pareto(filled, ["no-such-study"])
    assert result.front.empty and result.reference_point is None and result.hypervolume == 0.0
    assert len(result.ranks) == 0


@pytest.mark.postgres
def test_pareto_and_where_on_postgres(postgres_url: str, filled) -> None:
    """The same rows in PostgreSQL give the same fronts and filters as in SQLite."""
    engine = connect(postgres_url)
    try:
        rows = evaluations(filled)
        rng = random.Random(7)  # the same records as the SQLite fixture
        topologies = [random_topology(rng) for _ in range(15)]
        records = [random_record(rng, s, i, rng.choice(topologies), levels=4) for s in ("a", "b") for i in range(150)]
        for rec in records[::17]:
            rec.metrics["latency_ms"] = None
        record_evaluations(engine, records)
        for objectives in OBJECTIVES:
            front = pareto(engine, ["a", "b"], objectives, where=["kind!=concat"]).front
            expected = pareto(filled, ["a", "b"], objectives, where=["kind!=concat"]).front
            assert list(front["trial_number"]) == list(expected["trial_number"])
        pg = evaluations(engine, where=["edge=1->3", "state!=FAIL"], sort="-accuracy")
        lite = evaluations(filled, where=["edge=1->3", "state!=FAIL"], sort="-accuracy")
        keys = ["study", "trial_number"]
        assert len(pg) > 0 and pg[keys].to_numpy().tolist() == lite[keys].to_numpy().tolist()
        assert len(rows) == len(evaluations(engine))
    finally:
        engine.dispose()

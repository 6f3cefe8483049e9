import optuna
import pytest

from skipsearch.errors import UserError
from skipsearch.search import SearchSpace, parse_study_config
from skipsearch.topology import get_preset


def _space(**space: object) -> SearchSpace:
    config = parse_study_config(
        {
            "name": "t",
            "task": "mnist1d",
            "backbone": {"family": "mlp", "args": {"input_features": 40, "hidden": [8, 8, 16], "classes": 10}},
            "space": space,
            "objectives": ["accuracy:max"],
        },
        "t.yaml",
    )
    return SearchSpace(config.backbone.build(), config.space)


def test_candidates_cover_every_pair_up_to_the_span() -> None:
    space = _space(max_span=2, choices=["off", "add", "concat"])
    assert [c.param for c in space.candidates] == [
        "x->h1",
        "x->h2",
        "h1->h2",
        "h1->h3",
        "h2->h3",
        "h2->head",
        "h3->head",
    ]


def test_choices_follow_shapes() -> None:
    space = _space(max_span=2, choices=["off", "add", "concat"], align="zero_pad")
    choices = {c.param: c.choices for c in space.candidates}
    assert choices["h1->h2"] == ("off", "add/identity")  # concat from the predecessor repeats the input
    assert choices["h1->h3"] == ("off", "add/zero_pad", "concat")  # 8 -> 16 features: zero padding fits
    assert "x->h1" not in choices  # 40 -> 8 features: neither identity nor zero padding fits


def test_sampling_is_a_fixed_categorical_space() -> None:
    space = _space(max_span=2, choices=["off", "add", "scalar", "concat"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(8):
        trial = study.ask()
        topo = space.sample(trial)
        assert set(trial.params) == {c.param for c in space.candidates}
        assert space.topology_from_params(trial.params).hash == topo.hash
        seen.add(topo.hash)
        study.tell(trial, 0.0)
    assert len(seen) > 1


def test_explicit_edges_and_unknown_nodes() -> None:
    space = _space(edges=[{"src": "h1", "dst": "h3"}], choices=["off", "concat"])
    assert [c.param for c in space.candidates] == ["h1->h3"]
    with pytest.raises(UserError, match="unknown node 'h9'"):
        _space(edges=[{"src": "h1", "dst": "h9"}])
    with pytest.raises(UserError, match="before"):
        _space(edges=[{"src": "h3", "dst": "h1"}])


def test_backbone_skips_stay_fixed_when_kept() -> None:
    backbone = get_preset("resnet20")
    config = parse_study_config(
        {
            "name": "t",
            "task": "mnist1d",
            "backbone": {"preset": "resnet20", "keep_skips": True},
            "space": {"max_span": 2, "min_span": 2, "choices": ["off", "add"]},
            "objectives": ["accuracy:max"],
        },
        "t.yaml",
    )
    space = SearchSpace(config.backbone.build(), config.space)
    assert space.backbone.skips == backbone.skips
    fixed = {f"{e.src}->{e.dst}" for e in backbone.skips}
    assert space.candidates and not fixed & {c.param for c in space.candidates}


def test_random_topologies_are_distinct_and_reproducible() -> None:
    space = _space(max_span=2, choices=["off", "add"])
    drawn = space.random_topologies(20, seed=3)
    assert len({t.hash for t in drawn}) == 20
    assert [t.hash for t in drawn] == [t.hash for t in space.random_topologies(20, seed=3)]
    assert [t.hash for t in drawn] != [t.hash for t in space.random_topologies(20, seed=4)]
    with pytest.raises(UserError, match="fewer than"):
        space.random_topologies(space.size + 1, seed=0)

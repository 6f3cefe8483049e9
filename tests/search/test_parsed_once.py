"""The callbacks that read a finished trial's topology share one parse."""

from __future__ import annotations

from types import SimpleNamespace

from skipsearch.search._parsed import trial_topology
from skipsearch.topology import get_preset


def test_the_picture_and_the_results_row_read_one_parsed_topology() -> None:
    text = get_preset("resnet20").to_json(indent=None)
    trial = SimpleNamespace(user_attrs={"topology": text})
    first, second = trial_topology(trial), trial_topology(trial)
    assert first is second and first is not None and first.hash == get_preset("resnet20").hash
    assert trial_topology(SimpleNamespace(user_attrs={})) is None

"""A trial's topology, parsed from its user attributes once for all the callbacks that read it.

A finished trial's topology is read back by the dashboard picture (:mod:`._artifacts`) and by the
results row (:mod:`._record`), one right after the other in the worker that ran it: the second
reader gets the first one's :class:`~skipsearch.topology.Topology` instead of parsing and
validating the JSON again. Topologies are immutable, so sharing one is safe.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from skipsearch.topology import Topology


def trial_topology(trial: Any) -> Topology | None:
    """The topology a trial evaluated (its ``topology`` user attribute), ``None`` if it has none."""
    text = trial.user_attrs.get("topology")
    return _parse(text) if isinstance(text, str) and text else None


@lru_cache(maxsize=16)
def _parse(text: str) -> Topology:
    return Topology.from_dict(json.loads(text))

"""Canonical, isomorphism-invariant hashing of topologies (NAS-Bench-101 style dedup)."""

from __future__ import annotations

import hashlib
import json

from skipsearch.topology._graph import Topology


def canonical_form(topology: Topology) -> dict[str, object]:
    """What identifies a network: blocks in backbone order and the active skip edges.

    Names, metadata and ``off`` edges are dropped. Every node lies on the backbone, the one
    input-to-output path that visits all of them, and an isomorphism of two such graphs must map
    that path onto itself; so backbone positions are a canonical labelling, and equal canonical
    forms mean isomorphic labelled graphs (exactly, unlike a Weisfeiler-Lehman hash).
    """
    index = topology.index
    edges = sorted((index[e.src], index[e.dst], e.label) for e in topology.active_skips)
    return {
        "nodes": [[n.op, n.params] for n in topology.nodes],
        "skips": [list(e) for e in edges],
    }


def topology_hash(topology: Topology) -> str:
    """A 16-hex-digit digest of :func:`canonical_form`."""
    text = json.dumps(canonical_form(topology), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]

"""Graph metrics of a topology: paths from input to output and effective depth (Veit et al. 2016)."""

from __future__ import annotations

import math
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field

from skipsearch.topology._graph import Topology
from skipsearch.topology._ops import OPS

EXACT_PATH_BITS = 4096
"""Path counts below ``2**4096`` (1,234 decimal digits) are exact integers; larger ones (a chain of
thousands of blocks with skips) are approximated from their base-2 logarithm, and say so."""

DISTRIBUTION_CELLS = 2_000_000
"""The per-length distribution is counted when (nodes + active skips) x (longest path + 1) stays
under this; beyond, a topology of 10,000 blocks would need 10**8 big-integer counters. The count,
shortest, longest and mean path length are computed in one pass over the edges either way."""


@dataclass(frozen=True)
class GraphMetrics:
    """Input-to-output path statistics.

    A path's length is the number of weighted blocks whose body it passes through: the backbone
    edge and a concat edge into a node pass through its body (+1), an additive skip bypasses it
    (+0). For a ResNet of ``n`` blocks this gives the ``2**n`` paths of binomially distributed
    length of Veit et al. (2016).

    ``paths`` is exact when ``paths_exact`` (else rounded from ``log2_paths``); ``path_lengths`` is
    empty when ``lengths_counted`` is false (too large to count: see :data:`DISTRIBUTION_CELLS`).
    """

    paths: int
    path_lengths: dict[int, int] = field(repr=False)
    shortest_path: int
    longest_path: int
    mean_path_length: float
    active_skips: int
    skips_by_kind: dict[str, int]
    max_concat_fan_in: int
    weighted_blocks: int
    log2_paths: float = 0.0
    paths_exact: bool = True
    lengths_counted: bool = True

    @property
    def paths_float(self) -> float:
        """The count as a float, for filtering and sorting (the largest float where it is larger)."""
        return float(self.paths) if self.log2_paths < 1023 else sys.float_info.max

    @property
    def paths_text(self) -> str:
        """The exact count in decimal, or ``~1.234567e+2090`` where it is approximate."""
        if self.paths_exact:
            return str(self.paths)
        exponent = math.floor(self.log2_paths * math.log10(2))
        mantissa = 10 ** (self.log2_paths * math.log10(2) - exponent)
        return f"~{mantissa:.6f}e+{exponent}"

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["paths"] = self.paths if self.paths_exact else self.paths_text
        out["path_lengths"] = {str(k): v for k, v in sorted(self.path_lengths.items())}
        return out


def node_path_distributions(topology: Topology) -> dict[str, Counter[int]]:
    """For every node, the number of paths of each length from the input to its output."""
    dist: dict[str, Counter[int]] = {topology.nodes[0].id: Counter({0: 1})}
    for node in topology.nodes[1:]:
        step = 1 if OPS[node.op].weighted else 0
        total: Counter[int] = Counter()
        for src in topology.input_sources(node.id):
            for length, count in dist[src].items():
                total[length + step] += count
        for edge in topology.incoming(node.id):
            if edge.additive:
                total.update(dist[edge.src])
        dist[node.id] = total
    return dist


def path_length_distribution(topology: Topology) -> Counter[int]:
    """Number of input-to-output paths of each length."""
    return node_path_distributions(topology)[topology.nodes[-1].id]


def graph_metrics(topology: Topology) -> GraphMetrics:
    """Path statistics in time and memory linear in nodes plus edges (see :data:`EXACT_PATH_BITS`
    and :data:`DISTRIBUTION_CELLS` for what is exact)."""
    walk = _PathWalk(topology)
    active = topology.active_skips
    fan_in = Counter(e.dst for e in active if e.concatenated)
    last = topology.nodes[-1].id
    exact = walk.counts is not None
    paths = walk.counts[last] if walk.counts is not None else _from_log2(walk.log2[last])
    lengths: dict[int, int] = {}
    counted = exact and (len(topology.nodes) + len(active)) * (walk.longest[last] + 1) <= DISTRIBUTION_CELLS
    if counted:
        lengths = dict(sorted(path_length_distribution(topology).items()))
    if counted:
        mean = sum(k * v for k, v in lengths.items()) / paths
    elif walk.length_sums is not None:
        mean = walk.length_sums[last] / paths
    else:
        mean = walk.mean[last]
    return GraphMetrics(
        paths=paths,
        path_lengths=lengths,
        shortest_path=walk.shortest[last],
        longest_path=walk.longest[last],
        mean_path_length=mean,
        active_skips=len(active),
        skips_by_kind=dict(sorted(Counter(e.kind for e in active).items())),
        max_concat_fan_in=max(fan_in.values(), default=0),
        weighted_blocks=sum(OPS[n.op].weighted for n in topology.nodes),
        log2_paths=math.log2(paths) if exact else walk.log2[last],
        paths_exact=exact,
        lengths_counted=counted,
    )


class _PathWalk:
    """Per node: path count (exact while it fits :data:`EXACT_PATH_BITS`, and its log2 always),
    shortest and longest length, and the mean length, in one pass over the edges."""

    def __init__(self, topology: Topology) -> None:
        first = topology.nodes[0].id
        self.counts: dict[str, int] | None = {first: 1}
        self.length_sums: dict[str, int] | None = {first: 0}
        self.log2: dict[str, float] = {first: 0.0}
        self.mean: dict[str, float] = {first: 0.0}
        self.shortest: dict[str, int] = {first: 0}
        self.longest: dict[str, int] = {first: 0}
        for node in topology.nodes[1:]:
            step = 1 if OPS[node.op].weighted else 0
            terms = [(src, step) for src in topology.input_sources(node.id)]
            terms += [(e.src, 0) for e in topology.incoming(node.id) if e.additive]
            self._add(node.id, terms)

    def _add(self, node: str, terms: list[tuple[str, int]]) -> None:
        self.shortest[node] = min(self.shortest[src] + step for src, step in terms)
        self.longest[node] = max(self.longest[src] + step for src, step in terms)
        top = max(self.log2[src] for src, _ in terms)
        weights = [2.0 ** (self.log2[src] - top) for src, _ in terms]
        total = sum(weights)
        self.log2[node] = top + math.log2(total)
        self.mean[node] = (
            sum(w * (self.mean[src] + step) for w, (src, step) in zip(weights, terms, strict=True)) / total
        )
        if self.counts is None or self.length_sums is None:
            return
        count = sum(self.counts[src] for src, _ in terms)
        if count.bit_length() > EXACT_PATH_BITS:
            self.counts = self.length_sums = None  # from here on only the approximation
            return
        self.counts[node] = count
        self.length_sums[node] = sum(self.length_sums[src] + step * self.counts[src] for src, step in terms)


def _from_log2(value: float) -> int:
    """``round(2**value)`` to 53 significant bits, for counts beyond the float range."""
    whole = math.floor(value)
    return round(2.0 ** (value - whole) * 2**52) << max(whole - 52, 0)

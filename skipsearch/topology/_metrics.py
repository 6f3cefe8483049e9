"""Graph metrics of a topology: paths from input to output and effective depth (Veit et al. 2016)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

from skipsearch.topology._graph import Topology
from skipsearch.topology._ops import OPS


@dataclass(frozen=True)
class GraphMetrics:
    """Input-to-output path statistics.

    A path's length is the number of weighted blocks whose body it passes through: the backbone
    edge and a concat edge into a node pass through its body (+1), an additive skip bypasses it
    (+0). For a ResNet of ``n`` blocks this gives the ``2**n`` paths of binomially distributed
    length of Veit et al. (2016).
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

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
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
    dist = path_length_distribution(topology)
    paths = sum(dist.values())
    active = topology.active_skips
    fan_in = Counter(e.dst for e in active if e.concatenated)
    return GraphMetrics(
        paths=paths,
        path_lengths=dict(sorted(dist.items())),
        shortest_path=min(dist),
        longest_path=max(dist),
        mean_path_length=sum(k * v for k, v in dist.items()) / paths,
        active_skips=len(active),
        skips_by_kind=dict(sorted(Counter(e.kind for e in active).items())),
        max_concat_fan_in=max(fan_in.values(), default=0),
        weighted_blocks=sum(OPS[n.op].weighted for n in topology.nodes),
    )

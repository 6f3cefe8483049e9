"""The search space: candidate skip edges of a backbone and what each may become.

Every candidate edge is one always-present categorical Optuna parameter (named ``src->dst``) whose
choices are its feasible kind/alignment strings, so TPE, GP and NSGA-II all see a fixed space.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import optuna

from skipsearch.errors import UserError
from skipsearch.search._config import SpaceConfig
from skipsearch.topology import EDGE_KINDS, SkipEdge, Topology, TopologyError

_NO_TARGET_OPS = {"input", "flatten", "pool"}
"""Parameter-free reshaping blocks are not skip targets: a concat into them would change the
shape of everything downstream."""


@dataclass(frozen=True)
class Candidate:
    src: str
    dst: str
    choices: tuple[str, ...]

    @property
    def param(self) -> str:
        return f"{self.src}->{self.dst}"


class SearchSpace:
    """Candidate edges over ``backbone`` (whose own skips stay fixed) built from a space config."""

    def __init__(self, backbone: Topology, config: SpaceConfig) -> None:
        self.backbone = backbone
        self.config = config
        self.candidates = tuple(self._build_candidates())
        if not self.candidates:
            raise UserError("space: no candidate edge has a feasible choice besides 'off'")

    # -- construction ---------------------------------------------------------------------------
    def _pairs(self) -> list[tuple[str, str]]:
        topo, cfg = self.backbone, self.config
        fixed = {(e.src, e.dst) for e in topo.skips}
        if cfg.edges is not None:
            pairs = [(e.src, e.dst) for e in cfg.edges]
            for src, dst in pairs:
                for end in (src, dst):
                    if end not in topo.index:
                        raise UserError(f"space.edges: {src}->{dst}: unknown node {end!r}")
                if topo.index[src] >= topo.index[dst]:
                    raise UserError(f"space.edges: {src}->{dst}: the source must come before the destination")
            return [p for p in pairs if p not in fixed]
        nodes = topo.nodes
        pairs = []
        for j, target in enumerate(nodes):
            if target.op in _NO_TARGET_OPS or (cfg.targets is not None and target.id not in cfg.targets):
                continue
            for i in range(max(0, j - (cfg.max_span or j)), j - cfg.min_span + 1):
                source = nodes[i].id
                if (cfg.sources is None or source in cfg.sources) and (source, target.id) not in fixed:
                    pairs.append((source, target.id))
        return pairs

    def _build_candidates(self) -> list[Candidate]:
        out = []
        for src, dst in self._pairs():
            choices = ["off"] + [c for c in self._feasible(src, dst) if c != "off"]
            if len(choices) > 1:
                out.append(Candidate(src, dst, tuple(dict.fromkeys(choices))))
        return out

    def _feasible(self, src: str, dst: str) -> list[str]:
        """The configured choices that give a valid topology for this edge on its own."""
        feasible = []
        for choice in self.config.choices:
            try:
                edge = self.edge(src, dst, choice)
                self.backbone.with_skips([*self.backbone.skips, edge])
            except TopologyError:
                continue
            feasible.append(_choice_label(edge))
        return feasible

    def edge(self, src: str, dst: str, choice: str) -> SkipEdge:
        """The skip edge a choice string stands for (``auto`` alignment resolved by shapes)."""
        kind, _, align = choice.partition("/")
        spec = EDGE_KINDS.get(kind)
        if spec is None or not spec.alignments:
            return SkipEdge(src, dst, kind)
        if align in ("", "auto"):
            shapes = self.backbone.shapes
            align = "identity" if shapes[src] == shapes[dst] else self.config.align
        return SkipEdge(src, dst, kind, align, spec.default_init)

    # -- sampling -------------------------------------------------------------------------------
    def sample(self, trial: optuna.Trial) -> Topology:
        """The topology of a trial: one categorical per candidate edge, in a fixed order."""
        params = {c.param: str(trial.suggest_categorical(c.param, c.choices)) for c in self.candidates}
        return self.topology_from_params(params).with_name(f"{self.backbone.name}-t{trial.number}")

    def topology_from_params(self, params: dict[str, str]) -> Topology:
        """The topology that a finished trial's parameters describe."""
        edges = list(self.backbone.skips)
        for cand in self.candidates:
            edges.append(self.edge(cand.src, cand.dst, params.get(cand.param, "off")))
        return self.backbone.with_skips(edges)

    def random_topologies(self, n: int, seed: int) -> list[Topology]:
        """``n`` distinct topologies (by hash), every candidate's choice drawn uniformly; reproducible by ``seed``."""
        rng = random.Random(seed)
        seen: dict[str, Topology] = {}
        for _ in range(100 * n):  # equal topologies are redrawn; a space with fewer than n would loop forever
            if len(seen) == n:
                break
            topology = self.topology_from_params({c.param: rng.choice(c.choices) for c in self.candidates})
            seen.setdefault(topology.hash, topology)
        if len(seen) < n:
            raise UserError(f"the space has fewer than {n} distinct topologies (found {len(seen)})")
        return list(seen.values())

    def active_count(self, topology: Topology) -> int:
        return sum(1 for e in topology.skips if e.active) - sum(1 for e in self.backbone.skips if e.active)

    @property
    def size(self) -> int:
        """Number of distinct parameter assignments."""
        total = 1
        for cand in self.candidates:
            total *= len(cand.choices)
        return total


def _choice_label(edge: SkipEdge) -> str:
    return f"{edge.kind}/{edge.align}" if edge.spec.alignments else edge.kind

"""Random topologies and evaluation records for the results tests (and the fixture generator)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np

from skipsearch.results import EvaluationRecord
from skipsearch.topology import SkipEdge, Topology, families

KINDS = ("off", "add", "concat", "gated", "scalar")


def mlp_backbone(depth: int = 6) -> Topology:
    """x(8) -> h1..hN (8 wide) -> head(3), no skips: every additive edge between x..hN is legal."""
    return families.mlp(8, [8] * depth, 3, residual=False, name="mlp-test")


def random_topology(rng: random.Random, depth: int = 6, p: float = 0.3) -> Topology:
    """The test backbone with each candidate edge switched on at random, with a random kind."""
    base = mlp_backbone(depth)
    ids = [n.id for n in base.nodes[:-1]]  # not into the head: its width differs
    skips = []
    for j in range(1, len(ids)):
        for i in range(j):
            if rng.random() >= p:
                continue
            kinds = [k for k in KINDS if k != "concat" or i < j - 1]
            skips.append(SkipEdge(ids[i], ids[j], rng.choice(kinds)))
    return base.with_skips(skips).with_name(f"random-{len(skips)}")


def random_record(
    rng: random.Random,
    study: str,
    number: int,
    topology: Topology,
    *,
    state: str | None = None,
    levels: int = 5,
) -> EvaluationRecord:
    """A record with coarse (so often tied) accuracy, macs, params and latency values."""
    state = state or rng.choices(["COMPLETE", "PRUNED", "FAIL"], [8, 1, 1])[0]
    metrics: dict[str, float | int | None] = {
        "accuracy": rng.randint(0, levels) / levels,
        "test_accuracy": rng.randint(0, levels) / levels,
        "loss": rng.random(),
        "params": rng.randint(1, levels) * 1000,
        "macs": rng.randint(1, levels) * 10_000,
        "flops": None,
        "latency_ms": rng.randint(1, levels) / 10,
        "train_seconds": rng.random() * 10,
        "epochs": rng.randint(1, 3),
        "grad_ratio_init": 10 ** rng.uniform(-5, 1),
        "grad_ratio": 10 ** rng.uniform(-5, 1),
    }
    # Probes from their own generator: the draws above stay what they were before probes existed.
    probes = random.Random(f"{study}-{number}")
    metrics.update({"synflow": probes.uniform(0, 30), "naswot": probes.uniform(100, 900), "snip": probes.random()})
    if state == "FAIL":
        metrics = {"params": metrics["params"], "macs": metrics["macs"]}
    return EvaluationRecord(
        study=study,
        trial_number=number,
        topology=topology,
        task="mnist1d",
        seed=rng.randint(0, 9),
        state=state,
        metrics=metrics,
        failure_reason="diverged" if state == "FAIL" else None,
        curve=[rng.random() for _ in range(int(metrics.get("epochs") or 0))],
        started_at=datetime(2025, 1, 1, 12, 0, tzinfo=UTC),
        finished_at=datetime(2025, 1, 1, 12, 5, tzinfo=UTC),
    )


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def brute_ranks(values: np.ndarray, directions: list[str]) -> np.ndarray:
    """Peel fronts with the O(n^2) definition of dominance (minimisation after sign flips)."""
    loss = values * np.array([-1.0 if d == "max" else 1.0 for d in directions])
    ranks = np.full(len(loss), -1)
    rank = 0
    while (ranks < 0).any():
        left = np.flatnonzero(ranks < 0)
        front = [i for i in left if not any(_dominates(loss[j], loss[i]) for j in left)]
        ranks[front] = rank
        rank += 1
    return ranks

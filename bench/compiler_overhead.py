"""Compiler overhead: train-step time of a built model over that of the same network written by hand.

``skipsearch.nn.build_model`` promises that a compiled topology costs what the hand-written
network costs. This benchmark checks it for ``resnet20`` and ``mlp-deep``: it builds each preset,
copies its weights into a hand-written twin (``tests/nn/reference_models.py``), asserts that both compute
the same outputs and gradients, then times full SGD train steps (zero_grad, forward, cross-entropy,
backward, step) on a fixed batch, alternating the two models round by round (ABBA order) so that
load from other processes hits both alike. The figure is the median over rounds of the per-round
time ratio built / hand-written, in CPU time of the process (on a shared machine, wall-clock samples
also count the time slices other processes get; the wall-clock ratio is printed too). The script
exits with status 1 if a ratio exceeds ``--max-ratio``.

Run from the repository root::

    python bench/compiler_overhead.py            # full run, ~2-3 minutes on 2 cores
    python bench/compiler_overhead.py --quick    # a few seconds, for a smoke test
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from skipsearch.nn import build_model
from skipsearch.topology import get_preset

RESULTS = Path(__file__).resolve().parent / "results" / "compiler_overhead.json"

# The hand-written twins are the ones the equivalence tests check against the built models.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "nn"))
from reference_models import CifarResNet, ResidualTanhMLP, load_by_order  # noqa: E402


@dataclass(frozen=True)
class Case:
    """One comparison: a preset, its hand-written twin, the input batch and how long to time it."""

    name: str
    preset: str
    reference: Callable[[], nn.Module]
    batch_shape: tuple[int, ...]
    steps_per_sample: int
    """Train steps per timed sample, so that one sample lasts well above the timer's resolution."""
    rounds: int
    quick_rounds: int


CASES = [
    Case("resnet20", "resnet20", lambda: CifarResNet(20), (32, 3, 32, 32), 2, rounds=100, quick_rounds=3),
    Case("mlp-deep", "mlp-deep", ResidualTanhMLP, (128, 40), steps_per_sample=20, rounds=200, quick_rounds=5),
]


@dataclass(frozen=True)
class Timing:
    """One clock's figures for a comparison."""

    built_ms: float
    """Median over rounds of the built model's mean train-step time."""
    reference_ms: float
    ratio: float
    """Median over rounds of (built time / hand-written time) within the round."""
    ratio_q25: float
    ratio_q75: float

    @classmethod
    def of(cls, built: list[float], reference: list[float]) -> Timing:
        ratios = [b / r for b, r in zip(built, reference, strict=True)]
        q25, _, q75 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
        return cls(
            built_ms=statistics.median(built) * 1e3,
            reference_ms=statistics.median(reference) * 1e3,
            ratio=statistics.median(ratios),
            ratio_q25=q25,
            ratio_q75=q75,
        )


@dataclass(frozen=True)
class Result:
    case: str
    preset: str
    reference: str
    threads: int
    batch_shape: tuple[int, ...]
    rounds: int
    steps_per_sample: int
    cpu: Timing
    """CPU time of the process: what the gate reads, as time slices given to other processes do not count."""
    wall: Timing

    @property
    def ratio(self) -> float:
        return self.cpu.ratio


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """A closure that runs one SGD train step of ``model`` on the batch ``(x, y)``."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step() -> None:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


def check_same_work(built: nn.Module, reference: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """Asserts that both models give the same logits, loss gradients and BatchNorm statistics."""
    outputs = []
    for model in (built, reference):
        model.zero_grad()
        out = model(x)
        F.cross_entropy(out, y).backward()
        outputs.append(out.detach())
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)
    built_state = list(built.state_dict().values())
    for a, b in zip(built_state, reference.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(built.parameters(), reference.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-3, atol=1e-5)
    built.zero_grad(set_to_none=True)
    reference.zero_grad(set_to_none=True)


def time_steps(step: Callable[[], None], steps: int) -> tuple[float, float]:
    """Seconds per step, as ``(process CPU time, wall-clock time)``."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(steps):
        step()
    return (time.process_time() - cpu) / steps, (time.perf_counter() - wall) / steps


def measure(case: Case, threads: int, rounds: int) -> Result:
    """Times the built and the hand-written model of ``case``, interleaved, with ``threads`` threads."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    built = build_model(get_preset(case.preset))
    reference = case.reference()
    load_by_order(built, reference)
    x = torch.randn(case.batch_shape)
    y = torch.randint(0, 10, (case.batch_shape[0],))
    check_same_work(built, reference, x, y)

    steps = {"built": train_step(built, x, y), "reference": train_step(reference, x, y)}
    for step in steps.values():  # warm-up: allocator, oneDNN primitive caches, optimizer state
        time_steps(step, 3 * case.steps_per_sample)
    samples: dict[str, list[tuple[float, float]]] = {"built": [], "reference": []}
    gc.collect()
    gc.disable()  # a collection in one model's sample would be charged to it alone
    try:
        for r in range(rounds):
            # ABBA: alternate which model goes first, so a trend in the load cancels out.
            for name in ("built", "reference") if r % 2 == 0 else ("reference", "built"):
                samples[name].append(time_steps(steps[name], case.steps_per_sample))
    finally:
        gc.enable()

    def clock(i: int) -> Timing:
        return Timing.of([t[i] for t in samples["built"]], [t[i] for t in samples["reference"]])

    return Result(
        case=case.name,
        preset=case.preset,
        reference=f"tests/nn/reference_models.py:{type(case.reference()).__name__}",
        threads=threads,
        batch_shape=case.batch_shape,
        rounds=rounds,
        steps_per_sample=case.steps_per_sample,
        cpu=clock(0),
        wall=clock(1),
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few rounds only (smoke test; the ratio is noisy)")
    parser.add_argument("--max-ratio", type=float, default=1.03, help="fail if a ratio exceeds this (default 1.03)")
    parser.add_argument(
        "--threads",
        default="1",
        help="comma-separated torch thread counts to measure with; 'default' is torch's own (default: 1). "
        "With more than one thread the CPU time adds up every thread's, spin-waits included",
    )
    parser.add_argument(
        "--models",
        default=",".join(c.name for c in CASES),
        help=f"comma-separated comparisons, from {', '.join(c.name for c in CASES)} (default: %(default)s)",
    )
    parser.add_argument("--rounds", type=int, default=None, help="override the number of rounds per model")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON result file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    default_threads = torch.get_num_threads()
    threads = [default_threads if t.strip() == "default" else int(t) for t in args.threads.split(",")]
    wanted = args.models.split(",")
    unknown = sorted(set(wanted) - {c.name for c in CASES})
    if unknown:
        print(f"unknown model(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    torch.set_flush_denormal(True)  # the fixed batch gets overfitted; denormal gradients would skew timings

    load_before = os.getloadavg()
    started = time.perf_counter()
    results = []
    for case in (c for c in CASES if c.name in wanted):
        for n in threads:
            rounds = args.rounds or (case.quick_rounds if args.quick else case.rounds)
            res = measure(case, n, rounds)
            results.append(res)
            flag = "" if res.ratio <= args.max_ratio else f"  > {args.max_ratio}"
            cpu, wall = res.cpu, res.wall
            print(
                f"{res.case:<16} threads={res.threads}  built {cpu.built_ms:8.3f} ms  "
                f"hand-written {cpu.reference_ms:8.3f} ms  ratio {cpu.ratio:.3f} "
                f"(IQR {cpu.ratio_q25:.3f}-{cpu.ratio_q75:.3f}; wall clock {wall.ratio:.3f}, "
                f"IQR {wall.ratio_q25:.3f}-{wall.ratio_q75:.3f}; {res.rounds} rounds){flag}",
                flush=True,
            )
    load_after = os.getloadavg()
    passed = all(r.ratio <= args.max_ratio for r in results)

    report = {
        "benchmark": "compiler_overhead",
        "date": datetime.date.today().isoformat(),
        "quick": args.quick,
        "max_ratio": args.max_ratio,
        "passed": passed,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_default_threads": default_threads,
        "load_average_1min": {"before": load_before[0], "after": load_after[0]},
        "seconds": round(time.perf_counter() - started, 1),
        "results": [{**asdict(r), "ratio": r.ratio} for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'passed' if passed else 'FAILED'}: max ratio {args.max_ratio}; results in {args.out}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

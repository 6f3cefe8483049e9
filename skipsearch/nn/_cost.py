"""Compute cost of a model, measured on the model itself."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from skipsearch.nn._state import model_device, training_mode
from skipsearch.topology import Shape


@dataclass(frozen=True)
class Cost:
    """Parameters, multiply-accumulates and FLOPs of one forward pass on one sample, latency."""

    params: int
    macs: int
    flops: int
    latency_ms: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: Shape) -> int:
    """FLOPs of one forward pass on one sample, as ``torch.utils.flop_counter`` counts them
    (matrix multiplications and convolutions, 2 FLOPs per multiply-accumulate)."""
    with training_mode(model, False), cpu_threads(1), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape, device=model_device(model)))
    return int(counter.get_total_flops())


def measure_latency(
    model: nn.Module,
    input_shape: Shape,
    *,
    batch_size: int = 1,
    repeats: int = 15,
    warmup: int = 3,
    threads: int | None = 1,
) -> float:
    """Median wall time of one inference forward pass, in milliseconds.

    On the CPU it runs on ``threads`` threads (one by default): a batch of one gains nothing from
    more, and when other processes share the cores, waiting for a second thread costs more than
    the model itself, which would make the figure measure the machine's load instead.
    """
    x = torch.zeros(batch_size, *input_shape, device=model_device(model))
    with training_mode(model, False), cpu_threads(threads), torch.inference_mode():
        times = _time_forward(model, x, warmup, repeats)
    return statistics.median(times) * 1e3


def _time_forward(model: nn.Module, x: torch.Tensor, warmup: int, repeats: int) -> list[float]:
    times = []
    for i in range(warmup + repeats):
        if x.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(x)
        if x.is_cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def model_cost(model: nn.Module, input_shape: Shape, *, latency: bool = True) -> Cost:
    """:class:`Cost` of ``model`` for inputs of ``input_shape`` (no batch dimension)."""
    flops = count_flops(model, input_shape)
    ms = measure_latency(model, input_shape) if latency else None
    return Cost(params=count_params(model), macs=flops // 2, flops=flops, latency_ms=ms)


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Runs a block on ``threads`` torch CPU threads (``None``: unchanged), then restores the count."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

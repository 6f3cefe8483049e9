"""Compute cost of a model, measured on the model itself."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
from torch import nn

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
    (matrix multiplications and convolutions, 2 FLOPs per multiply-accumulate).

    The counts come from ``flop_counter``'s own formulas, applied in forward hooks of the linear
    and convolution modules, which is where every multiplication of a skipsearch model happens
    (a test checks the result against ``FlopCounterMode`` on every preset). ``FlopCounterMode``
    itself is not used: entering any dispatch mode imports ``torch._dynamo``, a second of start-up
    for a command like ``describe`` that counts once.
    """
    total = 0

    def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += _module_flops(module, inputs[0], output)

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, _COUNTED)]
    try:
        with training_mode(model, False), cpu_threads(1), torch.no_grad():
            model(torch.zeros(1, *input_shape, device=model_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    return total


_COUNTED = (nn.Linear, nn.modules.conv._ConvNd)


def _module_flops(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int:
    """FLOPs of one call of a linear or convolution module, by ``flop_counter``'s formulas."""
    from torch.utils.flop_counter import conv_flop_count, mm_flop

    weight = module.weight
    assert isinstance(weight, torch.Tensor)
    if isinstance(module, nn.Linear):
        return int(mm_flop([x.numel() // x.shape[-1], x.shape[-1]], list(weight.t().shape)))
    transposed = isinstance(module, nn.modules.conv._ConvTransposeNd)
    return int(conv_flop_count(list(x.shape), list(weight.shape), list(out.shape), transposed=transposed))


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

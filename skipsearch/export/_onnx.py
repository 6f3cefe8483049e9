"""TorchScript and ONNX files of a built model, each checked against the model before it is kept.

ONNX goes through PyTorch's TorchScript-based exporter by default: it takes about a second where the
``torch.export`` (dynamo) one takes 10-20 s for a ResNet-20 on a laptop CPU, and both give the same
graph for these straight-line models; ``dynamo=True`` selects the newer one. The batch dimension is
dynamic in both. The written file is run with onnxruntime and compared with the model's output.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

OPSET = 17
ATOL = 1e-4


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hides the exporters' deprecation warnings and log lines (they are about PyTorch, not the model)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def write_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> str:
    """Saves ``torch.jit.script(model)`` (``trace`` if scripting fails); returns which one was used."""
    model.eval()
    with _quiet():
        try:
            scripted, how = torch.jit.script(model), "script"
        except Exception:  # a construct TorchScript cannot compile: the graph is static, so a trace is exact
            with torch.no_grad():
                scripted, how = torch.jit.trace(model, example), "trace"
        torch.jit.save(scripted, str(path))
    loaded = torch.jit.load(str(path))
    _compare(model, lambda x: loaded(x), example, "TorchScript")
    return how


def write_onnx(model: nn.Module, example: torch.Tensor, path: Path, *, dynamo: bool = False) -> None:
    """Exports ``model`` (eval mode) to ONNX with a dynamic batch size and checks it with onnxruntime."""
    model.eval()
    with _quiet(), torch.no_grad():
        if dynamo:
            program = torch.onnx.export(
                model,
                (example,),
                input_names=["input"],
                output_names=["output"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                dynamo=True,
            )
            assert program is not None  # dynamo=True always returns the program
            program.save(str(path))
        else:
            torch.onnx.export(
                model,
                (example,),
                str(path),
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
    check_onnx(model, path, example)


def check_onnx(model: nn.Module, path: Path, example: torch.Tensor, atol: float = ATOL) -> None:
    """Runs the ONNX file with onnxruntime on ``example`` (and a batch of another size)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    _compare(model, lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0]), example, "ONNX", atol)


def _compare(
    model: nn.Module, run: Callable[[torch.Tensor], torch.Tensor], example: torch.Tensor, what: str, atol: float = ATOL
) -> None:
    other = example[:1]  # another batch size: the batch axis must be dynamic
    with torch.no_grad():
        for x in (example, other):
            expected, got = model(x), run(x)
            if got.shape != expected.shape or not torch.allclose(expected, got, atol=atol, rtol=0):
                gap = (expected - got).abs().max() if got.shape == expected.shape else f"shape {tuple(got.shape)}"
                raise RuntimeError(f"the exported {what} model differs from the PyTorch model ({gap})")

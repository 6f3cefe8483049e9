"""Where a model lives and which mode it is in: small helpers every measurement needs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def model_device(model: nn.Module, default: torch.device | None = None) -> torch.device:
    """The device of ``model``'s first parameter; ``default`` (the CPU if ``None``) for a model without any."""
    param = next(model.parameters(), None)
    if param is not None:
        return param.device
    return default if default is not None else torch.device("cpu")


@contextlib.contextmanager
def training_mode(model: nn.Module, training: bool) -> Iterator[nn.Module]:
    """Runs a block with ``model`` in train (``True``) or eval mode, then restores the mode it had."""
    was_training = model.training
    model.train(training)
    try:
        yield model
    finally:
        model.train(was_training)

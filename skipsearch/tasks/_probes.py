"""Zero-cost probes: scores of an untrained network from one seeded batch, no training.

Each probe is a function of a :class:`ProbeInputs` (the freshly initialised model and one batch)
that returns a float, defined as in its paper; :data:`PROBES` maps the metric names of the schema
(:mod:`skipsearch.metrics`, ``source="probe"``) to them, and :func:`register_probe` adds one.
Every probe runs under a forked RNG, leaves the model's weights, gradients and train/eval mode as
it found them, and so never changes what training does afterwards.

- ``synflow`` (Tanaka et al., "Pruning neural networks without any data by iteratively conserving
  synaptic flow", NeurIPS 2020): on a double-precision copy with every parameter replaced by its
  absolute value and BatchNorm in eval mode, ``R`` is the sum of the outputs for an all-ones
  input; the score is ``sum |theta * dR/dtheta|`` over the weight tensors (it grows
  exponentially with depth: double precision, and ``log_scale`` in the schema).
- ``naswot`` (Mellor et al., "Neural architecture search without training", ICML 2021): every
  activation unit gives each sample a binary code ``c`` (ReLU: the unit is active); the kernel
  ``K_ij = N_A - hamming(c_i, c_j)`` over the batch is scored by ``log |det K|``. For activations
  other than ReLU the code is the sign of the pre-activation, i.e. the ReLU code of the same
  pre-activations: ``tanh``, GELU and SiLU outputs are positive exactly when their inputs are, a
  sigmoid's output is above 1/2. Codes come from every activation call of the forward pass (block
  activations and a merge node's ``post`` activation alike).
- ``grad_norm`` (Abdelfattah et al., "Zero-cost proxies for lightweight NAS", ICLR 2021): the sum
  over weight tensors of the Euclidean norm of the loss gradient.
- ``snip`` (Lee et al., "SNIP: single-shot network pruning based on connection sensitivity", ICLR
  2019, as a proxy in Abdelfattah et al. 2021): ``sum |theta * dL/dtheta|`` over the weight tensors.
- ``jacob_cov`` (Mellor et al. 2020, arXiv v1 of NASWOT; as a proxy in Abdelfattah et al. 2021):
  the per-sample Jacobians ``J_i = d(sum of outputs_i)/dx_i`` give a correlation matrix ``C`` over
  the batch with eigenvalues ``l``; the score is ``-sum(log(l + k) + 1 / (l + k))``, ``k = 1e-5``.
- ``gradflow``: the first/last hidden block weight-gradient ratio at initialisation
  (:func:`skipsearch.tasks.flow_ratio`, the ``grad_ratio_init`` of gradient-flow studies).

"Weight tensors" are the parameters with two or more dimensions: convolution and linear weights,
skip projections included; biases, norms and skip scalars or gates are not. The loss is the
task's (cross-entropy, or mean squared error for regression targets), model in train mode.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from skipsearch import metrics as schema
from skipsearch.nn import built_topology, training_mode
from skipsearch.tasks._data import TaskData, reshape_for
from skipsearch.tasks._gradients import flow_ratio, gradient_norms
from skipsearch.tasks._metrics import task_loss

PROBE_BATCH = 64
"""Training samples a probe batch holds (Abdelfattah et al. score CIFAR networks on 64)."""

JACOB_COV_K = 1e-5
"""The ``k`` of jacob_cov's eigenvalue score (Abdelfattah et al.'s code)."""

_ACTIVATIONS = {"relu": 0.0, "relu_": 0.0, "tanh": 0.0, "gelu": 0.0, "silu": 0.0, "sigmoid": 0.5}
"""Activation functions (by name) whose calls give NASWOT codes, with the output value that
corresponds to a zero pre-activation."""


@dataclass
class ProbeInputs:
    """What every probe reads: the untrained model and one batch; shared passes are computed once."""

    model: nn.Module
    x: Tensor
    y: Tensor
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def weights(self) -> list[tuple[str, nn.Parameter]]:
        """The weight tensors (parameters of two or more dimensions), by name."""
        return [(n, p) for n, p in self.model.named_parameters() if p.dim() > 1]

    @cached_property
    def loss_gradients(self) -> list[Tensor]:
        """``dL/dtheta`` of every weight tensor (model in train mode), detached; grads cleared after."""
        model = self.model
        model.zero_grad(set_to_none=True)
        try:
            with training_mode(model, True):
                task_loss(model(self.x), self.y).backward()
            return [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for _, p in self.weights]
        finally:
            model.zero_grad(set_to_none=True)


ProbeFunction = Callable[[ProbeInputs], float]


def synflow(inputs: ProbeInputs) -> float:
    """``sum |theta * dR/dtheta|`` (Tanaka et al. 2020): see the module docstring."""
    model = copy.deepcopy(inputs.model).double()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model.eval()  # BatchNorm uses its (initial) running statistics: one input, no batch statistics
    ones = torch.ones((1, *inputs.x.shape[1:]), dtype=torch.float64, device=inputs.x.device)
    model(ones).sum().backward()
    total = 0.0
    for p in model.parameters():
        if p.dim() > 1 and p.grad is not None:
            total += float((p.detach() * p.grad).abs().sum())
    return total


def grad_norm(inputs: ProbeInputs) -> float:
    """Sum over weight tensors of ``||dL/dtheta||_2`` (Abdelfattah et al. 2021)."""
    return float(sum(float(g.double().norm()) for g in inputs.loss_gradients))


def snip(inputs: ProbeInputs) -> float:
    """``sum |theta * dL/dtheta|`` over the weight tensors (Lee et al. 2019)."""
    pairs = zip(inputs.weights, inputs.loss_gradients, strict=True)
    return float(sum(float((p.detach().double() * g.double()).abs().sum()) for (_, p), g in pairs))


class _ActivationCodes(TorchFunctionMode):
    """Records, for every activation call, which units of each sample are on (see :func:`naswot`)."""

    def __init__(self) -> None:
        super().__init__()
        self.codes: list[Tensor] = []

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        threshold = _ACTIVATIONS.get(getattr(func, "__name__", ""))
        if threshold is not None and isinstance(out, Tensor) and out.dim() >= 1:
            self.codes.append((out.detach() > threshold).reshape(out.shape[0], -1))
        return out


def naswot(inputs: ProbeInputs) -> float:
    """``log |det K_H|`` of the Hamming kernel of binary activation codes (Mellor et al. 2021)."""
    recorder = _ActivationCodes()
    with torch.no_grad(), training_mode(inputs.model, True), recorder:
        inputs.model(inputs.x)
    if not recorder.codes:
        return math.nan  # no activation unit: the score is undefined
    codes = torch.cat(recorder.codes, dim=1).double()
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T  # N_A - Hamming distance
    return float(torch.linalg.slogdet(kernel).logabsdet)


def jacob_cov(inputs: ProbeInputs) -> float:
    """``-sum(log(l + k) + 1/(l + k))`` over the eigenvalues of the input-Jacobian correlation matrix
    (Abdelfattah et al. 2021, after Mellor et al. 2020 v1)."""
    x = inputs.x.detach().clone().requires_grad_(True)
    model = inputs.model
    model.zero_grad(set_to_none=True)
    try:
        with training_mode(model, True):
            model(x).sum().backward()
    finally:
        model.zero_grad(set_to_none=True)
    assert x.grad is not None
    jacobians = x.grad.reshape(len(x), -1).double()
    corr = torch.corrcoef(jacobians)
    if not bool(torch.isfinite(corr).all()):
        return math.nan  # a sample whose Jacobian is constant has no correlation
    eigenvalues = torch.linalg.eigvalsh(corr)
    k = JACOB_COV_K
    return float(-(torch.log(eigenvalues + k) + 1.0 / (eigenvalues + k)).sum())


def gradflow(inputs: ProbeInputs) -> float:
    """The first/last hidden block weight-gradient ratio (:func:`flow_ratio`) on the probe batch."""
    if built_topology(inputs.model) is None:
        return math.nan  # not a skipsearch model: it has no hidden blocks to compare
    norms, _ = gradient_norms(inputs.model, inputs.x, inputs.y)
    return flow_ratio(norms)


PROBES: dict[str, ProbeFunction] = {
    "synflow": synflow,
    "naswot": naswot,
    "grad_norm": grad_norm,
    "snip": snip,
    "jacob_cov": jacob_cov,
    "gradflow": gradflow,
}
"""The computation of every probe of the metric schema, by name."""


def register_probe(name: str, function: ProbeFunction) -> None:
    """Adds the computation of probe ``name``; the schema must describe it (a :class:`Metric` with
    ``source="probe"``), which is what makes it a results column, a ``--where`` field and an objective."""
    metric = schema.get(name)
    if metric is None or not metric.is_probe:
        raise ValueError(f"probe {name!r}: register its Metric (source='probe') in skipsearch.metrics first")
    PROBES[name] = function


def probe_names() -> tuple[str, ...]:
    """The probes of the schema that have a computation, in schema order."""
    return tuple(n for n in schema.probe_names() if n in PROBES)


def probe_batch(
    data: TaskData, input_shape: Sequence[int], seed: int, size: int = PROBE_BATCH
) -> tuple[Tensor, Tensor]:
    """``size`` training samples drawn with ``seed`` (the same for every topology of a study),
    viewed as ``input_shape``."""
    data = reshape_for(data, tuple(input_shape))
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(data.x_train), generator=generator)[:size]
    return data.x_train[index], data.y_train[index]


def compute_probes(
    model: nn.Module, x: Tensor, y: Tensor, names: Sequence[str] | None = None
) -> dict[str, float | None]:
    """Every probe in ``names`` (default: all) of the untrained ``model`` on ``(x, y)``; a score that
    is not a finite number (a singular kernel, no activation) is ``None``.

    The RNG is forked (dropout draws nothing from the training's stream) and the model is left as
    it was: same weights and buffers (BatchNorm statistics), no gradients, same train/eval mode.
    """
    wanted = list(names) if names is not None else list(probe_names())
    unknown = [n for n in wanted if n not in PROBES]
    if unknown:
        raise ValueError(f"unknown probe {unknown[0]!r} (known: {', '.join(probe_names())})")
    device = next((p.device for p in model.parameters()), x.device)
    inputs = ProbeInputs(model, x.to(device), y.to(device))
    out: dict[str, float | None] = {}
    # Train-mode passes move BatchNorm's running statistics: they are put back afterwards.
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            for name in wanted:
                value = PROBES[name](inputs)
                out[name] = value if math.isfinite(value) else None
    finally:
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
    return out

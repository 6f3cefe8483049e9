"""Resource limits, checked before a model is built, data generated or a network trained.

A topology file or a study file can ask for anything: ``channels: 1000000000`` (36 GB of weights),
10,000 blocks, or a task of 10**12 samples. Every command that builds, trains or loads checks the
request against :class:`Limits` first, with the numbers counted from shapes alone
(:func:`~skipsearch.topology.node_costs`), so a refusal costs microseconds and names the node,
the amount, the limit and how to raise it. This module sits at the bottom (no torch, no database)
so that every layer can check before it allocates.

Each limit comes, first found, from the study file's ``limits:`` section, the environment variable
``SKIPSEARCH_LIMIT_<KEY>`` (e.g. ``SKIPSEARCH_LIMIT_MEMORY=16GB``), or the default: fixed counts
that cover every preset many times over, and half of this machine's memory.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skipsearch.errors import UserError
from skipsearch.topology._cost import node_costs
from skipsearch.topology._graph import Topology

BYTES_PER_VALUE = 4
"""float32: weights, gradients, activations and data."""

TRAINING_COPIES = 4
"""Values held per parameter while training: the weight, its gradient and Adam's two moments."""

DEFAULTS: dict[str, int] = {
    "params": 200_000_000,
    "macs": 50_000_000_000,
    "blocks": 2_000,
    "edges": 20_000,
    "samples": 2_000_000,
    "sample_epochs": 1_000_000_000,
}
"""Fixed defaults; ``memory`` defaults to half of the machine's memory (:func:`machine_memory`)."""

DESCRIPTIONS: dict[str, str] = {
    "params": "parameters of a network",
    "macs": "multiply-accumulates of one forward pass of one sample",
    "memory": "bytes a network, its training state and one batch's activations, or a dataset, may take",
    "blocks": "nodes of a topology",
    "edges": "skip edges of a topology (candidates of a search space included)",
    "samples": "samples of a task's data (train, validation and test together)",
    "sample_epochs": "epochs x training samples of one training run",
}

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9}
_UNITS |= {"t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_AMOUNT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([a-z]*)\s*$")

MAX_LIMIT = 10**18
"""No limit may exceed this: numbers beyond are typos (or attacks), not machines."""


def parse_amount(value: Any, where: str) -> int:
    """A positive count or size: an integer, or text like ``8GB``, ``512 MiB``, ``2e9``."""
    if isinstance(value, bool):
        raise UserError(f"{where}: expected a positive number, got {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value) if isinstance(value, float) else value
    elif isinstance(value, str) and (match := _AMOUNT.match(value.lower())) and match.group(2) in _UNITS:
        number = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise UserError(f"{where}: expected a positive number (e.g. 8000000000 or 8GB), got {value!r}")
    if isinstance(number, float) and not math.isfinite(number):
        raise UserError(f"{where}: expected a finite number, got {value!r}")
    if not 1 <= number <= MAX_LIMIT:
        raise UserError(f"{where}: must be between 1 and {MAX_LIMIT:.0e}, got {value!r}")
    return int(number)


def machine_memory() -> int:
    """Half of this machine's physical memory (8 GiB where it cannot be told)."""
    try:
        import psutil

        return int(psutil.virtual_memory().total) // 2
    except Exception:  # psutil missing, or the platform does not say
        return 8 * 2**30


def amount_text(value: int, key: str) -> str:
    """``36.0 GB`` for memory, ``775,000,210`` for counts."""
    if value >= 10**15:  # requests of absurd size: a few digits say enough
        return f"about 10^{_log10(value)}{' bytes' if key == 'memory' else ''}"
    if key != "memory":
        return f"{value:,}"
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} bytes"


def _log10(value: int) -> int:
    """``floor(log10(value))`` of an integer of any size (``str`` refuses ints over 4,300 digits)."""
    digits = int(value.bit_length() * math.log10(2))
    return digits if 10**digits <= value else digits - 1


class Limits(BaseModel):
    """The study file's ``limits:`` section; ``None`` leaves a limit to the environment or the default.

    Limits are not part of what makes a study "the same study": raising one and running the file
    again resumes it.
    """

    model_config = ConfigDict(extra="forbid")

    params: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    macs: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    memory: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    """Bytes; the file may write ``8GB``, ``512MiB`` (and any limit ``5e8``)."""
    blocks: int | None = Field(default=None, ge=2, le=MAX_LIMIT)
    edges: int | None = Field(default=None, ge=0, le=MAX_LIMIT)
    samples: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    sample_epochs: int | None = Field(default=None, ge=1, le=MAX_LIMIT)

    @field_validator("*", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        """``8GB``, ``5e8`` (YAML reads it as text) or ``2.5e9`` become integers; ``None`` stays."""
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        try:
            return parse_amount(value, "limit")
        except UserError as exc:
            raise ValueError(str(exc).removeprefix("limit: ")) from None

    def value(self, key: str) -> tuple[int, str]:
        """The limit ``key`` in force and how to raise it (the study file's key or the variable)."""
        given = getattr(self, key)
        if given is not None:
            return given, f"raise limits.{key} to allow it"
        env = f"SKIPSEARCH_LIMIT_{key.upper()}"
        if os.environ.get(env, "").strip():
            return parse_amount(os.environ[env], env), f"raise {env} to allow it"
        default = machine_memory() if key == "memory" else DEFAULTS[key]
        return default, f"raise limits.{key} (or {env}) to allow it"

    def resolved(self) -> dict[str, int]:
        """Every limit in force, by key."""
        return {key: self.value(key)[0] for key in DESCRIPTIONS}

    def check(self, key: str, amount: int, what: str) -> None:
        """Raises :class:`UserError` when ``amount`` exceeds limit ``key``; ``what`` says whose."""
        limit, advice = self.value(key)
        if amount > limit:
            unit = _UNIT_NAMES.get(key)
            raise UserError(
                f"{what} exceeds the limit of {amount_text(limit, key)}{f' {unit}' if unit else ''}; {advice}"
            )


_UNIT_NAMES = {
    "params": "parameters",
    "macs": "MACs",
    "blocks": "nodes",
    "edges": "skip edges",
    "samples": "samples",
    "sample_epochs": "sample-epochs",
}


@dataclass(frozen=True)
class Footprint:
    """What building and training a topology takes, counted from its shapes."""

    params: int
    macs: int
    activations: int
    """Values one sample's forward pass keeps for the backward pass (an estimate)."""
    heaviest: str
    """The node holding the most parameters."""
    heaviest_params: int

    def memory(self, batch: int, training: bool) -> int:
        """Bytes: the weights (times :data:`TRAINING_COPIES` when training) and one batch's activations
        (twice when training: their gradients)."""
        weights = self.params * BYTES_PER_VALUE * (TRAINING_COPIES if training else 1)
        return weights + self.activations * batch * BYTES_PER_VALUE * (2 if training else 1)


def footprint(topology: Topology) -> Footprint:
    """Parameters, MACs and activations of ``topology``, with its heaviest node."""
    costs = node_costs(topology)
    heaviest = max(costs, key=lambda node: costs[node].params)
    return Footprint(
        params=sum(c.params for c in costs.values()),
        macs=sum(c.macs for c in costs.values()),
        activations=math.prod(topology.input_shape) + sum(c.activations for c in costs.values()),
        heaviest=heaviest,
        heaviest_params=costs[heaviest].params,
    )


def check_graph(topology: Topology, limits: Limits | None = None, where: str = "") -> None:
    """Blocks and skip edges: checked before anything counts paths or builds candidates."""
    limits = limits or Limits()
    name = where or f"topology {topology.name!r}"
    limits.check("blocks", len(topology.nodes), f"{name}: {len(topology.nodes):,} nodes")
    limits.check("edges", len(topology.skips), f"{name}: {len(topology.skips):,} skip edges")


def check_topology(
    topology: Topology,
    limits: Limits | None = None,
    *,
    batch: int = 1,
    training: bool = False,
    where: str = "",
) -> Footprint:
    """Refuses a topology whose network would exceed the limits: nodes, skip edges, parameters,
    MACs, and the memory of building it (``training``: of training it on batches of ``batch``).

    Errors name the heaviest node, e.g. ``node 'c1': 36.0 GB of weights exceeds the limit of 8.0 GB;
    raise limits.memory to allow it``.
    """
    limits = limits or Limits()
    check_graph(topology, limits, where)
    name = where or f"topology {topology.name!r}"
    size = footprint(topology)
    share = (
        f" (node {size.heaviest!r} holds {amount_text(size.heaviest_params, 'params')})"
        if size.heaviest_params < size.params
        else ""
    )
    weights = size.heaviest_params * BYTES_PER_VALUE  # one node alone: the clearest message
    limits.check("memory", weights, f"node {size.heaviest!r}: {amount_text(weights, 'memory')} of weights")
    limits.check("params", size.params, f"{name}: {amount_text(size.params, 'params')} parameters{share}")
    limits.check("macs", size.macs, f"{name}: {amount_text(size.macs, 'macs')} MACs per sample")
    needed = size.memory(batch, training)
    doing = f"training it on batches of {batch}" if training else "building it and running one sample"
    limits.check("memory", needed, f"{name}: {amount_text(needed, 'memory')} of memory for {doing}")
    return size


def check_data(samples: int, values_per_sample: int, limits: Limits | None = None, where: str = "task") -> None:
    """Refuses a dataset of more samples, or more bytes, than the limits allow (before it is made)."""
    limits = limits or Limits()
    limits.check("samples", samples, f"{where}: {amount_text(samples, 'samples')} samples")
    needed = samples * max(values_per_sample, 1) * BYTES_PER_VALUE
    limits.check("memory", needed, f"{where}: {amount_text(needed, 'memory')} of data")


def check_training(epochs: int, train_samples: int, limits: Limits | None = None, where: str = "training") -> None:
    """Refuses a training run of more epochs x samples than the limits allow."""
    limits = limits or Limits()
    limits.check(
        "sample_epochs",
        epochs * train_samples,
        f"{where}: {amount_text(epochs, 'epochs')} epochs x {amount_text(train_samples, 'samples')} samples",
    )

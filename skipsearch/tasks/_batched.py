"""Training many topologies of one backbone at once, as one vectorised computation.

A study's candidates share their blocks and differ in their skip edges, and its models are so small
that a train step is mostly Python and kernel-launch overhead. :func:`train_batched` trains K such
models together: their parameters are stacked along a new first dimension and every member's forward
and backward pass runs in the same kernels (HFTA, Wang et al. 2021; PyTorch's "model ensembling"
recipe). A group takes one of two stacked forms (:func:`make_stack`):

- :class:`~skipsearch.tasks._stacked_mlp.MlpStack` for MLP backbones (linear blocks; add, scalar and
  switch edges with identity or projection alignment; concat edges): batched by hand, each member
  computing exactly its own network (see that module).
- :class:`UnionStack` for everything else: one union network under :func:`torch.vmap`, below.

How K topologies become one union network:

- Every member keeps its own blocks (same ids, ops and output shapes in all members).
- An additive edge present in some members is one union edge (per source, destination, kind and
  alignment); each member holds a 0/1 switch per union edge, and ``where(on, out + term, out)`` adds
  the term only where it is on. An absent edge's parameters get exactly zero gradient, so Adam and
  SGD never move them.
- A concat edge widens its destination's input. The union block takes the union of the members'
  concat sources; a member's weights sit in its own input channels and the others stay zero, with
  their gradients masked to zero, so the member computes the same function (up to the order of a
  matrix product's sums).

Per member: its own seed (initial weights are the caller's, built from that seed; batch order from a
private generator as in :func:`train_model`), optimizer state, gradient clipping, early-stopping
decision and divergence. One optimizer steps all stacked parameters: Adam, AdamW and SGD are
elementwise, so that equals K separate steps (PyTorch's ``foreach`` implementations: a few calls for
all parameters instead of a dozen per parameter, and the very arithmetic of :func:`train_model`'s).
A member that stops or diverges leaves the group at once (its slices are dropped), without
touching the others.

What cannot be fused trains one at a time (the log says why): dropout (its random masks cannot match
a lone run's), members whose node shapes differ, and parameters whose shapes differ in more than the
input channels of a concat edge.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, fx, nn
from torch.func import functional_call, vmap

from skipsearch.nn import (
    ACTIVATION_FUNCTIONS,
    BLOCK_BUILDERS,
    SwitchSkip,
    build_model,
    cpu_threads,
    model_topology,
    skip_name,
)
from skipsearch.nn._skips import make_skip
from skipsearch.tasks._config import TrainConfig
from skipsearch.tasks._data import TaskData, reshape_for
from skipsearch.tasks._metrics import evaluate, task_loss
from skipsearch.tasks._stacked_mlp import MlpStack, keep_rows, mlp_stack_unsupported
from skipsearch.tasks._train import (
    _EPOCH_HOOK,
    ShouldStop,
    TrainResult,
    _batch_bounds,
    _scheduler,
    resolve_device,
    train_model,
)
from skipsearch.topology import SkipEdge, Topology

_logger = logging.getLogger("skipsearch.batched")

EVAL_CHUNK = 1024
"""Samples per evaluation batch: the same chunks as :func:`skipsearch.tasks.evaluate`."""


class FusionError(ValueError):
    """Why a set of topologies cannot be trained as one group."""


def fusion_key(topology: Topology) -> tuple[Any, ...]:
    """Topologies with equal keys may share a group: the same blocks and the same output shapes."""
    shapes = topology.shapes
    return tuple((n.id, n.op, repr(sorted(n.params.items())), shapes[n.id]) for n in topology.nodes)


def unfusable_reason(topology: Topology) -> str | None:
    """Why ``topology`` can never be trained in a group (``None`` when it can)."""
    if any(n.op == "dropout" for n in topology.nodes):
        return "dropout draws random masks that a fused run cannot reproduce member by member"
    return None


def _variant_name(edge: SkipEdge) -> str:
    return f"{skip_name(edge)}__{edge.kind}_{edge.align}"


@dataclass(frozen=True)
class _Step:
    """One node of the union network: its concat sources and its union additive edges."""

    node: str
    sources: tuple[str, ...]
    edges: tuple[tuple[int, str, str, bool], ...]
    """``(column, source, module name, has module)`` per union additive edge, in source order."""
    post: str


class UnionNet(nn.Module):
    """The network of a fusion group: every block, union concat inputs and union additive edges.

    ``forward(x, on)`` runs one member: ``on[j]`` says whether union edge ``j`` is one of its edges.
    """

    def __init__(self, topologies: Sequence[Topology]) -> None:
        super().__init__()
        first = topologies[0]
        keys = {fusion_key(t) for t in topologies}
        if len(keys) > 1:
            raise FusionError("the topologies differ in their blocks or their output shapes")
        index, shapes = first.index, first.shapes
        self.blocks = nn.ModuleDict()
        self.skips = nn.ModuleDict()
        self.edge_names: list[str] = []
        self.sources: dict[str, list[str]] = {}
        steps: list[_Step] = []
        for node in first.nodes[1:]:
            sources = sorted({s for t in topologies for s in t.input_sources(node.id)}, key=index.__getitem__)
            self.sources[node.id] = sources
            merged = (sum(shapes[s][0] for s in sources), *shapes[sources[0]][1:])
            self.blocks[node.id] = BLOCK_BUILDERS[node.op](merged, node.params)
            variants = {_variant_name(e): e for t in topologies for e in t.incoming(node.id) if e.additive}
            edges = []
            for name, edge in sorted(variants.items(), key=lambda item: (index[item[1].src], item[0])):
                module = make_skip(edge, shapes[edge.src], shapes[node.id])
                if module is not None:
                    self.skips[name] = module
                edges.append((len(self.edge_names), edge.src, name, module is not None))
                self.edge_names.append(name)
            steps.append(_Step(node.id, tuple(sources), tuple(edges), node.params.get("post", "none")))
        self.shared: set[int] = set()
        """Union edges every member of the group has: a plain add."""
        self.unused: set[int] = set()
        """Union edges no member left in the group has: skipped."""
        self.input_id = first.nodes[0].id
        self.output_id = first.nodes[-1].id
        self.steps = steps
        self.switch_columns = [
            j
            for j, name in enumerate(self.edge_names)
            if name in self.skips and isinstance(self.skips[name], SwitchSkip)
        ]

    def forward(self, x: Tensor, on: Tensor) -> Tensor:
        outputs = {self.input_id: x}
        for step in self.steps:
            if len(step.sources) == 1:
                inp = outputs[step.sources[0]]
            else:
                inp = torch.cat([outputs[s] for s in step.sources], 1)
            out = self.blocks[step.node](inp)
            for column, src, name, has_module in step.edges:
                if column in self.unused:
                    continue
                term = self.skips[name](outputs[src]) if has_module else outputs[src]
                if column in self.shared:
                    out = out + term
                    continue
                # One op: ``out + 1 * term`` is ``out + term`` exactly and ``out + 0 * term`` is ``out`` (a
                # term is finite while its member's loss is; a non-finite loss ends the member at once).
                out = torch.addcmul(out, on[column], term)
            if step.post != "none":
                out = ACTIVATION_FUNCTIONS[step.post](out)
            outputs[step.node] = out
        return outputs[self.output_id]

    def switch_penalty(self, params: dict[str, Tensor], on: Tensor) -> Tensor:
        """A member's sum of open switch gates, as :func:`skipsearch.nn.switch_penalty` (0 without any)."""
        values = [on[j] * torch.sigmoid(params[f"skips.{self.edge_names[j]}.logit"]) for j in self.switch_columns]
        return torch.stack(values).sum() if values else torch.zeros((), device=on.device)

    # -- members --------------------------------------------------------------------------------
    def track(self, on: Tensor) -> None:
        """Sets :attr:`shared` and :attr:`unused` from the group's ``on`` switches (members x edges)."""
        counts = on.sum(0).tolist() if on.numel() else [0.0] * len(self.edge_names)
        self.shared = {j for j, c in enumerate(counts) if c == len(on)}
        self.unused = {j for j, c in enumerate(counts) if c == 0}

    def member_on(self, topology: Topology) -> Tensor:
        mine = {_variant_name(e) for e in topology.active_skips if e.additive}
        return torch.tensor([float(name in mine) for name in self.edge_names])

    def member_names(self, topology: Topology) -> dict[str, str]:
        """Member state-dict key -> union key (blocks keep their names; skip modules are renamed)."""
        mapping: dict[str, str] = {}
        for edge in topology.active_skips:
            if edge.additive:
                mapping[f"skips.{skip_name(edge)}."] = f"skips.{_variant_name(edge)}."
        return mapping

    def channel_index(self, topology: Topology, node: str) -> Tensor | None:
        """Positions of a member's input channels of ``node`` among the union's (``None``: the same)."""
        mine = topology.input_sources(node)
        union = self.sources[node]
        if mine == union:
            return None
        shapes = topology.shapes
        offsets, at = {}, 0
        for s in union:
            offsets[s] = at
            at += shapes[s][0]
        return torch.cat([torch.arange(offsets[s], offsets[s] + shapes[s][0]) for s in mine])


def union_dtype(net: nn.Module) -> torch.dtype:
    return next((p.dtype for p in net.parameters()), torch.get_default_dtype())


def _union_key(mapping: dict[str, str], key: str) -> str:
    for prefix, target in mapping.items():
        if key.startswith(prefix):
            return target + key[len(prefix) :]
    return key


def _scatter_plan(union: Tensor, member: Tensor, channels: Tensor | None, where: str) -> tuple[int, Tensor] | None:
    """``(dim, index)`` placing ``member`` inside ``union`` (``None``: same shape)."""
    if union.shape == member.shape:
        return None
    differ = [d for d in range(union.dim()) if union.shape[d] != member.shape[d]]
    if channels is None or len(differ) != 1 or member.shape[differ[0]] % len(channels):
        raise FusionError(f"{where}: shape {tuple(member.shape)} does not fit the group's {tuple(union.shape)}")
    dim = differ[0]
    spread = member.shape[dim] // len(channels)  # a flattened feature map: channels times positions
    if union.shape[dim] % spread:
        raise FusionError(f"{where}: shape {tuple(member.shape)} does not fit the group's {tuple(union.shape)}")
    index = (channels[:, None] * spread + torch.arange(spread)).reshape(-1)
    return dim, index


class _Stacked:
    """The stacked parameters, buffers and gradient masks of a group's members."""

    def __init__(self, net: UnionNet, models: Sequence[nn.Module], device: torch.device) -> None:
        union_params = dict(net.named_parameters())
        union = {**union_params, **dict(net.named_buffers())}
        slots: dict[str, list[Tensor]] = {k: [] for k in union}
        member_masks: list[dict[str, Tensor]] = []
        self.plans: list[dict[str, tuple[str, tuple[int, Tensor] | None]]] = []
        for model in models:
            topology = model_topology(model)
            mapping = net.member_names(topology)
            plan: dict[str, tuple[str, tuple[int, Tensor] | None]] = {}
            masks: dict[str, Tensor] = {}
            for key, value in model.state_dict().items():
                target = _union_key(mapping, key)
                base = union.get(target)
                if base is None:
                    raise FusionError(f"{topology.name}: {key} has no place in the group's network")
                node = target.split(".")[1] if target.startswith("blocks.") else None
                channels = net.channel_index(topology, node) if node is not None else None
                scatter = _scatter_plan(base, value, channels, f"{topology.name}: {key}")
                plan[key] = (target, scatter)
                if scatter is None:
                    slots[target].append(value.detach().clone())
                    continue
                dim, index = scatter
                is_param = target in union_params
                fill = torch.zeros_like(base) if is_param else base.detach().clone()
                slots[target].append(fill.index_copy(dim, index, value.detach()))
                if is_param:  # the channels of other members' concat sources never move
                    masks[target] = torch.zeros_like(base).index_fill(dim, index, 1.0)
            for target, values in slots.items():
                if len(values) < len(self.plans) + 1:  # another member's edge: initial values, never moved
                    values.append(union[target].detach().clone())
            self.plans.append(plan)
            member_masks.append(masks)
        self.params = {
            k: torch.stack(slots[k]).to(device).requires_grad_(union_params[k].requires_grad) for k in union_params
        }
        self.buffers = {k: torch.stack(slots[k]).to(device) for k in union if k not in union_params}
        masked = {k for masks in member_masks for k in masks}
        self.masks = {
            k: torch.stack([m.get(k, torch.ones_like(union_params[k])) for m in member_masks]).to(device)
            for k in sorted(masked)
        }
        self.on = torch.stack([net.member_on(model_topology(m)) for m in models]).to(device, union_dtype(net))

    def member_state(self, position: int, member: int) -> dict[str, Tensor]:
        """The state dict of original member ``member``, which sits at ``position`` of the stacks now."""
        state = {}
        for key, (target, scatter) in self.plans[member].items():
            source = self.params.get(target)
            value = (source if source is not None else self.buffers[target])[position].detach()
            if scatter is not None:
                dim, index = scatter
                value = value.index_select(dim, index.to(value.device))
            state[key] = value
        return state

    def keep(self, index: Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Keeps the stack positions ``index`` (members that leave are dropped), optimizer state included."""
        keep_rows(self.params, index, optimizer)
        self.buffers = {k: v[index] for k, v in self.buffers.items()}
        self.masks = {k: v[index] for k, v in self.masks.items()}
        self.on = self.on[index]


class UnionStack:
    """A group trained as one union network under ``vmap`` (any blocks and edge kinds)."""

    def __init__(self, models: Sequence[nn.Module], device: torch.device, penalty: float) -> None:
        dtype = next(models[0].parameters()).dtype
        self.net = UnionNet([model_topology(m) for m in models]).to(dtype)
        self.stacked = _Stacked(self.net, models, device)
        self.net.to("meta")  # its own tensors are never used: the stacks replace them in every call
        self.net.track(self.stacked.on)
        self.device = device
        self.penalty = penalty if self.net.switch_columns else 0.0

    @property
    def params(self) -> dict[str, Tensor]:
        return self.stacked.params

    def _loss(self, params: dict[str, Tensor], buffers: dict[str, Tensor], on: Tensor, x: Tensor, y: Tensor) -> Tensor:
        loss = task_loss(functional_call(self.net, (params, buffers), (x, on)), y)
        if self.penalty:
            loss = loss + self.penalty * self.net.switch_penalty(params, on)
        return loss

    def _forward(self, params: dict[str, Tensor], buffers: dict[str, Tensor], on: Tensor, x: Tensor) -> Tensor:
        return functional_call(self.net, (params, buffers), (x, on))

    def losses(self, x: Tensor, y: Tensor, per_member: bool) -> Tensor:
        """Each member's training loss: ``x`` and ``y`` one batch for all, or one per member (K first)."""
        self.net.train()
        data = 0 if per_member else None
        stacked = self.stacked
        return vmap(self._loss, in_dims=(0, 0, 0, data, data))(stacked.params, stacked.buffers, stacked.on, x, y)

    @torch.no_grad()
    def outputs(self, positions: list[int], x: Tensor) -> Tensor:
        """The outputs of the members at ``positions`` for one batch ``x`` of all."""
        index = torch.tensor(positions, device=self.device)
        params = {k: v[index] for k, v in self.stacked.params.items()}
        buffers = {k: v[index] for k, v in self.stacked.buffers.items()}
        self.net.eval()
        return vmap(self._forward, in_dims=(0, 0, 0, None))(params, buffers, self.stacked.on[index], x)

    def prepare_gradients(self, clip: float | None) -> None:
        """Zeroes the gradients of other members' concat channels; clips each member's as ``clip_grad_norm_``."""
        params = self.stacked.params
        for name, mask in self.stacked.masks.items():
            grad = params[name].grad
            if grad is not None:
                grad.mul_(mask)
        if clip is None:
            return
        grads = [p.grad for p in params.values() if p.grad is not None]
        # Per member, as clip_grad_norm_ over the member's own parameters (absent ones add zeros).
        norms = torch.stack([torch.linalg.vector_norm(g.reshape(len(g), -1), dim=1) for g in grads], 1)
        coef = (clip / (torch.linalg.vector_norm(norms, dim=1) + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.view(-1, *[1] * (g.dim() - 1)).to(g.dtype))

    def member_state(self, position: int, member: int) -> dict[str, Tensor]:
        return self.stacked.member_state(position, member)

    def keep(self, index: Tensor, optimizer: torch.optim.Optimizer) -> None:
        self.stacked.keep(index, optimizer)
        self.net.track(self.stacked.on)


def make_stack(models: Sequence[nn.Module], device: torch.device, penalty: float) -> MlpStack | UnionStack:
    """The stacked form of a group: :class:`MlpStack` where the members allow it, else :class:`UnionStack`."""
    reason = mlp_stack_unsupported(models)
    if reason is None:
        return MlpStack(models, device, penalty)
    _logger.debug("training %d models as one union network: %s", len(models), reason)
    return UnionStack(models, device, penalty)


AUTO_CPU_BATCH = 8
"""``batch_trials: auto`` on the CPU: beyond about 8 members a 2-core CPU's fused step gains little."""

AUTO_MAX_BATCH = 256


def auto_batch_size(backbone: Topology, config: TrainConfig, device: torch.device) -> int:
    """A group size for ``execution.batch_trials: auto``: :data:`AUTO_CPU_BATCH` on the CPU; on CUDA
    as many members as half the free memory holds (parameters, gradients and two optimizer states,
    plus three copies of every block's activations per batch, with concat inputs counted double),
    at most :data:`AUTO_MAX_BATCH`."""
    if device.type != "cuda":
        return AUTO_CPU_BATCH
    free, _ = torch.cuda.mem_get_info(device)
    params = sum(p.numel() for p in build_model(backbone).parameters())
    activations = sum(math.prod(shape) for shape in backbone.shapes.values()) * config.batch_size
    per_member = 4 * (4 * params + 3 * 2 * activations)
    return max(1, min(AUTO_MAX_BATCH, int(free * 0.5) // max(per_member, 1)))


def _member_groups(models: Sequence[nn.Module]) -> tuple[list[list[int]], dict[int, str]]:
    """Indices grouped by fusion key, and the reason each left-out member trains alone."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    alone: dict[int, str] = {}
    for i, model in enumerate(models):
        topology = model_topology(model)
        reason = unfusable_reason(topology)
        if reason is not None:
            alone[i] = reason
        else:
            groups.setdefault(fusion_key(topology), []).append(i)
    out = []
    for members in groups.values():
        if len(members) == 1:  # a group of one gains nothing from fusion
            alone[members[0]] = "no other member of the batch has the same blocks and shapes"
        else:
            out.append(members)
    return out, alone


def train_batched(
    models: Sequence[fx.GraphModule],
    data: TaskData,
    config: TrainConfig,
    *,
    seeds: Sequence[int],
    should_stop: Sequence[ShouldStop | None] | None = None,
    evaluate_test: bool = True,
    max_group: int | None = None,
) -> list[TrainResult]:
    """Trains ``models`` (built by :func:`skipsearch.nn.build_model`) in place, fused where possible.

    Each model ends as :func:`train_model` would leave it with ``seeds[i]`` and ``should_stop[i]``,
    and gets the same :class:`TrainResult` (up to floating-point summation order: in float64 to
    about 1e-13; the tests allow 1e-9). Models are grouped by :func:`fusion_key`; a member that
    cannot be fused trains alone (logged with the reason). ``max_group`` caps a group's size; a group that
    runs out of memory is split in two and retrained, with a log line. ``train_seconds`` of a fused
    member is its share of the group's wall time (the time until it left, over the group's size).
    A ``should_stop`` with an ``observe(epoch, value)`` method hears the value of every member of its
    group after each epoch before any member's ``should_stop`` decides (peer-aware early stopping).
    """
    if len(seeds) != len(models):
        raise ValueError("train_batched needs one seed per model")
    stops = list(should_stop) if should_stop is not None else [None] * len(models)
    results: list[TrainResult | None] = [None] * len(models)
    groups, alone = _member_groups(models)
    for i, reason in alone.items():
        if len(models) > 1:
            _logger.info("training %s alone: %s", model_topology(models[i]).name, reason)
        results[i] = train_model(
            models[i], data, config, seed=seeds[i], should_stop=stops[i], evaluate_test=evaluate_test
        )
    cap = max_group or max(len(models), 1)
    pending = [g[i : i + cap] for g in groups for i in range(0, len(g), cap)]
    while pending:
        members = pending.pop(0)
        try:
            group = _train_group(
                [models[i] for i in members],
                data,
                config,
                [seeds[i] for i in members],
                [stops[i] for i in members],
                evaluate_test,
            )
        except FusionError as exc:  # raised before any training: the models are untouched
            _logger.info("training %d models one at a time: %s", len(members), exc)
            group = [
                train_model(models[i], data, config, seed=seeds[i], should_stop=stops[i], evaluate_test=evaluate_test)
                for i in members
            ]
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if len(members) == 1 or not _out_of_memory(exc):
                raise
            half = len(members) // 2
            _logger.warning(
                "out of memory training %d models together; going on as groups of %d and %d",
                len(members),
                half,
                len(members) - half,
            )
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            pending[:0] = [members[:half], members[half:]]
            continue
        for i, result in zip(members, group, strict=True):
            results[i] = result
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def _out_of_memory(exc: BaseException) -> bool:
    """CUDA's out-of-memory error, or the CPU allocator's (a plain RuntimeError)."""
    text = str(exc)
    return isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in text or "out of memory" in text


def _train_group(
    models: Sequence[fx.GraphModule],
    data: TaskData,
    config: TrainConfig,
    seeds: Sequence[int],
    stops: Sequence[ShouldStop | None],
    evaluate_test: bool,
) -> list[TrainResult]:
    device = resolve_device(config.device)
    with cpu_threads(config.threads):
        return _GroupRun(models, data, config, device, seeds, stops).run(evaluate_test)


class _GroupRun:
    """One fused training run; members leave it as they stop or diverge."""

    def __init__(
        self,
        models: Sequence[fx.GraphModule],
        data: TaskData,
        config: TrainConfig,
        device: torch.device,
        seeds: Sequence[int],
        stops: Sequence[ShouldStop | None],
    ) -> None:
        self.models, self.config, self.device, self.stops = list(models), config, device, list(stops)
        self.data = reshape_for(data, model_topology(models[0]).input_shape)
        self.stack = make_stack(models, device, config.switch_penalty)
        self.alive = list(range(len(models)))  # original member index at each stack position
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.shared_order = len(set(seeds)) == 1
        params = list(self.stack.params.values())
        groups: list[dict[str, Any]] = [
            {"params": [p for p in params if p.dim() > 1], "weight_decay": config.weight_decay},
            {"params": [p for p in params if p.dim() == 1], "weight_decay": 0.0},
        ]
        groups = [g for g in groups if g["params"]]
        if config.optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                groups, lr=config.lr, momentum=config.momentum, foreach=True
            )
        elif config.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(groups, lr=config.lr, foreach=True)
        else:
            self.optimizer = torch.optim.Adam(groups, lr=config.lr, foreach=True)
        self.results: dict[int, TrainResult] = {}
        self.curves: dict[int, list[float]] = {i: [] for i in self.alive}
        self.train_loss: dict[int, float] = {}
        self.last: dict[int, tuple[float, float]] = {}
        self.start = time.perf_counter()

    # -- the loop -------------------------------------------------------------------------------
    def run(self, evaluate_test: bool) -> list[TrainResult]:
        data, config = self.data, self.config
        x_train, y_train = data.x_train.to(self.device), data.y_train.to(self.device)
        batches = _batch_bounds(len(x_train), config.batch_size)
        scheduler = _scheduler(self.optimizer, config, len(batches))
        hook = _EPOCH_HOOK.get()
        if hook is not None:
            hook(0, config.epochs, math.nan)
        for epoch in range(1, config.epochs + 1):
            orders = [torch.randperm(len(x_train), generator=self.generators[i]).to(self.device) for i in self.alive]
            loss_sum = torch.zeros(len(self.alive), device=self.device)
            for number, (begin, end) in enumerate(batches, start=1):
                index = orders[0][begin:end] if self.shared_order else torch.stack([o[begin:end] for o in orders])
                losses = self.stack.losses(x_train[index], y_train[index], per_member=not self.shared_order)
                finite = torch.isfinite(losses.detach())
                all_finite = bool(finite.all())  # one check per batch: the loop's only sync, as in train_model
                if not all_finite:
                    self._diverge(losses.detach(), finite, epoch, number)
                    if not bool(finite.any()):
                        self._drop(finite)
                        break
                    losses = torch.where(finite, losses, 0.0)  # the others take this batch's step
                self.optimizer.zero_grad(set_to_none=True)
                losses.sum().backward()
                self.stack.prepare_gradients(config.grad_clip)
                self.optimizer.step()
                if config.schedule == "cosine":
                    scheduler.step()
                loss_sum += losses.detach() * (end - begin)
                if not all_finite:
                    keep = finite.tolist()
                    orders = [o for o, k in zip(orders, keep, strict=True) if k]
                    loss_sum = loss_sum[finite]
                    self._drop(finite)
            if not self.alive:
                break
            if config.schedule == "step":
                scheduler.step()
            self._end_epoch(epoch, (loss_sum / batches[-1][1]).tolist(), evaluate_test, hook)
            if not self.alive:
                break
        self._leave(list(range(len(self.alive))), "ok", None, evaluate_test)
        return [self.results[i] for i in range(len(self.models))]

    def _end_epoch(self, epoch: int, train_losses: list[float], evaluate_test: bool, hook: Any) -> None:
        metrics = self._evaluate(list(range(len(self.alive))), self.data.x_val, self.data.y_val)
        leaving: dict[int, tuple[str, str]] = {}
        for position, member in enumerate(self.alive):
            self.train_loss[member] = train_losses[position]
            val_metric, val_loss = metrics[position]
            self.last[member] = (val_metric, val_loss)
            if not math.isfinite(val_loss):
                self.last[member] = (math.nan, math.nan)
                leaving[position] = ("diverged", f"validation loss became {val_loss} after epoch {epoch}")
                continue
            self.curves[member].append(val_metric)
            if (observe := getattr(self.stops[member], "observe", None)) is not None:
                observe(epoch, val_metric)  # every member's value is heard before any decides
        for position, member in enumerate(self.alive):
            stop = self.stops[member]
            if position not in leaving and stop is not None and stop(epoch, self.curves[member][-1]):
                leaving[position] = ("stopped", f"stopped early after epoch {epoch} of {self.config.epochs}")
        if hook is not None and self.alive:
            hook(epoch, self.config.epochs, metrics[0][0])
        for status in ("diverged", "stopped"):
            positions = [p for p, (s, _) in leaving.items() if s == status]
            if positions:
                self._leave(positions, status, [leaving[p][1] for p in positions], evaluate_test)
        if leaving:
            self._drop(torch.tensor([p not in leaving for p in range(len(self.alive))]))

    def _diverge(self, losses: Tensor, finite: Tensor, epoch: int, number: int) -> None:
        for position in torch.nonzero(~finite).flatten().tolist():
            member = self.alive[position]
            value = float(losses[position])
            self.train_loss[member] = value
            self.last[member] = (math.nan, math.nan)
            reason = f"loss became {value} at epoch {epoch}, batch {number}"
            self._leave([position], "diverged", [reason], evaluate_test=False)

    def _leave(self, positions: list[int], status: str, reasons: list[str] | None, evaluate_test: bool) -> None:
        """Records the results of the members at ``positions`` and loads their final weights."""
        if not positions:
            return
        tests: list[float | None] = [None] * len(positions)
        if evaluate_test and status != "diverged":
            tests = [m for m, _ in self._evaluate(positions, self.data.x_test, self.data.y_test)]
        share = (time.perf_counter() - self.start) / len(self.models)
        for n, position in enumerate(positions):
            member = self.alive[position]
            val_metric, val_loss = self.last.get(member, (math.nan, math.nan))
            curve = self.curves[member]
            self.results[member] = TrainResult(
                status=status,
                reason=reasons[n] if reasons else None,
                val_metric=val_metric,
                val_loss=val_loss,
                test_metric=tests[n],
                curve=curve,
                epochs_run=len(curve),
                train_seconds=share,
                train_loss=self.train_loss.get(member, math.nan),
            )
            model = self.models[member].to(self.device)
            model.load_state_dict(self.stack.member_state(position, member))

    def _drop(self, keep: Tensor) -> None:
        index = torch.nonzero(keep.to("cpu")).flatten()
        self.alive = [self.alive[p] for p in index.tolist()]
        self.stack.keep(index.to(self.device), self.optimizer)

    @torch.no_grad()
    def _evaluate(self, positions: list[int], x: Tensor, y: Tensor) -> list[tuple[float, float]]:
        """``(metric, loss)`` of the members at ``positions``, computed as :func:`evaluate` does."""
        x, y = x.to(self.device), y.to(self.device)
        outputs = torch.cat(
            [self.stack.outputs(positions, x[s : s + EVAL_CHUNK]) for s in range(0, len(x), EVAL_CHUNK)], 1
        )
        scale = self.data.target_scale
        return [evaluate(_Replay(out), x, y, self.data.metric, EVAL_CHUNK, scale) for out in outputs]


class _Replay(nn.Module):
    """Gives back precomputed outputs, chunk by chunk, so :func:`evaluate` scores a fused member."""

    def __init__(self, outputs: Tensor) -> None:
        super().__init__()
        self.outputs = outputs
        self.cursor = 0

    def forward(self, x: Tensor) -> Tensor:
        out = self.outputs[self.cursor : self.cursor + len(x)]
        self.cursor += len(x)
        return out

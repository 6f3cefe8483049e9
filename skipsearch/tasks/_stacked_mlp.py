"""K members of one MLP backbone as stacked tensors, each computing exactly its own network.

The general fusion (:class:`skipsearch.tasks._batched.UnionStack`) runs one union network under
``vmap``: a member pays for every edge any member has, and a concat edge widens its destination's
product (and optimizer step) for all. On the small MLPs searched on a CPU that union costs more than
fusion saves. :class:`MlpStack` removes it for MLP backbones (linear blocks and a linear head):

- A block's weight is split by input source. The part that reads a source every member concatenates
  is stacked over all members and runs as one ``baddbmm``; a part only some members have is stacked
  over those members, and runs on them alone (``index_select``, ``bmm``, ``index_add``).
- An additive edge is one ``addcmul`` with a per-member coefficient: 1 (``add``), the member's
  learned scale (``scalar``), its ``sigmoid(logit)`` (``switch``), or 0 where the member lacks it.
- Operations are batched by hand (no ``vmap``); the loss alone is vmapped, so it is the very
  function a lone run uses.

Each parameter is the stack of the slices of the members in its ``rows`` (their positions in the
group), so the optimizer steps each member's own numbers and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import Tensor, nn
from torch.func import vmap

from skipsearch.nn import (
    ACTIVATION_FUNCTIONS,
    LinearAct,
    ProjectionShortcut,
    ScalarSkip,
    SwitchSkip,
    model_block,
    model_topology,
    skip_name,
)
from skipsearch.tasks._metrics import task_loss
from skipsearch.topology import SkipEdge, Topology

_COEFFICIENT_ATTR = {"scalar": "scale", "switch": "logit"}
"""Additive kinds with a learned per-edge number, and the attribute that holds it."""


@dataclass(frozen=True)
class _Input:
    source: str
    weight: str
    """The stacked weight slice (rows x out x width) that reads ``source``."""


@dataclass(frozen=True)
class _Edge:
    source: str
    kind: str
    param: str | None
    """The stacked scale or logit of a ``scalar`` or ``switch`` edge."""
    mask: str
    """The 0/1 per-member mask of the members that have the edge (an ``add`` edge's coefficient)."""
    projection: str | None = None
    """Prefix of the stacked projection shortcut (linear map and BatchNorm) of a ``project`` edge."""


@dataclass(frozen=True)
class _Node:
    id: str
    inputs: tuple[_Input, ...]
    bias: str | None
    act: str
    edges: tuple[_Edge, ...]
    post: str


def _linear(model: nn.Module, node: str) -> tuple[str, nn.Linear, str] | None:
    """``(state-dict prefix, linear module, activation)`` of a block that is one linear layer."""
    block = model_block(model, node)
    if isinstance(block, LinearAct):
        return f"blocks.{node}.", block, block.act
    if isinstance(block, nn.Sequential) and len(block) == 1 and type(block[0]) is nn.Linear:
        return f"blocks.{node}.0.", block[0], "none"
    return None


def _projection(module: nn.Module | None) -> tuple[str, ProjectionShortcut] | None:
    """A skip module's projection shortcut and its state-dict prefix under the module."""
    if isinstance(module, ProjectionShortcut):
        return "", module
    align = getattr(module, "align", None)
    return ("align.", align) if isinstance(align, ProjectionShortcut) else None


_STATISTICS = ("1.running_mean", "1.running_var", "1.num_batches_tracked")
"""A projection shortcut's BatchNorm buffers (state-dict fields)."""

T = TypeVar("T")


def _required(found: T | None) -> T:
    assert found is not None  # mlp_stack_unsupported checked it
    return found


def _skip_module(model: nn.Module, edge: SkipEdge) -> nn.Module | None:
    try:
        return model.get_submodule(f"skips.{skip_name(edge)}")
    except AttributeError:  # a plain identity add has no module
        return None


_STACKED_KINDS: dict[str, type[nn.Module] | None] = {"add": None, "scalar": ScalarSkip, "switch": SwitchSkip}
"""Additive kinds with a stacked form, and the module class wrapping their alignment (none for ``add``)."""


def _stackable(module: nn.Module | None, edge: SkipEdge) -> bool:
    """Whether an additive edge's module has a stacked form: an identity or projection alignment,
    bare (``add``) or in a scalar or switch module."""
    if edge.kind not in _STACKED_KINDS:
        return False
    wrapper = _STACKED_KINDS[edge.kind]
    if wrapper is not None and not isinstance(module, wrapper):
        return False
    align = module if wrapper is None else getattr(module, "align", None)
    if edge.align == "identity":
        return align is None or isinstance(align, nn.Identity)
    # A BatchNorm without momentum averages over num_batches_tracked, which F.batch_norm does not.
    return edge.align == "project" and isinstance(align, ProjectionShortcut) and align[1].momentum is not None


def mlp_stack_unsupported(models: Sequence[nn.Module]) -> str | None:
    """Why ``models`` cannot train as an :class:`MlpStack` (``None`` when they can)."""
    for model in models:
        topology = model_topology(model)
        if any(len(shape) != 1 for shape in topology.shapes.values()):
            return "not every node is a vector"
        shapes = topology.shapes
        for node in topology.nodes[1:]:
            found = _linear(model, node.id)
            if found is None:
                return f"block {node.id} is not a single linear layer"
            width = sum(shapes[s][0] for s in topology.input_sources(node.id))
            if tuple(found[1].weight.shape) != (shapes[node.id][0], width):
                return f"block {node.id}: its weight's shape does not match the topology's"
        for edge in topology.active_skips:
            if not edge.additive:
                continue
            if not _stackable(_skip_module(model, edge), edge):
                return f"skip edge {edge.src}->{edge.dst} ({edge.kind}, {edge.align}) has no stacked form"
    return None


def keep_rows(params: dict[str, Tensor], rows: Tensor | dict[str, Tensor], optimizer: torch.optim.Optimizer) -> None:
    """Replaces each stacked parameter by its ``rows`` (one index for all, or one per name), in
    ``params`` and in ``optimizer``, whose state for the kept rows goes along."""
    replaced: dict[int, Tensor] = {}
    for name, param in list(params.items()):
        at = rows if isinstance(rows, Tensor) else rows[name]
        kept = param.detach()[at].clone().requires_grad_(param.requires_grad)
        replaced[id(param)] = kept
        state = optimizer.state.pop(param, None)
        if state is not None:
            optimizer.state[kept] = {
                k: v[at].clone() if isinstance(v, Tensor) and v.dim() > 0 else v for k, v in state.items()
            }
        params[name] = kept
    for group in optimizer.param_groups:
        group["params"] = [replaced[id(p)] for p in group["params"]]


class MlpStack:
    """The stacked members of a group of MLPs (see the module docstring)."""

    def __init__(self, models: Sequence[nn.Module], device: torch.device, penalty: float) -> None:
        topologies = [model_topology(m) for m in models]
        self.size = len(models)
        self.dtype = next(models[0].parameters()).dtype
        self.device = device
        self.penalty = penalty
        self.params: dict[str, Tensor] = {}
        self.buffers: dict[str, Tensor] = {}
        """Projection shortcuts' BatchNorm statistics."""
        self.rows: dict[str, list[int]] = {}
        self._row_index: dict[str, Tensor] = {}
        self.training = True
        self.batch_norm: tuple[float, float] = (0.1, 1e-5)
        """The projections' BatchNorm momentum and eps (the same module class in every member)."""
        self.masks: dict[str, Tensor] = {}
        self.layouts: list[dict[str, list[str]]] = [{} for _ in models]
        """Per member: its state-dict key -> the stacked parameters its value is cut from (weights
        are the concatenation of their source slices, in the member's own order)."""
        first = topologies[0]
        self.input_id, self.output_id = first.nodes[0].id, first.nodes[-1].id
        self.nodes = [self._node(models, topologies, node.id) for node in first.nodes[1:]]
        self.switches = [e for n in self.nodes for e in n.edges if e.kind == "switch"]

    # -- building -------------------------------------------------------------------------------
    def _add(self, name: str, values: list[Tensor], rows: list[int], buffer: bool = False) -> None:
        stacked = torch.stack([v.detach() for v in values]).to(self.device)
        if buffer:
            self.buffers[name] = stacked.clone()
        else:
            self.params[name] = stacked.requires_grad_(True)
        self.rows[name] = rows

    def _node(self, models: Sequence[nn.Module], topologies: list[Topology], node_id: str) -> _Node:
        first = topologies[0]
        index, shapes = first.index, first.shapes
        own = [t.input_sources(node_id) for t in topologies]
        linears = [_required(_linear(m, node_id)) for m in models]
        inputs = []
        for source in sorted({s for sources in own for s in sources}, key=index.__getitem__):
            rows = [k for k, sources in enumerate(own) if source in sources]
            slices = []
            for k in rows:
                at = sum(shapes[s][0] for s in own[k][: own[k].index(source)])
                slices.append(linears[k][1].weight[:, at : at + shapes[source][0]])
            inputs.append(_Input(source, f"{node_id}<{source}.weight"))
            self._add(inputs[-1].weight, slices, rows)
        # Inputs every member reads first: the product of the first of them starts from the bias.
        inputs.sort(key=lambda i: len(self.rows[i.weight]) < self.size)
        bias = None
        if linears[0][1].bias is not None:
            bias = f"{node_id}.bias"
            self._add(bias, [linear.bias for _, linear, _ in linears], list(range(self.size)))
        for k, (prefix, _, _) in enumerate(linears):
            self.layouts[k][f"{prefix}weight"] = [f"{node_id}<{s}.weight" for s in own[k]]
            if bias is not None:
                self.layouts[k][f"{prefix}bias"] = [bias]
        post = str(topologies[0].nodes[index[node_id]].params.get("post", "none"))
        return _Node(node_id, tuple(inputs), bias, linears[0][2], self._edges(models, topologies, node_id), post)

    def _edges(self, models: Sequence[nn.Module], topologies: list[Topology], node_id: str) -> tuple[_Edge, ...]:
        index = topologies[0].index
        held: dict[tuple[str, str, str], list[int]] = {}
        for k, topology in enumerate(topologies):
            for edge in topology.incoming(node_id):
                if edge.additive:
                    held.setdefault((edge.src, edge.kind, edge.align), []).append(k)
        edges = []
        for (source, kind, align), rows in sorted(held.items(), key=lambda item: (index[item[0][0]], item[0][1:])):
            name = f"{node_id}<{source}.{kind}.{align}"
            mask = torch.zeros(self.size, device=self.device, dtype=self.dtype)
            self.masks[name] = mask.index_fill_(0, torch.tensor(rows, device=self.device), 1.0)
            self.rows[name] = rows
            key = f"skips.{source}__{node_id}."
            param = None
            attr = _COEFFICIENT_ATTR.get(kind)
            if attr is not None:
                param = f"{name}.{attr}"
                self._add(param, [models[k].get_parameter(key + attr) for k in rows], rows)
                for k in rows:
                    self.layouts[k][key + attr] = [param]
            projection = f"{name}.project" if align == "project" else None
            if projection is not None:
                self._add_projection(projection, [models[k].get_submodule(key[:-1]) for k in rows], rows, key)
            edges.append(_Edge(source, kind, param, name, projection))
        return tuple(edges)

    def _add_projection(self, prefix: str, modules: list[nn.Module], rows: list[int], key: str) -> None:
        found = [_required(_projection(m)) for m in modules]
        norm = found[0][1][1]
        assert isinstance(norm, nn.BatchNorm1d) and norm.momentum is not None  # _stackable checked it
        self.batch_norm = (norm.momentum, norm.eps)
        states = [projection.state_dict() for _, projection in found]
        for field in states[0]:
            # "0.weight" is the linear map; "1.*" the BatchNorm's weight and bias, then its statistics
            self._add(f"{prefix}.{field}", [state[field] for state in states], rows, buffer=field in _STATISTICS)
            for k, (inner, _) in zip(rows, found, strict=True):
                self.layouts[k][f"{key}{inner}{field}"] = [f"{prefix}.{field}"]

    # -- running --------------------------------------------------------------------------------
    def _rows(self, name: str) -> Tensor:
        """``rows[name]`` as an index tensor on the device, made once per group composition."""
        index = self._row_index.get(name)
        if index is None:
            index = self._row_index[name] = torch.tensor(self.rows[name], device=self.device, dtype=torch.long)
        return index

    def forward(self, x: Tensor) -> Tensor:
        """Every member's output: ``x`` is one batch for all (N x F) or one per member (K x N x F)."""
        outputs = {self.input_id: x if x.dim() == 3 else x.expand(self.size, *x.shape)}
        for node in self.nodes:
            out = None
            for inp in node.inputs:
                source, weight = outputs[inp.source], self.params[inp.weight].transpose(1, 2)
                if len(self.rows[inp.weight]) == self.size:
                    start = out if out is not None else (self.params[node.bias].unsqueeze(1) if node.bias else None)
                    out = torch.bmm(source, weight) if start is None else torch.baddbmm(start, source, weight)
                    continue
                if not self.rows[inp.weight]:  # every member that read it has left
                    continue
                rows = self._rows(inp.weight)
                if out is None:  # no input every member reads: start from the bias, or zeros
                    shape = (self.size, source.shape[1], weight.shape[2])
                    bias = self.params[node.bias].unsqueeze(1) if node.bias else None
                    out = bias.expand(shape) if bias is not None else source.new_zeros(shape)
                out = out.index_add(0, rows, torch.bmm(source.index_select(0, rows), weight))
            assert out is not None
            if node.act != "none":
                out = ACTIVATION_FUNCTIONS[node.act](out)
            for edge in node.edges:
                out = self._add_edge(out, edge, outputs[edge.source])
            if node.post != "none":
                out = ACTIVATION_FUNCTIONS[node.post](out)
            outputs[node.id] = out
        return outputs[self.output_id]

    def _add_edge(self, out: Tensor, edge: _Edge, term: Tensor) -> Tensor:
        """``out`` plus the edge's term for the members that have it."""
        everyone = len(self.rows[edge.mask]) == self.size
        if edge.projection is None:  # identity: one op over the whole stack
            if edge.param is None and everyone:
                return out + term
            return torch.addcmul(out, self._coefficients(edge).view(-1, 1, 1), term)
        if not self.rows[edge.mask]:
            return out
        rows = self._rows(edge.mask)
        term = self._project(edge.projection, term if everyone else term.index_select(0, rows))
        if edge.param is not None:
            value = self.params[edge.param]
            term = (torch.sigmoid(value) if edge.kind == "switch" else value).view(-1, 1, 1) * term
        return out + term if everyone else out.index_add(0, rows, term)

    def _project(self, prefix: str, x: Tensor) -> Tensor:
        """A projection shortcut per member: its linear map, then its BatchNorm (members' channels side by side)."""
        y = torch.bmm(x, self.params[f"{prefix}.0.weight"].transpose(1, 2))
        members, batch, channels = y.shape
        momentum, eps = self.batch_norm
        normed = nn.functional.batch_norm(
            y.transpose(0, 1).reshape(batch, members * channels),
            self.buffers[f"{prefix}.1.running_mean"].view(-1),
            self.buffers[f"{prefix}.1.running_var"].view(-1),
            self.params[f"{prefix}.1.weight"].reshape(-1),
            self.params[f"{prefix}.1.bias"].reshape(-1),
            self.training,
            momentum,
            eps,
        )
        if self.training:
            self.buffers[f"{prefix}.1.num_batches_tracked"].add_(1)
        return normed.reshape(batch, members, channels).transpose(0, 1)

    def _coefficients(self, edge: _Edge) -> Tensor:
        """Per member: what multiplies the edge's source (0 for a member without the edge)."""
        mask = self.masks[edge.mask]
        if edge.param is None:
            return mask
        value = self.params[edge.param]
        if edge.kind == "switch":
            value = torch.sigmoid(value)
        return mask.index_copy(0, self._rows(edge.mask), value.to(mask.dtype))

    def losses(self, x: Tensor, y: Tensor, per_member: bool) -> Tensor:
        """Each member's training loss: ``x`` and ``y`` one batch for all, or one per member (K first)."""
        self.training = True
        loss = vmap(task_loss, in_dims=(0, 0 if per_member else None))(self.forward(x), y)
        if self.penalty and self.switches:
            gates = torch.zeros_like(loss)
            for edge in self.switches:
                assert edge.param is not None
                gates = gates.index_add(0, self._rows(edge.mask), torch.sigmoid(self.params[edge.param]))
            loss = loss + self.penalty * gates
        return loss

    @torch.no_grad()
    def outputs(self, positions: list[int], x: Tensor) -> Tensor:
        """The outputs of the members at ``positions`` for one batch ``x`` of all."""
        self.training = False
        return self.forward(x)[torch.tensor(positions, device=self.device)]

    def prepare_gradients(self, clip: float | None) -> None:
        """Scales each member's gradients as ``clip_grad_norm_`` over its own parameters would."""
        if clip is None:
            return
        squares = torch.zeros(self.size, device=self.device)
        grads = [(name, p.grad) for name, p in self.params.items() if p.grad is not None and len(p)]
        for name, grad in grads:
            squares.index_add_(0, self._rows(name), grad.reshape(len(grad), -1).square().sum(1).to(squares.dtype))
        coef = (clip / (squares.sqrt() + 1e-6)).clamp(max=1.0)
        for name, grad in grads:
            grad.mul_(coef[self._rows(name)].view(-1, *[1] * (grad.dim() - 1)).to(grad.dtype))

    # -- members --------------------------------------------------------------------------------
    def _stacked(self, name: str) -> Tensor:
        return self.params[name] if name in self.params else self.buffers[name]

    def member_state(self, position: int, member: int) -> dict[str, Tensor]:
        """The state dict of original member ``member``, which sits at ``position`` of the stacks now."""
        state = {}
        for key, names in self.layouts[member].items():
            parts = [self._stacked(n)[self.rows[n].index(position)].detach() for n in names]
            state[key] = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
        return state

    def keep(self, index: Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Keeps the stack positions ``index`` (members that leave are dropped), optimizer state included."""
        kept = index.tolist()
        new_position = {old: new for new, old in enumerate(kept)}
        slots: dict[str, Tensor] = {}
        for name, rows in list(self.rows.items()):
            at = [i for i, row in enumerate(rows) if row in new_position]
            self.rows[name] = [new_position[rows[i]] for i in at]
            slots[name] = torch.tensor(at, device=self.device, dtype=torch.long)
            if name in self.masks:
                self.masks[name] = self.masks[name][index]
            if name in self.buffers:
                self.buffers[name] = self.buffers[name][slots[name]]
        keep_rows(self.params, slots, optimizer)
        self.size = len(kept)
        self._row_index.clear()

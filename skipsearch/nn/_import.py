"""Importing a plain PyTorch model as a :class:`Topology`, and moving its weights into the built model.

The model is traced with ``torch.fx.symbolic_trace`` (standard layers stay leaves, the user's own
modules are traced through), so what counts is what ``forward`` computes, whatever the module
nesting or the mix of modules and functionals (``F.relu``, ``torch.flatten``, ``x.view(n, -1)``,
``out += shortcut``). ``ShapeProp`` runs one example batch through the trace to know every shape.

The traced graph must be a chain of supported layers with residual additions: at each ``a + b``
one operand is the *body* (the chain continues through it) and the other the *shortcut*: the very
value the body started from (identity), that value through a 1x1 convolution and a BatchNorm (or,
for vectors, a bias-free linear and a BatchNorm: :class:`~skipsearch.nn.ProjectionShortcut`), or
through strided slicing and zero channels padded evenly (ResNet option A:
:class:`~skipsearch.nn.ZeroPadShortcut`). The chain is then grouped into blocks: a convolution or
linear layer takes the BatchNorm and activation after it (a BatchNorm and activation just before a
convolution make it pre-activated), the activation after a sum becomes the block's ``post``, a
torchvision-style basic residual block becomes one ``basic`` block, and a last bias-carrying linear
(with the flatten or global average pool before it) becomes the ``head``.

Weights are paired block by block, in the order the block builders lay out their layers, and the
pairing (built state key -> source state key) is kept in ``topology.meta["source_state"]``, so
:func:`transfer_weights` can later load the source model's (trained) state into any model built
from the imported topology.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

from skipsearch._objects import call_user, load_object
from skipsearch.errors import UserError
from skipsearch.nn._compile import build_model, model_topology, skip_name
from skipsearch.nn._state import training_mode
from skipsearch.topology import OPS, Topology, TopologyError

F = nn.functional

SOURCE_STATE = "source_state"
"""Key of ``topology.meta`` that maps each built state key to the imported model's state key."""

_ACTIVATION_LAYERS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu",
    nn.Tanh: "tanh",
    nn.GELU: "gelu",
    nn.SiLU: "silu",
    nn.Sigmoid: "sigmoid",
}
_ACTIVATION_CALLS: dict[Any, str] = {
    F.relu: "relu",
    torch.relu: "relu",
    torch.relu_: "relu",
    F.relu_: "relu",
    torch.tanh: "tanh",
    F.tanh: "tanh",
    torch.sigmoid: "sigmoid",
    F.sigmoid: "sigmoid",
    F.gelu: "gelu",
    F.silu: "silu",
}
_ACTIVATION_METHODS = {"relu": "relu", "relu_": "relu", "tanh": "tanh", "tanh_": "tanh", "sigmoid": "sigmoid"}
_POOL_CALLS: dict[Any, str] = {F.max_pool1d: "max", F.max_pool2d: "max", F.avg_pool1d: "avg", F.avg_pool2d: "avg"}
_GLOBAL_POOL_CALLS = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d)
_ADD_CALLS = (operator.add, operator.iadd, torch.add)
_PASS_METHODS = ("contiguous",)


class ModelImportError(UserError):
    """The model has a layer or a connection that a topology cannot express; the message names it."""


@dataclass
class _Layer:
    """One tensor-valued step of the traced forward pass."""

    node: fx.Node
    kind: str
    """input, linear, conv, bn, ln, act, pool, flatten, dropout, add, or (in shortcuts only)
    subsample (``x[:, :, ::s, ::s]``) and chpad (zero channels)."""
    label: str
    """What the user calls it: the module path and type, or the call."""
    attrs: dict[str, Any] = field(default_factory=dict)
    module: str | None = None
    """Qualified name of the module whose weights the layer uses."""
    path: str = ""
    """The module's qualified name, or the fx node's name for a call: a block's id comes from it."""
    shape: tuple[int, ...] = ()
    """Output shape without the batch dimension."""


@dataclass
class _Block:
    """A topology node under construction, with the source modules whose weights it takes."""

    id: str
    op: str
    params: dict[str, Any]
    modules: list[str]
    last: _Layer
    global_pool: bool = False


def import_model(
    model: nn.Module | str,
    input_shape: Sequence[int],
    *,
    name: str | None = None,
    args: Mapping[str, Any] | None = None,
) -> Topology:
    """The topology of ``model``: its built model has the same parameters and computes the same.

    ``model`` is a module, or a ``"package.module:attribute"`` reference to a module, a module class
    or a function returning one (called with ``args``). ``input_shape`` excludes the batch
    dimension: ``(features,)``, ``(channels, length)`` or ``(channels, height, width)``. A layer or
    connection that has no topology equivalent raises :class:`ModelImportError` naming it.
    Use :func:`transfer_weights` to load the model's weights into ``build_model(topology)``.
    """
    if isinstance(model, str):
        reference = model
        model = _instantiate(model, args or {})
        name = name or reference.rpartition(":")[2].rpartition(".")[2]
    shape = _input_shape(input_shape)
    traced = _trace(model, shape)
    layers = _classify(traced)
    chain = _main_chain(traced, layers)
    blocks, skips = _group(chain, shape)
    _collapse_basic_blocks(blocks, skips)
    _make_head(blocks, skips)
    unsized = next((b for b in blocks if b.op == "pool" and b.params["size"] is None), None)
    if unsized is not None:
        raise ModelImportError(
            f"{unsized.last.label}: global pooling of a non-square map, not before the last linear layer"
        )
    nodes = [{"id": b.id, "op": b.op, **b.params} for b in blocks]
    edges = [{"src": s["src"], "dst": s["dst"], "kind": "add", "align": s["align"]} for s in skips]
    try:
        topology = Topology.create(nodes, edges, name=name or type(model).__name__)
    except TopologyError as exc:
        raise ModelImportError(f"the imported network is not a valid topology: {exc}") from None
    _check_shapes(topology, blocks)
    mapping = _state_mapping(topology, blocks, skips, model)
    return Topology.create(topology.nodes, topology.skips, name=topology.name, meta={SOURCE_STATE: mapping})


def transfer_weights(source: nn.Module | Mapping[str, torch.Tensor], model: nn.Module, *, strict: bool = True) -> None:
    """Loads the imported model's weights (a module or its state dict) into ``model``.

    ``model`` is built from a topology :func:`import_model` returned (or one derived from it with
    other skips: with ``strict=False`` the skip modules that the source does not have keep their
    initial weights). Raises ``ValueError`` naming the first entry that is missing or differs in shape.
    """
    mapping = model_topology(model).meta.get(SOURCE_STATE)
    if not isinstance(mapping, dict):
        raise ValueError("the model's topology was not made by import_model (no source_state in its meta)")
    source_state = source.state_dict() if isinstance(source, nn.Module) else source
    target = model.state_dict()
    loaded = {}
    for built_key, source_key in mapping.items():
        if built_key not in target:
            continue  # a skip the search removed
        if source_key not in source_state:
            raise ValueError(f"the source has no {source_key!r} (for {built_key!r})")
        value = source_state[source_key]
        if value.shape != target[built_key].shape:
            raise ValueError(
                f"{source_key!r} has shape {tuple(value.shape)}, {built_key!r} {tuple(target[built_key].shape)}"
            )
        loaded[built_key] = value
    missing = [k for k in target if k not in loaded]
    if strict and missing:
        raise ValueError(f"the source has no weights for {missing[0]!r}")
    model.load_state_dict(loaded, strict=False)


# -- tracing -------------------------------------------------------------------------------------


def _instantiate(reference: str, args: Mapping[str, Any]) -> nn.Module:
    where = f"model {reference!r}"
    value = load_object(reference, where=where)
    if not isinstance(value, nn.Module):
        value = call_user(value, where=where, **args)
    if not isinstance(value, nn.Module):
        raise UserError(f"{where}: gave a {type(value).__name__}, not a torch.nn.Module")
    return value


def _input_shape(shape: Sequence[int]) -> tuple[int, ...]:
    dims = tuple(shape)
    if not 1 <= len(dims) <= 3 or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in dims):
        raise UserError(f"input shape {dims}: give 1 to 3 positive sizes: features, C,L or C,H,W")
    return dims


def _trace(model: nn.Module, shape: tuple[int, ...]) -> fx.GraphModule:
    try:
        traced = fx.symbolic_trace(model)
    except Exception as exc:  # fx raises TraceError, TypeError, ... on dynamic control flow
        raise ModelImportError(
            f"cannot trace {type(model).__name__} with torch.fx: {' '.join(str(exc).split())}"
        ) from None
    example = torch.zeros(2, *shape)
    with training_mode(traced, False), torch.no_grad():
        try:
            traced(example)
        except Exception as exc:
            message = " ".join(str(exc).split())
            raise ModelImportError(f"{type(model).__name__} cannot take inputs of shape {shape}: {message}") from None
        ShapeProp(traced).propagate(example)
    return traced


def _shape_of(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape)[1:] if isinstance(meta, TensorMetadata) else None


def _classify(traced: fx.GraphModule) -> dict[fx.Node, _Layer]:
    """Every tensor-valued node as a layer; pass-through nodes point at their input's layer."""
    modules = dict(traced.named_modules())
    layers: dict[fx.Node, _Layer] = {}
    for node in traced.graph.nodes:
        shape = _shape_of(node)
        if node.op == "output" or (shape is None and node.op != "placeholder"):
            continue  # sizes, getitem on sizes, ...
        if node.op == "placeholder":
            layer: _Layer | fx.Node | None = _Layer(node, "input", "input")
        elif node.op == "call_module":
            layer = _module_layer(node, modules[str(node.target)])
        elif node.op == "call_function":
            layer = _function_layer(node)
        elif node.op == "call_method":
            layer = _method_layer(node)
        else:
            raise ModelImportError(f"{node.name} ({node.op} {node.target}): reads a tensor attribute directly")
        if isinstance(layer, fx.Node):  # passes its input through
            layers[node] = layers[layer]
            continue
        assert layer is not None
        layer.shape = shape or ()
        layer.path = str(node.target) if node.op == "call_module" else node.name
        layers[node] = layer
    return layers


def _tensor_args(node: fx.Node) -> list[fx.Node]:
    return [a for a in node.args if isinstance(a, fx.Node) and _shape_of(a) is not None]


def _module_layer(node: fx.Node, module: nn.Module) -> _Layer | fx.Node:
    path = str(node.target)
    label = f"layer {path!r} ({type(module).__name__})"

    def unsupported(why: str) -> ModelImportError:
        return ModelImportError(f"{label}: {why}")

    m: Any = module
    if isinstance(module, nn.Identity):
        return node.args[0]  # type: ignore[return-value]
    if type(module) is nn.Linear:
        return _Layer(node, "linear", label, {"features": m.out_features, "bias": m.bias is not None}, path)
    if type(module) in (nn.Conv1d, nn.Conv2d):
        return _Layer(node, "conv", label, _conv_attrs(m, unsupported), path)
    if type(module) in (nn.BatchNorm1d, nn.BatchNorm2d):
        if not (m.affine and m.track_running_stats and m.eps == 1e-5 and m.momentum == 0.1):
            raise unsupported("only BatchNorm with affine weights, running statistics, eps 1e-5 and momentum 0.1")
        return _Layer(node, "bn", label, {"features": m.num_features}, path)
    if type(module) is nn.LayerNorm:
        if not (m.elementwise_affine and m.bias is not None and m.eps == 1e-5 and len(m.normalized_shape) == 1):
            raise unsupported("only LayerNorm over the features, with weight and bias, eps 1e-5")
        return _Layer(node, "ln", label, {"features": m.normalized_shape[0]}, path)
    if type(module) in _ACTIVATION_LAYERS:
        if isinstance(module, nn.GELU) and module.approximate != "none":
            raise unsupported("only the exact GELU (approximate='none')")
        return _Layer(node, "act", label, {"fn": _ACTIVATION_LAYERS[type(module)]})
    if type(module) in (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d):
        return _Layer(node, "pool", label, _pool_attrs(m, unsupported))
    if type(module) in (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d):
        if set(_ints(m.output_size)) != {1}:
            raise unsupported("only global average pooling (output size 1)")
        return _Layer(node, "pool", label, {"mode": "avg", "global": True})
    if type(module) is nn.Flatten:
        if m.start_dim != 1 or m.end_dim != -1:
            raise unsupported("only Flatten(start_dim=1, end_dim=-1)")
        return _Layer(node, "flatten", label)
    if type(module) is nn.Dropout:
        return _Layer(node, "dropout", label, {"p": float(m.p)})
    raise unsupported("not a supported layer")


def _ints(value: Any) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value,)


def _uniform(value: Any, what: str, unsupported: Any) -> int:
    values = set(_ints(value))
    if len(values) != 1:
        raise unsupported(f"{what} {value} differs between dimensions")
    return int(values.pop())


def _conv_attrs(conv: nn.Conv1d | nn.Conv2d, unsupported: Any) -> dict[str, Any]:
    kernel = _uniform(conv.kernel_size, "kernel", unsupported)
    stride = _uniform(conv.stride, "stride", unsupported)
    if conv.groups != 1 or set(_ints(conv.dilation)) != {1} or conv.padding_mode != "zeros":
        raise unsupported("only convolutions without groups or dilation, zero-padded")
    padding = conv.padding
    same = padding == "same" and kernel % 2 == 1
    if not same and (padding == "valid" or isinstance(padding, str) or set(_ints(padding)) != {kernel // 2}):
        raise unsupported(f"padding {padding!r}: skipsearch convolutions pad kernel // 2 = {kernel // 2} on each side")
    return {"channels": conv.out_channels, "kernel": kernel, "stride": stride, "bias": conv.bias is not None}


def _pool_attrs(pool: Any, unsupported: Any) -> dict[str, Any]:
    kernel = _uniform(pool.kernel_size, "kernel", unsupported)
    stride = _uniform(pool.stride if pool.stride is not None else kernel, "stride", unsupported)
    padding = _uniform(pool.padding, "padding", unsupported)
    dilation = _uniform(getattr(pool, "dilation", 1), "dilation", unsupported)
    if stride != kernel or padding != 0 or dilation != 1 or pool.ceil_mode:
        raise unsupported("only pooling with stride = kernel size, no padding, dilation or ceil_mode")
    if getattr(pool, "divisor_override", None) is not None or getattr(pool, "return_indices", False):
        raise unsupported("only plain pooling (no divisor_override, no return_indices)")
    return {"mode": "max" if "Max" in type(pool).__name__ else "avg", "size": kernel}


def _call_name(target: Any) -> str:
    if target is operator.getitem:
        return "tensor indexing x[...]"
    module = getattr(target, "__module__", None) or "torch"
    return f"{module.lstrip('_')}.{getattr(target, '__name__', str(target))}"


def _argument(node: fx.Node, index: int, name: str, default: Any) -> Any:
    return node.args[index] if len(node.args) > index else node.kwargs.get(name, default)


def _where(node: fx.Node) -> str:
    """`` in 'layer2.0.shortcut'``: the module whose forward made a call, if not the model's own."""
    stack = node.meta.get("nn_module_stack") or {}
    paths = [str(v[0]) for v in stack.values() if isinstance(v, tuple) and v and v[0]]
    return f" in {paths[-1]!r}" if paths else ""


def _function_layer(node: fx.Node) -> _Layer | fx.Node:
    target = node.target
    label = f"{node.name}{_where(node)} ({_call_name(target)})"
    tensors = _tensor_args(node)
    if target in _ACTIVATION_CALLS:
        if target is F.gelu and node.kwargs.get("approximate", "none") != "none":
            raise ModelImportError(f"{label}: only the exact GELU (approximate='none')")
        return _Layer(node, "act", label, {"fn": _ACTIVATION_CALLS[target]})
    if target in _ADD_CALLS and len(tensors) == 2 and len(node.args) == 2 and not node.kwargs:
        return _Layer(node, "add", label)
    if target is torch.flatten and _argument(node, 1, "start_dim", 0) == 1 and _argument(node, 2, "end_dim", -1) == -1:
        return _Layer(node, "flatten", label)
    if target is F.dropout:
        return _Layer(node, "dropout", label, {"p": float(_argument(node, 1, "p", 0.5))})
    if target in _GLOBAL_POOL_CALLS and set(_ints(_argument(node, 1, "output_size", None))) == {1}:
        return _Layer(node, "pool", label, {"mode": "avg", "global": True})
    if target in _POOL_CALLS:
        return _Layer(node, "pool", label, _functional_pool(node, label, _POOL_CALLS[target]))
    if target is operator.getitem and (stride := _subsample_stride(node)) is not None:
        return _Layer(node, "subsample", label, {"stride": stride})
    if target is F.pad and (pads := _channel_pad(node)) is not None:
        return _Layer(node, "chpad", label, {"front": pads[0], "back": pads[1]})
    raise ModelImportError(f"{label}: not a supported operation")


def _functional_pool(node: fx.Node, label: str, mode: str) -> dict[str, Any]:
    kernel = _argument(node, 1, "kernel_size", None)
    stride = _argument(node, 2, "stride", None)
    rest = [_argument(node, 3, "padding", 0), _argument(node, 4, "ceil_mode" if mode == "avg" else "dilation", None)]
    out_shape, in_shape = _shape_of(node), _shape_of(_tensor_args(node)[0])
    if out_shape is not None and set(out_shape[1:]) == {1} and not isinstance(kernel, int):
        return {"mode": mode, "global": True}  # e.g. F.avg_pool2d(out, out.size()[3])
    try:
        size = int(kernel)
        stride = size if stride is None else int(stride)
    except (TypeError, ValueError):
        raise ModelImportError(f"{label}: only pooling by constant sizes") from None
    if stride != size or rest[0] not in (0, None) or rest[1] not in (None, False, 1):
        raise ModelImportError(f"{label}: only pooling with stride = kernel size, no padding")
    assert in_shape is not None
    return {"mode": mode, "size": size}


def _method_layer(node: fx.Node) -> _Layer | fx.Node:
    method = str(node.target)
    label = f"{node.name}{_where(node)} (Tensor.{method})"
    source = node.args[0]
    assert isinstance(source, fx.Node)
    in_shape, out_shape = _shape_of(source), _shape_of(node)
    if method in _PASS_METHODS or (method in ("view", "reshape") and in_shape == out_shape):
        return source
    if method in _ACTIVATION_METHODS:
        return _Layer(node, "act", label, {"fn": _ACTIVATION_METHODS[method]})
    if method in ("add", "add_") and len(_tensor_args(node)) == 2 and len(node.args) == 2 and not node.kwargs:
        return _Layer(node, "add", label)
    flat = in_shape is not None and out_shape == (math.prod(in_shape),)
    if method in ("view", "reshape", "flatten") and flat:
        if method == "flatten" and _argument(node, 1, "start_dim", 0) != 1:
            raise ModelImportError(f"{label}: only flattening from dimension 1")
        return _Layer(node, "flatten", label)
    raise ModelImportError(f"{label}: not a supported operation")


# -- from a graph to a chain with residual additions -----------------------------------------------


def _main_chain(traced: fx.GraphModule, layers: dict[fx.Node, _Layer]) -> list[_Layer]:
    """The layers from the input to the output; each ``add`` layer gets ``fork`` (the layer the
    shortcut leaves from), ``shortcut`` (its layers, none for the identity) and ``align``."""
    parent: dict[int, _Layer] = {}
    on_shortcut: set[int] = set()
    unique = list({id(layer): layer for layer in layers.values()}.values())
    for layer in unique:
        inputs = [layers[n] for n in _tensor_args(layer.node) if n in layers]
        if layer.kind == "input":
            continue
        if layer.kind != "add":
            if len(inputs) != 1:
                raise ModelImportError(f"{layer.label}: takes {len(inputs)} tensors; only one is supported")
            parent[id(layer)] = inputs[0]
            continue
        body, fork, shortcut, align = _split_residual(layer, inputs, parent)
        parent[id(layer)] = body
        layer.attrs.update(fork=fork, shortcut=shortcut, align=align)
        on_shortcut.update(id(s) for s in shortcut)
    outputs = [n for n in traced.graph.nodes if n.op == "output"]
    result = outputs[0].args[0] if outputs else None
    if not isinstance(result, fx.Node) or result not in layers:
        raise ModelImportError("the model must return one tensor")
    chain = [layers[result]]
    while id(chain[-1]) in parent:
        chain.append(parent[id(chain[-1])])
    chain.reverse()
    on_chain = {id(layer) for layer in chain}
    stray = next((x for x in unique if id(x) not in on_chain and id(x) not in on_shortcut), None)
    if stray is not None:
        raise ModelImportError(
            f"{stray.label}: on a branch a topology cannot express (a chain of layers with residual additions)"
        )
    return chain


def _back_chain(layer: _Layer, parent: dict[int, _Layer]) -> list[_Layer]:
    out = [layer]
    while id(out[-1]) in parent:
        out.append(parent[id(out[-1])])
    return out


_ALIGNMENTS = ("identity", "project", "zero_pad")
"""Shortcut alignments, the preferred first when either operand of a sum could be the shortcut."""


def _split_residual(
    add: _Layer, inputs: list[_Layer], parent: dict[int, _Layer]
) -> tuple[_Layer, _Layer, list[_Layer], str]:
    """``(body operand, fork, shortcut layers in forward order, alignment)`` of a sum of two branches."""
    chains = [_back_chain(x, parent) for x in inputs]
    ids = [[id(x) for x in c] for c in chains]
    common = next((x for x in chains[0] if id(x) in ids[1]), None)
    if common is None:
        raise ModelImportError(f"{add.label}: adds tensors that do not come from one input")
    branches = [c[: i.index(id(common))][::-1] for c, i in zip(chains, ids, strict=True)]
    options = []
    # The second operand first: ``out + shortcut(x)`` is how residual blocks are usually written.
    for body, short in ((0, 1), (1, 0)):
        align = _alignment(branches[short], common.shape, add.shape) if branches[body] else None
        if align is not None:
            options.append((_ALIGNMENTS.index(align), inputs[body], branches[short], align))
    if not options:
        raise ModelImportError(
            f"{add.label}: a residual sum needs a shortcut that is the identity, a projection (1x1 conv or "
            "bias-free linear, then BatchNorm) or option A (strided slicing, zero channels padded evenly)"
        )
    _, body_input, shortcut, align = min(options, key=lambda option: option[0])
    return body_input, common, shortcut, align


def _alignment(branch: list[_Layer], src: tuple[int, ...], dst: tuple[int, ...]) -> str | None:
    """The alignment a shortcut branch computes, as :func:`skipsearch.nn._skips.make_alignment`
    builds it, or ``None``."""
    kinds = [x.kind for x in branch]
    stride = src[1] // dst[1] if len(src) > 1 else 1
    if not kinds:
        return "identity"
    if kinds in (["conv", "bn"], ["linear", "bn"]):
        first = branch[0].attrs
        plain = not first["bias"] and first.get("kernel", 1) == 1 and first.get("stride", 1) == stride
        return "project" if plain else None
    if kinds in (["chpad"], ["subsample", "chpad"]):
        pad, padded = dst[0] - src[0], branch[-1].attrs
        subsampled = branch[0].attrs["stride"] if len(branch) == 2 else 1
        even = (padded["front"], padded["back"]) == (pad // 2, pad - pad // 2)
        return "zero_pad" if even and subsampled == stride else None
    return None


def _subsample_stride(node: fx.Node) -> int | None:
    """``s`` for ``x[:, :, ::s, ::s]`` (every spatial dimension strided alike), else ``None``."""
    index = node.args[1] if len(node.args) > 1 else None
    source = _shape_of(node.args[0]) if isinstance(node.args[0], fx.Node) else None
    if not isinstance(index, tuple) or source is None or len(index) != len(source) + 1:
        return None
    if not all(isinstance(s, slice) and s.start is None and s.stop is None for s in index):
        return None
    steps = [s.step or 1 for s in index]
    return steps[2] if steps[:2] == [1, 1] and len(set(steps[2:])) == 1 else None


def _channel_pad(node: fx.Node) -> tuple[int, int] | None:
    """``(front, back)`` zero channels of an ``F.pad`` that pads nothing else, else ``None``."""
    pad = _argument(node, 1, "pad", None)
    mode, value = _argument(node, 2, "mode", "constant"), _argument(node, 3, "value", None)
    source = _shape_of(node.args[0]) if isinstance(node.args[0], fx.Node) else None
    if mode != "constant" or value not in (None, 0) or not isinstance(pad, tuple | list) or source is None:
        return None
    if len(pad) != 2 * len(source) or any(pad[:-2]) or not all(isinstance(p, int) and p >= 0 for p in pad):
        return None
    return pad[-2], pad[-1]


# -- from the chain to blocks ----------------------------------------------------------------------

_ID_CHARS = re.compile(r"[^A-Za-z0-9_]")


def _group(chain: list[_Layer], input_shape: tuple[int, ...]) -> tuple[list[_Block], list[dict[str, Any]]]:
    """Blocks and skip edges (``src``, ``dst``, ``align``, ``modules``) of the chain."""
    forks = {id(x.attrs["fork"]) for x in chain if x.kind == "add"}
    blocks = [_Block("x", "input", {"shape": list(input_shape)}, [], chain[0])]
    block_of: dict[int, str] = {id(chain[0]): "x"}
    skips: list[dict[str, Any]] = []
    used_ids = {"x"}
    i = 1
    while i < len(chain):
        layer = chain[i]
        if layer.kind == "add":
            i = _attach_residual(chain, i, blocks, block_of, skips, forks)
            continue
        end = _block_end(chain, i, forks)
        block = _make_block(chain[i:end], used_ids)
        blocks.append(block)
        block_of[id(chain[end - 1])] = block.id
        i = end
    return blocks, skips


_BLOCK_PATTERNS: dict[str, list[tuple[str, ...]]] = {
    "conv": [("conv",), ("bn",), ("act",)],
    "linear": [("linear",), ("bn", "ln"), ("act",)],
    "bn": [("bn",), ("act",), ("conv",)],  # pre-activation: BN-act-conv
}
"""The layers a block starting with a layer of that kind takes, in order; each but the first (and
a pre-activated block's conv) optional."""


def _block_end(chain: list[_Layer], start: int, forks: set[int]) -> int:
    """The index after the last layer that joins the block starting at ``chain[start]``."""
    pattern = _BLOCK_PATTERNS.get(chain[start].kind)
    if pattern is None:
        return start + 1
    i = start
    for step, kinds in enumerate(pattern):
        required = step == 0 or (chain[start].kind == "bn" and step == 2)
        if i < len(chain) and chain[i].kind in kinds and not (i > start and id(chain[i - 1]) in forks):
            i += 1  # (a shortcut leaving from the layer before would have to leave from a block's end)
        elif required:
            break
    if chain[start].kind == "bn" and (i - start < 2 or chain[i - 1].kind != "conv"):
        raise ModelImportError(
            f"{chain[start].label}: a BatchNorm must follow a conv or linear layer, or come (with an activation) "
            "just before a conv"
        )
    return i


def _make_block(layers: list[_Layer], used_ids: set[str]) -> _Block:
    first, kinds = layers[0], [x.kind for x in layers]
    weighted = [x.module for x in layers if x.module is not None]
    act = next((x.attrs["fn"] for x in layers if x.kind == "act"), "none")
    if first.kind in ("subsample", "chpad"):
        raise ModelImportError(f"{first.label}: strided slicing and channel padding are only supported as a shortcut")
    if first.kind == "act":
        op, params = "activation", {"fn": act}
    elif first.kind == "pool":
        op, params = "pool", _pool_params(first)
    elif first.kind in ("flatten", "dropout"):
        op, params = first.kind, ({"p": first.attrs["p"]} if first.kind == "dropout" else {})
    elif first.kind == "linear":
        norm = {"bn": "batch", "ln": "layer"}.get(kinds[1] if len(kinds) > 1 else "", "none")
        op, params = (
            "linear",
            {"features": first.attrs["features"], "bias": first.attrs["bias"], "act": act, "norm": norm},
        )
    else:
        conv = next(x for x in layers if x.kind == "conv")
        params = {k: conv.attrs[k] for k in ("channels", "kernel", "stride", "bias")}
        params.update(act=act, norm="batch" if "bn" in kinds else "none", preact=first.kind == "bn")
        op = "conv"
    block_id = _unique_id(weighted[0] if weighted else first.path, used_ids)
    return _Block(block_id, op, params, weighted, layers[-1], global_pool=bool(first.attrs.get("global")))


def _pool_params(layer: _Layer) -> dict[str, Any]:
    """``pool`` parameters; a global pool of a non-square map gets ``size: None`` (only a head can take it)."""
    if not layer.attrs.get("global"):
        return {"size": layer.attrs["size"], "mode": layer.attrs["mode"]}
    spatial = set((_shape_of(_tensor_args(layer.node)[0]) or ())[1:])
    return {"size": spatial.pop() if len(spatial) == 1 else None, "mode": layer.attrs["mode"]}


def _unique_id(text: str, used: set[str]) -> str:
    base = _ID_CHARS.sub("_", text.replace(".", "_"))
    if not base or not (base[0].isalpha() or base[0] == "_"):
        base = f"m{base}"
    if hasattr(nn.Module, base):
        base = f"{base}_"
    candidate, n = base, 2
    while candidate in used:
        candidate, n = f"{base}_{n}", n + 1
    used.add(candidate)
    return candidate


def _attach_residual(
    chain: list[_Layer],
    i: int,
    blocks: list[_Block],
    block_of: dict[int, str],
    skips: list[dict[str, Any]],
    forks: set[int],
) -> int:
    """Adds the skip edge of the sum ``chain[i]`` into the last block; returns the next index."""
    add, block = chain[i], blocks[-1]
    src = block_of.get(id(add.attrs["fork"]))
    if src is None:
        raise ModelImportError(f"{add.label}: its shortcut leaves from inside a block ({add.attrs['fork'].label})")
    if src == block.id:
        raise ModelImportError(f"{add.label}: adds a block's input to itself")
    modules = [x.module for x in add.attrs["shortcut"] if x.module is not None]
    skips.append({"src": src, "dst": block.id, "align": add.attrs["align"], "modules": modules})
    block.last = add
    block_of[id(add)] = block.id
    i += 1
    following = chain[i] if i < len(chain) else None
    post_allowed = "post" in OPS[block.op].params and block.params.get("post", "none") == "none"
    if following is not None and following.kind == "act" and post_allowed and id(add) not in forks:
        block.params["post"] = following.attrs["fn"]
        block.last = following
        block_of[id(following)] = block.id
        i += 1
    return i


def _collapse_basic_blocks(blocks: list[_Block], skips: list[dict[str, Any]]) -> None:
    """conv3x3-BN-ReLU, conv3x3-BN with a skip around both: one ``basic`` block, as in a ResNet."""
    i = 1
    while i + 1 < len(blocks):
        a, b = blocks[i], blocks[i + 1]
        into_b = [s for s in skips if s["dst"] == b.id]
        touches_a = any(a.id in (s["src"], s["dst"]) for s in skips)
        first = {"kernel": 3, "bias": False, "norm": "batch", "act": "relu", "preact": False}
        second = {**first, "act": "none", "stride": 1, "channels": a.params.get("channels")}
        if (
            a.op == b.op == "conv"
            and all(a.params.get(k) == v for k, v in first.items())
            and all(b.params.get(k) == v for k, v in second.items())
            and a.params.get("post", "none") == "none"
            and len(into_b) == 1
            and into_b[0]["src"] == blocks[i - 1].id
            and not touches_a
        ):
            prefix = _common_path(a.modules[0], b.modules[0])
            used = {x.id for x in blocks} - {a.id, b.id}
            block_id = _unique_id(prefix, used) if prefix else a.id
            params = {
                "channels": a.params["channels"],
                "stride": a.params["stride"],
                "post": b.params.get("post", "none"),
            }
            blocks[i : i + 2] = [_Block(block_id, "basic", params, a.modules + b.modules, b.last)]
            into_b[0]["dst"] = block_id
            for skip in skips:
                skip["src"] = block_id if skip["src"] == b.id else skip["src"]
        i += 1


def _common_path(a: str, b: str) -> str:
    parts = []
    for x, y in zip(a.split("."), b.split("."), strict=False):
        if x != y:
            break
        parts.append(x)
    return ".".join(parts)


def _make_head(blocks: list[_Block], skips: list[dict[str, Any]]) -> None:
    """A last linear layer with a bias and nothing after it becomes the ``head`` (taking the
    flatten, and the global average pool, just before it)."""
    last = blocks[-1]
    plain = {"act": "none", "norm": "none", "bias": True}
    if last.op != "linear" or any(last.params.get(k) != v for k, v in plain.items()):
        return
    if any(s["dst"] == last.id for s in skips) or last.params.get("post", "none") != "none":
        return
    pool, taken = "none", 0
    ends = {s["src"] for s in skips}
    before = blocks[-2]
    if before.op == "flatten" and before.id not in ends:
        pool, taken = "flatten", 1
        pooled = blocks[-3]
        if pooled.global_pool and pooled.params["mode"] == "avg" and pooled.id not in ends:
            pool, taken = "avg", 2
    head = _Block(last.id, "head", {"classes": last.params["features"], "pool": pool}, last.modules, last.last)
    blocks[len(blocks) - 1 - taken :] = [head]


def _check_shapes(topology: Topology, blocks: list[_Block]) -> None:
    for block in blocks:
        traced = block.last.shape if block.op != "input" else tuple(block.params["shape"])
        if topology.shapes[block.id] != traced:
            raise ModelImportError(
                f"block {block.id!r} ({block.op}) gives shape {topology.shapes[block.id]}, the model {traced}: "
                "a layer's padding or rounding differs from skipsearch's"
            )


def _state_mapping(
    topology: Topology, blocks: list[_Block], skips: list[dict[str, Any]], model: nn.Module
) -> dict[str, str]:
    """Built state key -> source state key, paired in order within every block and skip module."""
    built = build_model(topology).state_dict()
    modules = dict(model.named_modules())
    owners = [(f"blocks.{b.id}.", b.modules) for b in blocks[1:]]
    edges = {(e.src, e.dst): e for e in topology.skips}
    owners += [(f"skips.{skip_name(edges[s['src'], s['dst']])}.", s["modules"]) for s in skips if s["modules"]]
    mapping: dict[str, str] = {}
    for prefix, names in owners:
        targets = [k for k in built if k.startswith(prefix)]
        sources = [(f"{name}.{key}", value) for name in names for key, value in modules[name].state_dict().items()]
        if len(targets) != len(sources) or any(
            built[t].shape != v.shape for t, (_, v) in zip(targets, sources, strict=False)
        ):
            raise ModelImportError(f"cannot pair the weights of {', '.join(names)} with block {prefix[:-1]!r}")
        mapping.update((t, s) for t, (s, _) in zip(targets, sources, strict=True))
    unpaired = next((k for k in built if k not in mapping), None)
    if unpaired is not None:
        raise ModelImportError(f"the built model's {unpaired!r} has no weights in the source model")
    return mapping

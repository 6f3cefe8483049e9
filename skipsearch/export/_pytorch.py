"""Exporting a model as a standalone PyTorch source file that needs nothing but ``torch``.

The file holds one ``nn.Module`` class whose ``__init__`` builds the same submodules under the same
names as :func:`skipsearch.nn.build_model` (so the built model's state dict loads into it, strictly),
and whose ``forward`` is the straight-line code torch.fx generated for the built model. The skip
modules skipsearch defines (``ZeroPadShortcut``, ``ScalarSkip``, ...) are written into the file as
small classes; standard layers are written as ``nn.Layer(...)`` calls rebuilt from their reprs.
"""

from __future__ import annotations

import inspect
import keyword
import re
from typing import Any

import torch
from torch import fx, nn

from skipsearch.errors import UserError
from skipsearch.nn import SKIP_BUILDERS, LinearAct, ProjectionShortcut, ZeroPadShortcut, skip_name
from skipsearch.topology import SkipEdge, Topology

_NORM = {"eps": "1e-05", "momentum": "0.1", "affine": "True", "bias": "True", "track_running_stats": "True"}
_LEAVES: dict[type[nn.Module], dict[str, str]] = {
    nn.Linear: {"bias": "True"},
    nn.Conv1d: {"stride": "1", "padding": "0"},
    nn.Conv2d: {"stride": "1", "padding": "0"},
    nn.ConvTranspose1d: {"stride": "1"},
    nn.ConvTranspose2d: {"stride": "1"},
    nn.BatchNorm1d: _NORM,
    nn.BatchNorm2d: _NORM,
    nn.LayerNorm: {"eps": "1e-05", "elementwise_affine": "True", "bias": "True"},
    nn.ReLU: {},
    nn.Tanh: {},
    nn.GELU: {"approximate": "'none'"},
    nn.Sigmoid: {},
    nn.SiLU: {},
    nn.Dropout: {"inplace": "False"},
    nn.Identity: {},
    nn.Flatten: {"start_dim": "1", "end_dim": "-1"},
    nn.AvgPool1d: {"padding": "0"},
    nn.AvgPool2d: {"padding": "0"},
    nn.MaxPool1d: {"padding": "0", "dilation": "1", "ceil_mode": "False"},
    nn.MaxPool2d: {"padding": "0", "dilation": "1", "ceil_mode": "False"},
    nn.AdaptiveAvgPool1d: {},
    nn.AdaptiveAvgPool2d: {},
}
"""Standard layers the exporter writes, with the keyword values it leaves out as defaults.

``repr`` of each of these is a valid constructor call (the exported file's own check proves it)."""

_PROJECTION_SOURCE = '''
class ProjectionShortcut(nn.Sequential):
    """ResNet option B: a strided 1x1 convolution (a linear map for vectors) and BatchNorm."""
'''
"""The projection is written as a bare ``nn.Sequential`` subclass, built from its children there."""

_RESERVED = ("torch", "nn", "INPUT_SHAPE", "OUTPUT_SHAPE", "LinearAct", "ZeroPadShortcut", "ProjectionShortcut")
"""Names the file may define besides the skip kinds' module classes."""

_CLEARING = re.compile(r";\s+(?:[A-Za-z_][A-Za-z0-9_]* = )+None\s*$")
_CHILD_CALL = re.compile(r"self\.(blocks|skips)\.([A-Za-z_][A-Za-z0-9_]*)\(")
_SAME_INTS = re.compile(r"\((-?\d+)(?:, \1)*,?\)")
_UNSAFE_DOC = re.compile(r"[^A-Za-z0-9 _.,:;()+-]")
_REWRITES = {"torch._C._nn.gelu(": "nn.functional.gelu("}


def pytorch_class_name(model: fx.GraphModule) -> str:
    """The name of the model class in the exported ``.py`` file."""
    return _class_name(type(model).__name__)


def pytorch_source(model: fx.GraphModule, topology: Topology, *, stem: str = "model") -> tuple[str, str]:
    """``(source, class_name)``: the file's text and the name of its model class.

    ``stem`` is the file's name without ``.py``; its docstring shows loading ``stem.pt`` next to it.
    """
    edges = {skip_name(e): e for e in topology.active_skips}
    used: set[str] = set()
    holders = []
    for holder in ("blocks", "skips"):
        container = getattr(model, holder, None)
        children = dict(container.named_children()) if container is not None else {}
        if children:
            holders.append(_holder_source(holder, children, edges, used))
    class_name = pytorch_class_name(model)
    classes = "\n\n\n".join(source.strip("\n") for name, source in _module_classes().items() if name in used)
    parts = [
        _docstring(topology, stem, class_name) + "\nimport torch\nfrom torch import nn\n\n"
        f"INPUT_SHAPE = {tuple(topology.input_shape)!r}\nOUTPUT_SHAPE = {tuple(topology.output_shape)!r}\n",
        classes,
        f"class {class_name}(nn.Module):\n"
        f'    """The {_plain(topology.name)} network (topology hash {topology.hash}): inputs of INPUT_SHAPE."""\n\n'
        "    def __init__(self) -> None:\n"
        "        super().__init__()\n" + "".join(holders) + "\n" + _forward_source(model),
        _MAIN.format(cls=class_name),
    ]
    return "\n\n".join(p.strip("\n") + "\n" for p in parts if p.strip()), class_name


_MAIN = """
if __name__ == "__main__":
    # A smoke test: python THIS_FILE.py [STATE_DICT.pt]
    import sys

    model = {cls}()
    if len(sys.argv) > 1:
        model.load_state_dict(torch.load(sys.argv[1], weights_only=True))
    with torch.no_grad():
        print(model.eval()(torch.zeros(2, *INPUT_SHAPE)).shape)
"""


def _plain(text: str) -> str:
    """User text made safe inside a docstring of the generated file (no quotes, no backslashes)."""
    return _UNSAFE_DOC.sub("_", text)[:100]


def _docstring(topology: Topology, stem: str, class_name: str) -> str:
    return (
        f'"""{_plain(topology.name)}: a network exported by skipsearch; it needs nothing but PyTorch.\n\n'
        f"Usage::\n\n    import torch\n    from {stem} import {class_name}\n\n    model = {class_name}()\n"
        f'    model.load_state_dict(torch.load("{stem}.pt", weights_only=True))\n    model.eval()\n"""\n'
    )


def _module_classes() -> dict[str, str]:
    """Source of the module classes a file may define, in the order they are written: LinearAct,
    ZeroPadShortcut, every registered skip kind's module (read live, so new kinds export too), then
    ProjectionShortcut."""
    classes = {cls.__name__: inspect.getsource(cls) for cls in (LinearAct, ZeroPadShortcut)}
    for builder in SKIP_BUILDERS.values():
        if builder.module is not None:
            classes.setdefault(builder.module.__name__, inspect.getsource(builder.module))
    classes["ProjectionShortcut"] = _PROJECTION_SOURCE
    return classes


def _class_name(name: str) -> str:
    if (
        keyword.iskeyword(name)
        or name in _RESERVED
        or any(b.module and b.module.__name__ == name for b in SKIP_BUILDERS.values())
    ):
        return f"Net{name}"
    return name


def _holder_source(holder: str, children: dict[str, nn.Module], edges: dict[str, SkipEdge], used: set[str]) -> str:
    lines = [f"        self.{holder} = nn.ModuleDict(\n", "            {\n"]
    for name, module in children.items():
        key = f'"{name}": '  # node ids and skip names are identifiers: no quoting needed
        expr = _module_expr(module, edges.get(name), used, indent=16, start=16 + len(key))
        lines.append(f"                {key}{expr},\n")
    lines += ["            }\n", "        )\n"]
    return "".join(lines)


def _module_expr(module: nn.Module, edge: SkipEdge | None, used: set[str], indent: int, start: int) -> str:
    """A Python expression that builds a module of the same structure (parameter values aside).

    ``indent`` is the column of the line the expression is on, ``start`` the column it starts at.
    """
    kind = type(module)
    m: Any = module
    if kind in (nn.Sequential, ProjectionShortcut):
        name = "nn.Sequential" if kind is nn.Sequential else "ProjectionShortcut"
        if kind is ProjectionShortcut:
            used.add(name)
        children = list(module.named_children())
        if [n for n, _ in children] != [str(i) for i in range(len(children))]:
            raise UserError(f"cannot export a {name} whose children are not numbered 0, 1, ...")
        args = [_module_expr(child, None, used, indent + 4, indent + 4) for _, child in children]
        return _call(name, args, indent, start)
    if kind in _LEAVES:
        return f"nn.{kind.__name__}({_arguments(module.extra_repr(), _LEAVES[kind])})"
    if kind is LinearAct:
        used.add("LinearAct")
        return f"LinearAct({m.in_features}, {m.out_features}, bias={m.bias is not None}, act={m.act!r})"
    if kind is ZeroPadShortcut:
        used.add("ZeroPadShortcut")
        return f"ZeroPadShortcut({m.stride}, {m.pad_front}, {m.pad_back}, spatial_dims={m.spatial_dims})"
    builder = next((b for b in SKIP_BUILDERS.values() if b.module is kind), None)
    if builder is not None and edge is not None:
        used.add(kind.__name__)
        args = [_module_expr(m.align, None, used, indent + 4, indent + 4), *builder.arguments(module, edge)]
        return _call(kind.__name__, args, indent, start)
    raise UserError(f"cannot export a {kind.__module__}.{kind.__name__} module as PyTorch source")


def _call(name: str, args: list[str], indent: int, start: int, width: int = 100) -> str:
    """``name(args)`` on one line when it fits, else one argument a line (as ruff format would)."""
    one_line = f"{name}({', '.join(args)})"
    if "\n" not in one_line and start + len(one_line) + 1 <= width:
        return one_line
    pad = " " * (indent + 4)
    return f"{name}(\n" + "".join(f"{pad}{a},\n" for a in args) + " " * indent + ")"


def _arguments(extra_repr: str, defaults: dict[str, str]) -> str:
    """``extra_repr`` with default keyword values dropped and ``(3, 3)`` shortened to ``3``."""
    kept = []
    for arg in _split_top_level(extra_repr):
        key, eq, value = arg.partition("=")
        value = _SAME_INTS.sub(r"\1", value) if eq else _SAME_INTS.sub(r"\1", arg)
        if eq and defaults.get(key) == value:
            continue
        kept.append(f"{key}={value}" if eq else value)
    return ", ".join(kept)


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def _forward_source(model: fx.GraphModule) -> str:
    """The fx-generated forward, typed, without fx's ``x = None`` memory hints."""
    code = model.code.strip("\n")
    lines = []
    for line in code.splitlines():
        if not line.strip():
            continue
        if line.startswith("def forward(self, x):"):
            lines.append("    def forward(self, x: torch.Tensor) -> torch.Tensor:")
            continue
        line = _CLEARING.sub("", line)
        for old, new in _REWRITES.items():
            line = line.replace(old, new)
        # A child named like a ModuleDict method (``items``, ``eval``) must be indexed, not read as an attribute.
        line = _CHILD_CALL.sub(
            lambda m: f'self.{m[1]}["{m[2]}"](' if hasattr(nn.ModuleDict, m[2]) else m[0], line.rstrip()
        )
        lines.append("    " + line)
    return "\n".join(lines) + "\n"


def load_source(source: str, class_name: str) -> nn.Module:
    """An instance of the class defined by ``source``, executed in a namespace of its own."""
    namespace: dict[str, Any] = {"__name__": "skipsearch_export_check"}
    exec(compile(source, "<exported model>", "exec"), namespace)  # our own generated code
    return namespace[class_name]()


def check_source(source: str, class_name: str, model: nn.Module, example: torch.Tensor, atol: float = 1e-4) -> None:
    """Raises ``RuntimeError`` unless the file's model loads ``model``'s state dict and computes the same."""
    rebuilt = load_source(source, class_name)
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    rebuilt.eval()
    with torch.no_grad():
        expected, got = model(example), rebuilt(example)
    if not torch.allclose(expected, got, atol=atol, rtol=0):
        raise RuntimeError(f"exported PyTorch source differs from the model by {(expected - got).abs().max():.3g}")

"""``skipsearch import-model``: a plain PyTorch model as a topology file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from skipsearch.errors import UserError


def register(app: typer.Typer) -> None:
    app.command("import-model")(import_model_command)


def import_model_command(
    model: Annotated[
        str, typer.Argument(help="package.module:attribute, a module, a module class or a function returning one.")
    ],
    input_shape: Annotated[str, typer.Option(help="Input shape without the batch: F, C,L or C,H,W (e.g. 1,28,28).")],
    output: Annotated[Path, typer.Option(help="The topology file to write (.json or .graphml).")],
    name: Annotated[str | None, typer.Option(help="The topology's name (default: the attribute's).")] = None,
    arg: Annotated[
        list[str] | None,
        typer.Option("--arg", help="KEY=VALUE (a YAML value) for the class or function; repeatable."),
    ] = None,
) -> None:
    """Turn a PyTorch model (a chain of supported layers, residual blocks included) into a topology
    file whose built model has the same parameters and outputs; see README, "Your own network"."""
    from skipsearch.nn import build_model, count_params, import_model
    from skipsearch.topology import save_topology

    shape = parse_shape(input_shape, "--input-shape")
    topology = import_model(model, shape, name=name, args=parse_args(arg or []))
    try:
        save_topology(topology, output)
    except OSError as exc:
        raise UserError(f"--output {output}: cannot write ({exc.strerror or exc})") from None
    params = count_params(build_model(topology))
    print(
        f"{output}: {topology.name}, {len(topology.nodes) - 1} blocks, {len(topology.skips)} skip edges, "
        f"{params:,} parameters, input {shape}, output {topology.output_shape}"
    )


def parse_args(items: list[str]) -> dict[str, Any]:
    """``["num_classes=3", "widths=[8, 16]"]`` as keyword arguments, each value read as YAML."""
    args = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key.isidentifier():
            raise UserError(f"--arg {item!r}: write KEY=VALUE with KEY a Python identifier")
        try:
            args[key] = yaml.safe_load(value)
        except (yaml.YAMLError, RecursionError, ValueError):  # deep nesting, integers of thousands of digits
            raise UserError(f"--arg {item[:60]!r}: the value is not valid YAML (or nested too deeply)") from None
    return args


def parse_shape(text: str, where: str) -> tuple[int, ...]:
    """``"1,28,28"`` as ``(1, 28, 28)``; one line naming ``where`` if it is not 1 to 3 positive integers."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not 1 <= len(shape) <= 3 or min(shape) < 1:
        raise UserError(f"{where}: {text!r} must be 1 to 3 positive integers separated by commas (F, C,L or C,H,W)")
    return shape

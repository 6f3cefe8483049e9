"""``skipsearch presets`` and ``skipsearch describe``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from skipsearch.errors import UserError
from skipsearch.topology import (
    PRESETS,
    Topology,
    check_graph,
    check_topology,
    graph_metrics,
    load_topology,
    topology_cost,
)


def register(app: typer.Typer) -> None:
    app.command("presets")(presets)
    app.command("describe")(describe)


def presets(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List the named topologies (usable wherever a TOPOLOGY is asked for)."""
    if as_json:
        print(json.dumps([{"name": p.name, "description": p.description} for p in PRESETS.values()], indent=2))
        return
    table = Table("preset", "description")
    for preset in PRESETS.values():
        table.add_row(preset.name, preset.description)
    Console().print(table)


def describe(
    topology: Annotated[str, typer.Argument(help="A preset name or a topology file (.json, .graphml).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    latency: Annotated[bool, typer.Option(help="Measure CPU latency (batch of 1).")] = True,
) -> None:
    """Shape, cost and path statistics of a topology.

    The limits (nodes and skip edges; with latency, which builds the model, also parameters, MACs
    and memory) are checked first: see SKIPSEARCH_LIMIT_* in docs/reliability.md.
    """
    topo = load_topology(topology)
    try:
        check_graph(topo)
        if latency:
            check_topology(topo)
    except UserError as exc:
        raise UserError(f"{topology}: {exc}") from None
    info = describe_topology(topo, latency=latency)
    if as_json:
        print(json.dumps(info, indent=2))
        return
    _print_description(topo, info)


def describe_topology(topo: Topology, *, latency: bool = True) -> dict[str, Any]:
    """Everything ``describe --json`` prints, as a dict.

    Without latency nothing is built: the counts come from the shapes (the same numbers the built
    model gives, a test checks), which spares the command importing torch.
    """
    if latency:
        from skipsearch.nn import build_model, model_cost

        cost = model_cost(build_model(topo), topo.input_shape).to_dict()
    else:
        counted = topology_cost(topo)
        cost = {"params": counted.params, "macs": counted.macs, "flops": counted.flops, "latency_ms": None}
    metrics = graph_metrics(topo)
    return {
        "name": topo.name,
        "hash": topo.hash,
        "input_shape": list(topo.input_shape),
        "output_shape": list(topo.output_shape),
        **cost,
        "nodes": [{**n.to_dict(compact=False), "shape": list(topo.shapes[n.id])} for n in topo.nodes],
        "skip_edges": [e.to_dict() for e in topo.skips],
        **metrics.to_dict(),
    }


def _print_description(topo: Topology, info: dict[str, Any]) -> None:
    console = Console()
    console.print(f"[bold]{topo.name}[/]  hash {info['hash']}")
    table = Table("node", "op", "output shape", "skips in")
    for node in topo.nodes:
        incoming = ", ".join(f"{e.src} ({e.label})" for e in topo.incoming(node.id))
        table.add_row(node.id, node.op, "x".join(map(str, topo.shapes[node.id])), incoming)
    console.print(table)
    latency = f"{info['latency_ms']:.2f} ms" if info.get("latency_ms") is not None else "not measured"
    paths = f"{info['paths']:,}" if isinstance(info["paths"], int) else f"{info['paths']} (approximate)"
    console.print(
        f"params {info['params']:,}   MACs {info['macs']:,}   FLOPs {info['flops']:,}   latency {latency}\n"
        f"paths {paths}   path length {info['shortest_path']}..{info['longest_path']} "
        f"(mean {info['mean_path_length']:.2f})   active skips {info['active_skips']}"
    )

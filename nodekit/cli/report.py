"""`nodekit graph` (the topology picture) and `nodekit report` (the audit report)."""

from __future__ import annotations

import enum
import sys
from pathlib import Path

import typer

from nodekit.cli.app import app
from nodekit.cli.output import err, load_nodes
from nodekit.errors import UsageError
from nodekit.report.graph import render_dot, to_dot, to_mermaid


class GraphFormat(enum.StrEnum):
    svg = "svg"
    png = "png"
    dot = "dot"
    mermaid = "mermaid"


@app.command()
def graph(
    path: Path = typer.Argument(..., help="A Node blueprint."),
    format: GraphFormat = typer.Option(
        GraphFormat.svg, "--format", "-f", help="svg, png (Graphviz), dot or mermaid (text)."
    ),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write here (text formats go to stdout without it)."
    ),
) -> None:
    """Draw the node's topology: zones as clusters with their security (SL-T)
    and Purdue levels, hosts and equipment with addresses, conduits as edges
    labelled with ports and purpose, and the uplink with its peer.

    Example: `nodekit graph blueprints/sites/lyon-additive-01.yaml -o lyon.svg`
    """
    blueprints = load_nodes([path])
    if len(blueprints) != 1:
        raise UsageError(f"{path} holds {len(blueprints)} nodes: give one blueprint file")
    data = blueprints[0].data
    if format is GraphFormat.mermaid:
        content = to_mermaid(data).encode()
    elif format is GraphFormat.dot:
        content = to_dot(data).encode()
    else:
        if output is None and sys.stdout.isatty():
            raise UsageError(f"--format {format.value} is binary or long: give -o FILE")
        content = render_dot(to_dot(data), format.value)
    if output is None:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return
    if str(output) == "":
        raise UsageError("-o needs a file name")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(content)
    err.print(f"graph: {output} ({format.value}, {len(content)} bytes)", markup=False)

"""`nodekit graph` (the topology picture) and `nodekit report` (the audit report)."""

from __future__ import annotations

import enum
import sys
from pathlib import Path

import typer

from nodekit.cli.app import app
from nodekit.cli.output import err, load_nodes
from nodekit.cli.run import BACKEND
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


@app.command()
def report(
    paths: list[Path] = typer.Argument(..., help="Node blueprints (files or folders)."),
    output: Path = typer.Option(..., "-o", "--output", help="The HTML file to write."),
    policy: Path | None = typer.Option(
        None, "--policy", help="The policy file (default: nodekit-policy.yaml beside them)."
    ),
    backend: str | None = BACKEND,
) -> None:
    """Write one self-contained HTML report (works offline: inline SVG and CSS,
    no external URL) for an auditor or a site manager: per node, the topology
    picture; zones and conduits with their security levels; policy findings
    and waivers with the IEC 62443-3-3 SR of each; the last verify's checks,
    live connectivity matrix and firewall comparison; the last runs.

    Example: `nodekit report blueprints/sites/lyon-additive-01.yaml -o report.html`
    """
    from nodekit.cli.policy import run_policy
    from nodekit.report.gather import gather
    from nodekit.report.html import render_html

    if str(output) in ("", "."):
        raise UsageError("-o needs a file name")
    blueprints = load_nodes(paths)
    result = run_policy(paths, policy)
    svgs = {b.name: render_dot(to_dot(b.data), "svg").decode() for b in blueprints}
    nodes = gather(blueprints, result, svgs, backend)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_html(nodes, result.policy.file))
    err.print(f"report: {output} ({len(nodes)} node(s))", markup=False)

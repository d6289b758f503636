"""Fleet scaffolding commands: `nodekit new site`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from nodekit.blueprint.compose import display
from nodekit.blueprint.newsite import new_site
from nodekit.cli.app import app
from nodekit.cli.output import Format, emit_json, err, out, print_table

new_app = typer.Typer(
    name="new",
    help="Create blueprints that fit the fleet: `nodekit new site` (docs/fleet.md).",
    no_args_is_help=True,
)
app.add_typer(new_app)


@new_app.command("site")
def site(  # noqa: PLR0917 (typer maps parameters to options)
    name: str = typer.Argument(..., metavar="NAME", help="The new node's name (metadata.name)."),
    extends: Path = typer.Option(
        ..., "--extends", metavar="BASE", help="The base blueprint file, e.g. a cell."
    ),
    overlay: Path = typer.Option(
        ...,
        "--overlay",
        metavar="REGION",
        help="The region overlay file; its `site.address_pool` gives the networks.",
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        metavar="FILE",
        help="Where to write (default: `sites/NAME.yaml` in the fleet folder). Never overwritten.",
    ),
    fleet: Path | None = typer.Option(
        None,
        "--fleet",
        metavar="DIR",
        help="The folder of every Node blueprint whose networks are taken (default: the "
        "folder that holds the overlay's folder, e.g. `blueprints/`).",
    ),
    format: Format = typer.Option(
        Format.table, "--format", "-f", help="table (for people) or json."
    ),
) -> None:
    """Write a new site blueprint that extends BASE and REGION, with its own networks.

    Each zone of BASE + REGION gets a /24 from the region's `site.address_pool`
    that no Node blueprint of the fleet uses (nor the local WAN, nor Docker's
    bridge); the zones of one site share a /16 when the pool has a free one.
    Every host gets an address in its zone (gateways .1, others from .10),
    each gateway an address in every zone it routes, each networked piece of
    equipment one from .101. The file is validated before it is written; an
    existing file is never overwritten. Exit 0 on success, 2 for bad input
    (unknown file, taken name, no pool, pool exhausted, file exists).

    Examples:

    * `nodekit new site lisbon-additive-01 --extends blueprints/bases/additive-cell.yaml
      --overlay blueprints/overlays/eu-west.yaml`
    * `nodekit new site test-cell --extends blueprints/bases/additive-cell.yaml
      --overlay blueprints/overlays/us-east.yaml -o /tmp/test-cell.yaml --fleet blueprints
      --format json`
    """
    result = new_site(name, base=extends, overlay=overlay, output=output, fleet=fleet)
    for warning in result.warnings:
        err.print(str(warning), markup=False)
    if format is Format.json:
        emit_json(
            {
                "file": display(result.file),
                "node": result.node,
                "zones": [{"name": z.name, "cidr": z.cidr} for z in result.zones],
            }
        )
        return
    out.print(
        f"wrote {display(result.file)}: node {result.node}, zones from pool {result.pool}",
        markup=False,
    )
    table = Table()
    table.add_column("zone")
    table.add_column("cidr")
    for zone in result.zones:
        table.add_row(zone.name, zone.cidr)
    print_table(table)

"""Commands on a node's machines: what nodekit derives for them, and their twins."""

from __future__ import annotations

import enum
from pathlib import Path

import typer
from rich.table import Table

from nodekit.cli.app import app
from nodekit.cli.output import Format, emit_json, err, load_nodes, print_table
from nodekit.cli.run import FORMAT
from nodekit.errors import UsageError
from nodekit.render.plan import NodePlan, plan


class TwinState(enum.StrEnum):
    ok = "ok"
    error = "error"
    offline = "offline"


def _one(path: Path) -> NodePlan:
    blueprints = load_nodes([path])
    if len(blueprints) != 1:
        raise UsageError(f"{path} holds {len(blueprints)} nodes: give one blueprint file")
    return plan(blueprints[0].data)


@app.command()
def equipment(
    path: Path = typer.Argument(..., help="A Node blueprint."),
    format: Format = FORMAT,
) -> None:
    """The node's machines as nodekit sees them: where each answers, which host
    checks it in verify, which edge collector polls it, whether the historian
    expects its telemetry, and (local target) its twin's container."""
    node = _one(path)
    rows = [
        {
            "equipment": m.name,
            "kind": m.duty.kind,
            "protocol": m.duty.protocol,
            "address": m.duty.address,
            "port": m.duty.port,
            "checked_from": m.duty.probe_host if m.duty.checked else None,
            "polled_by": m.duty.collector,
            "telemetry": m.duty.telemetry,
            "twin": m.container if m.twin and node.target == "local" else None,
        }
        for m in node.equipment
    ]
    if format == Format.json:
        emit_json({"node": node.name, "equipment": rows})
        return
    table = Table(
        "EQUIPMENT", "KIND", "PROTOCOL", "ADDRESS", "CHECKED FROM", "POLLED BY", "TELEMETRY",
        "TWIN", box=None, pad_edge=False,
    )  # fmt: skip
    for row in rows:
        where = f"{row['address']}:{row['port']}" if row["address"] and row["port"] else "-"
        table.add_row(
            str(row["equipment"]), str(row["kind"]), str(row["protocol"] or "-"), where,
            str(row["checked_from"] or "-"), str(row["polled_by"] or "-"),
            "yes" if row["telemetry"] else "no", str(row["twin"] or "-"),
        )  # fmt: skip
    print_table(table)


@app.command()
def twin(
    path: Path = typer.Argument(..., help="A Node blueprint of target local, deployed."),
    name: str = typer.Argument(..., help="The equipment whose twin to switch."),
    state: TwinState = typer.Option(
        ..., "--state", help="ok: normal; error: answers, reporting a fault; offline: silent."
    ),
) -> None:
    """Put an equipment twin (local target) into a fault, or back to normal, to
    test what verify, the collector and the historian make of it:

    `nodekit twin SITE.yaml printer-01 --state offline` then `nodekit verify
    SITE.yaml` fails naming printer-01; `--state ok` and verify passes again.
    On the ssh target the machines are real: there are no twins."""
    from nodekit.targets.twins import set_state

    node = _one(path)
    if node.target != "local":
        raise UsageError(
            f"{node.name} has target {node.target}: its machines are real, there are no twins "
            "(twins exist on the local target only)"
        )
    machine = set_state(node, name, state.value)
    err.print(f"twin {machine.name} ({machine.container}): {state.value}", markup=False)

"""``nodekit status``: each node's last run, last verify and telemetry at its hub."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from nodekit.backends import backend_for
from nodekit.cli.app import app
from nodekit.cli.output import Format, emit_json, load_nodes, print_table
from nodekit.cli.run import BACKEND, FORMAT
from nodekit.errors import UsageError
from nodekit.gitops.rollout import select
from nodekit.run.status import Fleet, NodeStatus, node_status


def age(moment: str | None, now: datetime | None = None) -> str:
    """``12s ago``, ``5m ago``, ``3h ago``, ``2d ago`` of an ISO 8601 time; ``-`` for none."""
    if not moment:
        return "-"
    try:
        then = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return moment
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _row(s: NodeStatus, now: datetime) -> tuple[str, ...]:
    run = f"{s.last_run.id} ({age(s.last_run.finished, now)})" if s.last_run else "-"
    verified = "-"
    if s.verify:
        verified = f"{'passed' if s.verify.passed else 'FAILED'} ({age(s.verify.finished, now)})"
    hub = s.hub or "-"
    if s.is_hub:
        live = ", ".join(site.node for site in s.sites) or "none"
        hub = f"is hub; last minute: {live}"
    telemetry = age(s.last_telemetry, now) if s.last_telemetry else (s.telemetry_note or "-")
    return (s.node, run, s.status, verified, hub, telemetry)


@app.command()
def status(
    paths: list[Path] | None = typer.Argument(
        None, help="Node blueprint files or folders of them (default: the current folder)."
    ),
    selector: list[str] = typer.Option(
        [], "--selector", "-l", help="Only nodes whose metadata.labels has KEY=VALUE (repeatable)."
    ),
    format: Format = FORMAT,
    backend: str | None = BACKEND,
) -> None:
    """Where each node stands: its last run (every command that touches a node
    is one), its last verify (a verify, or a deploy's verify stage) and the
    last telemetry its hub received from it. Changes nothing and takes no lock.

    The hub is the node named by `network.uplink.peer`, found among the given
    blueprints or in the folder above their folder; it is asked through its
    own target (`docker exec` locally, ssh on real hosts). For a hub itself:
    the newest telemetry of any node, and the sites heard from in the last
    minute. A hub that is not deployed or does not answer is said so in the
    LAST TELEMETRY column. Exit 0 whenever status could be reported.

    Examples: `nodekit status blueprints/sites/`,
    `nodekit status blueprints/ --selector region=eu-west --format json`
    """
    given = paths or [Path()]
    blueprints = select(load_nodes(given), selector)
    if not blueprints:
        raise UsageError(f"no node matches {' '.join(selector)}")
    found = node_status(
        blueprints, backend=backend_for(backend), fleet=Fleet(blueprints, Fleet.roots_of(given))
    )
    if format is Format.json:
        emit_json({"nodes": [s.to_dict() for s in found]})
        return
    now = datetime.now(UTC)
    table = Table(title="status", title_justify="left")
    for column in ("NODE", "LAST RUN", "STATUS", "VERIFIED", "HUB", "LAST TELEMETRY"):
        table.add_column(column, overflow="fold")
    for s in found:
        table.add_row(*(escape(cell) for cell in _row(s, now)))
    print_table(table)

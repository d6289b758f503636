"""`nodekit doctor`: is every real part of the toolchain here and working?"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from nodekit.cli.app import app
from nodekit.cli.output import Format, emit_json, err, load_nodes, print_table
from nodekit.toolchain.doctor import run_checks


@app.command()
def doctor(
    paths: list[Path] = typer.Argument(
        None, help="Blueprints (files or folders): check only what their targets need."
    ),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
) -> None:
    """Check the toolchain: Python deps, Ansible collections, host tools, the
    baseline package list, Pulumi CLI and its Python language host, and what
    each target needs (local: Docker engine and node image; ssh: an OpenSSH
    client). With blueprints, only their targets' parts are checked: an ssh
    node needs no Docker.

    Exit 0 when every part is ready, 1 when any is missing; each missing part
    comes with the command that fixes it (usually `make setup`).
    """
    parts: tuple[str, ...] | None = None
    if paths:
        from nodekit.render.plan import plan
        from nodekit.targets import TARGETS

        targets = {plan(bp.data).target for bp in load_nodes(paths)}
        parts = tuple(part for name in sorted(targets) for part in TARGETS[name].toolchain)
    checks = run_checks(parts)
    ok = all(c.ok for c in checks)
    if format is Format.json:
        emit_json({"ok": ok, "checks": [c.to_dict() for c in checks]})
    else:
        table = Table(title="nodekit doctor", title_justify="left")
        for column in ("part", "status", "detail", "fix"):
            table.add_column(column, overflow="fold")
        for c in checks:
            status = "[green]ok[/]" if c.ok else "[red]MISSING[/]"
            table.add_row(c.part, status, escape(c.detail), escape(c.fix))
        print_table(table)
        if not ok:
            err.print("[red]some parts are missing[/]: run the fix shown for each")
    if not ok:
        raise typer.Exit(1)

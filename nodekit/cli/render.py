"""`nodekit render`: blueprints in, the files the real tools run out."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from nodekit.cli.app import app
from nodekit.cli.output import Format, emit_json, err, load_nodes, print_table
from nodekit.errors import UsageError
from nodekit.render import render as render_node


@app.command()
def render(
    paths: list[Path] = typer.Argument(..., help="Node blueprint files or folders of them."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to render into."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
) -> None:
    """Render node blueprints into a Pulumi program, Ansible inventory and
    playbook, and testinfra checks.

    One node renders into DIR; several (several files, or a folder) into
    DIR/NODE-NAME/ each. The output is byte-stable: the same input gives the
    same bytes, and only files whose bytes changed are rewritten.

    Example: `nodekit render blueprints/sites/lyon-additive-01.yaml -o out/lyon`
    """
    if not str(output).strip() or str(output) == ".":
        raise UsageError(
            "render needs a folder of its own for its output: give -o DIR, e.g. -o out/lyon "
            "(not the current folder or an empty name)"
        )
    blueprints = load_nodes(paths)
    single = len(blueprints) == 1 and not any(p.is_dir() for p in paths)
    try:
        results = [
            render_node(bp, output if single else output / bp.node.metadata.name)
            for bp in blueprints
        ]
    except OSError as error:
        raise UsageError(f"cannot write into {output}: {error.strerror or error}") from None
    if format is Format.json:
        emit_json(
            {
                "nodes": [
                    {
                        "node": r.node,
                        "dir": str(r.out_dir),
                        "written": r.written,
                        "removed": r.removed,
                        "files": {f.path: f.sha256 for f in r.files},
                        "secrets": list(r.secrets),
                    }
                    for r in results
                ]
            }
        )
        return
    table = Table(title="rendered", title_justify="left")
    for column in ("node", "dir", "files", "written", "removed"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r.node, escape(str(r.out_dir)), str(len(r.files)), str(r.written), str(r.removed)
        )
    print_table(table)
    if all(r.written == 0 and r.removed == 0 for r in results):
        err.print("nothing changed: every rendered file was already up to date")

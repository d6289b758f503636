"""Blueprint commands: validate, explain, schema, packages."""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import typer
import yaml
from rich.table import Table

from nodekit import blueprint
from nodekit.blueprint.compose import display
from nodekit.cli.app import app
from nodekit.cli.output import Format, emit_json, err, out, print_table
from nodekit.errors import BlueprintError, Diagnostic, UsageError

FORMAT = typer.Option(Format.table, "--format", "-f", help="table (for people) or json.")


def _print(diagnostics: Iterable[Diagnostic]) -> None:
    # One line per diagnostic, never wrapped: editors and CI parse FILE:LINE:COL.
    for diagnostic in diagnostics:
        err.print(str(diagnostic), markup=False, soft_wrap=True)


def _fail(diagnostics: Iterable[Diagnostic]) -> NoReturn:
    found = list(diagnostics)
    _print(found)
    err.print(f"{sum(d.severity == 'error' for d in found)} error(s)", markup=False)
    raise typer.Exit(2)


@app.command()
def validate(
    paths: list[Path] = typer.Argument(
        ..., metavar="PATH", help="Blueprint files, or folders: every `kind: Node` file below."
    ),
    format: Format = FORMAT,
) -> None:
    """Validate blueprints: YAML, composition (`extends`), schema and every rule.

    Each problem is printed on stderr as `FILE:LINE:COL: error: KEY.PATH: MESSAGE`,
    pointing into the file that set the value (a base, when inherited); every
    problem of every file is reported in one run. Warnings are printed but do
    not fail. Exit 0 when all are valid, 2 otherwise.

    Examples:

    * `nodekit validate blueprints/`
    * `nodekit validate blueprints/sites/lyon-additive-01.yaml`
    * `nodekit validate blueprints/ --format json | jq .diagnostics`
    """
    result = blueprint.validate(paths, fleet=True)
    if format is Format.json:
        emit_json(
            {
                "ok": result.ok,
                "nodes": [
                    {
                        "name": b.name,
                        "file": display(b.file),
                        "sources": [display(s) for s in b.sources],
                        "digest": b.digest,
                        "warnings": len(b.warnings),
                    }
                    for b in result.blueprints
                ],
                "diagnostics": [d.to_dict() for d in result.diagnostics],
            }
        )
        if not result.ok:
            raise typer.Exit(2)
        return
    for found in result.blueprints:
        out.print(f"ok  {found.name}  ({display(found.file)})", markup=False)
    if not result.ok:
        _fail(result.diagnostics)
    _print(result.diagnostics)


@app.command()
def explain(
    path: Path = typer.Argument(..., metavar="BLUEPRINT", help="A Node blueprint file."),
    key: str | None = typer.Argument(
        None,
        metavar="KEY",
        help="A key path, e.g. `site.timezone` or `compute[edge-01].address`.",
    ),
    format: Format = FORMAT,
) -> None:
    """Show the merged blueprint, or one key's final value and the file:line that set it.

    The merged blueprint is what `extends` composes, with defaults applied
    (each software's default ports, package settings): what nodekit deploys.
    List items are addressed by name (`software[broker]`) or index (`network.flows[0]`).

    Examples:

    * `nodekit explain blueprints/sites/lyon-additive-01.yaml`
    * `nodekit explain blueprints/sites/lyon-additive-01.yaml site.timezone`
    * `nodekit explain blueprints/sites/lyon-additive-01.yaml 'software[broker].settings'`
    """
    if path.is_dir():
        nodes = ", ".join(bp.name for bp in blueprint.load_all([path])) or "none"
        raise UsageError(
            f"explain takes one blueprint file; {path} is a folder (its nodes: {nodes}): "
            f"name one of its files, e.g. nodekit explain {path}/SITE.yaml"
        )
    try:
        found = blueprint.load(path)
    except BlueprintError as error:
        _fail(error.diagnostics)
    _print(found.warnings)
    if key is None:
        if format is Format.json:
            sources = [display(s) for s in found.sources]
            emit_json(
                {
                    "name": found.name,
                    "sources": sources,
                    "digest": found.digest,
                    "blueprint": found.data,
                }
            )
        else:
            head = "".join(f"#   {display(s)}\n" for s in found.sources)
            sys.stdout.write(f"# {found.name}, merged from:\n{head}")
            sys.stdout.write(yaml.safe_dump(found.data, sort_keys=False, allow_unicode=True))
        return
    canonical = found.canonical(key)
    if canonical is None:
        close = difflib.get_close_matches(key, found.paths(), n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else " (see `nodekit explain BLUEPRINT`)"
        err.print(f"error: {found.name} has no key '{key}'{hint}", markup=False, soft_wrap=True)
        raise typer.Exit(2)
    value = found.value(canonical)
    origin = found.origin(canonical)
    if format is Format.json:
        where = None
        if origin is not None:
            where = {"file": origin.file, "line": origin.line, "column": origin.column}
        emit_json({"key": canonical, "value": value, "origin": where})
        return
    if isinstance(value, dict | list) and value:
        text = yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
        sys.stdout.write(f"{canonical}:\n" + "".join(f"  {line}\n" for line in text.splitlines()))
    else:
        shown = value if isinstance(value, str) else json.dumps(value)
        sys.stdout.write(f"{canonical} = {shown}\n")
    sys.stdout.write(
        f"  set by {origin.file}:{origin.line}\n" if origin else "  default (no file sets it)\n"
    )


@app.command()
def schema() -> None:
    """Print the JSON Schema of blueprint files (kind Node and NodeBase).

    Editors use it to complete and check blueprints: a file starting with
    `# yaml-language-server: $schema=<path to the schema>` is checked as you type.

    Example: `nodekit schema > blueprints/nodekit-blueprint-v1.schema.json`
    """
    emit_json(blueprint.schema())


@app.command()
def packages(format: Format = FORMAT) -> None:
    """List the packages `software[].package` may name, with their settings.

    Each package is one Ansible role and one verification. A software item
    without `ports` gets the package's default ports; its `version` pins the
    Debian package listed under "version pins" (none: nodekit's own agent).

    Examples: `nodekit packages`, `nodekit packages --format json`
    """
    specs = [blueprint.PACKAGES[name] for name in sorted(blueprint.PACKAGES)]
    if format is Format.json:
        emit_json(
            [
                {
                    "name": spec.name,
                    "role": spec.role,
                    "apt_packages": list(spec.apt_packages),
                    "version_pins": spec.main_package,
                    "service": spec.service,
                    "default_ports": list(spec.default_ports),
                    "settings": list(spec.settings_keys),
                    "settings_schema": spec.settings.model_json_schema(),
                    "description": spec.description,
                }
                for spec in specs
            ]
        )
        return
    table = Table(title="nodekit packages", title_justify="left")
    for column in ("package", "role", "default ports", "service", "version pins", "settings"):
        table.add_column(column, overflow="fold")
    for spec in specs:
        table.add_row(
            spec.name,
            spec.role,
            ", ".join(spec.default_ports),
            spec.service,
            spec.main_package or "-",
            ", ".join(spec.settings_keys) or "-",
        )
    print_table(table)

"""The ``nodekit`` Typer application; command modules register on it.

It imports no command module, so every command module can import it: the
entry point (nodekit.cli.main) imports both, and nothing imports back.
"""

from __future__ import annotations

import typer

from nodekit import __version__

app = typer.Typer(
    name="nodekit",
    help=(
        "Stand up standardized production nodes from declarative blueprints.\n\n"
        "Typical flow: `nodekit doctor` (is the toolchain here?), `nodekit validate "
        "blueprints/`, `nodekit render SITE.yaml -o out/`, `nodekit deploy SITE.yaml`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nodekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """nodekit: production nodes as code."""

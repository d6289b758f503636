"""Entry point: the ``nodekit`` command and its error-to-exit-code mapping."""

from __future__ import annotations

import sys

import typer

from nodekit import __version__
from nodekit.cli.output import err
from nodekit.errors import BlueprintError, InputError, NodekitError

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


def _register() -> None:
    # Each module adds its commands to `app`; imported here, not at the top,
    # so that `import nodekit.cli.main` stays cheap and cycle-free.
    from nodekit.cli import commands  # noqa: F401


def report(error: NodekitError) -> int:
    """Print an error for people and return the exit code it maps to."""
    if isinstance(error, BlueprintError):
        for diagnostic in error.diagnostics:
            err.print(str(diagnostic), markup=False)
        errors = sum(1 for d in error.diagnostics if d.severity == "error")
        err.print(f"{errors} error(s)", markup=False)
    else:
        err.print(f"error: {error.message}", markup=False)
    return 2 if isinstance(error, InputError) else 1


def _internal_error(error: Exception) -> int:
    """A bug or an unforeseen failure: one clear line, the traceback in a file."""
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile(
        "w", prefix="nodekit-error-", suffix=".log", delete=False
    ) as handle:
        handle.write(traceback.format_exc())
    err.print(
        f"internal error: {type(error).__name__}: {error}\n"
        f"  the traceback is in {handle.name}; please report it",
        markup=False,
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; never lets a traceback reach the user for a nodekit error."""
    _register()
    try:
        result = app(args=argv, standalone_mode=False)
    except NodekitError as error:
        return report(error)
    except typer.Exit as done:
        return int(done.exit_code or 0)
    except typer.Abort:
        err.print("aborted")
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as error:
        # Usage errors of the command line parser (typer's click): shown, exit 2.
        show = getattr(error, "show", None)
        if callable(show) and hasattr(error, "exit_code"):
            show()
            return 2
        return _internal_error(error)
    # In non-standalone mode click returns the code of a typer.Exit instead.
    return result if isinstance(result, int) else 0


def run() -> None:  # pragma: no cover - thin wrapper for the console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()

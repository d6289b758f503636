"""Entry point: the ``nodekit`` command and its error-to-exit-code mapping."""

from __future__ import annotations

import sys

import typer

from nodekit.cli.app import app
from nodekit.cli.output import err
from nodekit.errors import BlueprintError, InputError, NodekitError


def _register() -> None:
    # Each command module adds its commands to `app` (nodekit.cli.app, which
    # imports none of them); imported here so `import nodekit.cli.main` stays cheap.
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
        if error.context.get("fix"):
            err.print(f"  fix: {error.context['fix']}", markup=False, highlight=False)
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

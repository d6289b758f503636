"""Commands on a node's recorded state: history, rollback, backend migrate."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from nodekit.backends import backend_for
from nodekit.backends.sealed import secrets_key
from nodekit.cli.app import app
from nodekit.cli.output import Format, emit_json, err, load_nodes, out, print_table
from nodekit.cli.run import ACCEPT_NEW, BACKEND, FORMAT, IDENTITY, LOCK_TIMEOUT, Progress, _report
from nodekit.errors import UsageError
from nodekit.run import deploy as runs
from nodekit.run.deploy import RunOptions
from nodekit.run.history import last_verified

NODE = typer.Argument(..., help="The node: its name (metadata.name), or its blueprint file.")

backend_app = typer.Typer(
    name="backend",
    help="The state backend: where node state lives (see docs/operations.md).",
    no_args_is_help=True,
)
app.add_typer(backend_app)


def _node_name(node: str) -> str:
    path = Path(node)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise UsageError(f"{node}: no such blueprint file")
        blueprints = load_nodes([path])
        if len(blueprints) != 1:
            raise UsageError(f"{node} holds {len(blueprints)} nodes: name one")
        return blueprints[0].name
    return node


@app.command()
def history(
    node: str = NODE,
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="Newest N runs."),
    format: Format = FORMAT,
    backend: str | None = BACKEND,
) -> None:
    """The node's runs, newest first: command, start and end, status, whether
    verify passed, git commit (`+dirty` when the blueprint differed from it),
    who ran it. `*` marks the last verified-good run: the newest deploy or
    rollback whose verify passed. `nodekit rollback` without --to returns to
    the newest such run before the node's current (newest) deploy or rollback.

    Example: `nodekit history lyon-additive-01 --limit 5`
    """
    name = _node_name(node)
    store = backend_for(backend)
    records = store.runs(name)
    good = last_verified(records)
    shown = records[:limit]
    if format is Format.json:
        emit_json({"node": name, "last_verified": good, "runs": shown})
        return
    if not records:
        err.print(f"no runs of node {name} in the {store.display}", markup=False)
        return
    table = Table(title=f"history of {name}", title_justify="left")
    for column in ("", "run", "command", "started", "finished", "status", "verified",
                   "commit", "by", "detail"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for r in shown:
        commit = (str(r.get("commit") or "-")[:12]) + ("+dirty" if r.get("dirty") else "")
        verified = {True: "yes", False: "NO", None: "-"}[r.get("verified")]
        detail = f"replays {r['replays']}" if r.get("replays") else ""
        if r.get("error"):
            detail = str(r["error"])
        table.add_row(
            "*" if r["id"] == good else "", escape(str(r["id"])), str(r.get("command")),
            str(r.get("started")), str(r.get("finished")), str(r.get("status")), verified,
            commit, escape(str(r.get("by"))), escape(detail),
        )  # fmt: skip
    print_table(table)


@app.command()
def rollback(  # noqa: PLR0917 (typer maps parameters to options)
    node: str = NODE,
    to: str | None = typer.Option(
        None,
        "--to",
        help="The run to return to (default: the last verified-good run "
        "before the current one; `nodekit history NODE` lists them).",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    lock_timeout: float = LOCK_TIMEOUT,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Pulumi and Ansible lines."),
    identity: Path | None = IDENTITY,
    accept_new_host_keys: bool = ACCEPT_NEW,
    format: Format = FORMAT,
    backend: str | None = BACKEND,
) -> None:
    """Re-apply the rendered output kept with an earlier run: infrastructure,
    configuration (software the old rendering lacks is removed) and
    verification, recorded as a run of its own. Needs only the backend: no
    blueprint and no local state, so any runner can roll a node back.

    Example: `nodekit rollback lyon-additive-01 --yes`
    """
    name = _node_name(node)
    store = backend_for(backend)
    if store.shared:
        secrets_key()
    if identity is not None and not identity.is_file():
        raise UsageError(f"--identity {identity}: no such file")
    if not yes:
        import sys

        if not sys.stdin.isatty():
            raise UsageError(f"rollback {name}: confirm with --yes (no terminal to ask on)")
        if not typer.confirm(
            f"roll back {name} to {to or 'its last verified-good run'}?", err=True
        ):
            raise typer.Abort()
    options = RunOptions(
        lock_timeout_s=lock_timeout,
        identity=identity.resolve() if identity else None,
        accept_new_host_keys=accept_new_host_keys,
        backend=backend,
    )
    result = runs.rollback(name, to=to, options=options, on_event=Progress(verbose))
    _report([result], format, "rollback")


@backend_app.command("migrate")
def migrate(
    to: str = typer.Option(
        ..., "--to", help="The shared backend: postgres://USER:PASS@HOST:PORT/DB?sslmode=..."
    ),
    format: Format = FORMAT,
) -> None:
    """Copy this machine's local state (every node's Pulumi stack, secrets,
    shared files and run history) into a shared backend. Run it once, from the
    laptop that deployed the nodes, then point every runner at the backend
    (NODEKIT_BACKEND) with the same NODEKIT_SECRETS_KEY.

    A node the shared backend already knows (state or history) is skipped:
    runners share it already, and nothing of theirs is overwritten.

    Example: `NODEKIT_SECRETS_KEY=... nodekit backend migrate --to postgres://...`
    """
    from nodekit.backends.migrate import migrate_all

    target = backend_for(to)
    if not target.shared:
        raise UsageError(f"--to {to}: migrate copies into a shared backend (postgres://...)")
    secrets_key()
    results = migrate_all(target, on_line=lambda line: err.print(line, markup=False))
    if format is Format.json:
        emit_json({"backend": target.display, "nodes": [r.to_dict() for r in results]})
        return
    for r in results:
        out.print(
            f"{r.node}: skipped: {r.skipped}"
            if r.skipped
            else f"{r.node}: stack {'copied' if r.stack else 'none'}, {r.secrets} secret(s), "
            f"{r.files} shared file(s), {r.runs} run(s)",
            markup=False,
        )
    if not results:
        err.print("no local node state to migrate", markup=False)

"""Commands that act on real nodes: deploy, plan, verify, drift, destroy, bundle."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from nodekit.backends import backend_for
from nodekit.backends.sealed import secrets_key
from nodekit.blueprint import Blueprint
from nodekit.cli.app import app
from nodekit.cli.output import Format, emit_json, err, load_nodes, out, print_table
from nodekit.errors import UsageError
from nodekit.run import deploy as runs
from nodekit.run.deploy import Event, RunOptions, RunResult

LOCK_TIMEOUT = typer.Option(
    600.0, "--lock-timeout", help="Seconds to wait for another run on the same node."
)
FORMAT = typer.Option(Format.table, "--format", "-f", help="table or json.")
IDENTITY = typer.Option(
    None,
    "--identity",
    "-i",
    help="ssh target: private key to log in with (default: the keys of ssh-agent).",
)
ACCEPT_NEW = typer.Option(
    False,
    "--accept-new-host-keys",
    help="ssh target: record the host key of a host seen for the first time (a changed "
    "key is always refused).",
)
PATHS = typer.Argument(..., help="Node blueprint files or folders of them.")
BACKEND = typer.Option(
    None,
    "--backend",
    envvar="NODEKIT_BACKEND",
    show_envvar=True,
    help="Where node state lives: 'local' (this machine's $NODEKIT_STATE, the default) or "
    "postgres://USER:PASS@HOST:PORT/DB?sslmode=... shared by every runner "
    "(needs NODEKIT_SECRETS_KEY).",
)


class Progress:
    """Stage progress on stderr: one line per stage event, thread-safe.

    With a terminal, lines are coloured; without one (CI, pipes) they are plain.
    Ansible task and Pulumi lines are shown only with --verbose.
    """

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if event.kind == "info" and not self.verbose:
            return
        head = f"{event.node:<24} {event.stage:<14}"
        with self._lock:
            if err.is_terminal:
                mark = {"start": "…", "done": "[green]✓[/]", "failed": "[red]✗[/]", "info": " ",
                        "wait": "…"}  # fmt: skip
                err.print(f"{escape(head)} {mark[event.kind]} {escape(event.message)}".rstrip())
            else:
                word = {"start": "start", "done": "ok", "failed": "FAILED", "info": " ",
                        "wait": "wait"}  # fmt: skip
                line = f"{head} {word[event.kind]} {event.message}".rstrip()
                err.print(line, markup=False, highlight=False)


def _confirm(action: str, blueprints: list[Blueprint], yes: bool) -> None:
    if yes:
        return
    names = ", ".join(bp.node.metadata.name or "?" for bp in blueprints)
    if not sys.stdin.isatty():
        raise UsageError(f"{action} {names}: confirm with --yes (no terminal to ask on)")
    if not typer.confirm(f"{action} {names}?", err=True):
        raise typer.Abort()


def _run_all(
    blueprints: list[Blueprint],
    action: Callable[..., RunResult],
    *,
    lock_timeout: float,
    verbose: bool,
    identity: Path | None = None,
    accept_new: bool = False,
    backend: str | None = None,
    full: bool = False,
    **kwargs: object,
) -> list[RunResult]:
    """Run one operation on every node, in parallel (each has its own workspace)."""
    progress = Progress(verbose)
    if identity is not None and not identity.is_file():
        raise UsageError(f"--identity {identity}: no such file")
    options = RunOptions(
        lock_timeout_s=lock_timeout,
        identity=identity.resolve() if identity else None,
        accept_new_host_keys=accept_new,
        backend=backend,
        full=full,
    )
    if backend_for(backend).shared:  # refused before any run starts: exit 2
        secrets_key()
    with ThreadPoolExecutor(max_workers=max(1, len(blueprints))) as pool:
        futures = [
            pool.submit(action, bp, options=options, on_event=progress, **kwargs)
            for bp in blueprints
        ]
        return [f.result() for f in futures]


def _report(
    results: list[RunResult], format: Format, title: str, *, drift_fails: bool = False
) -> None:
    """The results as a table (stdout) and errors (stderr), or one JSON object
    ``{"command", "nodes": [...]}``; exit 1 when a node failed (or drifted,
    with ``drift_fails``)."""
    if format is Format.json:
        emit_json({"command": title, "nodes": [r.to_dict() for r in results]})
    else:
        table = Table(title=title, title_justify="left")
        for column in ("node", "stage", "status", "seconds", "changed", "detail"):
            table.add_column(column, overflow="fold")
        for r in results:
            for s in r.stages:
                status = "[green]ok[/]" if s.ok else "[red]FAILED[/]"
                table.add_row(
                    escape(r.node), s.stage, status, f"{s.seconds:.1f}", str(s.changed),
                    escape(s.detail),
                )  # fmt: skip
        print_table(table)
        for r in results:
            for line in r.drift:
                out.print(f"{r.node}: {line}", markup=False)
            if drift_fails and r.drift and r.ok:
                err.print(
                    f"{r.node}: {len(r.drift)} difference(s) from the blueprint", markup=False
                )
            for line in r.removals:
                out.print(f"{r.node}: removed: {line}", markup=False)
            for line in r.fleet:
                out.print(f"{r.node}: {line}", markup=False, highlight=False)
            for line in r.next if r.ok else []:
                out.print(f"{r.node}: {line}", markup=False, highlight=False)
            for note in r.notes:
                err.print(f"{r.node}: note: {note}", markup=False, highlight=False)
            for problem in r.preflight:
                out.print(f"{r.node}: preflight: {problem}", markup=False)
            if r.error:
                err.print(f"[red]error[/]: {escape(r.error)}")
                if r.fix:
                    err.print(f"  fix: {r.fix}", markup=False, highlight=False)
                err.print(f"  run folder: {r.run_dir}", markup=False, highlight=False)
    if any(not r.ok or (drift_fails and r.drift) for r in results):
        raise typer.Exit(1)


@app.command()
def deploy(  # noqa: PLR0917 (typer maps parameters to options)
    paths: list[Path] = PATHS,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    lock_timeout: float = LOCK_TIMEOUT,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Pulumi and Ansible lines."),
    identity: Path | None = IDENTITY,
    accept_new_host_keys: bool = ACCEPT_NEW,
    format: Format = FORMAT,
    backend: str | None = BACKEND,
    full: bool = typer.Option(
        False,
        "--full",
        help="Run every stage even when nothing changed since the last "
        "verified deploy (Pulumi refresh and up, the whole playbook, every check).",
    ),
) -> None:
    """Deploy nodes: render, bundle, preflight (every host checked before any
    change), infrastructure (Pulumi), configure (Ansible), verify (testinfra),
    record.

    A deploy with nothing to do is quick: when the rendering, bundle and
    secrets are those of the last verified deploy and the live node still
    matches it (containers and networks; on every host, in one call, the
    managed files, units, packages and firewall), Pulumi, Ansible and the
    checks are skipped and the stages say so. Anything that differs (a
    hand-edited file, a stopped service) runs every stage, which repairs it.
    --full always runs every stage.

    On the ssh target, hosts are reached over SSH as each host's `ssh.user`
    (default nodekit, with passwordless sudo), with the keys of ssh-agent or
    --identity; an unknown host key is refused unless --accept-new-host-keys
    (or `nodekit trust`), a changed one always.

    A second deploy of the same node waits for the first (up to
    --lock-timeout); different nodes deploy in parallel. A failed stage names
    node, host and stage and exits 1; the state stays consistent, so running
    the same deploy again continues. Each run keeps its logs and reports in a
    run folder under $NODEKIT_STATE (default ~/.local/state/nodekit).

    Example: `nodekit deploy blueprints/sites/lyon-additive-01.yaml --yes`
    """
    blueprints = load_nodes(paths)
    _confirm("deploy", blueprints, yes)
    results = _run_all(
        blueprints,
        runs.deploy,
        lock_timeout=lock_timeout,
        verbose=verbose,
        identity=identity,
        accept_new=accept_new_host_keys,
        backend=backend,
        full=full,
    )
    _report(results, format, "deploy")


@app.command(name="plan")
def plan_command(
    paths: list[Path] = PATHS,
    lock_timeout: float = LOCK_TIMEOUT,
    identity: Path | None = IDENTITY,
    format: Format = FORMAT,
    backend: str | None = BACKEND,
) -> None:
    """Show what a deploy would change: Pulumi preview plus Ansible
    check-and-diff mode, one summary per node, and what it would remove
    (`remove: HOST: software ...`: software, hosts the blueprint no longer
    has). Changes nothing."""
    blueprints = load_nodes(paths)
    results = _run_all(
        blueprints,
        runs.inspect,
        lock_timeout=lock_timeout,
        verbose=False,
        identity=identity,
        operation="plan",
        backend=backend,
    )
    if format is Format.table and all(r.ok and not r.drift for r in results):
        err.print("nothing to do: every node matches its blueprint")
    _report(results, format, "plan")


@app.command()
def verify(
    paths: list[Path] = PATHS,
    lock_timeout: float = LOCK_TIMEOUT,
    identity: Path | None = IDENTITY,
    format: Format = FORMAT,
    backend: str | None = BACKEND,
) -> None:
    """Run the node's generated checks (testinfra) against the live node.

    Exit 1 with every failing check named by host and check."""
    blueprints = load_nodes(paths)
    results = _run_all(
        blueprints,
        runs.verify,
        lock_timeout=lock_timeout,
        verbose=False,
        identity=identity,
        backend=backend,
    )
    if format is Format.table:
        for r in results:
            for failure in r.failures:
                out.print(f"{r.node}: FAILED {failure}", markup=False)
    _report(results, format, "verify")


@app.command()
def drift(
    paths: list[Path] = PATHS,
    lock_timeout: float = LOCK_TIMEOUT,
    identity: Path | None = IDENTITY,
    format: Format = FORMAT,
    backend: str | None = BACKEND,
) -> None:
    """Find what drifted from the blueprint: Pulumi refresh and preview,
    Ansible check mode, and the generated checks. Lists each difference;
    exit 1 when anything drifted. `nodekit deploy` repairs it."""
    blueprints = load_nodes(paths)
    results = _run_all(
        blueprints,
        runs.inspect,
        lock_timeout=lock_timeout,
        verbose=False,
        identity=identity,
        operation="drift",
        backend=backend,
    )
    if format is Format.table and all(r.ok and not r.drift for r in results):
        err.print("no drift: every node matches its blueprint")
    _report(results, format, "drift", drift_fails=True)


@app.command()
def destroy(  # noqa: PLR0917 (typer maps parameters to options)
    paths: list[Path] = PATHS,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    lock_timeout: float = LOCK_TIMEOUT,
    identity: Path | None = IDENTITY,
    format: Format = FORMAT,
    backend: str | None = BACKEND,
) -> None:
    """Remove the nodes: on the local target their containers and networks;
    on the ssh target the software nodekit installed on each host (by its
    record of what it installed: nothing else is touched, the machines, their
    admin user and SSH settings stay). Then the stack state and secrets; the
    run history stays. Idempotent: destroying a node that is not deployed
    does nothing and exits 0."""
    blueprints = load_nodes(paths)
    _confirm("destroy", blueprints, yes)
    results = _run_all(
        blueprints,
        runs.destroy,
        lock_timeout=lock_timeout,
        verbose=False,
        identity=identity,
        backend=backend,
    )
    _report(results, format, "destroy")


@app.command()
def bundle(
    path: Path = typer.Argument(..., help="A Node blueprint."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder of the bundle."),
    image: bool = typer.Option(True, "--image/--no-image", help="Include the node image."),
    format: Format = FORMAT,
) -> None:
    """Gather every Debian package the node's roles need, with dependencies,
    into a local apt repository (Packages index included), plus the node
    image: what an air-gapped site receives. Hosts use it with the apt line
    `deb [trusted=yes] file:/srv/nodekit/bundle ./`."""
    from nodekit.run.site_bundle import make_site_bundle

    blueprints = load_nodes([path])
    if len(blueprints) != 1:
        names = ", ".join(bp.node.metadata.name or "?" for bp in blueprints)
        raise UsageError(
            f"bundle takes one Node blueprint; {path} holds {len(blueprints)}: {names}"
        )
    (blueprint,) = blueprints
    result = make_site_bundle(blueprint, output, include_image=image, on_line=err.print)
    if format is Format.json:
        emit_json(result.to_dict())
    else:
        out.print(
            f"bundle of {result.node}: {len(result.packages)} packages, "
            f"{result.bytes / 1e6:.1f} MB in {result.path}"
            + (f", image {result.image_file.name}" if result.image_file else ""),
            markup=False,
        )


@app.command()
def trust(
    path: Path = typer.Argument(..., help="A Node blueprint of target ssh."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Record without asking."),
    identity: Path | None = IDENTITY,
    backend: str | None = BACKEND,
) -> None:
    """Record the current SSH host keys of the node's hosts in its state,
    after printing each key's SHA256 fingerprint (compare them with the
    hosts' own, e.g. `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on
    their console). A host whose recorded key differs is listed and left
    alone: remove its line from the node's known_hosts first."""
    from nodekit.run.trust import scan_keys, trust_keys

    (blueprint,) = load_nodes([path])
    found = scan_keys(blueprint, identity=identity, backend=backend)
    for key in found:  # tab-separated: host, address, fingerprint, status
        sys.stdout.write(f"{key.host}\t{key.address}\t{key.fingerprint}\t{key.status}\n")
    new = [k for k in found if k.status == "new"]
    if not new:
        err.print("nothing to record: every reachable host's key is known", markup=False)
    elif yes or (sys.stdin.isatty() and typer.confirm(f"record {len(new)} key(s)?", err=True)):
        trust_keys(blueprint, new, backend=backend)
        err.print(f"recorded {len(new)} key(s)", markup=False)
    else:
        raise UsageError("confirm with --yes (no terminal to ask on)")
    if any(k.status in ("changed", "unreachable") for k in found):
        raise typer.Exit(1)

"""Fleet commands: affected, rollout, gitops plan, gitops apply."""

from __future__ import annotations

import enum
import sys
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from nodekit.backends import backend_for
from nodekit.backends.sealed import secrets_key
from nodekit.cli.app import app
from nodekit.cli.output import Format, emit_json, err, load_nodes, out, print_table
from nodekit.cli.run import ACCEPT_NEW, BACKEND, IDENTITY, LOCK_TIMEOUT, Progress, _confirm
from nodekit.errors import UsageError
from nodekit.gitops.affected import affected as find_affected
from nodekit.gitops.rollout import Rollout, RolloutOptions, rollout, select
from nodekit.run.deploy import RunOptions

gitops_app = typer.Typer(
    name="gitops",
    help="A GitOps pipeline's steps: plan a pull request, apply a merge (docs/gitops.md).",
    no_args_is_help=True,
)
app.add_typer(gitops_app)


class AffectedFormat(enum.StrEnum):
    table = "table"
    json = "json"
    matrix = "matrix"


class PlanFormat(enum.StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


BASE = typer.Option(..., "--base", help="The revision to compare with (a commit, branch or tag).")
HEAD = typer.Option("HEAD", "--head", help="The revision to deploy (default HEAD).")
FLEET_PATHS = typer.Argument(
    None,
    help="Folders or files of Node blueprints in the repository (default: the current folder).",
)
CANARY = typer.Option(
    1, "--canary", help='Nodes in the first wave (plus those labelled canary: "true").'
)
BATCH = typer.Option("25%", "--batch", help="Nodes per later wave: N, or P% of the selected nodes.")
MAX_FAIL = typer.Option(
    "0",
    "--max-fail",
    help="Failed or unreachable nodes tolerated (N or P%) before the rollout stops.",
)
PARALLEL = typer.Option(4, "--parallel", help="Nodes deployed at once within a wave.")


def _options(
    lock_timeout: float, identity: Path | None, backend: str | None, accept_new: bool = False
) -> RunOptions:
    if identity is not None and not identity.is_file():
        raise UsageError(f"--identity {identity}: no such file")
    if backend_for(backend).shared:
        secrets_key()
    return RunOptions(
        lock_timeout_s=lock_timeout, identity=identity.resolve() if identity else None,
        backend=backend, accept_new_host_keys=accept_new,
    )  # fmt: skip


@app.command()
def affected(  # noqa: PLR0917 (typer maps parameters to options)
    base: str | None = typer.Option(
        None, "--base", help="The revision to compare with (a commit, branch or tag)."
    ),
    head: str = HEAD,
    paths: list[str] | None = FLEET_PATHS,
    deployed: bool = typer.Option(
        False,
        "--deployed",
        help="Compare head with the rendering kept at each node's last "
        "deploy in the state backend (shows what a nodekit upgrade would change).",
    ),
    format: AffectedFormat = typer.Option(
        AffectedFormat.table, "--format", "-f", help="table, json, or matrix (a CI job matrix)."
    ),
    backend: str | None = BACKEND,
) -> None:
    """The nodes a change reaches: every node resolved at both revisions (read
    from git objects: the work tree is left alone) and compared. A change to a
    shared base, an overlay or a role reaches exactly the nodes whose result it
    changes; a comment or formatting edit reaches none.

    Each node is `changed` (with the keys whose values changed, FILE:LINE at
    head), `added` or `removed`. An invalid blueprint at head exits 2 with its
    location; at base it is reported. With --deployed (alone or with --base),
    head is also compared with what each node last deployed, nodekit's own
    version ignored: an upgrade of nodekit shows up there.

    Example: `nodekit affected --base origin/main blueprints/ --format matrix`
    """
    if base is None and not deployed:
        raise UsageError("affected needs --base REF, --deployed, or both")
    store = backend_for(backend) if deployed else None
    found = find_affected(Path.cwd(), base, head, paths, deployed=store)
    if format is AffectedFormat.json:
        emit_json(found.to_dict())
        return
    if format is AffectedFormat.matrix:
        emit_json(found.matrix())
        return
    for problem in found.base_problems:
        err.print(f"at base (not fatal): {problem}", markup=False)
    if not found.nodes:
        err.print(f"no node affected ({found.unchanged} unchanged)", markup=False)
        return
    since = found.base[:12] if found.base else "deployed"
    table = Table(title=f"affected {since}..{found.head[:12]}", title_justify="left")
    for column in ("node", "change", "blueprint", "why"):
        table.add_column(column, overflow="fold")
    for n in found.nodes:
        table.add_row(n.node, n.status, n.blueprint, escape("\n".join(n.reasons)))
    print_table(table)
    err.print(f"{len(found.nodes)} affected, {found.unchanged} unchanged", markup=False)


def _print_rollout(result: Rollout, title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("node", "wave", "status", "run", "detail"):
        table.add_column(column, overflow="fold")
    for n in result.nodes:
        colour = {"deployed": "green", "skipped": "yellow"}.get(n.status, "red")
        table.add_row(
            escape(n.node), str(n.wave), f"[{colour}]{n.status}[/]", n.run or "-",
            escape(n.error or ""),
        )  # fmt: skip
    print_table(table)
    if result.status == "stopped":
        err.print(
            f"rollout stopped: more than {result.budget} node(s) failed (--max-fail); "
            "skipped nodes were not touched",
            markup=False,
        )


@app.command(name="rollout")
def rollout_command(  # noqa: PLR0917 (typer maps parameters to options)
    paths: list[Path] = typer.Argument(..., help="Node blueprint files or folders of them."),
    selector: list[str] = typer.Option(
        [], "--selector", "-l", help="Only nodes whose metadata.labels has KEY=VALUE (repeatable)."
    ),
    canary: int = CANARY,
    batch: str = BATCH,
    max_fail: str = MAX_FAIL,
    parallel: int = PARALLEL,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    lock_timeout: float = LOCK_TIMEOUT,
    identity: Path | None = IDENTITY,
    accept_new_host_keys: bool = ACCEPT_NEW,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Pulumi and Ansible lines."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
    backend: str | None = BACKEND,
) -> None:
    """Deploy nodes in waves: the canaries first (the first --canary nodes in the
    order given, and those labelled canary: "true"), then batches of --batch.
    A wave must deploy and verify before the next starts; its nodes run in
    parallel. When more than --max-fail nodes fail (unreachable ones count,
    reported apart) the rollout stops and the rest are `skipped`, untouched.
    Exit 0 only when every node deployed and verified.

    Example: `nodekit rollout blueprints/sites/ --selector region=eu-west --batch 50% --yes`
    """
    blueprints = select(load_nodes(paths), selector)
    if not blueprints:
        raise UsageError(f"no node matches {' '.join(selector)}")
    _confirm("roll out", blueprints, yes)
    options = RolloutOptions(canary, batch, max_fail, parallel)
    result = rollout(
        blueprints,
        options,
        run_options=_options(lock_timeout, identity, backend, accept_new_host_keys),
        on_event=Progress(verbose),
        on_wave=lambda n, names: err.print(f"wave {n}: {', '.join(names)}", markup=False),
    )
    if format is Format.json:
        emit_json(result.to_dict())
    else:
        _print_rollout(result, "rollout")
    if not result.ok:
        raise typer.Exit(1)


@gitops_app.command("plan")
def gitops_plan_command(  # noqa: PLR0917 (typer maps parameters to options)
    base: str = BASE,
    head: str = HEAD,
    paths: list[str] | None = FLEET_PATHS,
    format: PlanFormat = typer.Option(
        PlanFormat.table, "--format", "-f", help="table, markdown (a PR comment) or json."
    ),
    lock_timeout: float = LOCK_TIMEOUT,
    identity: Path | None = IDENTITY,
    backend: str | None = BACKEND,
) -> None:
    """For a pull request: validate the blueprints at head, find the affected
    nodes, check them against the OT security policy (`nodekit policy check`,
    with the policy file at head), and `plan` each changed or added one.
    Changes nothing. Exit 2 when a blueprint or the policy file at head is
    invalid, 1 when a plan failed or an unwaived policy error was found.

    Example: `nodekit gitops plan --base origin/main blueprints/ --format markdown > plan.md`
    """
    from nodekit.gitops.pipeline import gitops_plan

    result = gitops_plan(
        Path.cwd(), base, head, paths, options=_options(lock_timeout, identity, backend),
        on_event=Progress(False),
    )  # fmt: skip
    if format is PlanFormat.json:
        emit_json(result.to_dict())
    elif format is PlanFormat.markdown:
        sys.stdout.write(result.markdown())
    else:
        out.print(result.markdown(), markup=False, highlight=False)
    if not result.ok:
        raise typer.Exit(1)


@gitops_app.command("apply")
def gitops_apply_command(  # noqa: PLR0917 (typer maps parameters to options)
    base: str = BASE,
    head: str = HEAD,
    paths: list[str] | None = FLEET_PATHS,
    canary: int = CANARY,
    batch: str = BATCH,
    max_fail: str = MAX_FAIL,
    parallel: int = PARALLEL,
    allow_destroy: bool = typer.Option(
        False, "--allow-destroy", help="Destroy nodes whose blueprint head no longer has."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    lock_timeout: float = LOCK_TIMEOUT,
    identity: Path | None = IDENTITY,
    accept_new_host_keys: bool = ACCEPT_NEW,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Pulumi and Ansible lines."),
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
    backend: str | None = BACKEND,
) -> None:
    """After a merge: roll out the changed and added nodes (waves, budget and
    parallelism as in `nodekit rollout`), each run recorded with the head
    commit; destroy removed nodes only with --allow-destroy (otherwise they are
    listed as `kept`). With NODEKIT_BACKEND set, every runner shares state.

    Example: `nodekit gitops apply --base HEAD~1 blueprints/ --yes`
    """
    from nodekit.gitops.pipeline import gitops_apply

    if not yes and not sys.stdin.isatty():
        raise UsageError("gitops apply: confirm with --yes (no terminal to ask on)")
    if not yes and not typer.confirm(f"apply {base}..{head}?", err=True):
        raise typer.Abort()
    result = gitops_apply(
        Path.cwd(), base, head, paths,
        rollout_options=RolloutOptions(canary, batch, max_fail, parallel),
        options=_options(lock_timeout, identity, backend, accept_new_host_keys),
        allow_destroy=allow_destroy, on_event=Progress(verbose),
    )  # fmt: skip
    if format is Format.json:
        emit_json(result.to_dict())
    else:
        _print_rollout(result.rollout, f"gitops apply {result.affected.head[:12]}")
        for r in result.destroyed:
            err.print(f"{r.node}: destroyed" if r.ok else f"{r.node}: destroy FAILED: {r.error}",
                      markup=False)  # fmt: skip
        for name in result.kept:
            err.print(f"{name}: removed from the fleet, kept: destroy it with --allow-destroy",
                      markup=False)  # fmt: skip
        if not result.affected.nodes:
            err.print("no node affected: nothing to do", markup=False)
    if not result.ok:
        raise typer.Exit(1)

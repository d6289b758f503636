"""Deploy, plan, verify, drift, rollback and destroy one node: operations made of stages.

Each operation runs through :func:`nodekit.run.operation.operate` (lock, run
folder, record in the state backend) and composes the stages of
:mod:`nodekit.run.stages`, which ask the node's target (:mod:`nodekit.targets`)
how to reach its hosts. Nothing here knows about the terminal or branches on
a target's name.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

from nodekit.errors import PulumiFailed, StageError
from nodekit.render import RenderResult, load_rendered, render
from nodekit.render.plan import NodePlan, plan, port_number
from nodekit.run import stages
from nodekit.run.apply import apply
from nodekit.run.fleet_tls import tls_maker
from nodekit.run.history import Provenance, rollback_target, unpack
from nodekit.run.operation import (
    STAGES,
    Event,
    EventFn,
    Run,
    RunOptions,
    RunResult,
    StageResult,
    operate,
)
from nodekit.run.verify import run_checks
from nodekit.targets import target_for
from nodekit.targets.base import Target, outage_named

if TYPE_CHECKING:
    from nodekit.blueprint import Blueprint

__all__ = [
    "STAGES",
    "Event",
    "EventFn",
    "RunOptions",
    "RunResult",
    "StageResult",
    "deploy",
    "destroy",
    "inspect",
    "rollback",
    "verify",
]


def _port(node: NodePlan, store: str | None) -> str:
    """`` -p PORT`` when the historian's PostgreSQL does not listen on 5432."""
    port = next((port_number(s.ports[0]) for s in node.services if s.name == store), 5432)
    return f" -p {port}" if port != 5432 else ""


def telemetry_queries(node: NodePlan) -> list[str]:
    """How to look at the newest telemetry rows of each historian the node feeds."""
    target = target_for(node)
    query = "SELECT * FROM telemetry ORDER BY time DESC LIMIT 10"
    return [
        f"telemetry ({s.name}): " + target.host_command(
            node.host(s.host),
            f"runuser -u postgres -- psql{_port(node, s.store)} -d "
            f"{s.settings.get('database') or 'historian'} -c '{query}'",
        )
        for s in node.services
        if s.package == "telemetry-ingest"
    ]  # fmt: skip


def deploy(
    blueprint: Blueprint, *, options: RunOptions | None = None, on_event: EventFn | None = None
) -> RunResult:
    """Render, bundle, preflight, create the infrastructure, configure, verify, record."""
    options = options or RunOptions()

    def body(run: Run) -> None:
        node = plan(blueprint.data)
        rendered = stages.render_stage(run, blueprint, run.state.rendered)
        apply(run, node, options, rendered)
        run.result.next.extend(telemetry_queries(node))

    return operate(
        blueprint.name, "deploy", options, on_event, body, provenance=Provenance.of(blueprint)
    )


def rollback(
    node_name: str,
    *,
    to: str | None = None,
    options: RunOptions | None = None,
    on_event: EventFn | None = None,
) -> RunResult:
    """Re-apply a recorded rendering (default: the last verified-good run before
    the current one): infrastructure, configuration, verification; a run of its own.
    Needs nothing but the backend: no blueprint, no local state."""
    options = options or RunOptions()

    def body(run: Run) -> None:
        with run.stage("render") as out:
            chosen = rollback_target(run.backend.runs(node_name), to)
            data = run.backend.rendering(node_name, str(chosen["id"]))
            if data is None:
                raise StageError(
                    f"run {chosen['id']} kept no rendered output to re-apply",
                    node=node_name, stage="render",
                )  # fmt: skip
            shutil.rmtree(run.state.rendered, ignore_errors=True)
            unpack(data, run.state.rendered)
            run.rendered = run.state.rendered
            run.provenance = Provenance(
                chosen.get("blueprint_digest"), chosen.get("commit"), chosen.get("dirty"),
                replays=str(chosen["id"]),
            )  # fmt: skip
            rendered = load_rendered(run.state.rendered)
            out["detail"] = f"rendering of run {chosen['id']} ({len(rendered.files)} files)"
        node = plan(json.loads((run.state.rendered / "blueprint.json").read_text()))
        apply(run, node, options, rendered)
        run.result.next.extend(telemetry_queries(node))

    return operate(node_name, "rollback", options, on_event, body)


def verify(
    blueprint: Blueprint, *, options: RunOptions | None = None, on_event: EventFn | None = None
) -> RunResult:
    """Run the node's generated checks against the live node."""
    options = options or RunOptions()

    def body(run: Run) -> None:
        node = plan(blueprint.data)
        target = target_for(node)
        stages.render_stage(run, blueprint, run.result.run_dir / "rendered")
        runner = target.runner(stages.access_for(run, options))
        with outage_named(target):
            stages.verify_stage(run, node, run.result.run_dir / "rendered" / "tests", runner)

    return operate(
        blueprint.name, "verify", options, on_event, body, provenance=Provenance.of(blueprint)
    )


def inspect(
    blueprint: Blueprint,
    *,
    operation: str,
    options: RunOptions | None = None,
    on_event: EventFn | None = None,
) -> RunResult:
    """``plan`` (preview and check mode) or ``drift`` (refresh, check mode, verify).

    Nothing is changed: Pulumi previews (refreshing in memory for drift) and
    Ansible runs in check-and-diff mode. ``result.drift`` lists each difference,
    removals included (``remove: ...``).
    """
    options = options or RunOptions()

    def body(run: Run) -> None:
        node = plan(blueprint.data)
        target = target_for(node)
        rendered_dir = run.result.run_dir / "rendered"
        rendered = stages.render_stage(run, blueprint, rendered_dir)
        with outage_named(target):
            _inspect(run, node, target, rendered, operation=operation, options=options)

    return operate(
        blueprint.name, operation, options, on_event, body, provenance=Provenance.of(blueprint)
    )


def _inspect(
    run: Run, node: NodePlan, target: Target, rendered: RenderResult, *, operation: str,
    options: RunOptions,
) -> None:  # fmt: skip
    rendered_dir = run.result.run_dir / "rendered"
    with run.stage("infrastructure") as out:
        try:
            preview = stages.stack(node, run, rendered_dir).preview(refresh=operation == "drift")
        except PulumiFailed as error:
            raise stages.fail_pulumi(node, error) from None
        out["changed"] = preview.changed
        changes = {op: n for op, n in preview.summary.items() if op != "same"}
        out["detail"] = ", ".join(f"{op} {n}" for op, n in changes.items()) or "no change"
        run.result.drift += [f"infrastructure: {n} to {op}" for op, n in changes.items()]
    runner = target.runner(stages.access_for(run, options, node=node))
    deployed = (run.state.root / "deployed.json").exists()
    with run.stage("configure") as out:
        if not deployed or preview.summary.get("create"):
            out["detail"] = "hosts not created yet: a deploy configures them fully"
            run.result.drift.append("configure: hosts not deployed yet")
        else:
            hosts = json.loads((run.state.root / "deployed.json").read_text())["hosts"]
            hosts = {h: a for h, a in hosts.items() if h in {x.name for x in node.hosts}}
            result = stages.converge(
                run, node, rendered=rendered_dir, hosts=hosts,
                secrets=run.secrets_file(
                    rendered.secrets, tls_maker(run.backend, node, run.result.run_dir)
                ),
                runner=runner, check=True,
            )  # fmt: skip
            out["changed"] = result.total_changed
            out["detail"] = f"{result.total_changed} tasks would change"
            run.result.drift += [f"configure: {t}" for t in result.changed_tasks]
    if operation == "drift" and deployed:
        with run.stage("verify") as out:
            checks = run_checks(rendered_dir / "tests", run.result.run_dir, env=runner.env)
            run.result.failures = [str(f) for f in checks.failures]
            run.result.drift += [f"verify: {f}" for f in checks.failures]
            out["detail"] = f"{checks.passed} passed, {len(checks.failures)} failed"


def destroy(
    blueprint: Blueprint, *, options: RunOptions | None = None, on_event: EventFn | None = None
) -> RunResult:
    """Remove what the node's stack made (containers and networks on the local
    target), what nodekit installed on real hosts (ssh target: by the per-host
    record, nothing else), its secrets and shared state; its history stays.
    Idempotent."""
    options = options or RunOptions()

    def body(run: Run) -> None:
        node = plan(blueprint.data)
        target = target_for(node)
        state = run.state
        if not target.destroys_removed_hosts and (state.root / "deployed.json").exists():
            render(blueprint, run.result.run_dir / "rendered")
            with run.stage("configure") as out:
                run.result.removals = stages.remove_everything(run, node, target, options)
                out["changed"] = len(run.result.removals)
                out["detail"] = f"nodekit's software removed from {out['changed']} host(s)"
        with outage_named(target), run.stage("infrastructure") as out:
            removed = 0
            if run.backend.has_stack(state):
                rendered_dir = run.result.run_dir / "rendered"
                render(blueprint, rendered_dir)
                run.rendered = rendered_dir
                try:
                    result = stages.stack(node, run, rendered_dir).destroy(remove=True)
                except PulumiFailed as error:
                    if "no stack named" not in (error.detail or "").lower():
                        raise stages.fail_pulumi(node, error) from None
                    result = None
                removed = result.summary.get("delete", 0) if result else 0
            removed += target.remove_leftovers()
            out["changed"] = removed
            done = f"{removed} resources removed" if removed else "nothing to destroy"
            out["detail"] = f"{done}; {target.destroy_note()}"
        with run.stage("record") as out:
            for path in (
                state.rendered,
                state.pulumi,
                state.root / "bundle",
                state.root / "program",
            ):
                shutil.rmtree(path, ignore_errors=True)
            for path in (
                state.secrets_file,
                state.root / "deployed.json",
                state.root / "inventory-outputs.yml",
            ):
                path.unlink(missing_ok=True)
            run.backend.forget(state)
            out["detail"] = "stack state removed"

    return operate(
        blueprint.name, "destroy", options, on_event, body, provenance=Provenance.of(blueprint)
    )

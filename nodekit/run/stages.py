"""The stages operations are made of, each driven by the node's target.

render -> bundle -> preflight -> infrastructure -> configure -> verify -> record

Each stage runs inside ``run.stage(name)`` (timing, events, its result) and
raises a :class:`StageError` naming node, host and stage when it fails.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from nodekit.agents import populate_wheels
from nodekit.errors import NodekitError, PulumiFailed, StageError, VerifyFailed
from nodekit.render import PLAYBOOKS, RenderResult, render
from nodekit.render.plan import HostPlan, NodePlan
from nodekit.run.ansible_stage import AnsibleResult, run_playbook
from nodekit.run.bundle import build_bundle
from nodekit.run.fleet_verify import hub_report
from nodekit.run.fleet_verify import site_checks as fleet_checks
from nodekit.run.operation import Run
from nodekit.run.pulumi_stack import PulumiStack, stop_leftovers
from nodekit.run.removal import (
    Installed,
    describe,
    former_hosts,
    installed,
    previous,
    reach,
    removals,
)
from nodekit.run.site_bundle import needs_wheels, node_packages
from nodekit.run.state import NodeState
from nodekit.run.verify import VerifyResult, run_checks
from nodekit.targets import RunAccess, Runner, Target, target_for
from nodekit.toolchain import baseline_status, cache_dir

if TYPE_CHECKING:
    from nodekit.blueprint import Blueprint

PLAYBOOK = PLAYBOOKS / "site.yml"


def access_for(
    run: Run, options: Any, *, needed_mb: int = 0, node: NodePlan | None = None
) -> RunAccess:
    """How the run reaches the hosts; with ``node``, also the hosts the node's record
    has and the plan dropped, when its target leaves them standing (to clean them)."""
    former: tuple[HostPlan, ...] = ()
    if node is not None and not target_for(node).destroys_removed_hosts:
        former = former_hosts(previous(run.state), node)
    return RunAccess(
        former_hosts=former,
        state_root=run.state.root,
        run_dir=run.result.run_dir,
        identity=options.identity,
        accept_new_host_keys=options.accept_new_host_keys,
        needed_mb=needed_mb,
        on_line=lambda line: run.emit("preflight", "info", line),
    )


def render_stage(run: Run, blueprint: Blueprint, out_dir: Path) -> RenderResult:
    with run.stage("render") as out:
        rendered = render(blueprint, out_dir)
        run.rendered = out_dir
        out["changed"] = rendered.written + rendered.removed
        out["detail"] = f"{len(rendered.files)} files, {rendered.written} written"
    return rendered


def bundle_path(node: NodePlan) -> Path:
    """The node's site bundle on this machine: one folder per node in the cache,
    the same for every runner of this machine (the local target's containers
    mount it: another path would re-create them). Its .debs are shared."""
    return cache_dir() / "node-bundles" / node.name


def bundle_stage(run: Run, node: NodePlan) -> int:
    """Build (or reuse) the site bundle; its size in MB."""
    with run.stage("bundle") as out:
        try:
            result = build_bundle(
                node_packages(node),
                bundle_path(node),
                baseline=baseline_status(),
                on_event=lambda line: run.emit("bundle", "info", line),
            )
            wheels = 0
            if needs_wheels(node):
                say = lambda line: run.emit("bundle", "info", line)  # noqa: E731
                wheels = populate_wheels(result.path / "wheels", say)
        except NodekitError as error:
            fix = str(error.context.get("fix") or "")
            raise StageError(str(error), node=node.name, stage="bundle", fix=fix) from None
        out["changed"] = (0 if result.reused else 1) + wheels
        out["detail"] = f"{len(result.packages)} packages" + (" (reused)" if result.reused else "")
    files = [p for p in result.path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) >> 20


def preflight_stage(run: Run, node: NodePlan, target: Target, access: RunAccess) -> None:
    """Every host checked before anything changes anywhere; one list of what fails."""
    with run.stage("preflight") as out:
        problems = target.preflight(access)
        run.result.preflight = [str(p) for p in problems]
        if problems:
            first = problems[0]
            lines = "; ".join(f"{p.host}: {p.check}: {p.problem}" for p in problems)
            raise StageError(
                f"{len(problems)} problem(s), nothing was changed: {lines}",
                node=node.name, stage="preflight", host=first.host, fix=first.fix,
            )  # fmt: skip
        out["detail"] = f"{len(node.hosts)} hosts ready"


def stack(node: NodePlan, run: Run, rendered: Path) -> PulumiStack:
    """The node's stack, run from its program folder in the state, on the run's backend.

    The passphrase provider writes the stack's ``encryptionsalt`` into
    Pulumi.<stack>.yaml. The program folder keeps it across runs (and the
    backend shares it between runners), so the rendered files stay exactly
    what render wrote. Holding nodekit's lock, any Pulumi process working in
    the program folder and any Pulumi lock on the stack were left by a runner
    that was stopped: they are stopped and cleared, and said so.
    """
    state = run.state
    if left := stop_leftovers(state.root / "program"):
        run.note("infrastructure", f"stopped {left} Pulumi process(es) a stopped run left")
    cleared = run.backend.clear_pulumi_locks(f"nodekit-{node.name}", node.stack)
    if cleared:
        run.note("infrastructure", (
            f"cleared {cleared} stale Pulumi lock(s) on stack {node.stack}, left by a run "
            "that was stopped (nodekit's own lock is held by this run)"
        ))  # fmt: skip
    program = state.root / "program"
    (program / "pulumi").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(rendered / "blueprint.json", program / "blueprint.json")
    for source in sorted((rendered / "pulumi").iterdir()):
        target = program / "pulumi" / source.name
        content = source.read_bytes()
        if source.name == f"Pulumi.{node.stack}.yaml" and target.exists():
            salt = [
                line
                for line in target.read_bytes().splitlines(keepends=True)
                if line.startswith(b"encryptionsalt:")
            ]
            content = b"".join(salt) + content
        if not target.exists() or target.read_bytes() != content:
            target.write_bytes(content)
    env = {"NODEKIT_BUNDLE": str(bundle_path(node)), **run.backend.pulumi_env(state)}
    pulumi = PulumiStack(program / "pulumi", node.stack, state_dir=state.pulumi, env=env)
    # A stopped run's creates are dropped, and what they made removed; a shared
    # backend's runs may have stopped on another runner: always looked at.
    stopped = state.stopped_runs(run.result.run_dir)
    if run.backend.has_stack(state) and (stopped or run.backend.shared):
        pending, known = pulumi.clear_pending()
        state.looked_after(stopped, run.result.run_dir)
        if pending:
            removed = target_for(node).remove_leftovers(keep=known)
            run.note("infrastructure", (
                f"cleared {pending} pending Pulumi operation(s) on stack {node.stack}, left by "
                f"a run that was stopped; removed {removed} container(s)/network(s) it had "
                "made and never recorded"
            ))  # fmt: skip
    return pulumi


def fail_pulumi(node: NodePlan, error: PulumiFailed) -> StageError:
    """The engine's failure as a stage error, naming the host (or twin) whose resource
    the error names first; a name counts only whole: edge-10's error never blames edge-1."""
    detail = error.detail or str(error)
    resources = {f"{node.name}-{h.name}": h.name for h in node.hosts}
    resources |= {f"{node.name}-twin-{m.name}": f"twin {m.name}" for m in node.equipment}
    found = [
        (match.start(), name)
        for resource, name in resources.items()
        if (match := re.search(re.escape(resource) + r"(?![A-Za-z0-9-])", detail))
    ]
    host = min(found)[1] if found else None
    return StageError(detail, node=node.name, stage="infrastructure", host=host)


def infrastructure(run: Run, node: NodePlan, rendered: Path, out: dict[str, Any]) -> dict[str, str]:
    """The body of the infrastructure stage (``out``: its changed count and detail)."""
    try:
        target_for(node).prepare_infrastructure(
            run.backend, lambda line: run.emit("infrastructure", "info", line)
        )
        up = stack(node, run, rendered).up(
            on_output=lambda line: run.emit("infrastructure", "info", line), refresh=True
        )
    except PulumiFailed as error:
        raise fail_pulumi(node, error) from None
    out["changed"] = up.changed
    out["detail"] = ", ".join(f"{op} {n}" for op, n in up.summary.items())
    return dict(up.outputs.get("hosts") or {})


def host_layer(
    state: NodeState,
    hosts: dict[str, str],
    runner: Runner,
    remove: Installed | None = None,
    former: dict[str, list[dict[str, Any]]] | None = None,
) -> Path:
    """An inventory layer of what is known only at run time: how to reach each
    host (the infrastructure's outputs), the target's per-host variables, what
    to remove from each host (``nodekit_remove``) and the hosts the blueprint
    dropped that are still to be cleaned (group ``nodekit_removed``)."""
    path = state.root / "inventory-outputs.yml"
    layer: dict[str, Any] = {
        name: {"ansible_host": value, **runner.host_vars.get(name, {})}
        for name, value in sorted(hosts.items())
    }
    for name, entries in (remove or {}).items():
        if name in layer:
            layer[name]["nodekit_remove"] = entries
    removed = {
        name: {**runner.host_vars.get(name, {}), "nodekit_remove": entries}
        for name, entries in sorted((former or {}).items())
    }
    inventory: dict[str, Any] = {"all": {"hosts": layer}}
    if removed:
        inventory["all"]["children"] = {"nodekit_removed": {"hosts": removed}}
    path.write_text(yaml.safe_dump(inventory, sort_keys=True))
    return path


def fail_ansible(node: str, stage: str, result: AnsibleResult) -> StageError:
    first = result.failures[0]
    more = f" (+{len(result.failures) - 1} more)" if len(result.failures) > 1 else ""
    task = f"task '{first.task}': " if first.task else ""
    where = f"host {first.host}" if first.host else "the host"
    if first.message.startswith("unreachable"):
        fix = (
            f"{where} stopped answering during the run (stopped, restarted or cut off): "
            "make sure it is up and reachable, then run `nodekit deploy` again "
            "(it re-creates a missing host and repeats only what is not done)"
        )
    else:
        fix = f"see the task's output on {where} in the run folder, fix it, deploy again"
    return StageError(
        f"{task}{first.message}{more}", node=node, stage=stage, host=first.host or None, fix=fix
    )


def converge(
    run: Run,
    node: NodePlan,
    *,
    rendered: Path,
    hosts: dict[str, str],
    secrets: Path,
    runner: Runner,
    check: bool = False,
) -> AnsibleResult:
    """The site playbook on the node (check-and-diff mode with ``check``), removing
    what the node's record has and the plan no longer does."""
    record = previous(run.state)
    remove, gone = removals(record, node)
    destroyed = target_for(node).destroys_removed_hosts
    lines = describe(remove, gone, destroyed=destroyed, record=record)
    had, known = record.get("installed") or {}, record.get("reach") or {}
    former = {} if destroyed else {h: had.get(h) or [] for h in gone if h in known}
    if check:
        run.result.drift += [f"remove: {line}" for line in lines]
    else:
        run.result.removals = lines
        for line in lines:
            run.emit("configure", "info", f"removing: {line}")
    result = run_playbook(
        rendered / "ansible",
        run.result.run_dir / "ansible",
        extra_vars_file=secrets,
        extra_inventory=host_layer(run.state, hosts, runner, remove, former),
        check=check,
        env=runner.env,
        extra_vars=runner.extra_vars,
        on_line=lambda line: run.emit("configure", "info", line),
    )
    if not result.ok:
        raise fail_ansible(node.name, "configure", result)
    return result


def configure_stage(
    run: Run, node: NodePlan, target: Target, access: RunAccess, *, rendered: RenderResult,
    hosts: dict[str, str], runner: Runner, secrets: Path,
) -> AnsibleResult:  # fmt: skip
    """Hand the bundle to the hosts, then converge them with Ansible."""
    with run.stage("configure") as out:
        try:
            delivered = target.deliver_bundle(bundle_path(node), access)
        except NodekitError as error:
            raise StageError(
                f"delivering the site bundle: {error}", node=node.name, stage="configure"
            ) from None
        if node.equipment:
            values = yaml.safe_load(secrets.read_text()).get("nodekit_secrets") or {}
            try:
                equipped = target.equip({str(k): str(v) for k, v in values.items()})
            except NodekitError as error:
                raise StageError(str(error), node=node.name, stage="configure") from None
            if equipped:
                run.emit("configure", "info", f"twins: credentials given to {equipped}")
        result = converge(
            run, node, rendered=rendered.out_dir, hosts=hosts, secrets=secrets, runner=runner
        )
        out["changed"] = result.total_changed + delivered
        out["detail"] = f"{result.total_changed} tasks changed" + (
            f", {delivered} bundle files copied" if delivered else ""
        )
    return result


def remove_everything(run: Run, node: NodePlan, target: Target, options: Any) -> list[str]:
    """Destroy on a target that leaves hosts standing: purge what nodekit installed
    on each host of the record (and nothing else); one line per host."""
    record = previous(run.state)
    had = {h: e for h, e in (record.get("installed") or {}).items() if e}
    names = sorted(h for h in had if h in (record.get("reach") or {}))
    if not names:
        return []
    access = replace(access_for(run, options), former_hosts=former_hosts(record, node, names))
    runner = target.runner(access)
    play = [p for p in yaml.safe_load(PLAYBOOK.read_text()) if p["hosts"] == "nodekit_removed"]
    folder = run.result.run_dir / "removal"
    folder.mkdir()
    (folder / "site.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    (folder / "inventory.yml").write_text("all: {}\n")
    shutil.copyfile(
        run.result.run_dir / "rendered" / "ansible" / "ansible.cfg", folder / "ansible.cfg"
    )
    result = run_playbook(
        folder,
        run.result.run_dir / "ansible",
        extra_inventory=host_layer(run.state, {}, runner, None, {h: had[h] for h in names}),
        env=runner.env,
        extra_vars=runner.extra_vars,
        on_line=lambda line: run.emit("configure", "info", line),
    )
    if not result.ok:
        raise fail_ansible(node.name, "configure", result)
    return [
        f"{h}: nodekit's software purged: "
        + ", ".join(f"{e['software']} ({', '.join(e['apt'])})" for e in had[h])
        + "; the machine, its admin user, SSH and firewall settings stay"
        for h in names
    ]


def verify_stage(run: Run, node: NodePlan, tests: Path, runner: Runner) -> VerifyResult:
    with run.stage("verify") as out:
        result = run_checks(tests, run.result.run_dir, env=runner.env)
        failures = [str(f) for f in result.failures]
        passed = result.passed
        if result.ok:  # the node itself first; then what it shares with the fleet
            fleet = fleet_checks(node, run.backend, lambda m: run.emit("verify", "info", m))
            run.result.fleet += [str(c) for c in fleet if c.ok] + hub_report(node)
            failures += [str(c) for c in fleet if not c.ok]
            passed += sum(c.ok for c in fleet)
            for line in run.result.fleet:
                run.emit("verify", "info", line)
        out["detail"] = f"{passed} checks passed"
        run.result.failures = failures
        if failures:
            raise VerifyFailed(node=node.name, failures=failures)
    return result


def record_stage(
    run: Run, node: NodePlan, hosts: dict[str, str], fingerprint: dict[str, Any] | None = None
) -> None:
    """Keep what the next deploy compares with: the hosts, what was installed where,
    and (after a verified deploy) the fingerprint a no-change deploy may skip by."""
    with run.stage("record") as out:
        record = {
            "node": node.name,
            "run": run.result.run_dir.name,
            "blueprint_digest": run.provenance.blueprint_digest,
            "hosts": hosts,
            "installed": installed(node),  # what the next deploy removes, if dropped
            "reach": reach(node),  # how to reach a host dropped later, to clean it
        }
        if fingerprint:
            record["fingerprint"] = fingerprint
        (run.state.root / "deployed.json").write_text(json.dumps(record, indent=2) + "\n")
        out["detail"] = f"run {run.result.run_dir.name}"

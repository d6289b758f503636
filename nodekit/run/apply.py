"""Apply a rendering to a node: every stage, or only what changed.

bundle -> preflight -> infrastructure -> configure -> verify -> record.

A deploy whose inputs are those of the last verified deploy, on a node whose
live infrastructure and hosts still match what that deploy left
(:mod:`nodekit.run.fingerprint`), skips Pulumi, Ansible and the checks: the
stages say so and why. Anything that differs runs every stage, which
converges it; ``RunOptions.full`` always does.
"""

from __future__ import annotations

import json
from typing import Any

from nodekit.render import RenderResult
from nodekit.render.plan import NodePlan
from nodekit.run import fingerprint, stages
from nodekit.run.fingerprint import Comparison
from nodekit.run.fleet_tls import tls_maker
from nodekit.run.operation import Run, RunOptions
from nodekit.run.removal import installed, previous
from nodekit.targets import target_for
from nodekit.targets.base import Target, outage_named


def apply(run: Run, node: NodePlan, options: RunOptions, rendered: RenderResult) -> None:
    """The stages after render, from the rendering in the node's state folder."""
    target = target_for(node)
    with outage_named(target):
        _apply(run, node, options, rendered, target)


def _apply(
    run: Run, node: NodePlan, options: RunOptions, rendered: RenderResult, target: Target
) -> None:
    size_mb = stages.bundle_stage(run, node)
    access = stages.access_for(run, options, needed_mb=size_mb + size_mb // 10 + 50, node=node)
    stages.preflight_stage(run, node, target, access)
    runner = target.runner(access)
    secrets = run.secrets_file(rendered.secrets, tls_maker(run.backend, node, run.result.run_dir))
    inputs = fingerprint.inputs_digest(
        run.state.rendered, stages.bundle_path(node), secrets, runner, target
    )
    owned = installed(node)
    packages = {h: sorted({a for e in es for a in e["apt"]}) for h, es in owned.items()}
    record = previous(run.state)
    compared: Comparison | None = None
    with run.stage("infrastructure") as out:
        if not options.full:
            compared = fingerprint.compare(
                record.get("fingerprint"), run_id=str(record.get("run") or ""), inputs=inputs,
                node=node, target=target, access=access, packages=packages,
            )  # fmt: skip
        if compared is None or not compared.same:
            _forget(run, record)
        if compared is not None and compared.infra_same:
            hosts = dict(record.get("hosts") or {})
            out["detail"] = (
                f"unchanged since run {compared.run}: Pulumi skipped (the node's "
                "containers and networks are as recorded; --full runs it)"
            )
        else:
            hosts = stages.infrastructure(run, node, run.state.rendered, out)
    if compared is not None and compared.same:
        _skip(run, node, compared)
        return
    if compared is not None:
        for line in compared.differences:
            run.note("configure", f"differs from run {compared.run}: {line}")
    converged = stages.configure_stage(
        run, node, target, access, rendered=rendered, hosts=hosts, runner=runner, secrets=secrets
    )
    stages.verify_stage(run, node, run.state.rendered / "tests", runner)
    managed = {  # what the roles wrote, and the paths nodekit owns (no_log tasks' files)
        h.name: {
            **(converged.managed.get(h.name) or {"files": [], "units": []}),
            "owned": sorted({p for e in owned.get(h.name) or [] for p in e["paths"]}),
        }
        for h in node.hosts
    }
    live = fingerprint.live_hosts(node, target, access, managed, packages)
    stages.record_stage(
        run, node, hosts, fingerprint.record(inputs, target.infrastructure_digest(), live, managed)
    )


def _forget(run: Run, record: dict[str, Any]) -> None:
    """A run that changes the node first drops the recorded fingerprint: if it
    fails half-way, the next deploy must not skip anything."""
    if record.pop("fingerprint", None) is not None:
        (run.state.root / "deployed.json").write_text(json.dumps(record, indent=2) + "\n")


def _skip(run: Run, node: NodePlan, compared: Comparison) -> None:
    with run.stage("configure") as out:
        out["detail"] = (
            f"unchanged since run {compared.run}: all {len(node.hosts)} hosts match "
            "(managed files, units, packages, firewall); Ansible skipped"
        )
    with run.stage("verify") as out:
        out["detail"] = (
            f"skipped: nothing changed since the verified run {compared.run} "
            "(nodekit verify runs the checks; deploy --full runs every stage)"
        )
    with run.stage("record") as out:
        out["detail"] = f"run {compared.run} stays the node's last change"

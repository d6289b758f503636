"""Deploy, plan, verify, drift and destroy one node, in stages.

Each operation takes the node's lock, works in a run folder of its own
(logs, events, JUnit XML, summary.json) and reports progress through an
``on_event`` callback; nothing here knows about the terminal. Results are
dataclasses; a failed stage raises a :class:`StageError` naming node, host
and stage, after the run folder recorded what happened.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import yaml

from nodekit.errors import NodekitError, PulumiFailed, StageError, VerifyFailed
from nodekit.pulumi.docker_provider import NODE_LABEL
from nodekit.render import render
from nodekit.render.plan import NodePlan, plan
from nodekit.run.ansible_stage import AnsibleResult, run_playbook
from nodekit.run.bundle import build_bundle
from nodekit.run.lock import node_lock
from nodekit.run.pulumi_stack import PulumiStack
from nodekit.run.site_bundle import node_packages
from nodekit.run.state import NodeState
from nodekit.run.verify import VerifyResult, run_checks
from nodekit.toolchain import node_image_ref

if TYPE_CHECKING:
    from nodekit.blueprint import Blueprint

STAGES = ("render", "bundle", "infrastructure", "configure", "verify", "record")


@dataclass(frozen=True)
class Event:
    """Progress of one node's run, for whoever displays it."""

    node: str
    stage: str
    kind: str  # start | info | done | failed
    message: str = ""
    at: float = field(default_factory=time.time)  # seconds since the epoch


EventFn = Callable[[Event], None]


@dataclass(frozen=True)
class StageResult:
    stage: str
    ok: bool
    seconds: float
    changed: int = 0
    detail: str = ""


@dataclass
class RunResult:
    """What one operation on one node did, stage by stage."""

    node: str
    operation: str
    run_dir: Path
    stages: list[StageResult] = field(default_factory=list)
    error: str | None = None
    drift: list[str] = field(default_factory=list)  # drift/plan: what differs
    failures: list[str] = field(default_factory=list)  # verify: failing checks
    scrubbed: int = 0  # run-folder files a secret value had to be removed from

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.ok for s in self.stages)

    @property
    def changed(self) -> int:
        return sum(s.changed for s in self.stages)

    @property
    def status(self) -> str:
        """``ok``; ``failed`` (a stage or the lock failed); ``drift`` (plan or
        drift found differences from the blueprint)."""
        if not self.ok:
            return "failed"
        return "drift" if self.drift else "ok"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_dir"] = str(self.run_dir)
        data["run"] = self.run_dir.name
        data["ok"] = self.ok
        data["status"] = self.status
        data["changed"] = self.changed
        return data


@dataclass(frozen=True)
class RunOptions:
    lock_timeout_s: float = 600.0


class _Run:
    """Bookkeeping of one operation: run folder, events, stage timing, record."""

    def __init__(self, node: str, operation: str, on_event: EventFn | None) -> None:
        self.state = NodeState.of(node)
        self.node = node
        self.result = RunResult(node, operation, self.state.new_run(operation))
        self._on_event = on_event
        self._events = (self.result.run_dir / "events.jsonl").open("a")

    def emit(self, stage: str, kind: str, message: str = "") -> None:
        event = Event(self.node, stage, kind, message)
        self._events.write(json.dumps(asdict(event)) + "\n")
        self._events.flush()
        if self._on_event:
            self._on_event(event)

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, Any]]:
        """Time a stage; the block sets ``out['changed']`` and ``out['detail']``."""
        out: dict[str, Any] = {"changed": 0, "detail": ""}
        self.emit(name, "start")
        start = time.monotonic()
        try:
            yield out
        except NodekitError as error:
            seconds = time.monotonic() - start
            self.result.stages.append(StageResult(name, False, seconds, out["changed"], str(error)))
            self.emit(name, "failed", str(error))
            raise
        except Exception as error:
            # A bug or an unexpected tool failure: name node and stage, keep the
            # traceback in the run folder rather than on the operator's screen.
            trace = self.result.run_dir / "error.log"
            trace.write_text(traceback.format_exc())
            failure = StageError(
                f"unexpected {type(error).__name__}: {error} (traceback in {trace})",
                node=self.node,
                stage=name,
            )
            seconds = time.monotonic() - start
            self.result.stages.append(
                StageResult(name, False, seconds, out["changed"], str(failure))
            )
            self.emit(name, "failed", str(failure))
            raise failure from None
        seconds = time.monotonic() - start
        self.result.stages.append(
            StageResult(name, True, seconds, int(out["changed"]), str(out["detail"]))
        )
        self.emit(name, "done", str(out["detail"]))

    def finish(self) -> RunResult:
        self._events.close()
        summary = self.result.run_dir / "summary.json"
        summary.write_text(json.dumps(self.result.to_dict(), indent=2, sort_keys=True) + "\n")
        values = self.state.secret_values()
        passphrase = self.state.pulumi / "passphrase"
        if passphrase.exists():
            values.append(passphrase.read_text().strip())
        if os.environ.get("PULUMI_CONFIG_PASSPHRASE"):
            values.append(os.environ["PULUMI_CONFIG_PASSPHRASE"])
        self.result.scrubbed = _scrub(self.result.run_dir, values)
        if self.result.scrubbed:  # record it: a leak path to close, not to hide
            summary.write_text(json.dumps(self.result.to_dict(), indent=2, sort_keys=True) + "\n")
        return self.result


def _scrub(folder: Path, values: list[str]) -> int:
    """Belt and braces: no secret value survives in a run folder's files.

    Returns how many files had to be cleaned (0 when nothing leaked).
    """
    values = [v for v in values if len(v) >= 8]
    cleaned_files = 0
    if not values:
        return 0
    for path in folder.rglob("*"):
        if not path.is_file() or path.stat().st_size > 50_000_000:
            continue
        data = path.read_bytes()
        cleaned = data
        for value in values:
            cleaned = cleaned.replace(value.encode(), b"********")
        if cleaned != data:
            path.write_bytes(cleaned)
            cleaned_files += 1
    return cleaned_files


def _stack(node: NodePlan, state: NodeState, rendered: Path) -> PulumiStack:
    """The node's stack, run from its program folder in the state.

    The passphrase provider writes the stack's ``encryptionsalt`` into
    Pulumi.<stack>.yaml. The program folder keeps it across runs, so the
    rendered files stay exactly what render wrote.
    """
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
    return PulumiStack(
        program / "pulumi",
        node.stack,
        state_dir=state.pulumi,
        env={"NODEKIT_BUNDLE": str(state.bundle)},
    )


def _outputs_inventory(state: NodeState, hosts: dict[str, str], node: NodePlan) -> Path:
    """An inventory layer from the infrastructure's outputs: how to reach each host."""
    path = state.root / "inventory-outputs.yml"
    layer = {
        "all": {"hosts": {name: {"ansible_host": value} for name, value in sorted(hosts.items())}}
    }
    path.write_text(yaml.safe_dump(layer, sort_keys=True))
    return path


def _fail_pulumi(node: NodePlan, error: PulumiFailed) -> StageError:
    """The engine's failure as a stage error, naming the host whose resource failed."""
    detail = error.detail or str(error)
    host = next((h.name for h in node.hosts if f"{node.name}-{h.name}" in detail), None)
    return StageError(detail, node=node.name, stage="infrastructure", host=host)


def _fail_ansible(node: str, stage: str, result: AnsibleResult) -> StageError:
    first = result.failures[0]
    more = f" (+{len(result.failures) - 1} more)" if len(result.failures) > 1 else ""
    task = f"task '{first.task}': " if first.task else ""
    return StageError(
        f"{task}{first.message}{more}", node=node, stage=stage, host=first.host or None
    )


def _operate(
    blueprint: Blueprint,
    operation: str,
    options: RunOptions | None,
    on_event: EventFn | None,
    body: Callable[[_Run, NodePlan], None],
) -> RunResult:
    """Run one operation's body on one node: in its run folder, under the node's lock.

    A failure (the lock too) is recorded in the run's result, never raised;
    the run folder is completed and scrubbed in every case.
    """
    options = options or RunOptions()
    node = plan(blueprint.data)
    run = _Run(node.name, operation, on_event)
    try:
        with node_lock(
            run.state.lock_file,
            node=node.name,
            command=f"nodekit {operation}",
            timeout_s=options.lock_timeout_s,
        ):
            body(run, node)
    except NodekitError as error:
        run.result.error = str(error)
    finally:
        run.finish()
    return run.result


def _bundle(run: _Run, node: NodePlan) -> None:
    with run.stage("bundle") as out:
        packages = node_packages(node)
        try:
            result = build_bundle(
                packages,
                run.state.bundle,
                image=node_image_ref(),
                on_event=lambda line: run.emit("bundle", "info", line),
            )
        except NodekitError as error:
            raise StageError(str(error), node=node.name, stage="bundle") from None
        out["changed"] = 0 if result.reused else 1
        out["detail"] = f"{len(result.packages)} packages" + (" (reused)" if result.reused else "")


def deploy(
    blueprint: Blueprint,
    *,
    options: RunOptions | None = None,
    on_event: EventFn | None = None,
) -> RunResult:
    """Render, bundle, create the infrastructure, configure, verify and record one node."""

    def body(run: _Run, node: NodePlan) -> None:
        state = run.state
        with run.stage("render") as out:
            rendered = render(blueprint, state.rendered)
            out["changed"] = rendered.written + rendered.removed
            out["detail"] = f"{len(rendered.files)} files, {rendered.written} written"
        _bundle(run, node)
        with run.stage("infrastructure") as out:
            stack = _stack(node, state, state.rendered)
            try:
                up = stack.up(
                    on_output=lambda line: run.emit("infrastructure", "info", line),
                    refresh=True,
                )
            except PulumiFailed as error:
                raise _fail_pulumi(node, error) from None
            out["changed"] = up.changed
            out["detail"] = ", ".join(f"{op} {n}" for op, n in up.summary.items())
            hosts = dict(up.outputs.get("hosts") or {})
        with run.stage("configure") as out:
            secrets = state.ensure_secrets(rendered.secrets)
            layer = _outputs_inventory(state, hosts, node)
            result = run_playbook(
                state.rendered / "ansible",
                run.result.run_dir / "ansible",
                extra_vars_file=secrets,
                extra_inventory=layer,
                mitogen_target=node.target,
                on_line=lambda line: run.emit("configure", "info", line),
            )
            out["changed"] = result.total_changed
            out["detail"] = f"{result.total_changed} tasks changed"
            if not result.ok:
                raise _fail_ansible(node.name, "configure", result)
        _verify_stage(run, node, state.rendered / "tests")
        with run.stage("record") as out:
            record = {
                "node": node.name,
                "run": run.result.run_dir.name,
                "blueprint_digest": blueprint.digest,
                "hosts": hosts,
            }
            (state.root / "deployed.json").write_text(json.dumps(record, indent=2) + "\n")
            out["detail"] = f"run {run.result.run_dir.name}"

    return _operate(blueprint, "deploy", options, on_event, body)


def _verify_stage(run: _Run, node: NodePlan, tests: Path) -> VerifyResult:
    with run.stage("verify") as out:
        result = run_checks(tests, run.result.run_dir)
        out["detail"] = f"{result.passed} checks passed"
        run.result.failures = [str(f) for f in result.failures]
        if not result.ok:
            raise VerifyFailed(node=node.name, failures=[str(f) for f in result.failures])
    return result


def verify(
    blueprint: Blueprint, *, options: RunOptions | None = None, on_event: EventFn | None = None
) -> RunResult:
    """Run the node's generated checks against the live node."""

    def body(run: _Run, node: NodePlan) -> None:
        with run.stage("render") as out:
            rendered = render(blueprint, run.result.run_dir / "rendered")
            out["detail"] = f"{len(rendered.files)} files"
        _verify_stage(run, node, run.result.run_dir / "rendered" / "tests")

    return _operate(blueprint, "verify", options, on_event, body)


def _deployed(state: NodeState) -> bool:
    return (state.root / "deployed.json").exists()


def inspect(
    blueprint: Blueprint,
    *,
    operation: str,
    options: RunOptions | None = None,
    on_event: EventFn | None = None,
) -> RunResult:
    """``plan`` (preview and check mode) or ``drift`` (refresh, check mode, verify).

    Nothing is changed: Pulumi previews (refreshing in memory for drift) and
    Ansible runs in check-and-diff mode. ``result.drift`` lists each difference.
    """

    def body(run: _Run, node: NodePlan) -> None:
        state = run.state
        rendered_dir = run.result.run_dir / "rendered"
        with run.stage("render") as out:
            rendered = render(blueprint, rendered_dir)
            out["detail"] = f"{len(rendered.files)} files"
        with run.stage("infrastructure") as out:
            stack = _stack(node, state, rendered_dir)
            try:
                preview = stack.preview(refresh=operation == "drift")
            except PulumiFailed as error:
                raise _fail_pulumi(node, error) from None
            out["changed"] = preview.changed
            changes = {op: n for op, n in preview.summary.items() if op != "same"}
            out["detail"] = ", ".join(f"{op} {n}" for op, n in changes.items()) or "no change"
            run.result.drift += [f"infrastructure: {n} to {op}" for op, n in changes.items()]
        with run.stage("configure") as out:
            if not _deployed(state) or preview.summary.get("create"):
                out["detail"] = "hosts not created yet: a deploy configures them fully"
                run.result.drift.append("configure: hosts not deployed yet")
            else:
                secrets = state.ensure_secrets(rendered.secrets)
                hosts = json.loads((state.root / "deployed.json").read_text())["hosts"]
                result = run_playbook(
                    rendered_dir / "ansible",
                    run.result.run_dir / "ansible",
                    extra_vars_file=secrets,
                    extra_inventory=_outputs_inventory(state, hosts, node),
                    check=True,
                    mitogen_target=node.target,
                )
                out["changed"] = result.total_changed
                out["detail"] = f"{result.total_changed} tasks would change"
                run.result.drift += [f"configure: {t}" for t in result.changed_tasks]
                if not result.ok:
                    raise _fail_ansible(node.name, "configure", result)
        if operation == "drift" and _deployed(state):
            with run.stage("verify") as out:
                checks = run_checks(rendered_dir / "tests", run.result.run_dir)
                run.result.failures = [str(f) for f in checks.failures]
                run.result.drift += [f"verify: {f}" for f in checks.failures]
                out["detail"] = f"{checks.passed} passed, {len(checks.failures)} failed"

    return _operate(blueprint, operation, options, on_event, body)


def destroy(
    blueprint: Blueprint, *, options: RunOptions | None = None, on_event: EventFn | None = None
) -> RunResult:
    """Remove the node's containers, networks and stack state. Idempotent."""

    def body(run: _Run, node: NodePlan) -> None:
        state = run.state
        with run.stage("infrastructure") as out:
            removed = 0
            if (state.pulumi / "backend").exists():
                rendered_dir = run.result.run_dir / "rendered"
                render(blueprint, rendered_dir)
                try:
                    result = _stack(node, state, rendered_dir).destroy(remove=True)
                except PulumiFailed as error:
                    raise _fail_pulumi(node, error) from None
                removed = result.summary.get("delete", 0)
            removed += _remove_leftovers(node.name)
            out["changed"] = removed
            out["detail"] = f"{removed} resources removed" if removed else "nothing to destroy"
        with run.stage("record") as out:
            for path in (state.rendered, state.pulumi, state.bundle, state.root / "program"):
                shutil.rmtree(path, ignore_errors=True)
            for path in (
                state.secrets_file,
                state.root / "deployed.json",
                state.root / "inventory-outputs.yml",
            ):
                path.unlink(missing_ok=True)
            out["detail"] = "stack state removed"

    return _operate(blueprint, "destroy", options, on_event, body)


def _remove_leftovers(node: str) -> int:
    """Containers and networks labelled for the node that no stack knows (a crash mid-create)."""
    client = docker.from_env(timeout=60)
    label = f"{NODE_LABEL}={node}"
    count = 0
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True, v=True)
        count += 1
    for network in client.networks.list(filters={"label": label}):
        network.remove()
        count += 1
    return count

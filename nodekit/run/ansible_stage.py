"""A thin typed adapter over ansible-runner: converge (or check) a rendered node."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

EventFn = Callable[[str], None]
#: nodekit's roles; rendered files never name this path (renders are path-independent).
ROLES_DIR = Path(__file__).resolve().parents[2] / "playbooks" / "roles"
# The rescue task of playbooks/tasks/report-failure.yml: its message is the
# reason of the task that failed before it on the same host, secrets removed.
REASON_TASK = "Report the failure reason"


@dataclass(frozen=True)
class HostFailure:
    host: str
    task: str
    message: str


@dataclass(frozen=True)
class AnsibleResult:
    """What one playbook run did, per host."""

    ok: bool
    changed: dict[str, int]  # host -> tasks changed
    changed_tasks: tuple[str, ...]  # "host: task" for each change (drift detail)
    failures: tuple[HostFailure, ...]
    seconds: float
    # host -> {"files": paths the roles wrote, "units": units they manage}
    managed: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @property
    def total_changed(self) -> int:
        return sum(self.changed.values())


def _message(result: dict[str, Any]) -> str:
    if result.get("_ansible_no_log") or result.get("censored"):
        return "output hidden (no_log)"
    text = str(result.get("msg") or result.get("stderr") or result.get("reason") or "failed")
    return text.strip().splitlines()[0][:300] if text.strip() else "failed"


def _explain(failures: list[HostFailure], host: str, message: str) -> None:
    """The host's rescue reported which task failed and why (JSON; see
    playbooks/roles/base/tasks/report_failure.yml): that is the host's failure,
    in place of the failures it saw before (inner blocks' rescued ones included)."""
    try:
        data = json.loads(message)
        task, reason = str(data.get("task") or ""), str(data.get("reason") or "failed")
    except (ValueError, AttributeError):
        task, reason = "", message
    earlier = [f for f in failures if f.host == host]
    failures[:] = [f for f in failures if f.host != host]
    reason = " ".join(reason.split())[:600]
    failures.append(HostFailure(host, task or (earlier[-1].task if earlier else ""), reason))


FILE_ACTIONS = frozenset({"template", "copy", "file", "lineinfile", "blockinfile", "ini_file"})
UNIT_ACTIONS = frozenset({"systemd", "systemd_service", "service"})


def _managed(action: str, result: dict[str, Any], into: dict[str, set[str]]) -> None:
    """Note the file or unit a task manages (what a no-change deploy looks at);
    a no_log task shows neither, so it is not looked at."""
    short = action.rsplit(".", 1)[-1]
    for item in result.get("results") or [result]:
        if not isinstance(item, dict) or item.get("skipped") or item.get("failed"):
            continue
        args = (item.get("invocation") or {}).get("module_args") or {}
        if short in FILE_ACTIONS:
            path = item.get("dest") or item.get("path") or args.get("dest") or args.get("path")
            if isinstance(path, str) and path.startswith("/"):
                into["files"].add(path)
        elif short in UNIT_ACTIONS:
            name = item.get("name") or args.get("name")
            if isinstance(name, str) and name:
                into["units"].add(name)


def _drop_recorded_environment(run_dir: Path) -> None:
    """ansible-runner records the whole process environment (which may hold
    credentials or the Pulumi passphrase) beside the command it ran; keep the
    command, drop the environment."""
    for record in run_dir.glob("artifacts/*/command"):
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            record.unlink(missing_ok=True)
            continue
        data.pop("env", None)
        record.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def mitogen_settings() -> dict[str, str]:
    """Environment that runs a playbook under Mitogen.

    Mitogen keeps one Python interpreter per host for the whole run instead
    of one ``docker exec`` (or SSH round trip) per task. Its strategy handles
    the classic connection names the targets render (``docker``, ``ssh``) and
    ``local`` (a task delegated to the controller).
    """
    import ansible_mitogen

    strategies = Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
    return {"ANSIBLE_STRATEGY_PLUGINS": str(strategies), "ANSIBLE_STRATEGY": "mitogen_linear"}


def run_playbook(
    ansible_dir: Path,
    run_dir: Path,
    *,
    extra_vars_file: Path | None = None,
    extra_inventory: Path | None = None,
    check: bool = False,
    mitogen: bool = True,
    env: dict[str, str] | None = None,
    extra_vars: dict[str, Any] | None = None,
    on_line: EventFn | None = None,
) -> AnsibleResult:
    """Run the rendered site.yml against the rendered inventory.

    ``check`` runs in check-and-diff mode (what would change). Secrets reach
    Ansible only as ``--extra-vars @file``: the runner's artifacts record the
    file's path, never its content. With ``mitogen`` (the default), the run
    uses Mitogen (see :func:`mitogen_settings`). ``env``
    and ``extra_vars`` come from the target (how to reach its hosts).
    """
    changed_tasks: list[str] = []
    failures: list[HostFailure] = []
    managed: dict[str, dict[str, set[str]]] = {}

    def handle(event: dict[str, Any]) -> bool:
        data = event.get("event_data") or {}
        host = data.get("host", "")
        task = data.get("task", "")
        kind = event.get("event", "")
        if kind == "runner_on_ok" and (data.get("res") or {}).get("changed"):
            changed_tasks.append(f"{host}: {task}")
        if kind == "runner_on_ok" and host and not check:
            into = managed.setdefault(host, {"files": set(), "units": set()})
            _managed(str(data.get("task_action") or ""), data.get("res") or {}, into)
        elif kind == "runner_on_failed" and task == REASON_TASK:
            _explain(failures, host, str((data.get("res") or {}).get("msg") or ""))
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            failures.append(HostFailure(host, task, _message(data.get("res") or {})))
        elif kind == "runner_on_unreachable":
            failures.append(
                HostFailure(host, task, "unreachable: " + _message(data.get("res") or {}))
            )
        if on_line and kind in ("playbook_on_play_start", "playbook_on_task_start"):
            on_line(
                f"{'play' if kind.endswith('play_start') else 'task'}: {data.get('name') or task}"
            )
        return True

    cmdline = ["-i", str(ansible_dir / "inventory.yml")]
    if extra_inventory is not None:
        cmdline += ["-i", str(extra_inventory)]  # later sources win: the outputs layer
    if extra_vars_file is not None:
        cmdline += ["--extra-vars", f"@{extra_vars_file}"]
    if extra_vars:
        cmdline += ["--extra-vars", json.dumps(extra_vars, sort_keys=True)]
    if check:
        cmdline += ["--check", "--diff"]
    fast_env: dict[str, str] = {}
    if mitogen:
        fast_env = mitogen_settings()
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    runner = ansible_runner.run(
        private_data_dir=str(run_dir),
        project_dir=str(ansible_dir),
        playbook="site.yml",
        cmdline=shlex.join(cmdline),
        envvars={
            # The venv's ansible-playbook even when nodekit runs without an activated venv.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "ANSIBLE_CONFIG": str(ansible_dir / "ansible.cfg"),
            "ANSIBLE_ROLES_PATH": str(ROLES_DIR),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            **fast_env,
            **(env or {}),
        },
        event_handler=handle,
        quiet=True,
        settings={"suppress_ansible_output": True},
    )
    _drop_recorded_environment(run_dir)
    stats = runner.stats or {}
    changed = {str(h): int(n) for h, n in (stats.get("changed") or {}).items()}
    ok = runner.status == "successful" and not failures
    if runner.status != "successful" and not failures:
        failures.append(
            HostFailure("", "", f"ansible-playbook ended {runner.status} (rc {runner.rc})")
        )
    return AnsibleResult(
        ok=ok,
        changed=changed,
        changed_tasks=tuple(changed_tasks),
        failures=tuple(failures),
        seconds=time.monotonic() - start,
        managed={h: {k: sorted(v) for k, v in m.items()} for h, m in sorted(managed.items())},
    )

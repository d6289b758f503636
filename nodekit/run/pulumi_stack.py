"""A thin typed adapter over the Pulumi Automation API.

One workspace and one stack per node (the Automation API is not safe when
stacks share a workspace), the backend the caller names (PULUMI_BACKEND_URL
in ``env``; else a file backend under the state folder with a passphrase in
a 0600 file there), a passphrase secrets provider,
and an environment in which the engine never tries a download.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from nodekit.errors import PulumiFailed, ToolchainError
from nodekit.toolchain import pulumi_tools, tool_env

OutputFn = Callable[[str], None]


@dataclass(frozen=True)
class PulumiResult:
    """What one Pulumi operation did."""

    operation: str
    summary: dict[str, int] = field(default_factory=dict)  # op -> count (create, update, ...)
    outputs: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        """Resources created, updated, replaced or deleted (not ``same``)."""
        return sum(n for op, n in self.summary.items() if op not in ("same", "read"))


def passphrase_for(state_dir: Path) -> str:
    """The secrets passphrase: $PULUMI_CONFIG_PASSPHRASE, else a 0600 file in state_dir."""
    given = os.environ.get("PULUMI_CONFIG_PASSPHRASE")
    if given:
        return given
    path = state_dir / "passphrase"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def stop_leftovers(program_dir: Path, *, grace_s: float = 5.0) -> int:
    """Stop the processes a stopped run left working in the node's program folder.

    Pulumi starts its provider plugins in their own process groups, with the
    program folder as their working folder; a ``kill -9`` of nodekit leaves
    them (and, killed mid-update, the CLI) running. The caller holds the
    node's lock, so no live run of this node works there: each such process is
    sent SIGTERM, and SIGKILL if still there after ``grace_s``. Processes are
    found again by their folder each time, never by a PID that may be reused.
    Returns how many there were.
    """
    folder = program_dir.resolve()
    found = _working_in(folder)
    if not found:
        return 0
    for pid in found:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while (left := _working_in(folder)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        _signal(pid, signal.SIGKILL)
    return len(found)


def _working_in(folder: Path) -> list[int]:
    """The processes (not this one) whose working folder is ``folder`` or below it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = (entry / "cwd").readlink()
        except OSError:  # gone, a zombie, or not ours to look at
            continue
        if cwd == folder or folder in cwd.parents:
            found.append(int(entry.name))
    return found


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # gone, or not ours
        os.kill(pid, sig)


class PulumiStack:
    """One node's stack: a program folder, a stack name, a state folder."""

    def __init__(
        self,
        program_dir: Path,
        stack: str,
        *,
        state_dir: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        tools = pulumi_tools()
        if not tools.cli.is_file():
            raise ToolchainError(
                f"the Pulumi CLI is not built ({tools.cli})",
                part="pulumi cli",
                fix="make setup",
            )
        env = {**tool_env(), **(env or {})}
        if "PULUMI_BACKEND_URL" not in env:  # a file backend in state_dir
            backend = state_dir / "backend"
            backend.mkdir(parents=True, exist_ok=True)
            env["PULUMI_BACKEND_URL"] = backend.resolve().as_uri()
            env["PULUMI_CONFIG_PASSPHRASE"] = passphrase_for(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        env["PULUMI_HOME"] = str((state_dir / "pulumi-home").resolve())
        self.program_dir = program_dir
        self.stack_name = stack
        self._workspace = auto.LocalWorkspace(
            work_dir=str(program_dir),
            pulumi_home=env["PULUMI_HOME"],
            env_vars=env,
            secrets_provider="passphrase",
            pulumi_command=auto.PulumiCommand(
                root=str(tools.bin_dir.parent), skip_version_check=True
            ),
        )
        self._stack: auto.Stack | None = None

    def _select(self) -> auto.Stack:
        if self._stack is None:
            try:
                self._stack = auto.Stack.create_or_select(self.stack_name, self._workspace)
            except auto.errors.CommandError as error:
                raise _failed("select", error) from None
        return self._stack

    def up(self, on_output: OutputFn | None = None, *, refresh: bool = False) -> PulumiResult:
        """Apply the program; with ``refresh`` first read what really exists, so
        changes made by hand (a stopped container) are repaired too."""
        start = time.monotonic()
        try:
            result = self._select().up(on_output=on_output, color="never", refresh=refresh)
        except auto.errors.CommandError as error:
            raise _failed("up", error) from None
        return PulumiResult(
            "up",
            _counts(result.summary.resource_changes),
            {k: v.value for k, v in result.outputs.items()},
            time.monotonic() - start,
        )

    def preview(self, on_output: OutputFn | None = None, *, refresh: bool = False) -> PulumiResult:
        start = time.monotonic()
        try:
            result = self._select().preview(on_output=on_output, color="never", refresh=refresh)
        except auto.errors.CommandError as error:
            raise _failed("preview", error) from None
        return PulumiResult("preview", _counts(result.change_summary), {}, time.monotonic() - start)

    def refresh(self, on_output: OutputFn | None = None) -> PulumiResult:
        start = time.monotonic()
        try:
            result = self._select().refresh(on_output=on_output, color="never")
        except auto.errors.CommandError as error:
            raise _failed("refresh", error) from None
        return PulumiResult(
            "refresh", _counts(result.summary.resource_changes), {}, time.monotonic() - start
        )

    def destroy(self, on_output: OutputFn | None = None, *, remove: bool = True) -> PulumiResult:
        start = time.monotonic()
        try:
            result = self._select().destroy(on_output=on_output, color="never")
            if remove:
                self._workspace.remove_stack(self.stack_name)
        except auto.errors.CommandError as error:
            raise _failed("destroy", error) from None
        return PulumiResult(
            "destroy", _counts(result.summary.resource_changes), {}, time.monotonic() - start
        )

    def clear_pending(self) -> tuple[int, set[str]]:
        """Drop the pending operations a stopped run left in the stack's state (a
        create begun and never recorded blocks the next ``up``); how many were
        dropped, and the ids of the resources the state records."""
        deployment = self.export()
        document = dict(deployment.deployment or {})
        pending = list(document.get("pending_operations") or [])
        if pending:
            document.pop("pending_operations")
            self.import_(auto.Deployment(version=deployment.version, deployment=document))
        known = {str(r["id"]) for r in document.get("resources") or [] if r.get("id")}
        return len(pending), known

    def export(self) -> auto.Deployment:
        """The stack's state (for moving it to another backend)."""
        try:
            return self._select().export_stack()
        except auto.errors.CommandError as error:
            raise _failed("stack export", error) from None

    def import_(self, deployment: auto.Deployment) -> None:
        try:
            self._select().import_stack(deployment)
        except auto.errors.CommandError as error:
            raise _failed("stack import", error) from None


def _counts(changes: Mapping[Any, int] | None) -> dict[str, int]:
    return {str(op): int(n) for op, n in sorted((changes or {}).items())}


def _failed(operation: str, error: auto.errors.CommandError) -> PulumiFailed:
    text = str(error)
    # Keep the engine's own diagnostics, drop the CLI's invocation banner.
    lines = [line for line in text.splitlines() if line.strip()]
    detail = "\n".join(lines[-20:])
    return PulumiFailed(f"pulumi {operation} failed", operation=operation, detail=detail)

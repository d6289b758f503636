"""The one error tree of nodekit.

Every error nodekit raises on purpose derives from :class:`NodekitError`.
Context travels as keyword arguments; the CLI alone maps classes to exit
codes (2 for bad input or usage, 1 for a failed operation)::

    NodekitError
    ├── InputError                      bad input or usage          (exit 2)
    │   ├── BlueprintError(InputError, ValueError)   located diagnostics
    │   └── UsageError(InputError, ValueError)
    └── OperationError                  an operation failed         (exit 1)
        ├── ToolchainError              a real tool is missing or broken
        ├── StageError                  a deployment stage failed (node, host, stage)
        │   └── VerifyFailed            checks ran and some failed
        ├── PulumiFailed                the Pulumi engine reported a failure
        ├── LockTimeout(OperationError, TimeoutError)   another run holds the lock
        ├── BackendError                the state backend cannot be reached or refused
        └── DockerError                 the container engine refused a request

Messages never carry secrets: callers pass names, never values, of secrets.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One located problem in an input file: ``FILE:LINE:COL: error: MESSAGE``."""

    file: str
    line: int
    column: int
    severity: Severity
    message: str
    path: str = ""  # key path, e.g. ``compute[edge-01].address``

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "message": self.message,
            "path": self.path,
        }


class NodekitError(Exception):
    """Root of every error nodekit raises on purpose."""

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __str__(self) -> str:
        return self.message


class InputError(NodekitError):
    """The user's input (files, arguments) is wrong. Exit code 2."""


class UsageError(InputError, ValueError):
    """A command was called with arguments that do not fit."""


class BlueprintError(InputError, ValueError):
    """A blueprint (or a set of them) is invalid; carries every diagnostic found."""

    def __init__(self, diagnostics: list[Diagnostic], **context: object) -> None:
        self.diagnostics = sorted(diagnostics)
        errors = [d for d in self.diagnostics if d.severity == "error"]
        first = str(errors[0]) if errors else "invalid blueprint"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more, **context)


class OperationError(NodekitError):
    """An operation on real infrastructure failed. Exit code 1."""


class ToolchainError(OperationError):
    """A part of the real toolchain (Docker, Pulumi, Ansible) is missing or broken."""

    def __init__(self, message: str, *, part: str, fix: str = "", **context: object) -> None:
        super().__init__(message, part=part, fix=fix, **context)
        self.part = part
        self.fix = fix


class BackendError(OperationError):
    """The state backend (e.g. PostgreSQL) cannot be reached or refused a request."""


class StateFolderError(OperationError):
    """The state folder cannot be written (read-only, full, not permitted)."""

    def __init__(self, *, node: str, folder: str, error: OSError) -> None:
        why = {
            errno.ENOSPC: "is full",
            errno.EDQUOT: "is over its quota",
            errno.EROFS: "is read-only",
            errno.EPERM: "is read-only (not permitted)",
            errno.EACCES: "is read-only (permission denied)",
        }.get(error.errno or 0, f"cannot be written ({error.strerror})")
        fix = (
            f"make {folder} writable and give it free space (or set NODEKIT_STATE to a "
            "folder that is), then run the command again: the node's state is as it was"
        )
        super().__init__(
            f"{node}: the state folder {folder} {why}: {error.filename or folder}",
            node=node, folder=folder, fix=fix,
        )  # fmt: skip


class DockerError(OperationError):
    """The container engine refused or failed a request."""


class PulumiFailed(OperationError):
    """A Pulumi operation failed; ``detail`` is the engine's own diagnostic."""

    def __init__(self, message: str, *, operation: str, detail: str) -> None:
        super().__init__(message, operation=operation)
        self.operation = operation
        self.detail = detail


class StageError(OperationError):
    """A stage of a run failed on a node (and maybe one host of it)."""

    def __init__(
        self,
        message: str,
        *,
        node: str,
        stage: str,
        host: str | None = None,
        **context: object,
    ) -> None:
        where = f"{node}/{host}" if host else node
        super().__init__(
            f"{where}: {stage} failed: {message}", node=node, stage=stage, host=host, **context
        )
        self.node = node
        self.stage = stage
        self.host = host
        self.detail = message  # without the node, host and stage in front


class VerifyFailed(StageError):
    """Verification ran and some checks failed; ``failures`` names each one."""

    def __init__(self, *, node: str, failures: list[str]) -> None:
        super().__init__(
            f"{len(failures)} check(s) failed: " + "; ".join(failures),
            node=node,
            stage="verify",
        )
        self.failures = failures


class LockTimeout(OperationError, TimeoutError):
    """Another run holds the node's lock and did not release it in time."""

    def __init__(self, *, node: str, holder: str, waited_s: float) -> None:
        super().__init__(
            f"node {node} is locked by {holder}; gave up after {waited_s:.0f} s "
            "(raise --lock-timeout to wait longer)",
            node=node,
            holder=holder,
        )
        self.node = node
        self.holder = holder

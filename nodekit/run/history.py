"""Run records: who ran what, from which revision, with what result.

Every operation on a node ends with a record (DECISIONS.md, "History"):
id, command, started, finished, status, verified, commit, dirty,
blueprint_digest, render_digest, by, stages; the backend keeps it with the
rendered output, so any run can be replayed (``nodekit rollback``).
"""

from __future__ import annotations

import getpass
import hashlib
import io
import json
import socket
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nodekit.errors import UsageError

if TYPE_CHECKING:
    from nodekit.blueprint import Blueprint
    from nodekit.run.operation import RunResult

APPLYING = ("deploy", "rollback")  # commands that apply a rendering to the node


@dataclass(frozen=True)
class Provenance:
    """Where a node's blueprint came from."""

    blueprint_digest: str | None = None
    commit: str | None = None  # HEAD of the git work tree holding the blueprint
    dirty: bool | None = None  # its blueprint files differ from HEAD
    replays: str | None = None  # rollback: the run whose rendering is re-applied

    @classmethod
    def of(cls, blueprint: Blueprint) -> Provenance:
        commit, dirty = git_revision([Path(p) for p in blueprint.sources])
        return cls(blueprint.digest, commit, dirty)


def git_revision(files: list[Path]) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git work tree holding the files; (None, None) outside one."""
    if not files:
        return None, None
    folder = files[-1].resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(folder), *args],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    changes = git("status", "--porcelain", "--", *(str(f.resolve()) for f in files))
    return commit.strip(), bool(changes and changes.strip())


def render_digest(rendered: Path) -> str | None:
    """sha256 over the rendered files' digests (the manifest's; nodekit's own
    version is not part of it)."""
    try:
        files = json.loads((rendered / "manifest.json").read_text())["files"]
    except (OSError, ValueError, KeyError):
        return None
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def pack(rendered: Path) -> bytes | None:
    """The rendered output as a reproducible tar.gz (None when nothing was rendered)."""
    if not (rendered / "manifest.json").is_file():
        return None
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for path in sorted(p for p in rendered.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(str(path.relative_to(rendered)))
            data = path.read_bytes()
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unpack(data: bytes, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")


def runner_name() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def record_of(result: RunResult, prov: Provenance, rendered: Path | None) -> dict[str, Any]:
    verify = [s for s in result.stages if s.stage == "verify"]
    return {
        "id": result.run_dir.name,
        "node": result.node,
        "command": result.operation,
        "started": iso(result.started),
        "finished": iso(result.finished or time.time()),
        "status": result.status,
        "verified": (verify[-1].ok and result.ok) if verify else None,
        "commit": prov.commit,
        "dirty": prov.dirty,
        "blueprint_digest": prov.blueprint_digest,
        "render_digest": render_digest(rendered) if rendered else None,
        "by": runner_name(),
        "replays": prov.replays,
        "error": result.error,
        "failed_stage": result.failed_stage,
        "failed_host": result.failed_host,
        "changed": result.changed,
        "stages": [
            {
                "stage": s.stage,
                "ok": s.ok,
                "seconds": round(s.seconds, 2),
                "changed": s.changed,
                "detail": s.detail,
            }
            for s in result.stages
        ],
    }


def good(record: dict[str, Any]) -> bool:
    """A run that applied a rendering and proved it: something to roll back to."""
    return (
        record.get("command") in APPLYING
        and record.get("status") == "ok"
        and bool(record.get("verified"))
    )


def last_verified(runs: list[dict[str, Any]]) -> str | None:
    """The newest verified-good run (runs newest first)."""
    return next((str(r["id"]) for r in runs if good(r)), None)


def rollback_target(runs: list[dict[str, Any]], to: str | None) -> dict[str, Any]:
    """The run a rollback re-applies: ``to``, else the last verified-good run
    before the current one (the newest deploy or rollback)."""
    if to is not None:
        found = [r for r in runs if r.get("id") == to]
        if not found:
            known = ", ".join(str(r["id"]) for r in runs[:5]) or "none"
            raise UsageError(
                f"no run {to} in the history of this node (newest: {known})",
                fix="nodekit history NODE lists the runs",
            )
        if found[0].get("command") not in APPLYING:
            raise UsageError(
                f"run {to} is a {found[0].get('command')}: it applied nothing to return to",
                fix="name a deploy or rollback run (nodekit history NODE lists them)",
            )
        return found[0]
    applied = [r for r in runs if r.get("command") in APPLYING]
    if not applied:
        raise UsageError("nothing to roll back to: the node has no deploy in its history")
    before = [r for r in applied[1:] if good(r)]
    if not before:
        raise UsageError(
            f"nothing to roll back to: no verified deploy before {applied[0]['id']}",
            fix="name a run with --to RUN (nodekit history NODE lists them)",
        )
    return before[0]

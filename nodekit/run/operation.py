"""One operation on one node: its run folder, events, stage timing, lock and record.

An operation (deploy, plan, verify, drift, rollback, destroy) runs its body
through :func:`operate`: under the node's lock (held in the state backend),
in a run folder of its own (events, logs, JUnit XML, summary.json),
reporting progress through an ``on_event`` callback, and ends with a run
record kept in the backend (:mod:`nodekit.run.history`). Nothing here knows
about the terminal. Results are dataclasses; a failure is recorded in the
result with its type, node, host, stage and fix, never raised.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from nodekit.backends import Backend, backend_for
from nodekit.backends.sealed import secrets_key
from nodekit.errors import NodekitError, StageError, StateFolderError
from nodekit.run.history import Provenance, pack, record_of
from nodekit.run.lock import holder_info
from nodekit.run.state import MakeSecret, NodeState, state_root

STAGES = ("render", "bundle", "preflight", "infrastructure", "configure", "verify", "record")


@dataclass(frozen=True)
class Event:
    """Progress of one node's run, for whoever displays it."""

    node: str
    stage: str
    kind: str  # start | info | wait | done | failed
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
    error_type: str | None = None  # the error's class (StageError, LockTimeout, ...)
    failed_stage: str | None = None
    failed_host: str | None = None
    fix: str | None = None  # what to do about the error, when nodekit knows
    drift: list[str] = field(default_factory=list)  # drift/plan: what differs
    failures: list[str] = field(default_factory=list)  # verify: failing checks
    preflight: list[str] = field(default_factory=list)  # what preflight found wrong
    scrubbed: int = 0  # run-folder files a secret value had to be removed from
    notes: list[str] = field(default_factory=list)  # what nodekit did on its own (stale locks)
    removals: list[str] = field(default_factory=list)  # what nodekit removed (or plan would)
    next: list[str] = field(default_factory=list)  # deploy: what to look at next (commands)
    fleet: list[str] = field(default_factory=list)  # verify: the bridge, the nonce, a hub's sites
    started: float = field(default_factory=time.time)
    finished: float | None = None
    backend: str = "local"

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
        data["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started))
        if self.finished is not None:
            data["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.finished))
        return data


@dataclass(frozen=True)
class RunOptions:
    lock_timeout_s: float = 600.0
    identity: Path | None = None  # ssh target: the operator's private key (else ssh-agent)
    accept_new_host_keys: bool = False  # ssh target: record unknown host keys (accept-new)
    backend: str | None = None  # state backend URL (default: $NODEKIT_BACKEND, else local)
    commit: str | None = None  # the blueprint's commit when it is not read from a work tree
    full: bool = False  # deploy: run every stage even when nothing changed


class Run:
    """Bookkeeping of one operation: run folder, events, stage timing, record."""

    def __init__(
        self,
        node: str,
        operation: str,
        on_event: EventFn | None,
        backend: Backend,
        provenance: Provenance | None = None,
    ) -> None:
        self.state = NodeState.of(node)
        self.node = node
        self.backend = backend
        self.provenance = provenance or Provenance()
        self.rendered: Path | None = None  # the rendered output this run worked from
        self.result = RunResult(
            node, operation, self.state.new_run(operation), backend=backend.name
        )
        self._on_event = on_event
        self._events = (self.result.run_dir / "events.jsonl").open("a")
        self.finished = False

    def emit(self, stage: str, kind: str, message: str = "") -> None:
        event = Event(self.node, stage, kind, message)
        self._events.write(json.dumps(asdict(event)) + "\n")
        self._events.flush()
        if self._on_event:
            self._on_event(event)

    def note(self, stage: str, text: str) -> None:
        """A note of the run: in its result and its events."""
        self.result.notes.append(text)
        self.emit(stage, "info", text)

    def secrets_file(self, names: tuple[str, ...], make: MakeSecret = None) -> Path:
        """The node's secrets for Ansible (0600; a shared backend's copy is deleted
        when the run finishes); ``make`` makes the values of new ones by name."""
        return self.backend.secrets_file(self.state, names, self.result.run_dir, make)

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
        """Close the run folder: summary, secrets copy deleted, every secret scrubbed."""
        self.finished = True
        self.result.finished = time.time()
        self._events.close()
        (self.result.run_dir / ".secrets.yml").unlink(missing_ok=True)
        summary = self.result.run_dir / "summary.json"
        summary.write_text(json.dumps(self.result.to_dict(), indent=2, sort_keys=True) + "\n")
        try:
            values = self.backend.secret_values(self.state)
        except NodekitError:
            values = []  # the backend is unreachable: no value of it reached this run
        if os.environ.get("PULUMI_CONFIG_PASSPHRASE"):
            values.append(os.environ["PULUMI_CONFIG_PASSPHRASE"])
        self.result.scrubbed = scrub(self.result.run_dir, values)
        if self.result.scrubbed:  # record it: a leak path to close, not to hide
            mask_result(self.result, values)  # what is printed and recorded, too
            summary.write_text(json.dumps(self.result.to_dict(), indent=2, sort_keys=True) + "\n")
        return self.result

    def keep(self) -> None:
        """Store the run's record and rendered output, and the node's shared files,
        in the backend (called holding the node's lock)."""
        record = record_of(self.result, self.provenance, self.rendered)
        rendered = pack(self.rendered) if self.rendered else None
        self.backend.add_run(self.state, record, rendered)
        self.backend.push(self.state)


MASK = "********"


def _mask(text: str, values: list[str]) -> str:
    for value in values:
        text = text.replace(value, MASK)
    return text


def mask_result(result: RunResult, values: list[str]) -> None:
    """No secret value in what a run reports (error, failures, details...): the
    result is printed and recorded after the run folder is scrubbed."""
    values = [v for v in values if len(v) >= 8]
    for name in ("error", "fix"):
        text = getattr(result, name)
        if text:
            setattr(result, name, _mask(text, values))
    for name in ("drift", "failures", "preflight", "notes", "removals", "next", "fleet"):
        setattr(result, name, [_mask(line, values) for line in getattr(result, name)])
    result.stages = [replace(s, detail=_mask(s.detail, values)) for s in result.stages]


def scrub(folder: Path, values: list[str]) -> int:
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
            cleaned = cleaned.replace(value.encode(), MASK.encode())
        if cleaned != data:
            path.write_bytes(cleaned)
            cleaned_files += 1
    return cleaned_files


def operate(
    node: str,
    operation: str,
    options: RunOptions | None,
    on_event: EventFn | None,
    body: Callable[[Run], None],
    *,
    provenance: Provenance | None = None,
) -> RunResult:
    """Run one operation's body on one node: in its run folder, under the node's
    lock, with the node's shared state pulled from the backend first and the
    run's record (and the shared state) kept there after.

    A failure (the lock too) is recorded in the run's result, never raised;
    the run folder is completed and scrubbed in every case.
    """
    options = options or RunOptions()
    backend = backend_for(options.backend)
    if options.commit and provenance is not None:  # e.g. gitops: a tree read from git objects
        provenance = replace(provenance, commit=options.commit, dirty=False)
    try:
        run = Run(node, operation, on_event, backend, provenance)
    except OSError as error:
        raise _state_error(node, error) from None
    holder = holder_info(f"nodekit {operation}", run.provenance.commit)
    try:
        with backend.lock(
            node,
            holder=holder,
            timeout_s=options.lock_timeout_s,
            on_wait=lambda who: run.emit("lock", "wait", f"waiting for {who}"),
        ):
            for stale in run.state.root.glob("runs/*/.secrets.yml"):
                stale.unlink()  # left by a run that was killed before it could clean up
            try:
                if backend.shared:
                    secrets_key()  # refuse early: every step needs it
                backend.check()
                backend.pull(run.state)
                body(run)
            except NodekitError as error:
                record_error(run.result, error)
            run.finish()
            run.keep()
    except NodekitError as error:
        record_error(run.result, error)
    except OSError as error:  # the state folder turned read-only or full mid-run
        record_error(run.result, _state_error(node, error))
    finally:
        if not run.finished:
            with contextlib.suppress(OSError):
                run.finish()
    return run.result


def _state_error(node: str, error: OSError) -> StateFolderError:
    """An error writing the state folder said as such; any other OSError is raised."""
    root = state_root()
    if not str(error.filename or "").startswith(str(root)):
        raise error
    return StateFolderError(node=node, folder=str(root), error=error)


def record_error(result: RunResult, error: NodekitError) -> None:
    """Keep an error's type, place and fix in the result (not just its text)."""
    result.error = str(error)
    result.error_type = type(error).__name__
    result.fix = str(error.context.get("fix") or "") or None
    if isinstance(error, StageError):
        result.failed_stage, result.failed_host = error.stage, error.host

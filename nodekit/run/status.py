"""Where each node stands: its last run, its last verify, its telemetry at the hub.

Nothing here runs an operation or takes a lock: status reads the run history
in the state backend (every command that touches a node is a run, so the
last verify is there too) and asks the hub's ingest database, through the
hub's target, when it last heard from the node.

A hub is an ordinary Node with a ``telemetry-ingest`` (and its
``postgresql`` on the same host) that other nodes name in
``network.uplink.peer``. It is found among the given blueprints, else in the
folder tree around them (:class:`Fleet`). For a hub itself, status shows
the newest telemetry of any node and the sites heard from in the last minute.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nodekit.backends import Backend
from nodekit.blueprint import Blueprint, validate
from nodekit.render.plan import HostPlan, NodePlan, ServicePlan, plan
from nodekit.run.history import APPLYING
from nodekit.targets import Target, target_for

QUERY_TIMEOUT_S = 20.0
LIVE_WINDOW = "make_interval(mins => 1)"  # "delivered in the last minute"


@dataclass(frozen=True)
class RunSummary:
    id: str
    command: str
    status: str
    started: str | None
    finished: str | None


@dataclass(frozen=True)
class VerifySummary:
    run: str
    passed: bool
    finished: str | None


@dataclass(frozen=True)
class SiteSeen:
    """A node a hub heard from, and when it last did (ISO 8601, UTC)."""

    node: str
    last_telemetry: str


@dataclass
class NodeStatus:
    node: str
    last_run: RunSummary | None = None
    verify: VerifySummary | None = None
    hub: str | None = None  # the hub the node delivers to (itself, for a hub)
    is_hub: bool = False
    last_telemetry: str | None = None  # ISO 8601, UTC
    telemetry_note: str | None = None  # why there is no telemetry time, said plainly
    sites: list[SiteSeen] = field(default_factory=list)  # hubs: heard from in the last minute

    @property
    def status(self) -> str:
        return self.last_run.status if self.last_run else "never"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "node": self.node,
            "status": self.status,
            "last_run": asdict(self.last_run) if self.last_run else None,
            "verify": asdict(self.verify) if self.verify else None,
            "hub": self.hub,
            "last_telemetry": self.last_telemetry,
            "telemetry_note": self.telemetry_note,
        }
        if self.is_hub:
            data["sites"] = [asdict(s) for s in self.sites]
        return data


# -- the run history -----------------------------------------------------------


def last_run(runs: Sequence[dict[str, Any]]) -> RunSummary | None:
    """The newest run (runs newest first)."""
    if not runs:
        return None
    r = runs[0]
    return RunSummary(
        str(r.get("id")),
        str(r.get("command")),
        str(r.get("status")),
        r.get("started"),
        r.get("finished"),
    )


def last_verify(runs: Sequence[dict[str, Any]]) -> VerifySummary | None:
    """The newest run that verified the node (a verify, or a deploy's verify stage)."""
    for r in runs:
        if r.get("verified") is not None:
            return VerifySummary(str(r.get("id")), bool(r["verified"]), r.get("finished"))
    return None


def deployed(runs: Sequence[dict[str, Any]]) -> bool:
    """Whether the history says the node stands: its newest deploy or rollback
    is newer than its newest successful destroy."""
    for r in runs:
        if r.get("command") == "destroy" and r.get("status") == "ok":
            return False
        if r.get("command") in APPLYING:
            return True
    return False


# -- the hub's ingest database ------------------------------------------------


@dataclass(frozen=True)
class IngestAnswer:
    """Rows of a query of an ingest database (``|``-separated columns), or why not."""

    rows: tuple[tuple[str, ...], ...] = ()
    problem: str | None = None


Shell = Callable[[str, float], "subprocess.CompletedProcess[str]"]
QueryFn = Callable[[Target, HostPlan, str, str], IngestAnswer]


def run_shell(line: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run a shell line (from a target's host_command), its output captured."""
    return subprocess.run(
        line,
        shell=True,  # host_command gives a shell line (docker exec ..., ssh ...)
        capture_output=True,
        text=True,
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def psql_command(database: str, sql: str) -> str:
    """psql as the postgres OS user, unaligned and quiet.

    The line may pass through two shells (ssh: this machine's and the
    host's), so the SQL must carry no quote, ``$``, backslash or backtick:
    it is written that way (:func:`sql_text`), and single-quoted once here.
    """
    if any(c in sql for c in "'\"$`\\") or any(c in database for c in "'\"$`\\ "):
        raise ValueError(f"not safe to pass through a shell: {sql!r}")
    return f"runuser -u postgres -- psql -d {database} -AtX -c '{sql}'"


def sql_text(value: str) -> str:
    """A SQL string expression for value without a quote (``chr(108)||chr(121)...``)."""
    return "||".join(f"chr({ord(c)})" for c in value) or "chr(0)"


def query_ingest(
    target: Target,
    host: HostPlan,
    database: str,
    sql: str,
    *,
    shell: Shell = run_shell,
    timeout_s: float = QUERY_TIMEOUT_S,
) -> IngestAnswer:
    """Run sql in the ingest database on host, through the node's target."""
    line = target.host_command(host, psql_command(database, sql))
    try:
        done = shell(line, timeout_s)
    except subprocess.TimeoutExpired:
        return IngestAnswer(problem=f"unreachable (no answer in {timeout_s:.0f} s)")
    except OSError as error:
        return IngestAnswer(problem=f"cannot run the query: {error}")
    if done.returncode != 0:
        lines = [x.strip() for x in (done.stderr or done.stdout or "").splitlines() if x.strip()]
        said = [x for x in lines if x.startswith(("ERROR:", "FATAL:", "psql:"))]
        why = (said or lines or [f"exit status {done.returncode}"])[0]
        return IngestAnswer(problem=f"query failed: {why}")
    rows = tuple(tuple(x.split("|")) for x in done.stdout.splitlines() if x.strip())
    return IngestAnswer(rows=rows)


def ingest_of(node: NodePlan) -> ServicePlan | None:
    """The node's telemetry-ingest that writes to a postgresql on its own host."""
    return next((s for s in node.services if s.package == "telemetry-ingest" and s.store), None)


def epoch_iso(text: str) -> str | None:
    """``extract(epoch ...)`` output as ISO 8601 UTC; None for NULL (empty)."""
    if not text.strip():
        return None
    moment = datetime.fromtimestamp(float(text), UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


# -- the fleet around the given blueprints ---------------------------------------


class Fleet:
    """The given blueprints, and, when asked for a node they lack, the Node
    blueprints of the folder above each given blueprint's folder."""

    def __init__(self, given: Sequence[Blueprint], roots: Sequence[Path] = ()) -> None:
        self._known = {b.name: b for b in given}
        self._roots = list(dict.fromkeys(roots))
        self._scanned = False

    @staticmethod
    def roots_of(paths: Sequence[Path]) -> list[Path]:
        """Where to look for other nodes: the parent of each file's folder, the
        parent of each folder."""
        found = []
        for p in paths:
            base = p.resolve()
            found.append(base.parent.parent if base.is_file() else base.parent)
        return found

    def scan(self) -> None:
        """Read the folders around the given blueprints (once)."""
        if self._scanned:
            return
        self._scanned = True
        for root in self._roots:
            # Invalid neighbours are not this command's business: take the valid ones.
            for blueprint in validate([root]).blueprints:
                self._known.setdefault(blueprint.name, blueprint)

    def find(self, name: str) -> Blueprint | None:
        if name not in self._known:
            self.scan()
        return self._known.get(name)

    def peers_of(self, hub: str) -> list[str]:
        """The nodes that name hub as their uplink peer."""
        self.scan()
        return sorted(n for n, b in self._known.items() if uplink_peer(b) == hub)


def uplink_peer(blueprint: Blueprint) -> str | None:
    uplink = (blueprint.data.get("network") or {}).get("uplink") or {}
    peer = uplink.get("peer")
    return str(peer) if peer else None


# -- status ---------------------------------------------------------------------

NEWEST_SQL = "SELECT extract(epoch FROM max(time)) FROM telemetry"
LIVE_SQL = (
    "SELECT node, extract(epoch FROM max(time)) FROM telemetry "
    f"WHERE time > now() - {LIVE_WINDOW} GROUP BY node ORDER BY node"
)


def node_sql(node: str) -> str:
    return f"{NEWEST_SQL} WHERE node = {sql_text(node)}"


@dataclass(frozen=True)
class HubAccess:
    """How to ask a hub's ingest database, or why it cannot be asked."""

    target: Target | None = None
    host: HostPlan | None = None
    database: str = ""
    problem: str | None = None

    def ask(self, query: QueryFn, sql: str) -> IngestAnswer:
        if self.problem is not None or self.target is None or self.host is None:
            return IngestAnswer(problem=self.problem or "cannot be asked")
        return query(self.target, self.host, self.database, sql)


def hub_access(hub: Blueprint, backend: Backend) -> HubAccess:
    if not deployed(backend.runs(hub.name)):
        return HubAccess(problem="not deployed")
    hub_plan = plan(hub.data)
    ingest = ingest_of(hub_plan)
    if ingest is None:
        return HubAccess(problem="has no telemetry-ingest with a postgresql on its host")
    database = str(ingest.settings.get("database") or "")
    return HubAccess(target_for(hub_plan), hub_plan.host(ingest.host), database)


def _as_hub(status: NodeStatus, hub: Blueprint, backend: Backend, query: QueryFn) -> None:
    status.is_hub, status.hub = True, hub.name
    access = hub_access(hub, backend)
    newest = access.ask(query, NEWEST_SQL)
    if newest.problem is not None:
        status.telemetry_note = f"hub {hub.name}: {newest.problem}"
        return
    status.last_telemetry = epoch_iso(newest.rows[0][0]) if newest.rows else None
    live = access.ask(query, LIVE_SQL)
    if live.problem is not None:
        status.telemetry_note = f"hub {hub.name}: sites unknown: {live.problem}"
        return
    status.sites = [SiteSeen(r[0], epoch_iso(r[1]) or "") for r in live.rows if len(r) == 2]
    if status.last_telemetry is None:
        status.telemetry_note = f"hub {hub.name}: no telemetry yet"


def _as_site(status: NodeStatus, peer: str, fleet: Fleet, backend: Backend,
             query: QueryFn) -> None:  # fmt: skip
    hub = fleet.find(peer)
    if hub is None:
        if "." in peer or ":" in peer:  # a host name or an address: no node of the fleet
            status.telemetry_note = f"uplink peer {peer} is not a node of the fleet"
        else:
            status.hub = peer
            status.telemetry_note = f"hub {peer}: not found among the blueprints"
        return
    status.hub = hub.name
    answer = hub_access(hub, backend).ask(query, node_sql(status.node))
    if answer.problem is not None:
        status.telemetry_note = f"hub {hub.name}: {answer.problem}"
        return
    status.last_telemetry = epoch_iso(answer.rows[0][0]) if answer.rows else None
    if status.last_telemetry is None:
        status.telemetry_note = f"hub {hub.name}: no telemetry of {status.node} yet"


def _telemetry(status: NodeStatus, blueprint: Blueprint, fleet: Fleet, backend: Backend,
               query: QueryFn) -> None:  # fmt: skip
    if ingest_of(plan(blueprint.data)) is not None and fleet.peers_of(blueprint.name):
        _as_hub(status, blueprint, backend, query)
        return
    peer = uplink_peer(blueprint)
    if peer is None:
        status.telemetry_note = "no uplink peer: no hub"
        return
    _as_site(status, peer, fleet, backend, query)


def node_status(
    blueprints: Sequence[Blueprint],
    *,
    backend: Backend,
    fleet: Fleet | None = None,
    query: QueryFn = query_ingest,
    parallel: int = 8,
) -> list[NodeStatus]:
    """The status of each node, in the order given. Never raises for a hub
    that cannot be asked: the reason is in ``telemetry_note``."""
    fleet = fleet or Fleet(blueprints)

    def one(blueprint: Blueprint) -> NodeStatus:
        runs = backend.runs(blueprint.name)
        status = NodeStatus(blueprint.name, last_run(runs), last_verify(runs))
        try:
            _telemetry(status, blueprint, fleet, backend, query)
        except Exception as error:  # one node's failure is reported, never hides the others
            status.telemetry_note = f"telemetry unknown: {type(error).__name__}: {error}"
        return status

    fleet.scan()  # once, before the threads
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(blueprints)))) as pool:
        return list(pool.map(one, blueprints))

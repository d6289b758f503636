"""Verify across the fleet: a site's bridge to its hub, end to end; a hub's sites.

After a node's own checks, verify looks past the node when its uplink peer
is a hub this state backend knows (deployed by nodekit):

* on a site: its bridging broker holds a connection to the hub (8883), and a
  nonce published at the edge host (by the edge collector, as telemetry goes)
  reaches the hub's historian within :data:`NONCE_WAIT_S`;
* on a hub: which sites delivered telemetry in the last minute (a report).

A peer that is not such a node (an address, a hub this runner does not
know) is said so in one line, and nothing fails for it.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from nodekit.blueprint.fields import NAME_PATTERN
from nodekit.render.plan import HostPlan, NodePlan, plan
from nodekit.render.uplink import BRIDGE_PORT, accepts, bridges
from nodekit.run.history import APPLYING
from nodekit.run.status import LIVE_SQL, deployed, ingest_of, query_ingest, run_shell, sql_text
from nodekit.targets import target_for

BRIDGE_WAIT_S = 60.0  # a bridge reconnects within restart_timeout (15 s) of the hub's return
NONCE_WAIT_S = 20.0
COLLECTOR = "/opt/nodekit/equipment/bin/python -m nodekit_equipment.collector"
COLLECTOR_CONFIG = "/etc/nodekit/edge-collector/config.json"

Emit = Callable[[str], None]


@dataclass(frozen=True)
class FleetCheck:
    host: str
    check: str
    ok: bool
    message: str

    def __str__(self) -> str:
        return f"{self.host}: {self.check}: {self.message}"


def _shell(line: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    try:
        return run_shell(line, timeout_s)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(line, 124, "", f"no answer in {timeout_s:.0f} s")


def deployed_plan(backend: Any, node: str) -> NodePlan | None:
    """The plan of a node as last deployed through this backend, or None."""
    if not re.match(NAME_PATTERN, node):
        return None  # an address or a host name: not a node
    runs = backend.runs(node)
    if not deployed(runs):
        return None
    for run in runs:
        if run.get("command") in APPLYING:  # the newest rendering applied
            data = backend.rendering(node, str(run["id"]))
            if data:
                with tarfile.open(fileobj=BytesIO(data), mode="r:gz") as tar:
                    member = tar.extractfile("blueprint.json")
                    if member is not None:
                        return plan(json.loads(member.read()))
    return None


def _bridge_connected(node: NodePlan, host: HostPlan, wait_s: float) -> bool:
    line = target_for(node).host_command(
        host, f"ss -Htn state established '( dport = :{BRIDGE_PORT} )'"
    )
    deadline = time.monotonic() + wait_s
    while True:
        done = _shell(line)
        if done.returncode == 0 and done.stdout.strip():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(2)


def site_checks(node: NodePlan, backend: Any, emit: Emit) -> list[FleetCheck]:
    broker = next(
        (s for s in node.services if s.package == "mosquitto" and bridges(node.uplink, s.settings)),
        None,
    )
    if broker is None:
        return []
    peer = str(node.uplink["peer"])
    hub = deployed_plan(backend, peer)
    if hub is None:
        emit(f"fleet: {peer} is not a hub deployed through this state backend: "
             "the bridge is not checked end to end")  # fmt: skip
        return []
    host = node.host(broker.host)
    checks = []
    if _bridge_connected(node, host, BRIDGE_WAIT_S):
        checks.append(FleetCheck(host.name, f"bridge {broker.name}", True,
                                 f"connected to {peer}:{BRIDGE_PORT} (TLS)"))  # fmt: skip
    else:
        return [FleetCheck(host.name, f"bridge {broker.name}", False,
                           f"not connected to {peer}:{BRIDGE_PORT} after {BRIDGE_WAIT_S:.0f} s: "
                           "see /var/log/mosquitto/mosquitto.log on the host")]  # fmt: skip
    checks.append(_nonce(node, hub, peer))
    return checks


def _nonce(node: NodePlan, hub: NodePlan, peer: str) -> FleetCheck:
    edge = next((h for h in node.hosts for s in h.services if s.package == "edge-collector"), None)
    ingest = ingest_of(hub)
    if edge is None or ingest is None:
        what = "no edge-collector to publish it" if edge is None else f"{peer} has no ingest"
        return FleetCheck(node.name, "nonce", True, f"not sent: {what}")
    nonce = secrets.token_hex(8)
    line = target_for(node).host_command(
        edge, f"{COLLECTOR} --config {COLLECTOR_CONFIG} --nonce {nonce}"
    )
    sent = _shell(line)
    if sent.returncode != 0:
        tail = (sent.stderr or sent.stdout).strip().splitlines()[-1:] or ["no output"]
        return FleetCheck(edge.name, "nonce", False, f"could not publish: {tail[0]}")
    sql = (
        "SELECT extract(epoch FROM received - time) FROM telemetry "
        f"WHERE node = {sql_text(node.name)} AND text = {sql_text(nonce)}"
    )
    database = str(ingest.settings.get("database") or "historian")
    hub_host = hub.host(ingest.host)
    deadline = time.monotonic() + NONCE_WAIT_S
    while True:
        answer = query_ingest(target_for(hub), hub_host, database, sql)
        if answer.problem is None and answer.rows:
            latency = float(answer.rows[0][0])
            return FleetCheck(edge.name, "nonce", True,
                              f"arrived in {peer}'s historian {latency:.2f} s after "
                              "it was published")  # fmt: skip
        if time.monotonic() >= deadline:
            why = answer.problem or "no row"
            return FleetCheck(edge.name, "nonce", False,
                              f"published, not in {peer}'s historian after "
                              f"{NONCE_WAIT_S:.0f} s ({why})")  # fmt: skip
        time.sleep(1)


def hub_report(node: NodePlan) -> list[str]:
    """On a hub: the sites whose telemetry arrived in the last minute."""
    ingest = ingest_of(node)
    if ingest is None or not any(s.package == "mosquitto" and accepts(s.settings)
                                 for s in node.services):  # fmt: skip
        return []
    database = str(ingest.settings.get("database") or "historian")
    answer = query_ingest(target_for(node), node.host(ingest.host), database, LIVE_SQL)
    if answer.problem is not None and "does not exist" in answer.problem:
        return ["fleet: sites delivering in the last minute: none (no telemetry yet)"]
    if answer.problem is not None:
        return [f"fleet: sites unknown: {answer.problem}"]
    now = time.time()
    seen = [f"{row[0]} ({now - float(row[1]):.0f} s ago)" for row in answer.rows if len(row) == 2]
    return [f"fleet: sites delivering in the last minute: {', '.join(seen) or 'none'}"]

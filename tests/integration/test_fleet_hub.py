"""A network of nodes: a regional hub and two sites on the local target.

The sites' gateways meet the hub's on the WAN nodekit creates; each site's
broker bridges its telemetry to the hub over TLS (8883, fleet certificates);
the hub's ingest writes every site's rows to its historian under the site's
own node name. Verify proves the bridge end to end with a nonce; the hub
refuses plain MQTT and a site's certificate cannot publish under another
site's topics; a partition (the hub's broker stopped) loses nothing within
the bridge's queue. Real Pulumi, containers, Ansible, mosquitto, PostgreSQL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from nodekit.cli.main import main
from nodekit.pulumi.docker_parts import _wait_for_systemd
from nodekit.run.fleet_tls import CA_SECRET, fleet_state
from nodekit.run.state import NodeState

pytestmark = pytest.mark.integration

HUB = "nktest-hub"
SITES = {"nktest-site-a": "10.227", "nktest-site-b": "10.228"}
INTERVAL_S = 2
HUB_BLUEPRINT = f"""\
apiVersion: nodekit/v1
kind: Node
metadata: {{name: {HUB}}}
site: {{region: eu-west, timezone: UTC, target: local}}
network:
  zones:
    - {{name: services, cidr: 10.226.0.0/24}}
  flows:
    - {{from: uplink, to: services, ports: [8883/tcp], purpose: site bridges}}
  uplink: {{type: direct}}
compute:
  - {{name: gw-01, role: gateway, zone: services, address: 10.226.0.1}}
  - {{name: hub-01, role: controller, zone: services, address: 10.226.0.10}}
software:
  - {{name: broker, package: mosquitto, host: hub-01, settings: {{accept_bridges: true}}}}
  - name: historian-db
    package: postgresql
    host: hub-01
    settings: {{databases: [historian]}}
  - {{name: ingest, package: telemetry-ingest, host: hub-01}}
"""
SITE_BLUEPRINT = """\
apiVersion: nodekit/v1
kind: Node
metadata: {{name: {name}}}
site: {{region: eu-west, timezone: UTC, target: local}}
network:
  zones:
    - {{name: ot, cidr: {net}.1.0/24}}
  flows:
    - {{from: ot, to: uplink, ports: [8883/tcp], purpose: telemetry bridge to the hub}}
  uplink: {{type: vpn, peer: {hub}}}
compute:
  - {{name: gw-01, role: gateway, zone: ot, address: {net}.1.1}}
  - {{name: edge-01, role: edge, zone: ot, address: {net}.1.10}}
equipment:
  - name: printer-01
    kind: printer
    host: edge-01
    zone: ot
    address: {net}.1.101
    protocol: moonraker
software:
  - {{name: broker, package: mosquitto, host: edge-01, settings: {{bridge_topics: [nodekit/#]}}}}
  - name: collector
    package: edge-collector
    host: edge-01
    settings: {{interval_s: {interval}}}
"""
TLS = (
    "-h {hub} -p 8883 -q 1 --cafile /etc/mosquitto/certs/nodekit/fleet-ca.crt "
    "--cert /etc/mosquitto/certs/nodekit/node.crt --key /etc/mosquitto/certs/nodekit/node.key"
)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("fleet")
    (root / "hubs").mkdir()
    (root / "sites").mkdir()
    (root / "hubs" / f"{HUB}.yaml").write_text(HUB_BLUEPRINT)
    for name, net in SITES.items():
        text = SITE_BLUEPRINT.format(name=name, net=net, hub=HUB, interval=INTERVAL_S)
        (root / "sites" / f"{name}.yaml").write_text(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NODEKIT_STATE", str(tmp_path_factory.mktemp("fleet-state")))
        yield root
        main(["destroy", str(root / "sites"), str(root / "hubs"), "--yes"])


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    capsys.readouterr()
    code = main([*args, "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    return code, {n["node"]: n for n in out["nodes"]}


def _sh(client: docker.DockerClient, container: str, command: str) -> tuple[int, str]:
    result = client.containers.get(container).exec_run(["bash", "-c", command])
    return result.exit_code, result.output.decode(errors="replace")


def _sql(client: docker.DockerClient, query: str) -> list[list[str]]:
    code, out = _sh(
        client,
        f"nk-{HUB}-hub-01",
        f'runuser -u postgres -- psql -d historian -AtF "|" -c "{query}"',
    )
    assert code == 0, out
    return [line.split("|") for line in out.strip().splitlines() if line]


def test_a_hub_and_two_sites_share_what_they_learn(
    fleet: Path, docker_client: docker.DockerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    hub_file = str(fleet / "hubs" / f"{HUB}.yaml")
    site_files = [str(fleet / "sites" / f"{name}.yaml") for name in SITES]

    # 0. The fleet validates as one: names, peers, zones apart.
    assert main(["validate", str(fleet)]) == 0

    # 1. The hub, then both sites in one deploy; each site's verify proves its
    #    bridge and a nonce from its edge host arriving at the hub's historian.
    code, hub = _run(capsys, "deploy", hub_file, "--yes")
    assert code == 0, hub[HUB].get("error")
    code, sites = _run(capsys, "deploy", *site_files, "--yes")
    assert code == 0, {n: r.get("error") for n, r in sites.items()}
    latencies = []
    for result in sites.values():
        lines = " | ".join(result["fleet"])
        assert f"bridge broker: connected to {HUB}:8883 (TLS)" in lines, lines
        assert "nonce: arrived in" in lines, lines
        latencies.append(float(lines.split("historian ")[1].split(" s")[0]))
    with capsys.disabled():
        print(f"\nnonce latency (edge publish -> hub historian row): {latencies} s")

    # 2. The hub's historian holds both sites' machines under their own names,
    #    and the hub's verify says both delivered in the last minute.
    time.sleep(3 * INTERVAL_S)
    rows = _sql(
        docker_client,
        "SELECT node, count(*) FROM telemetry WHERE equipment = 'printer-01' "
        "AND time > now() - interval '1 minute' GROUP BY node ORDER BY node",
    )
    assert [r[0] for r in rows] == sorted(SITES) and all(int(r[1]) > 0 for r in rows), rows
    code, hub = _run(capsys, "verify", hub_file)
    assert code == 0
    (report,) = hub[HUB]["fleet"]
    assert all(name in report for name in SITES), report

    # 3. The hub refuses plain MQTT; a site's certificate publishes only under
    #    its own node; without a certificate nothing connects.
    site_a, site_b = SITES
    edge = f"nk-{site_a}-edge-01"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    tls = TLS.format(hub=HUB)
    for node, equipment in ((site_b, "spoof"), (site_a, "own")):
        payload = json.dumps({"time": now, "value": 1.0})
        topic = f"nodekit/{node}/{equipment}/temp"
        code, out = _sh(docker_client, edge, f"mosquitto_pub {tls} -i t-{equipment} "
                        f"-t {topic} -m '{payload}'")  # fmt: skip
        assert code == 0, out
    code, out = _sh(docker_client, edge, f"timeout 10 mosquitto_pub -h {HUB} -p 8883 -t x -m x")
    assert code != 0, out  # plain MQTT on the TLS port
    ca = "--cafile /etc/mosquitto/certs/nodekit/fleet-ca.crt"
    code, out = _sh(
        docker_client, edge, f"timeout 10 mosquitto_pub -h {HUB} -p 8883 {ca} -t x -m x"
    )
    assert code != 0, out  # TLS without a certificate of the fleet
    hub_wan = _sh(docker_client, f"nk-{site_a}-edge-01", f"getent hosts {HUB}")[1].split()[0]
    gateway = f"nk-{site_a}-gw-01"  # on the WAN itself: only the hub's firewall is between
    probe = "timeout 5 bash -c 'exec 3<>/dev/tcp/{}/{}'"
    assert _sh(docker_client, gateway, probe.format(hub_wan, 8883))[0] == 0
    assert _sh(docker_client, gateway, probe.format(hub_wan, 1883))[0] != 0
    time.sleep(3)
    stored = {r[0] for r in _sql(docker_client, "SELECT equipment FROM telemetry WHERE "
                                  "equipment IN ('spoof', 'own')")}  # fmt: skip
    assert stored == {"own"}, stored

    # 4. A partition: the hub's broker stops; the sites queue; when it returns,
    #    every reading of the partition arrives (none lost within the queue).
    begin = time.time()
    assert _sh(docker_client, f"nk-{HUB}-hub-01", "systemctl stop mosquitto")[0] == 0
    time.sleep(30)
    assert _sh(docker_client, f"nk-{HUB}-hub-01", "systemctl start mosquitto")[0] == 0
    end = time.time()
    deadline = time.time() + 120
    while True:
        gaps = _sql(
            docker_client,
            "SELECT node, count(*), max(extract(epoch FROM gap)) FROM (SELECT node, time, "
            "time - lag(time) OVER (PARTITION BY node ORDER BY time) AS gap FROM telemetry "
            "WHERE equipment = 'printer-01' AND metric = 'progress' "
            f"AND time BETWEEN to_timestamp({begin - 10}) AND to_timestamp({end + 10})) x "
            "GROUP BY node ORDER BY node",
        )
        window = end - begin + 20
        complete = len(gaps) == 2 and all(int(g[1]) >= window / INTERVAL_S - 2 for g in gaps)
        if complete or time.time() > deadline:
            break
        time.sleep(5)
    assert complete, gaps
    assert all(float(g[2]) < 2 * INTERVAL_S for g in gaps), gaps  # no reading missing
    delays = _sql(
        docker_client,
        "SELECT round(max(extract(epoch FROM received - time))::numeric, 1) FROM telemetry "
        f"WHERE time BETWEEN to_timestamp({begin}) AND to_timestamp({end})",
    )
    with capsys.disabled():
        print(f"\npartition of {end - begin:.0f} s: none lost, up to {delays[0][0]} s late")

    # 5. `nodekit status`: each site's last telemetry seen at the hub is fresh.
    code, status = _run(capsys, "status", str(fleet))
    assert code == 0
    for name in SITES:
        assert status[name]["hub"] == HUB and status[name]["last_telemetry"], status[name]
    assert sorted(s["node"] for s in status[HUB]["sites"]) == sorted(SITES)

    # 6. A restarted site (Docker writes its /etc/hosts afresh) still finds its
    #    hub: the name is in nodekit's hosts block, which a unit puts back at boot.
    restarted = docker_client.containers.get(edge)
    restarted.restart(timeout=20)
    _wait_for_systemd(restarted)
    code, out = _sh(docker_client, edge, f"getent ahosts {HUB}")
    assert code == 0 and out.split()[0] == hub_wan, out
    code, again = _run(capsys, "verify", site_files[0])
    assert code == 0, again[site_a].get("error")
    assert f"bridge broker: connected to {HUB}:8883" in " | ".join(again[site_a]["fleet"])

    # 7. No key material in any run folder; the fleet CA outlives a node's destroy.
    for name in SITES:
        code, key = _sh(docker_client, f"nk-{name}-edge-01",
                        "sed -n 2p /etc/mosquitto/certs/nodekit/node.key")  # fmt: skip
        assert code == 0 and len(key.strip()) > 40
        for file in (NodeState.of(name).root / "runs").rglob("*"):
            if file.is_file():
                assert key.strip().encode() not in file.read_bytes(), file
    assert main(["destroy", site_files[1], "--yes"]) == 0
    assert CA_SECRET in fleet_state().secrets_file.read_text()

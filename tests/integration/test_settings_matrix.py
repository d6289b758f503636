"""Every blueprint that validates must deploy: the settings space, not just the examples.

Three small nodes on the real local target, deployed together, pack the
cases of the matrix:

| node    | shape                                             | settings                      |
|---------|---------------------------------------------------|-------------------------------|
| mx-min  | one host, one zone; no flows, gateway, equipment, | every package at its defaults |
|         | checks, uplink or domain (every optional absent)  | (each list setting empty);    |
|         |                                                   | mosquitto pinned below the    |
|         |                                                   | newest (software[].version)   |
| mx-one  | two zones and a gateway, flows, equipment, checks | each list setting one item;   |
|         |                                                   | Prometheus with no target     |
| mx-many | two zones, no gateway, no flows                   | each list setting several     |

Each node must deploy, verify, and deploy again with no change in any
stage; the settings must have taken effect on the hosts.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from nodekit.blueprint import load
from nodekit.cli.main import main
from nodekit.pulumi.docker_provider import NODE_LABEL
from nodekit.run import deploy as runs
from nodekit.toolchain import cache_dir

pytestmark = pytest.mark.integration
# An older mosquitto than the newest of Debian 12 (bookworm-security's, behind bookworm's
# point release): the pin must win over the newest.
PIN, NEWEST = "2.0.11-1.2+deb12u1", "2.0.11-1.2+deb12u2"

HEAD = """\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: {name}
site:
  region: eu-west
  timezone: {timezone}
  target: local
"""

MIN = (
    HEAD.format(name="nktest-mx-min", timezone="UTC")
    + f"""\
network:
  zones:
    - name: cell
      cidr: 10.213.1.0/24
compute:
  - name: solo
    role: edge
    zone: cell
    address: 10.213.1.10
software:
  - name: broker
    package: mosquitto
    host: solo
    version: {PIN}
  - name: db
    package: postgresql
    host: solo
  - name: exporter
    package: node-exporter
    host: solo
  - name: metrics
    package: prometheus
    host: solo
"""
)

ONE = (
    HEAD.format(name="nktest-mx-one", timezone="Europe/Paris")
    + """\
network:
  domain: one.example.internal
  zones:
    - name: ot
      cidr: 10.213.2.0/24
      vlan: 20
    - name: it
      cidr: 10.213.3.0/24
      vlan: 30
  flows:
    - from: ot
      to: it
      ports: [1883/tcp, 5432/tcp]
    - from: it
      to: ot
      ports: [9100/tcp]
  uplink:
    type: vpn
    peer: 10.213.3.200
compute:
  - name: gw
    role: gateway
    zone: it
    address: 10.213.3.1
    interfaces:
      - zone: ot
        address: 10.213.2.1
  - name: edge
    role: edge
    zone: ot
    address: 10.213.2.10
  - name: hist
    role: controller
    zone: it
    address: 10.213.3.10
equipment:
  - name: plc-01
    kind: plc
    zone: ot
    address: 10.213.2.100
    port: 502
    protocol: modbus-tcp
software:
  - name: broker
    package: mosquitto
    host: hist
    settings:
      users: [edge]
      bridge_topics: [telemetry/#]
  - name: db
    package: postgresql
    host: hist
    settings:
      databases: [historian]
      users: [historian]
      allowed_zones: [ot]
  - name: metrics  # no node-exporter on this node: Prometheus with no target
    package: prometheus
    host: hist
    settings:
      retention_days: 7
      scrape_interval_s: 30
    depends_on: [db]
checks:
  - name: broker-listening
    host: hist
    port: 1883/tcp
"""
)

MANY = (
    HEAD.format(name="nktest-mx-many", timezone="America/Chicago")
    + """\
network:
  zones:
    - name: x
      cidr: 10.213.4.0/24
    - name: y
      cidr: 10.213.5.0/24
  uplink:
    type: direct
    peer: 10.213.4.200
compute:
  - name: host-x
    role: edge
    zone: x
    address: 10.213.4.10
  - name: host-y
    role: controller
    zone: y
    address: 10.213.5.10
software:
  - name: broker
    package: mosquitto
    host: host-x
    ports: [1883/tcp, 1884/tcp]
    settings:
      allow_anonymous: true
      users: [edge, historian, ops]
      bridge_topics: [telemetry/#, quality/#]
  - name: exporter-x
    package: node-exporter
    host: host-x
  - name: db
    package: postgresql
    host: host-y
    ports: [5433/tcp]
    settings:
      databases: [historian, mes, quality]
      users: [historian, grafana]
      allowed_zones: [x, y]
  - name: exporter-y
    package: node-exporter
    host: host-y
    ports: [9101/tcp]
  - name: metrics
    package: prometheus
    host: host-y
checks:
  - name: mes-conf
    host: host-y
    file: /etc/postgresql/15/main/conf.d/nodekit.conf
    contains: "port = 5433"
  - name: mosquitto-installed
    host: host-x
    package: mosquitto
"""
)

NODES = {"nktest-mx-min": MIN, "nktest-mx-one": ONE, "nktest-mx-many": MANY}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("matrix")
    for name, text in NODES.items():
        (root / "sites").mkdir(exist_ok=True)
        (root / "sites" / f"{name}.yaml").write_text(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NODEKIT_STATE", str(root / "state"))
        yield root / "sites"
        for path in sorted((root / "sites").glob("*.yaml")):
            runs.destroy(load(path))


def _exec(client: docker.DockerClient, node: str, host: str, command: str) -> str:
    result = client.containers.get(f"nk-{node}-{host}").exec_run(["sh", "-c", command])
    assert result.exit_code == 0, result.output.decode(errors="replace")
    return str(result.output.decode())


def _deploy(sites: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    code = main(["deploy", str(sites), "--yes", "--format", "json"])
    captured = capsys.readouterr()
    results = {r["node"]: r for r in json.loads(captured.out)["nodes"]}
    failed = {n: r["error"] for n, r in results.items() if r["status"] != "ok"}
    assert code == 0 and not failed, (failed, captured.err[-3000:])
    return results


def _newest_mosquitto(client: docker.DockerClient, container: str) -> None:
    """Install the newest mosquitto (from mx-many's bundle) in a container, with dpkg."""
    bundle = cache_dir() / "node-bundles" / "nktest-mx-many"
    names = [f"{p}_{NEWEST}_amd64.deb" for p in ("mosquitto", "libmosquitto1", "mosquitto-clients")]
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name in names:
            tar.add(bundle / name, arcname=name)
    target = client.containers.get(container)
    assert target.put_archive("/tmp", archive.getvalue())
    command = ["dpkg", "--force-confold", "-i", *(f"/tmp/{name}" for name in names)]
    result = target.exec_run(command, environment={"DEBIAN_FRONTEND": "noninteractive"})
    assert result.exit_code == 0, result.output.decode(errors="replace")


def test_every_case_deploys_verifies_and_converges(
    fleet: Path, docker_client: docker.DockerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every case validates (warnings allowed) before it is deployed.
    assert main(["validate", str(fleet)]) == 0
    capsys.readouterr()

    # 1. One deploy of the three nodes: each renders, creates, configures, verifies.
    first = _deploy(fleet, capsys)
    assert sorted(first) == sorted(NODES)
    for result in first.values():
        assert [s["stage"] for s in result["stages"]] == list(runs.STAGES)  # type: ignore[union-attr]

    # 2. The settings took effect on the hosts.
    def sh(node: str, host: str, command: str) -> str:
        return _exec(docker_client, f"nktest-mx-{node}", host, command)

    def sql(node: str, host: str, port: int, query: str) -> set[str]:
        return set(sh(node, host, f'runuser -u postgres -- psql -p {port} -Atc "{query}"').split())

    mosquitto_conf = "cat /etc/mosquitto/conf.d/nodekit.conf"
    mosquitto_users = "cut -d: -f1 /etc/mosquitto/nodekit.passwd"
    # Defaults: a broker without users, a server without databases or users.
    conf = sh("min", "solo", mosquitto_conf)
    assert "allow_anonymous false" in conf and "password_file" not in conf
    assert "connection" not in conf  # no bridge
    databases = sql("min", "solo", 5432, "select datname from pg_database")
    assert databases == {"postgres", "template0", "template1"}
    # The pin: the bundle carries that version (its source's packages too), apt
    # installed it, verify checked it.
    installed = sh("min", "solo", "dpkg-query -W -f '${Version} ' mosquitto libmosquitto1")
    assert installed.split() == [PIN, PIN]
    debs = {p.name for p in (cache_dir() / "node-bundles" / "nktest-mx-min").glob("*.deb")}
    assert f"mosquitto_{PIN}_amd64.deb" in debs and f"libmosquitto1_{PIN}_amd64.deb" in debs
    assert not [name for name in debs if NEWEST in name]
    junit = Path(str(first["nktest-mx-min"]["run_dir"])) / "verify.xml"
    assert 'name="test_package_version[solo:broker]"' in junit.read_text()
    # One item each.
    conf = sh("one", "hist", mosquitto_conf)
    assert "address 10.213.3.200:8883" in conf and "topic telemetry/# out 1" in conf
    assert sh("one", "hist", mosquitto_users).split() == ["edge"]
    assert "historian" in sql("one", "hist", 5432, "select rolname from pg_roles")
    hba = sh("one", "hist", "cat /etc/postgresql/15/main/pg_hba.conf")
    assert "10.213.2.0/24" in hba and "10.213.3.0/24" not in hba  # exactly allowed_zones
    # Several: listeners, users, topics, databases, grants on each database, zones.
    conf = sh("many", "host-x", mosquitto_conf)
    assert "listener 1883" in conf and "listener 1884" in conf and "allow_anonymous true" in conf
    assert "topic telemetry/# out 1" in conf and "topic quality/# out 1" in conf
    assert sh("many", "host-x", mosquitto_users).split() == ["edge", "historian", "ops"]
    databases = sql("many", "host-y", 5433, "select datname from pg_database")
    assert {"historian", "mes", "quality"} <= databases
    for database in ("historian", "mes", "quality"):
        for user in ("historian", "grafana"):
            query = f"select has_database_privilege('{user}', '{database}', 'CONNECT')"
            assert sql("many", "host-y", 5433, query) == {"t"}
    hba = sh("many", "host-y", "cat /etc/postgresql/15/main/pg_hba.conf")
    assert "10.213.4.0/24" in hba and "10.213.5.0/24" in hba

    # 3. A second deploy of every node changes nothing in any stage.
    again = _deploy(fleet, capsys)
    for name, result in again.items():
        changed = {s["stage"]: s["changed"] for s in result["stages"]}  # type: ignore[union-attr]
        assert changed == dict.fromkeys(runs.STAGES, 0), (name, changed)

    # 4. A newer mosquitto put on by hand (mx-many's bundle has it): verify names the
    #    broken pin; a deploy brings the pinned version back (a downgrade).
    _newest_mosquitto(docker_client, "nk-nktest-mx-min-solo")
    min_file = str(fleet / "nktest-mx-min.yaml")
    assert main(["verify", min_file, "--format", "json"]) == 1
    (failed,) = json.loads(capsys.readouterr().out)["nodes"]
    assert len(failed["failures"]) == 1, failed["failures"]
    assert failed["failures"][0].startswith("solo: package version broker: ")
    assert f"mosquitto is {NEWEST}, not the pinned {PIN}" in failed["failures"][0]
    assert main(["deploy", min_file, "--yes"]) == 0
    capsys.readouterr()
    installed = sh("min", "solo", "dpkg-query -W -f '${Version} ' mosquitto mosquitto-clients")
    assert installed.split() == [PIN, PIN]

    # 5. Destroy leaves nothing behind.
    assert main(["destroy", str(fleet), "--yes"]) == 0
    for name in NODES:
        label = f"{NODE_LABEL}={name}"
        assert (
            docker_client.containers.list(all=True, filters={"label": label}, ignore_removed=True)
            == []
        )

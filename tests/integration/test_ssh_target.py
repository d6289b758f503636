"""The ssh target on hosts that look like freshly installed Debian 12 machines.

Real SSH, real sudo, real Ansible, real testinfra; the hosts are reached only
over SSH at the blueprint's addresses. In order: unknown host keys refused
(nothing changed), one host unreachable fails preflight naming it (nothing
changed on the others), keys accepted with the flag and the node deployed and
verified, the login still works, a stopped service found by verify and drift
and repaired, a second deploy that changes nothing, a firewall change that
would cut SSH reverted, a changed host key refused, destroy leaving the hosts.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from ssh_hosts import GATEWAY, SshHosts, login, make_hosts

from nodekit.cli.main import main
from nodekit.run.operation import STAGES

pytestmark = pytest.mark.integration

NODE = "nktest-ssh"
ADDRESSES = {"edge-01": "10.215.1.10", "hist-01": "10.215.1.11", "cell-01": "10.215.1.12"}
BLUEPRINT = """\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: nktest-ssh
site:
  region: eu-west
  timezone: Europe/Paris
  target: ssh
  ssh:
    allow_from: [{allow}]
network:
  zones:
    - name: ot
      cidr: 10.215.1.0/24
compute:
  - name: edge-01
    role: edge
    zone: ot
    address: 10.215.1.10
  - name: hist-01
    role: controller
    zone: ot
    address: 10.215.1.11
  - name: cell-01
    role: edge
    zone: ot
    address: 10.215.1.12
software:
  - name: broker
    package: mosquitto
    host: hist-01
    settings:
      users: [edge]
  - name: exporter
    package: node-exporter
    host: edge-01
checks:
  - name: broker-port
    host: hist-01
    port: 1883/tcp
"""
EDGE_HOST = """\
  - name: edge-01
    role: edge
    zone: ot
    address: 10.215.1.10
"""
EDGE_SOFTWARE = """\
  - name: exporter
    package: node-exporter
    host: edge-01
"""


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient
) -> Iterator[tuple[Path, SshHosts]]:
    root = tmp_path_factory.mktemp("ssh")
    hosts = make_hosts(docker_client, root)
    path = root / f"{NODE}.yaml"
    path.write_text(BLUEPRINT.format(allow=f"{GATEWAY}/32"))
    try:
        for name, address in ADDRESSES.items():
            hosts.start(name, address)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("NODEKIT_STATE", str(root / "state"))
            yield path, hosts
    finally:
        hosts.remove()


def _deploy(path: Path, hosts: SshHosts, *extra: str) -> tuple[int, dict[str, Any], str]:
    return _json(["deploy", str(path), "--yes", "--identity", str(hosts.key), *extra])


def _json(argv: list[str]) -> tuple[int, dict[str, Any], str]:
    """Run a command with --format json: exit code, the node's result, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--format", "json"])
    (node,) = json.loads(out.getvalue())["nodes"]
    return code, node, err.getvalue()


def test_ssh_node(site: tuple[Path, SshHosts]) -> None:
    path, hosts = site
    untouched = "test ! -e /srv/nodekit && test ! -e /etc/nodekit"

    # 1. Unknown host keys are refused, each named with its fingerprint; nothing changed.
    code, result, _ = _deploy(path, hosts)
    assert code == 1 and result["failed_stage"] == "preflight", result
    assert len(result["preflight"]) == 3
    assert all("unknown host key SHA256:" in p for p in result["preflight"])
    assert "--accept-new-host-keys" in str(result["fix"])
    for name in ADDRESSES:
        hosts.run(name, untouched)

    # 2. One host unreachable: preflight names it; nothing changed on the others.
    hosts.run("cell-01", "systemctl stop ssh.socket ssh.service 2>/dev/null; systemctl stop ssh")
    code, result, _ = _deploy(path, hosts, "--accept-new-host-keys")
    assert code == 1 and result["failed_stage"] == "preflight", result
    assert result["failed_host"] == "cell-01"
    assert [p.split(":")[0] for p in result["preflight"]] == ["cell-01"]
    for name in ADDRESSES:
        hosts.run(name, untouched)
    hosts.run("cell-01", "systemctl start ssh")

    # 3. Keys accepted with the flag: the node deploys over SSH and verifies.
    code, result, err = _deploy(path, hosts, "--accept-new-host-keys")
    assert code == 0, (result["error"], err[-2000:])
    assert [s["stage"] for s in result["stages"]] == list(STAGES)
    first_s = sum(s["seconds"] for s in result["stages"])
    # The login user can still log in, and the bundle is the hosts' only apt source.
    for address in ADDRESSES.values():
        assert login(hosts, address) == 0
    assert "file:/srv/nodekit/bundle" in hosts.run("hist-01", "cat /etc/nodekit/apt/sources.list")

    # 4. A stopped service: verify and drift find it, deploy repairs it.
    hosts.run("hist-01", "systemctl stop mosquitto")
    code, result, _ = _json(["verify", str(path), "--identity", str(hosts.key)])
    assert code == 1 and any("hist-01: service broker" in f for f in result["failures"])
    code, result, _ = _json(["drift", str(path), "--identity", str(hosts.key)])
    assert code == 1 and any("hist-01" in d for d in result["drift"])
    code, result, err = _deploy(path, hosts)
    assert code == 0, (result["error"], err[-2000:])

    # 5. A second deploy changes nothing, anywhere.
    code, result, err = _deploy(path, hosts)
    assert code == 0, (result["error"], err[-2000:])
    changed = {s["stage"]: s["changed"] for s in result["stages"]}
    assert changed == dict.fromkeys(STAGES, 0), changed
    again_s = sum(s["seconds"] for s in result["stages"])
    print(f"ssh node of 3 hosts: first deploy {first_s:.1f} s, no-change deploy {again_s:.1f} s")

    # 6. A firewall change that would cut SSH (management access from elsewhere only)
    #    is reverted on each host, and the run says so; the login still works.
    ruleset = hosts.run("edge-01", "cat /etc/nftables.conf")
    path.write_text(BLUEPRINT.format(allow="10.215.99.0/24"))
    code, result, _ = _deploy(path, hosts)
    assert code == 1 and result["failed_stage"] == "configure", result
    assert "firewall change REVERTED" in str(result["error"])
    assert hosts.run("edge-01", "cat /etc/nftables.conf") == ruleset
    for address in ADDRESSES.values():
        assert login(hosts, address) == 0
    path.write_text(BLUEPRINT.format(allow=f"{GATEWAY}/32"))
    code, result, err = _deploy(path, hosts)
    assert code == 0, (result["error"], err[-2000:])

    # 7. A host dropped from the blueprint, with its software: plan names what goes,
    #    deploy purges what nodekit installed there and says so; the machine stays.
    path.write_text(
        BLUEPRINT.format(allow=f"{GATEWAY}/32").replace(EDGE_HOST, "").replace(EDGE_SOFTWARE, "")
    )
    code, result, _ = _json(["plan", str(path), "--identity", str(hosts.key)])
    assert any(
        d.startswith("remove: edge-01: host removed") and "exporter" in d for d in result["drift"]
    ), result["drift"]
    hosts.run("edge-01", "dpkg -s prometheus-node-exporter >/dev/null")  # still there
    code, result, err = _deploy(path, hosts)
    assert code == 0, (result["error"], err[-2000:])
    assert any("edge-01: host removed" in line for line in result["removals"])
    hosts.run("edge-01", "! dpkg -s prometheus-node-exporter >/dev/null 2>&1")
    hosts.run("edge-01", "! systemctl is-active prometheus-node-exporter")
    assert login(hosts, ADDRESSES["edge-01"]) == 0  # never locked out
    hosts.run("hist-01", "systemctl is-active mosquitto")  # the others untouched

    # 8. A changed host key is always refused, even with the flag.
    hosts.run("cell-01", "rm /etc/ssh/ssh_host_* && ssh-keygen -A && systemctl restart ssh")
    code, result, _ = _deploy(path, hosts, "--accept-new-host-keys")
    assert code == 1 and result["failed_stage"] == "preflight", result
    assert any("cell-01: host key: host key CHANGED" in p for p in result["preflight"])
    #    `nodekit trust` shows it too, and records nothing for it.
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["trust", str(path), "--yes"]) == 1
    status = {line.split("\t")[0]: line.split("\t")[3] for line in out.getvalue().splitlines()}
    assert status == {"hist-01": "known", "cell-01": "changed"}

    # 9. Destroy removes what nodekit installed (by its record), nothing else, and
    #    forgets the node; the machines stay reachable.
    code, result, _ = _json(["destroy", str(path), "--yes", "--identity", str(hosts.key)])
    assert code == 0, result
    assert any(
        line.startswith("hist-01: nodekit's software purged: broker") for line in result["removals"]
    ), result["removals"]
    hosts.run("hist-01", "! dpkg -s mosquitto >/dev/null 2>&1")
    hosts.run("hist-01", "test -e /etc/nodekit/apt/apt.conf")  # nodekit's base stays
    assert login(hosts, ADDRESSES["hist-01"]) == 0
    code, result, _ = _json(["destroy", str(path), "--yes", "--identity", str(hosts.key)])
    assert code == 0 and result["changed"] == 0, result  # idempotent

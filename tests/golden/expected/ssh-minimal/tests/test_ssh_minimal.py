"""Verification of node ssh-minimal, rendered by nodekit 0.1.0 from its blueprint.

`nodekit verify` runs it; plain `pytest` in this folder does too. Every test
id names the host it checks.
"""

from __future__ import annotations

import functools
import os
import shlex

import pytest
import testinfra

HOSTS = {'edge-01': 'ssh://ops@192.168.50.10:2222?sudo=true'}
TIMEZONE = 'Europe/Berlin'
NODE = 'ssh-minimal'
# (host, software name, systemd unit, ports)
SERVICES = [('edge-01', 'broker', 'mosquitto', ['1883/tcp'])]
# (host, kind, argument, expected content or None) from the blueprint's checks
CHECKS = []
# (source host, target host, target address, port): allowed flows must connect
FLOWS_ALLOWED = []
# (source host, target host, target address, port): listening, not allowed from the source zone
FLOWS_DENIED = []
# (host, equipment, protocol, address:port): the machine answers over its protocol
EQUIPMENT = []
# (historian host, database, port, equipment, seconds to wait): fresh telemetry rows
TELEMETRY = []


@functools.cache
def host(name: str) -> testinfra.host.Host:
    spec = HOSTS[name]
    if spec.startswith("ssh://") and os.environ.get("NODEKIT_SSH_CONFIG"):
        # nodekit's per-node SSH configuration: known host keys, identity, bastion.
        spec += "&ssh_config=" + os.environ["NODEKIT_SSH_CONFIG"]
    return testinfra.get_host(spec)


def _ids(rows: list[tuple[object, ...]], *columns: int) -> list[str]:
    return [":".join(str(row[c]) for c in columns) for row in rows]


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_host_up(name: str) -> None:
    state = host(name).run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), f"{name}: systemd is {state}"


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_timezone(name: str) -> None:
    # Both resolved: a zone may be a link to another (UTC -> Etc/UTC).
    zone = host(name).check_output("readlink -f /etc/localtime")
    want = host(name).check_output("readlink -f /usr/share/zoneinfo/" + shlex.quote(TIMEZONE))
    assert zone == want, f"{name}: timezone is {zone}, not {TIMEZONE}"


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_chrony(name: str) -> None:
    chrony = host(name).service("chrony")
    assert chrony.is_running and chrony.is_enabled


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_nftables(name: str) -> None:
    h = host(name)
    assert h.service("nftables").is_enabled
    assert h.run("nft list table inet nodekit").rc == 0, f"{name}: nodekit ruleset not loaded"


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_ssh_hardened(name: str) -> None:
    config = host(name).check_output("sshd -T")
    assert "permitrootlogin no" in config
    assert "passwordauthentication no" in config


@pytest.mark.parametrize("name,software,unit,ports", SERVICES, ids=_ids(SERVICES, 0, 1))
def test_service(name: str, software: str, unit: str, ports: list[str]) -> None:
    service = host(name).service(unit)
    assert service.is_running, f"{name}: {software} ({unit}) is not running"
    assert service.is_enabled, f"{name}: {software} ({unit}) is not enabled"
    for port in ports:
        number, proto = port.split("/")
        assert host(name).socket(f"{proto}://{number}").is_listening, (
            f"{name}: {software} is not listening on {port}"
        )

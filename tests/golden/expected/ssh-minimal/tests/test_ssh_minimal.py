"""Verification of node ssh-minimal, rendered by nodekit 0.1.0 from its blueprint.

`nodekit verify` runs it; plain `pytest` in this folder does too. Every test
id names the host it checks.
"""

from __future__ import annotations

import collections
import functools
import json
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
# (source host, target host, target address, port): each tcp port a flow allows
# between two zones gets through (answered or refused by the target)
FLOWS_ALLOWED = []
# (source host, target host, target address, port): a sample of ports no flow
# allows between two zones, blocked on the way
FLOWS_DENIED = []
# (host, equipment, protocol, address:port): the machine answers over its protocol
EQUIPMENT = []
# (host, Debian packages nodekit installs): installed; verify records the versions
PACKAGES = [('edge-01', ['chrony', 'mosquitto', 'nftables', 'openssh-server'])]
# (historian host, database, port, equipment, seconds to wait): fresh telemetry rows
TELEMETRY = []
# (host, systemd unit, units it starts after): software[].depends_on on one host
UNIT_ORDER = []
# (host, FQDN, another host, its FQDN, its address from the first): network.domain
FQDNS = []


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


def _record(kind: str, name: str, value: object) -> None:
    """Keep what verify saw in the run folder (nodekit report shows it)."""
    folder = os.environ.get("NODEKIT_LIVE_DIR")
    if not folder:
        return
    path = os.path.join(folder, "live.json")
    data = {}
    if os.path.exists(path):
        with open(path) as handle:
            data = json.load(handle)
    data.setdefault(kind, {})[name] = value
    with open(path, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)


# The rendered ruleset, loaded in a scratch network namespace, against the live one.
RENDERED_RULESET = (
    "unshare --net sh -c 'nft -f /etc/nftables.conf && nft list table inet nodekit'"
)


def _lines(text: str) -> collections.Counter[str]:
    return collections.Counter(line.strip() for line in text.splitlines() if line.strip())


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_firewall_ruleset(name: str) -> None:
    h = host(name)
    rendered = _lines(h.check_output(RENDERED_RULESET))
    live_run = h.run("nft list table inet nodekit")
    live = _lines(live_run.stdout) if live_run.rc == 0 else collections.Counter()
    differences = [f"live only (added by hand?): {line}" for line in sorted(live - rendered)]
    differences += [f"missing from the live ruleset: {line}" for line in sorted(rendered - live)]
    _record("firewall", name, differences)
    assert not differences, f"{name}: the live firewall differs from the rendered one: " + (
        "; ".join(differences)
    )


@pytest.mark.parametrize("name,packages", PACKAGES, ids=_ids(PACKAGES, 0))
def test_packages(name: str, packages: list[str]) -> None:
    fmt = "${Package}\\t${Version}\\t${db:Status-Status}\\n"
    out = host(name).run(f"dpkg-query -W -f '{fmt}' " + " ".join(packages)).stdout
    versions = {
        p: v for p, v, status in (line.split("\t") for line in out.splitlines() if line)
        if status == "installed"
    }
    _record("packages", name, versions)
    missing = sorted(set(packages) - set(versions))
    assert not missing, f"{name}: not installed: {', '.join(missing)}"

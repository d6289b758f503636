"""Verification of node lyon-additive-01, rendered by nodekit 0.1.0 from its blueprint.

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

HOSTS = {'gw-01': 'docker://nk-lyon-additive-01-gw-01',
 'edge-01': 'docker://nk-lyon-additive-01-edge-01',
 'hist-01': 'docker://nk-lyon-additive-01-hist-01'}
TIMEZONE = 'Europe/Paris'
NODE = 'lyon-additive-01'
# (host, software name, systemd unit, ports)
SERVICES = [('gw-01', 'exporter-gw-01', 'prometheus-node-exporter', ['9100/tcp']),
 ('edge-01', 'collector', 'nodekit-edge-collector', []),
 ('edge-01', 'exporter-edge-01', 'prometheus-node-exporter', ['9100/tcp']),
 ('hist-01', 'broker', 'mosquitto', ['1883/tcp']),
 ('hist-01', 'exporter-hist-01', 'prometheus-node-exporter', ['9100/tcp']),
 ('hist-01', 'historian-db', 'postgresql', ['5432/tcp']),
 ('hist-01', 'ingest', 'nodekit-telemetry-ingest', []),
 ('hist-01', 'metrics', 'prometheus', ['9090/tcp'])]
# (host, kind, argument, expected content or None) from the blueprint's checks
CHECKS = [('hist-01', 'port', '1883/tcp', None),
 ('hist-01', 'service', 'postgresql', None),
 ('edge-01', 'package', 'prometheus-node-exporter', None)]
# (source host, target host, target address, port): each tcp port a flow allows
# between two zones gets through (answered or refused by the target)
FLOWS_ALLOWED = [('edge-01', 'hist-01', '10.41.2.10', '1883/tcp'),
 ('hist-01', 'edge-01', '10.41.1.10', '9100/tcp')]
# (source host, target host, target address, port): a sample of ports no flow
# allows between two zones, blocked on the way
FLOWS_DENIED = [('edge-01', 'hist-01', '10.41.2.10', '22/tcp'),
 ('edge-01', 'hist-01', '10.41.2.10', '23/tcp'),
 ('edge-01', 'hist-01', '10.41.2.10', '502/tcp'),
 ('edge-01', 'hist-01', '10.41.2.10', '5432/tcp'),
 ('edge-01', 'hist-01', '10.41.2.10', '80/tcp'),
 ('edge-01', 'hist-01', '10.41.2.10', '9100/tcp'),
 ('edge-01', 'hist-01', '10.41.2.10', 'icmp'),
 ('hist-01', 'edge-01', '10.41.1.10', '1883/tcp'),
 ('hist-01', 'edge-01', '10.41.1.10', '22/tcp'),
 ('hist-01', 'edge-01', '10.41.1.10', '23/tcp'),
 ('hist-01', 'edge-01', '10.41.1.10', '502/tcp'),
 ('hist-01', 'edge-01', '10.41.1.10', '5432/tcp'),
 ('hist-01', 'edge-01', '10.41.1.10', '80/tcp'),
 ('hist-01', 'edge-01', '10.41.1.10', 'icmp')]
# (host, equipment, protocol, address:port): the machine answers over its protocol
EQUIPMENT = [('edge-01', 'printer-01', 'moonraker', '10.41.1.101:7125'),
 ('edge-01', 'printer-02', 'moonraker', '10.41.1.102:7125')]
# (host, Debian packages nodekit installs): installed; verify records the versions
PACKAGES = [('gw-01', ['chrony', 'nftables', 'openssh-server', 'prometheus-node-exporter']),
 ('edge-01',
  ['chrony', 'nftables', 'openssh-server', 'prometheus-node-exporter', 'python3-venv']),
 ('hist-01',
  ['chrony',
   'mosquitto',
   'nftables',
   'openssh-server',
   'postgresql',
   'prometheus',
   'prometheus-node-exporter',
   'python3-venv'])]
# (historian host, database, port, equipment, seconds to wait): fresh telemetry rows
TELEMETRY = [('hist-01', 'historian', 5432, 'printer-01', 45),
 ('hist-01', 'historian', 5432, 'printer-02', 45)]
# (host, systemd unit, units it starts after): software[].depends_on on one host
UNIT_ORDER = [('hist-01', 'prometheus', ['prometheus-node-exporter'])]
# (host, FQDN, another host, its FQDN, its address from the first): network.domain
FQDNS = [('edge-01',
  'edge-01.lyon.example.internal',
  'gw-01',
  'gw-01.lyon.example.internal',
  '10.41.1.1'),
 ('gw-01',
  'gw-01.lyon.example.internal',
  'hist-01',
  'hist-01.lyon.example.internal',
  '10.41.2.10'),
 ('hist-01',
  'hist-01.lyon.example.internal',
  'edge-01',
  'edge-01.lyon.example.internal',
  '10.41.1.10')]


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


@pytest.mark.parametrize("name,fqdn,other,other_fqdn,address", FQDNS, ids=_ids(FQDNS, 0))
def test_fqdn(name: str, fqdn: str, other: str, other_fqdn: str, address: str) -> None:
    h = host(name)
    found = h.check_output("hostname -f")
    assert found == fqdn, f"{name}: hostname -f is {found}, not {fqdn}"
    # From /etc/hosts: no DNS needed. `getent ahosts` asks as applications do
    # (getaddrinfo); `getent hosts` asks for IPv6 first, which /etc/hosts does not
    # have, and waits 10 s for a DNS server an offline site cannot reach.
    for looked_up in (other_fqdn, other):
        lines = h.run("getent ahosts " + shlex.quote(looked_up)).stdout.splitlines()
        seen = sorted({line.split()[0] for line in lines if line.strip()})
        assert seen == [address], (
            f"{name}: {looked_up} resolves to {', '.join(seen) or 'nothing'}, not {address}"
        )


@pytest.mark.parametrize("name,unit,after", UNIT_ORDER, ids=_ids(UNIT_ORDER, 0, 1))
def test_unit_order(name: str, unit: str, after: list[str]) -> None:
    ordered = host(name).check_output(f"systemctl show -p After --value {unit}").split()
    for first in after:
        assert f"{first}.service" in ordered, f"{name}: {unit} does not start after {first}"


@pytest.mark.parametrize("name,kind,argument,expected", CHECKS, ids=_ids(CHECKS, 0, 1, 2))
def test_check(name: str, kind: str, argument: str, expected: str | None) -> None:
    h = host(name)
    if kind == "service":
        assert h.service(argument).is_running and h.service(argument).is_enabled
    elif kind == "port":
        number, proto = argument.split("/")
        assert h.socket(f"{proto}://{number}").is_listening
    elif kind == "package":
        assert h.package(argument).is_installed
    elif kind == "file":
        assert h.file(argument).exists
        if expected is not None:
            assert expected in h.file(argument).content_string
    elif kind == "command":
        assert h.run(argument).rc == 0
    else:  # pragma: no cover - the blueprint validator allows no other kind
        raise AssertionError(f"unknown check kind {kind}")

# Tells an answer or a refusal from the target (the firewalls let it through)
# from a rejection or silence on the way (blocked).
# ICMP: an echo request answered, or not (raw socket: the checks run as root).
PROBE = """
import os, socket, struct, sys, time
address, port = sys.argv[1], sys.argv[2]
if port == "icmp":
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    body = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"nodekit!"  # even length
    total = sum(struct.unpack("!%dH" % (len(body) // 2), body))
    total = (total >> 16) + (total & 0xFFFF)
    checksum = ~(total + (total >> 16)) & 0xFFFF
    s.sendto(body[:2] + struct.pack("!H", checksum) + body[4:], (address, 0))
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data, source = s.recvfrom(1024)
        except OSError:
            break
        kind, _, _, got = struct.unpack("!BBHH", data[20:26])
        if source[0] == address and kind == 0 and got == ident:
            print("open")
            sys.exit()
    print("blocked")
    sys.exit()
s = socket.socket()
s.settimeout(3)
try:
    s.connect((address, int(port.split("/")[0])))
    print("open")
except ConnectionRefusedError:
    print("refused")
except OSError:
    print("blocked")
"""


def _probe(source: str, address: str, port: str) -> str:
    command = f"python3 -c {shlex.quote(PROBE)} {shlex.quote(address)} {shlex.quote(port)}"
    return host(source).check_output(command).strip()


@pytest.mark.parametrize(
    "source,target,address,port", FLOWS_ALLOWED, ids=_ids(FLOWS_ALLOWED, 0, 1, 3)
)
def test_flow_allowed(source: str, target: str, address: str, port: str) -> None:
    answer = _probe(source, address, port)
    assert answer in ("open", "refused"), (
        f"{source} cannot reach {target} {address}:{port}, which a flow allows ({answer})"
    )


@pytest.mark.parametrize(
    "source,target,address,port", FLOWS_DENIED, ids=_ids(FLOWS_DENIED, 0, 1, 3)
)
def test_flow_denied(source: str, target: str, address: str, port: str) -> None:
    answer = _probe(source, address, port)
    assert answer == "blocked", (
        f"{source} reaches {target} {address}:{port}, which no flow allows ({answer})"
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


@pytest.mark.parametrize("name,equipment,protocol,where", EQUIPMENT, ids=_ids(EQUIPMENT, 0, 1))
def test_equipment(name: str, equipment: str, protocol: str, where: str) -> None:
    probe = (
        "/opt/nodekit/equipment/bin/python -m nodekit_equipment.probe"
        " --config /etc/nodekit/equipment/probe.json --timeout 5 --name " + shlex.quote(equipment)
    )
    result = host(name).run(probe)
    reason = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or ["no output"]
    assert result.rc == 0, f"{equipment} ({protocol} at {where}) does not answer: {reason[0]}"


@pytest.mark.parametrize(
    "name,database,port,equipment,wait", TELEMETRY, ids=_ids(TELEMETRY, 0, 3)
)
def test_telemetry(name: str, database: str, port: int, equipment: str, wait: int) -> None:
    import time

    sql = (
        f"SELECT count(*) FROM telemetry WHERE node = '{NODE}' AND equipment = '{equipment}'"
        " AND time > now() - interval '1 minute'"
    )
    psql = f"runuser -u postgres -- psql -p {int(port)} -d {shlex.quote(database)}"
    query = f"{psql} -tAc {shlex.quote(sql)}"
    deadline = time.monotonic() + wait
    rows = ""
    while True:
        result = host(name).run(query)
        rows = result.stdout.strip()
        if result.rc == 0 and rows.isdigit() and int(rows) > 0:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(3)
    detail = rows or result.stderr.strip()[-200:]
    pytest.fail(f"{equipment}: no telemetry newer than a minute in {database} on {name} ({detail})")

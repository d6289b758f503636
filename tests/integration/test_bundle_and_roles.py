"""The site bundle and the Ansible roles, for real: bundle, converge, idempotence, verify.

A bundle of every role's packages is built from this host's apt (the .deb
cache makes re-runs quick). The lab is two nodekit blueprints
(``_roles_support.blueprints``), rendered by nodekit; the local target's own
code makes their zone networks and host containers (the bundle mounted
read-only), at the names and addresses the rendered inventory gives. The
rendered site.yml converges them over the rendered inventory and the
run-time host layer, as ``nodekit deploy`` does; a second converge must
change nothing, and testinfra's docker backend checks the result.

Lab node (domain ``lab.example.internal``): zones cell and office, each its
own network; ``gw`` (gateway, in both) routes between them and enforces the
flows; ``node-a`` (cell) runs every role, ``node-b`` (office) base, firewall
and the node exporter, and reaches cell through ``gw``. Its hosts have their
names in /etc/hosts, put back after a restart. ``node-c``, of a node without
a domain, has nothing of it.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import _roles_support as lab
import pytest
import testinfra

from nodekit.run.bundle import BundleResult, build_bundle, role_apt_packages
from nodekit.toolchain import baseline_status, node_image_ref

pytestmark = pytest.mark.integration

ROLES = ("base", "firewall", "mosquitto", "postgresql", "node_exporter", "prometheus")
SERVICES = {
    "a": (
        "chrony",
        "nftables",
        "mosquitto",
        "postgresql",
        "prometheus-node-exporter",
        "prometheus",
    ),
    "b": ("chrony", "nftables", "prometheus-node-exporter"),
    "gw": ("chrony", "nftables"),
    "c": ("chrony", "nftables"),
}
PORTS = {"a": (1883, 5432, 9100, 9090), "b": (9100,)}
HOSTS = sorted(SERVICES)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> BundleResult:
    dest = tmp_path_factory.mktemp("bundle")
    return build_bundle(role_apt_packages(ROLES), dest, baseline=baseline_status())


@pytest.fixture(scope="module")
def site(bundle: BundleResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[lab.Lab]:
    """The rendered lab, its networks and containers; removed whatever happens."""
    suffix = uuid.uuid4().hex[:8]
    secret = {"mqtt": "nkpw-" + secrets.token_hex(12), "pg": "nkpw-" + secrets.token_hex(12)}
    folder = tmp_path_factory.mktemp("lab")
    site = lab.build(folder, suffix, secret, node_image_ref(), bundle.path)
    try:
        yield site
    finally:
        lab.teardown(site)


@pytest.fixture(scope="module")
def runs(site: lab.Lab) -> list[lab.Converge]:
    """Converge twice; later tests read both runs."""
    first = lab.converge(site, "first")
    if not first.ok:
        pytest.fail(f"first converge failed: {first.failures}\n{first.stdout[-6000:]}")
    second = lab.converge(site, "second")
    print(f"converge: first {first.seconds:.1f} s, second {second.seconds:.1f} s")
    return [first, second]


def node(site: lab.Lab, host: str) -> Any:
    return testinfra.get_host(site.testinfra_spec(host))


# --- the bundle -----------------------------------------------------------


def test_bundle_holds_every_role_package(bundle: BundleResult) -> None:
    files = set(bundle.packages)
    for package in role_apt_packages(ROLES):
        assert any(f.startswith(f"{package}_") for f in files), package
    assert (bundle.path / "Packages").is_file()
    assert (bundle.path / "Packages.gz").is_file()
    assert sorted(p.name for p in bundle.path.glob("*.deb")) == list(bundle.packages)


def test_bundle_is_reused_and_cached(
    bundle: BundleResult, tmp_path_factory: pytest.TempPathFactory
) -> None:
    again = build_bundle(role_apt_packages(ROLES), bundle.path, baseline=baseline_status())
    assert again.reused
    assert again.packages == bundle.packages
    events: list[str] = []
    other = tmp_path_factory.mktemp("bundle-copy")
    copy = build_bundle(
        role_apt_packages(ROLES), other, baseline=baseline_status(), on_event=events.append
    )
    assert not copy.reused
    assert not any("downloading" in e for e in events), events  # all from the .deb cache
    for name in ("Packages", "Packages.gz", "nodekit-bundle.json"):
        assert (other / name).read_bytes() == (bundle.path / name).read_bytes(), name


# --- converge and idempotence ---------------------------------------------


def test_converge_succeeds(runs: list[lab.Converge], site: lab.Lab) -> None:
    first = runs[0]
    assert first.status == "successful", first.stdout[-4000:]
    for name in site.names.values():
        assert first.stats["ok"].get(name, 0) > 0
        assert not first.stats.get("failures", {}).get(name)
        assert not first.stats.get("dark", {}).get(name)


def test_second_converge_changes_nothing(runs: list[lab.Converge], site: lab.Lab) -> None:
    second = runs[1]
    assert second.status == "successful", second.stdout[-4000:]
    for name in site.names.values():
        assert second.stats["changed"].get(name, 0) == 0, second.changed_tasks


def test_no_secret_in_logs(runs: list[lab.Converge], site: lab.Lab) -> None:
    for run in runs:
        text = run.stdout + run.artifact_text()
        assert "mosquitto_users" in text or "Mosquitto" in text  # the log is there at all
        for secret in site.secrets.values():
            assert secret not in text


# --- verification ------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_services_running_and_enabled(runs: list[lab.Converge], site: lab.Lab, host: str) -> None:
    target = node(site, host)
    for service in SERVICES[host]:
        assert target.service(service).is_running, service
        assert target.service(service).is_enabled, service


@pytest.mark.parametrize("host", sorted(PORTS))
def test_ports_listening(runs: list[lab.Converge], site: lab.Lab, host: str) -> None:
    target = node(site, host)
    for port in PORTS[host]:
        assert target.socket(f"tcp://{port}").is_listening, port


@pytest.mark.parametrize("host", HOSTS)
def test_base(runs: list[lab.Converge], site: lab.Lab, host: str) -> None:
    target = node(site, host)
    assert target.file("/etc/timezone").content_string.strip() == "Europe/Paris"
    assert target.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Europe/Paris"
    assert target.check_output("date +%Z") in ("CET", "CEST")
    sshd = target.check_output("sshd -T").splitlines()
    for setting in (
        "permitrootlogin no",
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
    ):
        assert setting in sshd
    assert target.check_output("pgrep -a chronyd").count(" -x") >= 1
    assert "Stratum" in target.check_output("chronyc tracking")
    admin = target.user("nodekit")
    assert "sudo" in admin.groups
    assert target.run("sudo -l -U nodekit").stdout.count("NOPASSWD: ALL") == 1
    assert not target.file("/etc/apt/sources.list.d/nodekit.list").exists  # not the host's apt
    assert target.file("/etc/nodekit/apt/sources.list").content_string == (
        "deb [trusted=yes] file:/srv/nodekit/bundle ./\n"
    )
    journald = target.file("/etc/systemd/journald.conf.d/nodekit.conf").content_string
    assert "Storage=persistent" in journald
    assert "SystemMaxUse=200M" in journald


def test_firewall_rules(runs: list[lab.Converge], site: lab.Lab) -> None:
    a = node(site, "a").check_output("nft list table inet nodekit")
    assert "policy drop" in a
    assert f"ip saddr {site.cell} accept" in a
    assert f"ip saddr {site.office} ip daddr {site.address('a')} tcp dport {{ 1883, 9090 }}" in a
    assert "udp dport 5000-5010" in a
    assert "chain forward" not in a  # not a gateway
    gw = node(site, "gw").check_output("nft list table inet nodekit")
    forward = gw.split("chain forward", 1)[1]  # the gateway carries the flows
    assert f"ip saddr {site.cell} ip daddr {site.office} tcp dport 9100 accept" in forward
    assert f"ip saddr {site.office} ip daddr {site.cell} tcp dport {{ 1883, 9090 }}" in forward
    b = node(site, "b").check_output("nft list table inet nodekit")
    assert "chain forward" not in b
    assert f"ip saddr {site.office} accept" in b
    # Docker's own nat table (its DNS) survives: nodekit replaces only its table.
    assert "table ip nat" in node(site, "b").check_output("nft list tables")


def test_firewall_enforces_zones(runs: list[lab.Converge], site: lab.Lab) -> None:
    a, b = node(site, "a"), node(site, "b")

    def reaches(src: Any, dst: str, port: int) -> bool:
        return bool(src.run(f"nc -z -w 2 {site.address(dst)} {port}").rc == 0)

    assert reaches(b, "a", 1883)  # flow office -> cell, through gw
    assert not reaches(b, "a", 5432)  # postgresql listens, but no flow allows it
    assert not reaches(b, "a", 9100)
    assert reaches(a, "b", 9100)  # flow cell -> office


def test_routes(runs: list[lab.Converge], site: lab.Lab) -> None:
    """Each host reaches the other zone through the gateway's address in its own."""
    for host, other, zone in (("b", "cell", "office"), ("a", "office", "cell")):
        target = node(site, host)
        assert target.service("nodekit-routes").is_enabled
        route = target.check_output(f"ip route show {site.cidr(other)}")
        assert f"via {site.address('gw', zone)}" in route


def test_mosquitto_refuses_anonymous_and_accepts_user(
    runs: list[lab.Converge], site: lab.Lab
) -> None:
    a = node(site, "a")
    anonymous = a.run("mosquitto_pub -h 127.0.0.1 -p 1883 -t nodekit/test -m hi")
    assert anonymous.rc != 0
    assert "not authorised" in (anonymous.stderr + anonymous.stdout).lower()
    password = site.secrets["mqtt"]
    wrong = a.run("mosquitto_pub -h 127.0.0.1 -u sensor -P wrong -t nodekit/test -m hi")
    assert wrong.rc != 0
    a.check_output(
        "mosquitto_pub -h 127.0.0.1 -u sensor -P %s -t nodekit/test -r -m hello", password
    )
    got = a.check_output(
        "mosquitto_sub -h 127.0.0.1 -u sensor -P %s -t nodekit/test -C 1 -W 5", password
    )
    assert got == "hello"
    assert a.file("/etc/mosquitto/nodekit.passwd").content_string.startswith("sensor:$7$")


def test_postgresql_user_logs_in(runs: list[lab.Converge], site: lab.Lab) -> None:
    a = node(site, "a")
    out = a.check_output(
        "PGPASSWORD=%s psql -h 127.0.0.1 -U historian -d historian -tAc %s",
        site.secrets["pg"],
        "create table if not exists probe (i int); select current_user",
    )
    assert out.splitlines()[-1] == "historian"
    bad = a.run("PGPASSWORD=wrong psql -h 127.0.0.1 -U historian -d historian -c 'select 1'")
    assert bad.rc != 0


def test_prometheus_scrapes_both_exporters(runs: list[lab.Converge], site: lab.Lab) -> None:
    a = node(site, "a")
    targets = lab.prometheus_targets(a)
    assert f"http://{site.address('a')}:9100/metrics" in targets
    assert f"http://{site.address('b')}:9100/metrics" in targets
    assert "15d" in a.file("/etc/default/prometheus").content_string


def test_domain_names_the_hosts_and_survives_a_restart(
    runs: list[lab.Converge], site: lab.Lab
) -> None:
    b = node(site, "b")

    def names_resolve() -> None:
        assert b.check_output("hostname -f") == f"node-b.{lab.DOMAIN}"
        for name in (f"node-a.{lab.DOMAIN}", "node-a"):  # no DNS: /etc/hosts
            # ahosts asks as applications do; `getent hosts` asks for IPv6 first
            # and waits 10 s for the DNS server no site network reaches
            assert b.check_output(f"getent ahosts {name}").split()[0] == site.address("a")
        assert b.file("/etc/hosts").content_string.startswith("# BEGIN nodekit hosts\n")

    names_resolve()
    assert b.service("nodekit-hosts").is_enabled
    c = node(site, "c")  # its node has no domain: nothing of it
    assert "nodekit hosts" not in c.file("/etc/hosts").content_string
    assert not c.file("/etc/nodekit/hosts").exists
    assert not c.file("/etc/systemd/system/nodekit-hosts.service").exists

    # Docker writes /etc/hosts afresh at a restart; the unit puts the block back.
    lab.restart(site, "b")
    names_resolve()

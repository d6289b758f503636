"""Helpers of test_bundle_and_roles: the lab as nodekit blueprints, rendered and run.

The lab is two ``kind: Node`` blueprints (:func:`blueprints`), rendered by
``nodekit.render`` exactly as ``nodekit render`` does. Their networks and
containers are made by the local target's own code (the Pulumi program's
dynamic providers, called directly: no engine, no stack), so names and
addresses are the rendered inventory's: ``nk-<node>-<host>`` and
``nk-<node>-<zone>``. Ansible runs the rendered site.yml over the rendered
inventory plus the run-time host layer, with the node's secrets file, as
``nodekit deploy``'s configure stage does (:func:`nodekit.run.stages.host_layer`,
:func:`nodekit.run.ansible_stage.run_playbook`).

Every node is named ``nktest-rlab-<suffix>...``, so leftovers are easy to spot.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nodekit.blueprint import load
from nodekit.pulumi.docker_provider import NODE_LABEL, ContainerProvider, NetworkProvider
from nodekit.render import render
from nodekit.render.plan import BUNDLE_MOUNT, HostPlan, NodePlan, plan
from nodekit.run.ansible_stage import run_playbook
from nodekit.run.stages import host_layer
from nodekit.run.state import NodeState
from nodekit.targets import RunAccess, target_for

DOMAIN = "lab.example.internal"  # network.domain of the lab node
ADMIN_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyOnly nk"
# Candidate /24s of the lab's zones (another run may hold the first).
SUBNETS = [ipaddress.IPv4Network(f"10.199.{n}.0/24") for n in range(1, 40)]
# Secret names the blueprints give rise to (software name / user) -> the test's key.
SECRETS = {"broker/sensor": "mqtt", "historian-db/historian": "pg"}


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def blueprints(name: str, subnet: ipaddress.IPv4Network) -> dict[str, dict[str, Any]]:
    """The lab's blueprints (node name -> document) on one /24.

    Node ``name`` (domain ``DOMAIN``): zones cell and office, each its own
    network; ``gw`` (gateway, in both) routes between them and enforces the
    flows; ``node-a`` (cell) runs every role, ``node-b`` (office) base,
    firewall and the node exporter. Node ``name-p`` (no domain): ``node-c``,
    base and firewall only.
    """
    cell, office, plain = (str(n) for n in list(subnet.subnets(new_prefix=26))[:3])

    def at(cidr: str, n: int) -> str:
        return str(ipaddress.IPv4Network(cidr)[n])

    site = {
        "region": "test",
        "timezone": "Europe/Paris",
        "target": "local",
        "ssh": {"admin_keys": [ADMIN_KEY]},
    }
    lab = {
        "apiVersion": "nodekit/v1",
        "kind": "Node",
        "metadata": {"name": name, "description": "role tests: the lab node"},
        "site": site,
        "network": {
            "domain": DOMAIN,
            "zones": [{"name": "cell", "cidr": cell}, {"name": "office", "cidr": office}],
            "flows": [
                {"from": "office", "to": "cell", "ports": ["1883/tcp", "9090/tcp"]},
                {"from": "cell", "to": "office", "ports": ["9100/tcp"]},
                {"from": "uplink", "to": "cell", "ports": ["8883/tcp", "5000-5010/udp"]},
            ],
        },
        "compute": [
            {
                "name": "gw",
                "role": "gateway",
                "zone": "office",
                "address": at(office, 1),
                "interfaces": [{"zone": "cell", "address": at(cell, 1)}],
            },
            {"name": "node-a", "role": "edge", "zone": "cell", "address": at(cell, 10)},
            {"name": "node-b", "role": "controller", "zone": "office", "address": at(office, 20)},
        ],
        "software": [
            {"name": "broker", "package": "mosquitto", "host": "node-a",
             "settings": {"users": ["sensor"]}},
            {"name": "historian-db", "package": "postgresql", "host": "node-a",
             "settings": {"databases": ["historian"], "users": ["historian"]}},
            {"name": "metrics", "package": "prometheus", "host": "node-a"},
            {"name": "exporter-a", "package": "node-exporter", "host": "node-a"},
            {"name": "exporter-b", "package": "node-exporter", "host": "node-b"},
        ],
    }  # fmt: skip
    bare = {
        "apiVersion": "nodekit/v1",
        "kind": "Node",
        "metadata": {"name": f"{name}-p", "description": "role tests: a node without a domain"},
        "site": site,
        "network": {"zones": [{"name": "plain", "cidr": plain}]},
        "compute": [{"name": "node-c", "role": "edge", "zone": "plain", "address": at(plain, 10)}],
    }
    return {name: lab, f"{name}-p": bare}


@dataclass
class Lab:
    """The rendered nodes; hosts by short key
    (``a``, ``b``, ``gw`` of the lab node, ``c`` of the node without a domain)."""

    folder: Path
    secrets: dict[str, str]  # test key (mqtt, pg) -> value
    plans: dict[str, NodePlan] = field(default_factory=dict)  # node name -> plan
    rendered: dict[str, Path] = field(default_factory=dict)  # node name -> render folder

    @property
    def hosts(self) -> dict[str, tuple[NodePlan, HostPlan]]:
        found = {}
        for node in self.plans.values():
            for host in node.hosts:
                found[host.name.removeprefix("node-")] = (node, host)
        return found

    def host(self, key: str) -> HostPlan:
        return self.hosts[key][1]

    @property
    def names(self) -> dict[str, str]:
        """Key -> the host's name in the rendered inventories."""
        return {key: host.name for key, (_, host) in self.hosts.items()}

    def container(self, key: str) -> str:
        return self.host(key).container

    def testinfra_spec(self, key: str) -> str:
        node, host = self.hosts[key]
        return target_for(node).testinfra_spec(host)

    def address(self, key: str, zone: str | None = None) -> str:
        host = self.host(key)
        return host.addresses[zone] if zone else host.address

    def cidr(self, zone: str) -> str:
        return next(z.cidr for n in self.plans.values() for z in n.zones if z.name == zone)

    @property
    def cell(self) -> str:
        return self.cidr("cell")

    @property
    def office(self) -> str:
        return self.cidr("office")

    def secret_value(self, name: str) -> str | None:
        return self.secrets[SECRETS[name]] if name in SECRETS else None


def build(folder: Path, suffix: str, secrets: dict[str, str], image: str, bundle: Path) -> Lab:
    """Write, load and render the blueprints on the first free /24, make their
    networks and containers; on any failure, remove what was made."""
    lab = Lab(folder, secrets)
    try:
        for subnet in SUBNETS:
            _render(lab, f"nktest-rlab-{suffix}", subnet)
            try:
                _networks(lab)
                break
            except RuntimeError as error:
                teardown(lab)
                if "overlap" not in str(error):
                    raise
        else:
            raise RuntimeError("no free 10.199.x.0/24 for the lab's zones")
        _containers(lab, image, bundle)
    except BaseException:
        teardown(lab)
        raise
    return lab


def _render(lab: Lab, name: str, subnet: ipaddress.IPv4Network) -> None:
    lab.plans.clear()
    lab.rendered.clear()
    for node, data in blueprints(name, subnet).items():
        source = lab.folder / "blueprints" / f"{node}.yaml"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(yaml.safe_dump(data, sort_keys=False))
        blueprint = load(source)
        lab.rendered[node] = render(blueprint, lab.folder / "rendered" / node).out_dir
        lab.plans[node] = plan(blueprint.data)


def _networks(lab: Lab) -> None:
    """One internal network per zone, as nodekit.pulumi.node.LocalNode declares it."""
    for node in lab.plans.values():
        for zone in node.zones:
            props = {
                "name": zone.network, "subnet": zone.cidr, "gateway": zone.bridge,
                "internal": True, "labels": {NODE_LABEL: node.name}, "vlan": zone.vlan,
            }  # fmt: skip
            NetworkProvider().create(props)


def _containers(lab: Lab, image: str, bundle: Path) -> None:
    """A systemd container per host at its blueprint addresses, as LocalNode declares it."""
    wanted = []
    for node in lab.plans.values():
        for host in node.hosts:
            wanted.append(
                {
                    "name": host.container,
                    "image": image,
                    "hostname": host.name,
                    "networks": [
                        {"network": node.zone(zone).network, "address": address}
                        for zone, address in host.addresses.items()
                    ],
                    "memory_mb": host.memory_mb,
                    "cpus": host.cpus,
                    "sysctls": {"net.ipv4.ip_forward": "1"} if host.is_gateway else {},
                    "mounts": {str(bundle): BUNDLE_MOUNT},
                    "labels": {NODE_LABEL: node.name},
                    "running": True,
                }
            )
    provider = ContainerProvider()
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        futures = [pool.submit(provider.create, provider.check({}, p).inputs) for p in wanted]
        errors = [str(f.exception()) for f in futures if f.exception() is not None]
    if errors:
        raise RuntimeError("; ".join(errors))


def teardown(lab: Lab) -> None:
    """Remove the nodes' containers and networks by name, whether or not their
    create finished (a network with its host rule, as the provider deletes it),
    then anything else labelled with a lab node."""
    for node in lab.plans.values():
        for host in node.hosts:
            with contextlib.suppress(Exception):
                ContainerProvider().delete(host.container, {})
    for node in lab.plans.values():
        for zone in node.zones:
            with contextlib.suppress(Exception):
                NetworkProvider().delete(zone.network, {"name": zone.network})
        with contextlib.suppress(Exception):
            target_for(node).remove_leftovers()


def restart(lab: Lab, key: str) -> None:
    """Restart a host's container (Docker writes its /etc/hosts afresh); wait for systemd."""
    name = lab.container(key)
    docker("restart", name)
    deadline = time.monotonic() + 60
    while True:
        state = docker("exec", name, "systemctl", "is-system-running", "--wait", check=False)
        if state.stdout.strip() in ("running", "degraded"):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: systemd did not come up: {state.stdout}{state.stderr}")
        time.sleep(0.5)


@dataclass(frozen=True)
class Converge:
    """One converge of every lab node (in parallel, as ``nodekit deploy A B`` does)."""

    ok: bool
    failures: list[str]
    stats: dict[str, dict[str, int]]  # ok, changed, failures, dark, ... -> host -> count
    stdout: str
    artifacts: list[Path]
    seconds: float
    changed_tasks: list[str]

    @property
    def status(self) -> str:
        return "successful" if self.ok else "failed"

    def artifact_text(self) -> str:
        """Every file ansible-runner wrote for this run (stdout, job events, ...)."""
        parts = []
        for folder in self.artifacts:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)


def converge(lab: Lab, ident: str) -> Converge:
    """The rendered site.yml on every node, as the configure stage runs it."""
    with ThreadPoolExecutor(max_workers=len(lab.plans)) as pool:
        runs = list(pool.map(lambda node: _converge_node(lab, node, ident), lab.plans.values()))
    stats: dict[str, dict[str, int]] = {}
    for run in runs:
        for key, per_host in run["stats"].items():
            stats.setdefault(key, {}).update(per_host)
    return Converge(
        ok=all(run["result"].ok for run in runs),
        failures=[f"{f.host}: {f.task}: {f.message}" for r in runs for f in r["result"].failures],
        stats=stats,
        stdout="\n".join(run["stdout"] for run in runs),
        artifacts=[run["artifacts"] for run in runs],
        seconds=max(run["result"].seconds for run in runs),
        changed_tasks=[task for run in runs for task in run["result"].changed_tasks],
    )


def _converge_node(lab: Lab, node: NodePlan, ident: str) -> dict[str, Any]:
    state = NodeState(node.name, lab.folder / "state" / node.name)
    secrets = state.ensure_secrets(node.secrets, make=lab.secret_value)
    run_dir = state.root / "runs" / ident
    target = target_for(node)
    runner = target.runner(RunAccess(state_root=state.root, run_dir=run_dir))
    # What the infrastructure's outputs give (LocalNode's ``hosts``: the containers).
    layer = host_layer(state, {h.name: h.container for h in node.hosts}, runner)
    result = run_playbook(
        lab.rendered[node.name] / "ansible",
        run_dir / "ansible",
        extra_vars_file=secrets,
        extra_inventory=layer,
        env=runner.env,
        extra_vars=runner.extra_vars,
    )
    (artifacts,) = (run_dir / "ansible" / "artifacts").iterdir()
    stats: dict[str, dict[str, int]] = {}
    for path in (artifacts / "job_events").glob("*.json"):
        event = json.loads(path.read_text())
        if event.get("event") == "playbook_on_stats":
            data = event.get("event_data") or {}
            stats = {k: dict(v) for k, v in data.items() if isinstance(v, dict)}
    stdout = (artifacts / "stdout").read_text(errors="replace")
    return {"result": result, "stats": stats, "stdout": stdout, "artifacts": artifacts}


def prometheus_targets(host: Any, port: int = 9090) -> list[str]:
    """The scrape URLs the Prometheus server in ``host`` knows (via its API)."""
    script = (
        "import json, urllib.request;"
        f"d = json.load(urllib.request.urlopen('http://127.0.0.1:{port}/api/v1/targets'));"
        "print(json.dumps(sorted(t['scrapeUrl'] for t in d['data']['activeTargets'])))"
    )
    out = host.check_output("python3 -c %s", script)
    return list(json.loads(out))

"""Helpers of test_bundle_and_roles: node containers, the lab inventory, ansible-runner.

Everything created here is named ``nktest-roles-<suffix>`` (containers and the
one ``--internal`` network), so leftovers are easy to spot and remove.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
import yaml

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
SITE = PLAYBOOKS / "site.yml"
DOMAIN = "lab.example.internal"  # network.domain of node b
# Candidate subnets for the lab network (another run may hold the first).
SUBNETS = [f"10.199.{n}.0/24" for n in range(1, 40)]


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def create_network(name: str) -> ipaddress.IPv4Network:
    """An ``--internal`` network (no route off this machine) on a free 10.199.x.0/24."""
    last = ""
    for subnet in SUBNETS:
        proc = docker("network", "create", "--internal", "--subnet", subnet, name, check=False)
        if proc.returncode == 0:
            return ipaddress.IPv4Network(subnet)
        last = proc.stderr.strip()
        if "overlap" not in last:
            break
    raise RuntimeError(f"cannot create network {name}: {last}")


def start_node(
    name: str,
    *,
    hostname: str,
    network: str,
    ip: str,
    image: str,
    bundle: Path,
    gateway: bool = False,
) -> None:
    """A systemd node container as the local target runs it; waits for systemd."""
    args = [
        "run", "-d", "--name", name, "--hostname", hostname,
        "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cgroupns=host",
        "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
        "--stop-signal", "SIGRTMIN+3", "--network", network, "--ip", ip,
        "--label", "io.nodekit.test=true",
        "-v", f"{bundle}:/srv/nodekit/bundle:ro",
    ]  # fmt: skip
    if gateway:
        args += ["--sysctl", "net.ipv4.ip_forward=1"]
    docker(*args, image)
    wait_for_systemd(name)


def wait_for_systemd(name: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        state = docker("exec", name, "systemctl", "is-system-running", "--wait", check=False)
        if state.stdout.strip() in ("running", "degraded"):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: systemd did not come up: {state.stdout}{state.stderr}")
        time.sleep(0.5)


def remove(kind: str, *names: str) -> None:
    for name in names:
        if kind == "container":
            docker("rm", "-f", "-v", name, check=False)
        else:
            docker("network", "rm", name, check=False)


@dataclass
class Lab:
    """Two nodes on one internal network, split into two zones.

    ``a`` (zone cell, a gateway) runs every role; ``b`` (zone office) runs base,
    firewall and the node exporter, routes a third zone through ``a``, and has a
    domain (``a`` has none).
    """

    suffix: str
    subnet: ipaddress.IPv4Network
    secrets: dict[str, str]
    names: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.names = {"a": f"nktest-roles-a-{self.suffix}", "b": f"nktest-roles-b-{self.suffix}"}

    @property
    def network(self) -> str:
        return f"nktest-roles-{self.suffix}"

    def address(self, host: str) -> str:
        return str(self.subnet[10] if host == "a" else self.subnet[200])

    @property
    def cell(self) -> str:
        return str(next(self.subnet.subnets(new_prefix=25)))

    @property
    def office(self) -> str:
        return str(list(self.subnet.subnets(new_prefix=25))[1])

    @property
    def behind_gateway(self) -> str:
        # A zone reached through a: only a route is made, no traffic goes there.
        return "10.198.250.0/24"

    def inventory(self) -> dict[str, Any]:
        a, b = self.names["a"], self.names["b"]
        zones = [
            {"name": "cell", "cidr": self.cell},
            {"name": "office", "cidr": self.office},
            {"name": "lab", "cidr": self.behind_gateway},
        ]
        flows = [
            {"from": "office", "to": "cell", "ports": ["1883/tcp", "9090/tcp"]},
            {"from": "cell", "to": "office", "ports": ["9100/tcp"]},
            {"from": "uplink", "to": "cell", "ports": ["8883/tcp", "5000-5010/udp"]},
        ]
        return {
            "all": {
                "vars": {
                    "ansible_connection": "community.docker.docker",
                    "ansible_python_interpreter": "/usr/bin/python3",
                    "ansible_pipelining": True,
                    "nodekit_timezone": "Europe/Paris",
                    "nodekit_chrony_clock_control": False,
                    "nodekit_manage_ip_forward": False,
                    "nodekit_admin_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyOnly nk"],
                    "nodekit_zones": zones,
                    "nodekit_flows": flows,
                },
                "hosts": {
                    a: {
                        "ansible_host": a,
                        "nodekit_host_addresses": {"cell": self.address("a")},
                        "nodekit_is_gateway": True,
                        "mosquitto_users": [
                            {"name": "sensor", "password": self.secrets["mqtt"]},
                        ],
                        "postgresql_allowed_cidrs": [self.cell],
                        "postgresql_databases": ["historian"],
                        "postgresql_users": [
                            {"name": "historian", "password": self.secrets["pg"]},
                        ],
                        "prometheus_targets": [
                            f"{self.address('a')}:9100",
                            f"{self.address('b')}:9100",
                        ],
                    },
                    b: {  # with a domain (a has none: nothing of it written there)
                        "ansible_host": b,
                        "nodekit_fqdn": f"node-b.{DOMAIN}",
                        "nodekit_hosts": [
                            f"{self.address('a')} node-a.{DOMAIN} node-a",
                            f"{self.address('b')} node-b.{DOMAIN} node-b",
                        ],
                        "nodekit_host_addresses": {"office": self.address("b")},
                        "nodekit_routes": [{"cidr": self.behind_gateway, "via": self.address("a")}],
                    },
                },
                "children": {
                    "pkg_mosquitto": {"hosts": {a: {}}},
                    "pkg_postgresql": {"hosts": {a: {}}},
                    "pkg_prometheus": {"hosts": {a: {}}},
                    "pkg_node_exporter": {"hosts": {a: {}, b: {}}},
                },
            }
        }


@dataclass(frozen=True)
class Converge:
    """One ansible-runner run of site.yml."""

    status: str
    rc: int
    stats: dict[str, Any]
    stdout: str
    artifacts: Path
    seconds: float
    changed_tasks: list[str]

    def artifact_text(self) -> str:
        """Every file ansible-runner wrote for this run (stdout, job events, ...)."""
        parts = []
        for path in sorted(self.artifacts.rglob("*")):
            if path.is_file():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)


def converge(private: Path, inventory: dict[str, Any], ident: str) -> Converge:
    """Run playbooks/site.yml over ``inventory`` with ansible-runner."""
    (private / "inventory").mkdir(parents=True, exist_ok=True)
    (private / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory, sort_keys=True))
    (private / "project").mkdir(exist_ok=True)
    started = time.monotonic()
    runner = ansible_runner.run(
        private_data_dir=str(private),
        playbook=str(SITE),
        ident=ident,
        envvars={
            # the venv's ansible-playbook, even when pytest runs without an activated venv
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "ANSIBLE_CONFIG": str(private / "ansible.cfg"),
            "ANSIBLE_ROLES_PATH": str(PLAYBOOKS / "roles"),
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_FORKS": "4",
        },
        quiet=True,
    )
    seconds = time.monotonic() - started
    changed = []
    for event in runner.events:
        data = event.get("event_data", {})
        if event.get("event") == "runner_on_ok" and data.get("res", {}).get("changed"):
            changed.append(f"{data.get('host')}: {data.get('task')}")
    stdout = runner.stdout.read()
    return Converge(
        status=runner.status,
        rc=runner.rc,
        stats=runner.stats or {},
        stdout=stdout,
        artifacts=private / "artifacts" / ident,
        seconds=seconds,
        changed_tasks=changed,
    )


def write_ansible_cfg(private: Path) -> None:
    """An ansible.cfg of its own, so the repository's (if any) plays no part."""
    private.mkdir(parents=True, exist_ok=True)
    (private / "ansible.cfg").write_text(
        "[defaults]\n"
        f"roles_path = {PLAYBOOKS / 'roles'}\n"
        "interpreter_python = /usr/bin/python3\n"
        "retry_files_enabled = False\n"
        "[connection]\npipelining = True\n"
    )


def prometheus_targets(host: Any, port: int = 9090) -> list[str]:
    """The scrape URLs the Prometheus server in ``host`` knows (via its API)."""
    script = (
        "import json, urllib.request;"
        f"d = json.load(urllib.request.urlopen('http://127.0.0.1:{port}/api/v1/targets'));"
        "print(json.dumps(sorted(t['scrapeUrl'] for t in d['data']['activeTargets'])))"
    )
    out = host.check_output("python3 -c %s", script)
    return list(json.loads(out))

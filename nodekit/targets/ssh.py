"""The ssh target: real Debian machines on a site, reached over SSH only.

Per node, nodekit keeps in its state an OpenSSH client configuration
(``ssh/config``: port, user, identity, bastion, strict host key checking) and
the node's known host keys (``ssh/known_hosts``). Every tool (preflight,
bundle delivery, Ansible, testinfra, the login probe of confirm-or-revert)
uses that one configuration, so a host key is never trusted silently.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from nodekit.render.plan import HostPlan, NodePlan
from nodekit.targets import hostkeys
from nodekit.targets.base import PreflightProblem, RunAccess, Runner, Target
from nodekit.targets.delivery import deliver

MAX_SKEW_S = 60.0
PROBE = (
    "sudo -n true >/dev/null 2>&1 && echo sudo=ok || echo sudo=no; "
    ". /etc/os-release; echo os=$ID-$VERSION_ID; "
    "echo disk_kb=$(df -Pk / | awk 'NR==2 {print $4}'); "
    "echo disk_total_kb=$(df -Pk / | awk 'NR==2 {print $2}'); "
    "echo mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo); "
    "echo cpus=$(nproc); "
    "echo clock=$(date +%s); "
    "echo virt=$(systemd-detect-virt 2>/dev/null || true); "
    'echo client="${SSH_CLIENT%% *}"; '
    "echo \"links=$(ip -d -j addr show 2>/dev/null | tr -d '\\n')\""  # no ip: no VLAN check
)


def probe_facts(output: str) -> dict[str, str]:
    """The ``key=value`` lines the probe prints."""
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def _resources(host: HostPlan, facts: dict[str, str]) -> list[PreflightProblem]:
    """The host has what compute[].resources asks for (a little less memory and disk
    than nominal is normal: the kernel and the file system take their share)."""
    have = {
        "cpus": int(facts.get("cpus") or 0),
        "memory_mb": int(facts.get("mem_kb") or 0) // 1024,
        "disk_gb": int(facts.get("disk_total_kb") or 0) // (1024 * 1024),
    }
    wanted = {"cpus": host.cpus, "memory_mb": host.memory_mb, "disk_gb": host.disk_gb}
    slack = {"cpus": 1.0, "memory_mb": 0.9, "disk_gb": 0.9}
    short = [(k, want) for k, want in wanted.items() if want and have[k] < want * slack[k]]
    return [
        PreflightProblem(
            host.name,
            "resources",
            f"has {have[key]} {key.replace('_', ' ')}, "
            f"compute[{host.name}].resources.{key} asks for {want}",
            f"give the host more, or lower resources.{key} to what it has",
        )
        for key, want in short
    ]


def _vlans(host: HostPlan, node: NodePlan, links_json: str) -> list[PreflightProblem]:
    """Each address of the host in a zone with a vlan is on an untagged interface (the
    switch port carries the VLAN) or on an 802.1Q interface of that very VLAN.
    ``links_json``: the host's ``ip -d -j addr``; empty or unreadable: not checked."""
    try:
        links = json.loads(links_json) if links_json else []
    except ValueError:
        return []
    holder = {a.get("local"): link for link in links for a in link.get("addr_info") or []}
    problems = []
    for zone, address in host.addresses.items():
        wanted, link = node.zone(zone).vlan, holder.get(address) or {}
        info = link.get("linkinfo") or {}
        found = (info.get("info_data") or {}).get("id")
        if not wanted or info.get("info_kind") != "vlan" or found == wanted:
            continue
        name, parent = link.get("ifname", "?"), link.get("link") or "its parent"
        problems.append(PreflightProblem(
            host.name, "vlan",
            f"{address} (zone {zone}) is on {name}, an 802.1Q interface of VLAN {found}; "
            f"network.zones[{zone}].vlan is {wanted}",
            f"put {address} on an interface of VLAN {wanted} (e.g. {parent}.{wanted}), or "
            f"correct network.zones[{zone}].vlan if the blueprint is wrong",
        ))  # fmt: skip
    return problems


class SshTarget(Target):
    name: ClassVar[str] = "ssh"
    toolchain: ClassVar[tuple[str, ...]] = ("ssh client",)

    def connection_vars(self, host: HostPlan) -> dict[str, Any]:
        return {
            "ansible_connection": "ssh",  # ansible.builtin.ssh, by the name Mitogen recognises
            "ansible_host": host.connect_address,
            "ansible_user": host.login_user,
            "ansible_port": host.ssh_port,
            "ansible_become": True,
        }

    def testinfra_spec(self, host: HostPlan) -> str:
        return f"ssh://{host.login_user}@{host.connect_address}:{host.ssh_port}?sudo=true"

    def host_command(self, host: HostPlan, command: str) -> str:
        port = f"-p {host.ssh_port} " if host.ssh_port != 22 else ""
        return f'ssh -t {port}{host.login_user}@{host.connect_address} "sudo {command}"'

    # -- run time -----------------------------------------------------------

    def ssh_config(self, access: RunAccess) -> Path:
        """Write the node's OpenSSH client configuration; its path."""
        folder = access.state_root / "ssh"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        known = folder / "known_hosts"
        known.touch(mode=0o600, exist_ok=True)
        lines = ["# Written by nodekit for each run: how this node's hosts are reached.\n"]
        for host in (*self.node.hosts, *access.former_hosts):
            lines += [
                f"\nHost {host.connect_address}\n",
                f"  Port {host.ssh_port}\n",
                f"  User {host.login_user}\n",
                f"  UserKnownHostsFile {known}\n",
                "  StrictHostKeyChecking yes\n",
                "  HashKnownHosts no\n",
                "  BatchMode yes\n",
                "  ConnectTimeout 10\n",
                "  ServerAliveInterval 15\n",
            ]
            if host.ssh.get("jump"):
                lines.append(f"  ProxyJump {host.ssh['jump']}\n")
            if access.identity is not None:
                lines += [f"  IdentityFile {access.identity}\n", "  IdentitiesOnly yes\n"]
        config = folder / "config"
        config.write_text("".join(lines))
        config.chmod(0o600)
        return config

    def ssh_argv(self, config: Path, host: HostPlan, *extra: str) -> list[str]:
        return [
            "ssh", "-F", str(config), "-p", str(host.ssh_port),
            "-o", "ControlMaster=no", "-o", "ControlPath=none",
            *extra, f"{host.login_user}@{host.connect_address}",
        ]  # fmt: skip

    def run_script(self, host: HostPlan, script: str, access: RunAccess) -> tuple[int, str]:
        argv = self.ssh_argv(self.ssh_config(access), host, "-o", "BatchMode=yes")
        try:
            proc = subprocess.run(
                [*argv, "sudo -n sh -s"], input=script, capture_output=True, text=True,
                check=False, timeout=120,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return 124, ""
        return proc.returncode, proc.stdout

    def preflight(self, access: RunAccess) -> list[PreflightProblem]:
        config = self.ssh_config(access)
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(self.node.hosts)))) as pool:
            found = pool.map(lambda h: self._preflight_host(h, config, access), self.node.hosts)
        return [problem for problems in found for problem in problems]

    def _preflight_host(
        self, host: HostPlan, config: Path, access: RunAccess
    ) -> list[PreflightProblem]:
        key_problem = hostkeys.check(
            self.ssh_argv(config, host), host, access.state_root / "ssh" / "known_hosts",
            accept_new=access.accept_new_host_keys,
        )  # fmt: skip
        if key_problem:
            return [PreflightProblem(host.name, "host key", *key_problem)]
        before = time.time()
        probe = subprocess.run(
            [*self.ssh_argv(config, host, "-v"), PROBE],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        after = time.time()
        if probe.returncode != 0:
            return [_login_problem(host, probe.stderr)]
        facts = probe_facts(probe.stdout)
        problems = []
        if facts.get("sudo") != "ok":
            problems.append(PreflightProblem(
                host.name, "sudo", f"{host.login_user} has no passwordless sudo",
                f"on the host: echo '{host.login_user} ALL=(ALL:ALL) NOPASSWD: ALL' "
                f"> /etc/sudoers.d/{host.login_user}",
            ))  # fmt: skip
        wanted = host.os
        if facts.get("os") != wanted:
            problems.append(PreflightProblem(
                host.name, "os", f"runs {facts.get('os') or 'an unknown OS'}, not {wanted}",
                "install Debian 12 on the host (the only os nodekit's bundle and roles support)",
            ))  # fmt: skip
        free_mb = int(facts.get("disk_kb") or 0) // 1024
        if free_mb < access.needed_mb:
            problems.append(PreflightProblem(
                host.name, "disk",
                f"{free_mb} MB free on /, the bundle needs {access.needed_mb} MB",
                "free space on the host's root file system",
            ))  # fmt: skip
        problems += _resources(host, facts)
        problems += _vlans(host, self.node, facts.get("links", ""))
        skew = abs(float(facts.get("clock") or 0) - (before + after) / 2)
        if skew > MAX_SKEW_S + (after - before):
            problems.append(PreflightProblem(
                host.name, "clock", f"clock is {skew:.0f} s off this machine's",
                "set the host's clock (timedatectl set-time, or an NTP source)",
            ))  # fmt: skip
        client = facts.get("client", "")
        if client and not host.ssh_allow_from and not _inside(client, host, self.node):
            problems.append(PreflightProblem(
                host.name, "management access",
                f"this machine connects from {client}, outside the host's zones, and no "
                "ssh.allow_from admits it: the node's firewall would cut SSH",
                f"add allow_from: [{client}/32] (or its network) to site.ssh or this host's ssh",
            ))  # fmt: skip
        access.facts[host.name] = {
            "login_key": hostkeys.login_key(probe.stderr),
            "virt": facts.get("virt", ""),
        }
        return problems

    def deliver_bundle(self, bundle: Path, access: RunAccess) -> int:
        config = self.ssh_config(access)
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(self.node.hosts)))) as pool:
            counts = pool.map(lambda h: deliver(bundle, self.ssh_argv(config, h)), self.node.hosts)
        return sum(counts)

    def runner(self, access: RunAccess) -> Runner:
        config = self.ssh_config(access)
        host_vars: dict[str, dict[str, Any]] = {}
        for host in self.node.hosts:
            probe = self.ssh_argv(config, host)
            host_vars[host.name] = {
                "nodekit_login_probe": [*probe, "true"],
                "nodekit_admin_keys_exclusive": hostkeys.may_replace_keys(
                    host, access.facts.get(host.name, {}).get("login_key")
                ),
            }
        for host in access.former_hosts:  # only reached to take nodekit's software away
            host_vars[host.name] = self.connection_vars(host)
        return Runner(
            env={"ANSIBLE_HOST_KEY_CHECKING": "True", "NODEKIT_SSH_CONFIG": str(config)},
            extra_vars={"ansible_ssh_common_args": f"-F {shlex.quote(str(config))}"},
            host_vars=host_vars,
        )

    def destroy_note(self) -> str:
        return (
            "the machines stay: only the software nodekit installed was removed (by its "
            "record); their admin user, SSH and firewall settings are left as they are"
        )


def _login_problem(host: HostPlan, stderr: str) -> PreflightProblem:
    lines = [line for line in stderr.splitlines() if not line.startswith("debug")]
    last = lines[-1].strip() if lines else "ssh failed"
    where = f"{host.login_user}@{host.connect_address}:{host.ssh_port}"
    if "Permission denied" in stderr:
        return PreflightProblem(
            host.name, "login", f"{where} refused the login ({last})",
            f"add your public key to ~{host.login_user}/.ssh/authorized_keys on the host, "
            "and load the private key into ssh-agent or pass --identity FILE",
        )  # fmt: skip
    return PreflightProblem(
        host.name, "reachable", f"cannot reach {where}: {last}",
        "check the address, port and network path, and that sshd runs on the host",
    )  # fmt: skip


def _inside(address: str, host: HostPlan, node: Any) -> bool:
    """Whether ``address`` is in one of the host's zones (always admitted to SSH)."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True  # not an address we can judge: let confirm-or-revert guard it
    return any(ip in ipaddress.ip_network(node.zone(z).cidr) for z in host.addresses)

"""Host keys and login keys of the ssh target: nothing is trusted silently.

The node's known host keys live in its state (``ssh/known_hosts``, OpenSSH's
format). A host whose key is not there is refused with the key's SHA256
fingerprint unless the operator accepts new keys (like OpenSSH's
``accept-new``); a host whose key changed is always refused.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import tempfile
from pathlib import Path

from nodekit.render.plan import HostPlan

_ACCEPTED = re.compile(r"Server accepts key: .*?(SHA256:[A-Za-z0-9+/=]+)")


def fingerprint(key_line: str) -> str:
    """``SHA256:...`` of a public key line (``TYPE BASE64 [comment]``), as ssh-keygen -l."""
    blob = base64.b64decode(key_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def known_name(host: HostPlan) -> str:
    address = host.connect_address
    return address if host.ssh_port == 22 else f"[{address}]:{host.ssh_port}"


def known_keys(known_hosts: Path, name: str) -> list[str]:
    """``TYPE BASE64`` of every key recorded for ``name``."""
    keys = []
    for line in known_hosts.read_text().splitlines() if known_hosts.exists() else []:
        parts = line.split()
        if len(parts) >= 3 and name in parts[0].split(","):
            keys.append(f"{parts[1]} {parts[2]}")
    return keys


def scan(ssh_argv: list[str]) -> list[str]:
    """The keys the host offers, learnt by ssh itself (so a bastion or port in
    the node's ssh configuration apply), without logging in."""
    with tempfile.TemporaryDirectory() as scratch:
        learnt = Path(scratch) / "known_hosts"
        subprocess.run(
            [
                *ssh_argv[:-1],
                "-o", f"UserKnownHostsFile={learnt}", "-o", "StrictHostKeyChecking=accept-new",
                "-o", "PreferredAuthentications=none", "-o", "GlobalKnownHostsFile=/dev/null",
                ssh_argv[-1], "true",
            ],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if not learnt.exists():
            return []
        return [" ".join(line.split()[1:3]) for line in learnt.read_text().splitlines() if line]


def check(
    ssh_argv: list[str], host: HostPlan, known_hosts: Path, *, accept_new: bool
) -> tuple[str, str] | None:
    """None when the host's key is known (or newly accepted); else (problem, fix)."""
    offered = scan(ssh_argv)
    name = known_name(host)
    if not offered:
        where = f"{host.connect_address}:{host.ssh_port}"
        fix = "check the address, port and network path, and that sshd runs on the host"
        return (f"no SSH host key from {where} (unreachable?)", fix)
    known = known_keys(known_hosts, name)
    if any(key in known for key in offered):
        return None
    prints = ", ".join(f"{fingerprint(k)} ({k.split()[0]})" for k in offered)
    if known:
        return (
            f"host key CHANGED: offers {prints}, the node's known key is "
            f"{', '.join(fingerprint(k) for k in known)}",
            "find out why (reinstalled host? someone in between?); if the new key is "
            f"right, remove {name} from {known_hosts} and run `nodekit trust`",
        )
    if not accept_new:
        return (
            f"unknown host key {prints}",
            "compare it with the host's own (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub "
            "on its console), then re-run with --accept-new-host-keys or run `nodekit trust`",
        )
    with known_hosts.open("a") as handle:
        for key in offered:
            handle.write(f"{name} {key}\n")
    return None


def login_key(ssh_verbose_stderr: str) -> str | None:
    """The fingerprint of the key a login used, from ``ssh -v`` output."""
    found = _ACCEPTED.findall(ssh_verbose_stderr)
    return found[-1] if found else None


def may_replace_keys(host: HostPlan, login_fingerprint: str | None) -> bool:
    """Whether the admin user's keys may be made exactly ``admin_keys``: only
    when that can never remove the key this deploy logs in with."""
    keys = host.ssh.get("admin_keys") or []
    if not keys:
        return False
    if host.login_user != "nodekit":  # the admin user is another user than the login
        return True
    return login_fingerprint is not None and login_fingerprint in {fingerprint(k) for k in keys}

"""Host key fingerprints as OpenSSH prints them, and who may replace admin keys."""

from __future__ import annotations

import subprocess
from pathlib import Path

from nodekit.render.plan import plan
from nodekit.targets.hostkeys import fingerprint, known_keys, login_key, may_replace_keys

DATA = {
    "metadata": {"name": "n1"},
    "site": {"region": "eu-west", "timezone": "UTC", "target": "ssh"},
    "network": {"zones": [{"name": "ot", "cidr": "10.1.1.0/24"}]},
    "compute": [{"name": "h1", "role": "edge", "zone": "ot", "address": "10.1.1.10"}],
}


def test_fingerprint_is_what_ssh_keygen_prints(tmp_path: Path) -> None:
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    line = (tmp_path / "k.pub").read_text()
    shown = subprocess.run(
        ["ssh-keygen", "-lf", str(key) + ".pub"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert fingerprint(line) == shown


def test_known_keys_match_the_host_and_port(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("10.1.1.10 ssh-ed25519 AAAA1\n[10.1.1.10]:2222 ssh-ed25519 AAAA2\n")
    assert known_keys(known, "10.1.1.10") == ["ssh-ed25519 AAAA1"]
    assert known_keys(known, "[10.1.1.10]:2222") == ["ssh-ed25519 AAAA2"]
    assert known_keys(tmp_path / "none", "10.1.1.10") == []


def test_the_login_key_comes_from_ssh_verbose_output() -> None:
    stderr = "debug1: Server accepts key: /root/.ssh/id ED25519 SHA256:abcDEF+/12 explicit\n"
    assert login_key(stderr) == "SHA256:abcDEF+/12"
    assert login_key("debug1: nothing") is None


def test_admin_keys_replace_only_when_the_login_key_is_among_them(tmp_path: Path) -> None:
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    line = (tmp_path / "k.pub").read_text().strip()
    data = {**DATA, "compute": [{**DATA["compute"][0], "ssh": {"admin_keys": [line]}}]}
    host = plan(data).host("h1")
    assert may_replace_keys(host, fingerprint(line)) is True
    assert may_replace_keys(host, "SHA256:someotherkey") is False
    assert may_replace_keys(host, None) is False  # unknown login key: add, never replace
    assert may_replace_keys(plan(DATA).host("h1"), fingerprint(line)) is False  # no admin keys

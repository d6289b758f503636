"""The fingerprint a no-change deploy skips by: the script run on each host, and
how what differs is said. The script runs here in a real shell (dpkg-query and
sha256sum of this machine)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from nodekit.run.ansible_stage import _managed
from nodekit.run.fingerprint import differences, host_script


def _run(script: str) -> list[str]:
    proc = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, check=True)
    return proc.stdout.splitlines()


def test_script_sees_files_directories_missing_files_and_packages(tmp_path: Path) -> None:
    conf, folder, gone = tmp_path / "a.conf", tmp_path / "d", tmp_path / "gone.conf"
    conf.write_text("listener 1883\n")
    folder.mkdir()
    (folder / "runtime.log").write_text("a")
    own = tmp_path / "own"
    own.mkdir()
    (own / "collector.json").write_text("{}")
    script = host_script(
        [str(conf), str(folder), str(gone)], [], ["dpkg", "no-such-package-x"], [str(own)]
    )
    lines = _run(script)
    assert any(line.startswith(f"file {conf} ") and len(line.split()[-1]) == 64 for line in lines)
    assert any(line.startswith(f"path {folder} directory:") for line in lines)
    assert any(line.startswith(f"owned {own} directory:") for line in lines)
    assert f"file {gone} missing" in lines
    assert any(line.startswith("package dpkg ") and line.endswith(" ii ") for line in lines)
    assert any("no-such-package-x" in line for line in lines)
    assert _run(script) == lines  # stable: the same state gives the same lines
    (folder / "runtime.log").write_text("what the software writes is its own")
    assert _run(script) == lines  # a directory the roles made: mode and owner only

    (own / "collector.json").write_text('{"edited": true}')  # nodekit's own: its content counts
    said = differences({"edge-01": lines}, {"edge-01": _run(script)})
    assert len(said) == 1 and said[0].startswith(f"edge-01: owned {own} was '")
    (own / "collector.json").write_text("{}")

    conf.write_text("listener 1884\n")  # a hand edit
    conf.chmod(0o600)
    said = differences({"edge-01": lines}, {"edge-01": _run(script)})
    assert len(said) == 1 and said[0].startswith(f"edge-01: file {conf} was '")


def test_differences_name_units_firewall_and_hosts() -> None:
    was = {"h1": ["unit mosquitto active enabled", "firewall aaaa"], "h2": ["firewall b"]}
    now = {"h1": ["unit mosquitto inactive enabled", "firewall cccc"], "h3": ["firewall b"]}
    said = differences(was, now)
    assert "h1: unit mosquitto was 'active enabled', now 'inactive enabled'" in said
    assert "h1: firewall was 'aaaa', now 'cccc'" in said
    assert "h2: not in the plan" in said and "h3: not recorded" in said
    altered = {"h1": ["altered ??5?????? c /etc/mosquitto/mosquitto.conf"]}
    said = differences({"h1": []}, altered)
    conf = "??5?????? c /etc/mosquitto/mosquitto.conf"
    assert said == [f"h1: package file changed since apt installed it: {conf}"]
    assert differences(was, was) == []


def test_ansible_results_name_the_files_and_units_they_manage() -> None:
    into: dict[str, set[str]] = {"files": set(), "units": set()}
    _managed("ansible.builtin.template", {"dest": "/etc/mosquitto/conf.d/n.conf"}, into)
    _managed("copy", {"results": [{"dest": "/etc/a"}, {"skipped": True, "dest": "/etc/b"}]}, into)
    _managed("file", {"path": "/var/lib/x", "changed": False}, into)
    _managed("lineinfile", {"invocation": {"module_args": {"path": "/etc/hosts"}}}, into)
    _managed("ansible.builtin.systemd_service", {"name": "mosquitto"}, into)
    _managed("ansible.builtin.command", {"cmd": "/bin/true"}, into)
    _managed("template", {"censored": "no_log"}, into)
    assert into == {
        "files": {"/etc/mosquitto/conf.d/n.conf", "/etc/a", "/var/lib/x", "/etc/hosts"},
        "units": {"mosquitto"},
    }

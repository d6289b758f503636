"""Smoke test of real Ansible and real testinfra against a real node container.

ansible-runner converges a systemd container through the community.docker
connection (a file, a service); testinfra's docker backend verifies it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ansible_runner
import pytest
import testinfra

pytestmark = pytest.mark.integration

PLAYBOOK = """\
- name: Smoke converge
  hosts: all
  gather_facts: false
  tasks:
    - name: Write a marker file
      ansible.builtin.copy:
        dest: /etc/nodekit-smoke
        content: "converged by ansible\\n"
        mode: "0644"
    - name: Install a service unit
      ansible.builtin.copy:
        dest: /etc/systemd/system/nodekit-smoke.service
        content: |
          [Unit]
          Description=nodekit smoke service
          [Service]
          ExecStart=/bin/sleep infinity
          [Install]
          WantedBy=multi-user.target
        mode: "0644"
    - name: Start and enable it
      ansible.builtin.systemd_service:
        name: nodekit-smoke.service
        state: started
        enabled: true
        daemon_reload: true
"""


def converge(tmp_path: Path, container_name: str) -> Any:
    private = tmp_path / "runner"
    (private / "project").mkdir(parents=True)
    (private / "project" / "smoke.yml").write_text(PLAYBOOK)
    inventory = {
        "all": {
            "hosts": {
                "smoke": {
                    "ansible_connection": "community.docker.docker",
                    "ansible_host": container_name,
                    "ansible_python_interpreter": "/usr/bin/python3",
                }
            }
        }
    }
    return ansible_runner.run(
        private_data_dir=str(private),
        playbook="smoke.yml",
        inventory=inventory,
        envvars={
            # the venv's ansible-playbook, even when pytest runs without an activated venv
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_NOCOLOR": "1",
        },
        quiet=True,
    )


def test_converge_and_verify(tmp_path: Path, node_container: Callable[..., Any]) -> None:
    container = node_container("smoke")
    first = converge(tmp_path / "1", container.name)
    assert first.status == "successful", first.stdout.read()
    assert first.stats["changed"].get("smoke") == 3

    # Idempotent: the same run changes nothing.
    second = converge(tmp_path / "2", container.name)
    assert second.status == "successful"
    assert second.stats["changed"].get("smoke", 0) == 0

    host = testinfra.get_host(f"docker://{container.name}")
    marker = host.file("/etc/nodekit-smoke")
    assert marker.exists
    assert marker.content_string == "converged by ansible\n"
    service = host.service("nodekit-smoke")
    assert service.is_running
    assert service.is_enabled

    # testinfra sees a broken host as broken: stop the service, verify again.
    container.exec_run(["systemctl", "stop", "nodekit-smoke"])
    assert not host.service("nodekit-smoke").is_running

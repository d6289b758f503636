"""Helpers of the blueprint tests: a valid node to break, and where things are in it."""

from __future__ import annotations

import textwrap
from pathlib import Path

from nodekit.blueprint import validate

# A small valid node. Tests change one thing and expect one located problem.
VALID = """\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: test-node
site:
  region: eu-west
  timezone: Europe/Paris
  target: local
network:
  zones:
    - name: ot
      cidr: 10.41.1.0/24
      vlan: 41
    - name: it
      cidr: 10.41.2.0/24
      vlan: 42
  flows:
    - from: ot
      to: it
      ports: [1883/tcp]
compute:
  - name: gw-01
    role: gateway
    zone: it
    address: 10.41.2.1
    interfaces:
      - zone: ot
        address: 10.41.1.1
  - name: edge-01
    role: edge
    zone: ot
    address: 10.41.1.10
  - name: hist-01
    role: controller
    zone: it
    address: 10.41.2.10
equipment:
  - name: printer-01
    kind: printer
    host: edge-01
    zone: ot
    address: 10.41.1.101
software:
  - name: broker
    package: mosquitto
    host: hist-01
    settings: {users: [edge]}
  - name: db
    package: postgresql
    host: hist-01
    depends_on: [broker]
checks:
  - name: broker-up
    host: hist-01
    service: mosquitto
"""


def at(text: str, needle: str, after: str = "", *, value: bool = False) -> str:
    """``LINE:COL`` (1-based) of ``needle`` in ``text``, at or after the line holding ``after``.

    With ``value``, a needle ``"vlan: 41"`` gives the position of the value ``41``.
    """
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    for number, line in enumerate(lines[start:], start + 1):
        if needle in line:
            column = line.index(needle) + 1
            if value:
                column += needle.index(": ") + 2
            return f"{number}:{column}"
    raise AssertionError(f"{needle!r} not in text")


class Workspace:
    """A scratch folder (the working directory) to write blueprints into."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def diagnostics(self, *names: str) -> list[str]:
        return [str(d) for d in validate(list(names)).diagnostics]

    def check(self, text: str, name: str = "node.yaml") -> list[str]:
        """Write ``text`` and return its diagnostics as printed."""
        self.write(name, text)
        return self.diagnostics(name)


def broken(ws: Workspace, old: str, new: str, *, after: str = "") -> tuple[str, list[str]]:
    """VALID with ``old`` (first occurrence at or after the line ``after``) replaced."""
    start = VALID.index(after) if after else 0
    assert old in VALID[start:], old
    text = VALID[:start] + VALID[start:].replace(old, new, 1)
    return text, ws.check(text)

"""A clean blueprint for the policy tests, and one case per rule that breaks it."""

from __future__ import annotations

CLEAN = """\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: cell
site:
  region: eu-west
  timezone: UTC
  target: local
network:
  zones:
    - {name: ot, cidr: 10.50.1.0/24, security_level: 2, purdue_level: 2}
    - {name: ops, cidr: 10.50.2.0/24, security_level: 2, purdue_level: 3}
    - {name: dmz, cidr: 10.50.3.0/24, security_level: 3, purdue_level: 3.5}
  flows:
    - from: ot
      to: ops
      ports: [8883/tcp]
      purpose: telemetry to the broker over TLS
    - from: ops
      to: ot
      ports: [9100/tcp]
      purpose: metrics scrape
    - from: ops
      to: dmz
      ports: [8883/tcp]
      purpose: bridge to the DMZ relay
  uplink: {type: direct, peer: hub.example.internal}
compute:
  - name: gw-01
    role: gateway
    zone: ops
    address: 10.50.2.1
    interfaces:
      - {zone: ot, address: 10.50.1.1}
      - {zone: dmz, address: 10.50.3.1}
  - {name: edge-01, role: edge, zone: ot, address: 10.50.1.10}
  - {name: hist-01, role: controller, zone: ops, address: 10.50.2.10}
equipment:
  - {name: sensor-01, kind: sensor, zone: ot, address: 10.50.1.50, protocol: opcua}
software:
  - name: broker
    package: mosquitto
    host: hist-01
    ports: [8883/tcp]
"""

BROKER = "    host: hist-01\n    ports: [8883/tcp]\n"
# Rules a case cannot break alone: traffic from the uplink into OT also skips levels.
ALSO = {
    "uplink-into-ot": {"purdue-skip"},
    "bridge-plaintext": {"purdue-skip", "plaintext-across-boundary"},  # 1883 to the uplink
}
# case name -> (text replaced, replacement); each breaks the rule it is named after
CASES: dict[str, tuple[str, str]] = {
    "clean": ("", ""),
    "conduit-purpose": ("      purpose: metrics scrape\n", ""),
    "purdue-skip": (
        "      purpose: bridge to the DMZ relay\n",
        "      purpose: bridge to the DMZ relay\n"
        "    - {from: ot, to: dmz, ports: [8883/tcp], purpose: straight out}\n",
    ),
    "uplink-into-ot": (
        "      purpose: bridge to the DMZ relay\n",
        "      purpose: bridge to the DMZ relay\n"
        "    - {from: uplink, to: ot, ports: [8883/tcp], purpose: remote support}\n",
    ),
    "plaintext-across-boundary": ("ports: [8883/tcp]\n      purpose: telemetry",
                                  "ports: [1883/tcp]\n      purpose: telemetry"),
    "bridge-plaintext": (
        "      purpose: bridge to the DMZ relay\n",
        "      purpose: bridge to the DMZ relay\n"
        "    - {from: dmz, to: uplink, ports: [1883/tcp], purpose: legacy bridge}\n",
    ),
    "ssh-from-management": ("ports: [9100/tcp]", "ports: [9100/tcp, 22/tcp]"),
    "port-range-wide": ("ports: [9100/tcp]", "ports: [9100-9300/tcp]"),
    "equipment-exposed": ("ports: [9100/tcp]", "ports: [9100/tcp, 4840/tcp]"),
    "mqtt-anonymous": (BROKER, BROKER + "    settings: {allow_anonymous: true}\n"),
    "zone-unclassified": (", security_level: 3, purdue_level: 3.5}", "}"),
    "security-level-step": ("security_level: 3, purdue_level: 3.5}",
                            "security_level: 4, purdue_level: 3.5}"),
}  # fmt: skip

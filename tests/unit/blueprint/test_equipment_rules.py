"""Equipment, collector and ingest rules: what they need of the blueprint is derived
and checked, never added silently."""

from __future__ import annotations

from blueprint_cases import VALID, Workspace, at

from nodekit.blueprint import load
from nodekit.render.plan import plan

# VALID plus a moonraker printer polled by a collector on the edge host and an
# ingest beside the broker and the database.
AGENTS = VALID.replace(
    "    address: 10.41.1.101\n", "    address: 10.41.1.101\n    protocol: moonraker\n"
).replace(
    "checks:\n",
    "  - name: collector\n    package: edge-collector\n    host: edge-01\n"
    "  - name: ingest\n    package: telemetry-ingest\n    host: hist-01\n"
    "checks:\n",
)


def test_agents_beside_a_reachable_broker_are_valid(ws: Workspace) -> None:
    assert ws.check(AGENTS) == []


def test_a_collector_the_firewall_would_cut_off_from_its_broker_is_refused(
    ws: Workspace,
) -> None:
    text = AGENTS.replace("      ports: [1883/tcp]\n", "      ports: [8883/tcp]\n")
    found = ws.check(text)
    assert found == [
        f"node.yaml:{at(text, 'name: collector', value=False)}: error: software[collector]: "
        "collector connects to the broker broker, but no flow allows ot -> it 1883/tcp: "
        "add to network.flows {from: ot, to: it, ports: [1883/tcp]}"
    ]


def test_a_check_from_another_zone_needs_a_flow(ws: Workspace) -> None:
    # The printer is driven from the historian host (zone it): verify probes it from there.
    text = AGENTS.replace("    host: edge-01\n    zone: ot\n", "    host: hist-01\n    zone: ot\n")
    found = ws.check(text)
    assert any(
        "equipment[printer-01]: verify checks printer-01 over moonraker from hist-01, but no "
        "flow allows it -> ot 7125/tcp" in line
        for line in found
    ), found
    text = text.replace("      ports: [1883/tcp]\n", "      ports: [1883/tcp]\n"
                        "    - from: it\n      to: ot\n      ports: [7125/tcp]\n")  # fmt: skip
    assert not [line for line in ws.check(text) if "error" in line]


def test_agents_need_one_broker(ws: Workspace) -> None:
    text = AGENTS.replace(
        "  - name: db\n",
        "  - name: broker-2\n    package: mosquitto\n    host: edge-01\n  - name: db\n",
    )
    found = [line for line in ws.check(text) if "needs an MQTT broker" in line]
    assert len(found) == 2  # collector and ingest
    assert "the node has 2 brokers (broker, broker-2): name one" in found[0]
    named = text.replace(
        "    package: edge-collector\n    host: edge-01\n",
        "    package: edge-collector\n    host: edge-01\n    settings: {broker: nope}\n",
    )
    assert any("'nope' is not a mosquitto software" in line for line in ws.check(named))


def test_the_ingest_needs_postgresql_on_its_host(ws: Workspace) -> None:
    text = AGENTS.replace(
        "    package: telemetry-ingest\n    host: hist-01\n",
        "    package: telemetry-ingest\n    host: edge-01\n",
    )
    found = ws.check(text)
    assert any(
        "software[ingest].host: ingest writes to PostgreSQL on its own host, and 'edge-01' "
        "runs none" in line
        for line in found
    ), found


def test_agents_listen_on_no_port(ws: Workspace) -> None:
    text = AGENTS.replace(
        "    package: edge-collector\n    host: edge-01\n",
        "    package: edge-collector\n    host: edge-01\n    ports: [8080/tcp]\n",
    )
    assert any(
        "edge-collector listens on no port (it only connects out): remove ports" in line
        for line in ws.check(text)
    )


def test_equipment_without_address_is_warned_about(ws: Workspace) -> None:
    text = AGENTS.replace("    zone: ot\n    address: 10.41.1.101\n", "")
    found = ws.check(text)
    assert any(
        "warning: equipment[printer-01].protocol: printer-01 has no address" in line
        for line in found
    ), found


def test_duties_checks_and_broker_users_are_derived(ws: Workspace) -> None:
    ws.write("node.yaml", AGENTS)
    node = plan(load("node.yaml").data)
    (printer,) = node.equipment
    assert printer.duty.probe_host == "edge-01"
    assert printer.duty.collector == "collector"
    assert printer.duty.telemetry
    assert printer.duty.port == 7125  # moonraker's default
    assert printer.routes == (("10.41.2.0/24", "10.41.1.1"),)  # answers the other zone
    assert node.host("edge-01").equipment_agent and node.host("hist-01").equipment_agent
    assert not node.host("gw-01").equipment_agent
    broker = next(s for s in node.services if s.name == "broker")
    assert list(broker.extra_users) == [
        ("collector", "broker/collector"), ("ingest", "broker/ingest")
    ]  # fmt: skip
    assert {"broker/collector", "broker/ingest"} <= set(node.secrets)


def test_mqtt_devices_get_their_own_broker_user(ws: Workspace) -> None:
    text = AGENTS.replace(
        "software:\n",
        "  - name: sensor-01\n    kind: sensor\n    zone: ot\n"
        "    address: 10.41.1.120\n    protocol: mqtt\nsoftware:\n",
    )
    ws.write("node.yaml", text)
    node = plan(load("node.yaml").data)
    broker = next(s for s in node.services if s.name == "broker")
    assert ("sensor-01", "equipment/sensor-01/password") in broker.extra_users
    sensor = next(m for m in node.equipment if m.name == "sensor-01")
    assert sensor.broker == ("10.41.2.10", 1883)
    assert sensor.duty.telemetry and not sensor.duty.checked


def test_a_host_named_like_a_twin_is_refused(ws: Workspace) -> None:
    text = AGENTS.replace("  - name: hist-01\n", "  - name: twin-printer-01\n").replace(
        "host: hist-01", "host: twin-printer-01"
    )
    found = ws.check(text)
    assert any(
        "error: compute[twin-printer-01].name: host 'twin-printer-01' would share its name "
        "with the twin of equipment 'printer-01'" in line
        for line in found
    ), found


def test_a_qc_band_on_a_metric_no_polled_machine_reports_is_refused(ws: Workspace) -> None:
    text = AGENTS.replace(
        "    package: edge-collector\n    host: edge-01\n",
        "    package: edge-collector\n    host: edge-01\n"
        "    settings: {max: {extruder_temp: 260, spindle_rpm: 9000}}\n",
    )
    found = ws.check(text)
    assert len(found) == 1, found
    assert (
        "error: software[collector].settings.max.spindle_rpm: no machine collector polls "
        "reports 'spindle_rpm', so this band would never alarm; its metrics: " in found[0]
    )
    assert "extruder_temp" in found[0]  # the printer's metrics are listed


def test_an_mqtt_device_listens_on_no_port(ws: Workspace) -> None:
    text = AGENTS.replace(
        "software:\n",
        "  - {name: env-01, kind: sensor, zone: ot, address: 10.41.1.120, protocol: mqtt, "
        "port: 1883}\nsoftware:\n",
    )
    assert any(
        "equipment[env-01].port: env-01 publishes to the node's broker over MQTT: it listens "
        "on no port of its own; remove port" in line
        for line in ws.check(text)
    )


def test_an_address_without_a_protocol_gets_no_twin(ws: Workspace) -> None:
    # The address is reserved (unique in its zone); nothing speaks to the machine.
    text = AGENTS.replace(
        "software:\n",
        "  - {name: robot-01, kind: robot, zone: ot, address: 10.41.1.130}\nsoftware:\n",
    )
    assert ws.check(text) == []
    ws.write("node.yaml", text)
    robot = next(m for m in plan(load("node.yaml").data).equipment if m.name == "robot-01")
    assert not robot.twin


def test_a_broker_with_only_nodekit_users_is_not_warned_about(ws: Workspace) -> None:
    text = AGENTS.replace("    settings: {users: [edge]}\n", "")
    assert not any("accepts no client" in line for line in ws.check(text))
    assert any("accepts no client" in line for line in ws.check(VALID.replace(
        "    settings: {users: [edge]}\n", "")))  # fmt: skip


def test_a_host_named_like_a_twin_is_fine_on_the_ssh_target(ws: Workspace) -> None:
    text = (
        AGENTS.replace("  - name: hist-01\n", "  - name: twin-printer-01\n")
        .replace("host: hist-01", "host: twin-printer-01")
        .replace("target: local", "target: ssh")
    )
    assert not any("twin of equipment" in line for line in ws.check(text))

"""The OPC UA twin against the reader: browse, logins, state, offline.

One server for the module (asyncua needs ~2 s to build its address space);
every test sets the state and secrets it needs.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from asyncua.client.client import Client
from equipment_helpers import RunningTwin, start_twin

from nodekit.equipment.opcua import NAMESPACE, endpoint_url
from nodekit.equipment.readers import AuthRefused, Unreachable, metrics_for, read

PASSWORD = "ua-secret-7"


@pytest.fixture(scope="module")
def ua_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTwin]:
    tmp: Path = tmp_path_factory.mktemp("opcua")
    twin = start_twin(tmp, "opcua", "cnc", "mill-01", secrets={"mill-01": {"password": PASSWORD}})
    yield twin
    twin.thread.stop()


@pytest.fixture
def twin(ua_twin: RunningTwin) -> RunningTwin:
    ua_twin.set_state("ok")
    ua_twin.set_secrets({"mill-01": {"password": PASSWORD}})
    return ua_twin


def test_reader_browses_and_reads_values_that_change(twin: RunningTwin) -> None:
    first = read(twin.equipment, {"password": PASSWORD})
    assert first.state == "running"
    assert set(first.metrics) == set(metrics_for("opcua", "cnc"))
    assert 37 < first.metrics["temperature"] < 40
    twin.advance(30)  # refresh writes the new values into the address space
    second = read(twin.equipment, {"password": PASSWORD})
    assert second.metrics["cycle_count"] == first.metrics["cycle_count"] + 10


def test_address_space_layout(twin: RunningTwin) -> None:
    async def browse() -> dict[str, str]:
        client = Client(endpoint_url("127.0.0.1", twin.thread.port), timeout=3)
        client.set_user("nodekit")
        client.set_password(PASSWORD)
        async with client:
            ns = await client.get_namespace_index(NAMESPACE)
            obj = await client.nodes.objects.get_child(f"{ns}:mill-01")
            out: dict[str, str] = {}
            for node in await obj.get_children():
                name = (await node.read_browse_name()).Name
                variant = (await node.read_data_value()).Value
                out[str(name)] = variant.VariantType.name if variant is not None else "?"
            return out

    layout = asyncio.run(browse())
    assert layout == {
        "State": "String",
        "CycleCount": "UInt32",
        "Temperature": "Double",
        "SpindleSpeed": "Double",
        "SpindleLoad": "Double",
    }


def test_wrong_password_and_anonymous_are_refused(twin: RunningTwin) -> None:
    with pytest.raises(AuthRefused, match=r"^mill-01 \(opcua at .*\): login refused"):
        read(twin.equipment, {"password": "wrong"})
    with pytest.raises(
        AuthRefused,
        match=r"login refused for anonymous access .*no password for it in the secrets file",
    ):
        read(twin.equipment, {})  # no password: the client tries anonymous


def test_endpoints_offer_username_logins_only(twin: RunningTwin) -> None:
    async def token_types() -> set[str]:
        client = Client(endpoint_url("127.0.0.1", twin.thread.port), timeout=3)
        endpoints = await client.connect_and_get_server_endpoints()
        return {t.TokenType.name for e in endpoints for t in e.UserIdentityTokens}

    assert asyncio.run(token_types()) == {"UserName"}  # no Anonymous


def test_logins_refused_until_the_secret_arrives(twin: RunningTwin) -> None:
    twin.set_secrets(None)
    with pytest.raises(AuthRefused, match="login refused"):
        read(twin.equipment, {"password": PASSWORD})
    twin.set_secrets({"mill-01": {"password": PASSWORD}})
    assert read(twin.equipment, {"password": PASSWORD}).state == "running"


def test_error_then_offline_then_back(twin: RunningTwin) -> None:
    twin.set_state("error")
    reading = read(twin.equipment, {"password": PASSWORD})
    assert reading.state == "error" and "temperature" in reading.metrics
    twin.set_state("offline")
    with pytest.raises(Unreachable, match=r"mill-01 \(opcua at 127\.0\.0\.1:\d+\): "):
        read(twin.equipment, {"password": PASSWORD}, timeout=1.0)
    twin.set_state("ok")
    assert read(twin.equipment, {"password": PASSWORD}).state == "running"


def test_probe_process_prints_one_line_only(twin: RunningTwin, tmp_path: Path) -> None:
    """asyncua's own warnings (plain-text password...) must not reach the probe's output."""
    secrets = tmp_path / "secrets.json"
    config = tmp_path / "probe.json"
    config.write_text(json.dumps({"equipment": [twin.equipment], "secrets_file": str(secrets)}))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    cmd = [sys.executable, "-m", "nodekit.equipment.probe", "--config", str(config)]
    cmd += ["--name", "mill-01"]
    for password, code in (("wrong", 1), (PASSWORD, 0)):
        secrets.write_text(json.dumps({"mill-01": {"password": password}}))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
        assert proc.returncode == code, proc.stderr
        output = proc.stdout if code == 0 else proc.stderr
        assert output.count("\n") == 1 and (proc.stderr if code == 0 else proc.stdout) == ""
    assert json.loads(proc.stdout)["state"] == "running"

"""What a deploy tells the operator to look at next: a command that shows the
historian's newest telemetry, spelled for the node's target."""

from __future__ import annotations

import shlex
from typing import Any

from nodekit.render.plan import plan
from nodekit.run.deploy import telemetry_queries

QUERY = "SELECT * FROM telemetry ORDER BY time DESC LIMIT 10"


def _node(target: str, database: str | None) -> dict[str, Any]:
    ingest: dict[str, Any] = {"name": "ingest", "package": "telemetry-ingest", "host": "hist-01"}
    if database:
        ingest["settings"] = {"database": database}
    return {
        "metadata": {"name": "n1"},
        "site": {"region": "eu-west", "timezone": "UTC", "target": target},
        "network": {"zones": [{"name": "ot", "cidr": "10.1.1.0/24"}]},
        "compute": [
            {
                "name": "hist-01",
                "role": "controller",
                "zone": "ot",
                "address": "10.1.1.11",
                "ssh": {"port": 2222},
            },
        ],
        "software": [
            {"name": "broker", "package": "mosquitto", "host": "hist-01"},
            {"name": "db", "package": "postgresql", "host": "hist-01"},
            ingest,
        ],
    }


def test_local_target_query_runs_in_the_historian_container() -> None:
    (line,) = telemetry_queries(plan(_node("local", None)))
    label, command = line.split(": ", 1)
    assert label == "telemetry (ingest)"
    assert shlex.split(command) == [
        "docker", "exec", "nk-n1-hist-01",
        "runuser", "-u", "postgres", "--", "psql", "-d", "historian", "-c", QUERY,
    ]  # fmt: skip


def test_ssh_target_query_survives_the_remote_shell() -> None:
    (line,) = telemetry_queries(plan(_node("ssh", "plant")))
    argv = shlex.split(line.split(": ", 1)[1])
    assert argv[:4] == ["ssh", "-t", "-p", "2222"]
    assert argv[4] == "nodekit@10.1.1.11"
    # ssh hands one string to the remote shell, which must see the query quoted.
    assert len(argv) == 6
    assert shlex.split(argv[5]) == [
        "sudo", "runuser", "-u", "postgres", "--", "psql", "-d", "plant", "-c", QUERY,
    ]  # fmt: skip


def test_no_ingest_no_query() -> None:
    data = _node("local", None)
    data["software"] = data["software"][:2]
    assert telemetry_queries(plan(data)) == []


def test_the_query_names_a_port_other_than_5432() -> None:
    data = _node("local", None)
    data["software"][1]["ports"] = ["5433/tcp"]
    (line,) = telemetry_queries(plan(data))
    assert "psql -p 5433 -d historian -c " in line

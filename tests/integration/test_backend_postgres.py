"""The PostgreSQL backend against the real PostgreSQL of `make backend`:
locks that wait, name their holder and die with a killed runner; secrets
every runner agrees on, only ciphertext at rest, refused under a wrong key;
and `nodekit backend migrate` moving a deployed node's local state (its
real Pulumi stack included) so that another runner sees no drift.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import yaml
from backend_support import backend_url as _backend_url

from nodekit.backends.postgres import PostgresBackend
from nodekit.errors import BackendError, LockTimeout
from nodekit.run.state import NodeState

pytestmark = pytest.mark.integration

TABLES = ("nodekit_meta", "nodekit_locks", "nodekit_files", "nodekit_secrets", "nodekit_runs",
          "pulumi_state")  # fmt: skip


@pytest.fixture
def url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    found = _backend_url()
    with psycopg.connect(found, autocommit=True) as conn:
        for table in TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    monkeypatch.setenv("NODEKIT_SECRETS_KEY", "backend-test-key-0123456789")
    monkeypatch.setenv("NODEKIT_STATE", str(tmp_path / "state"))
    yield found


def test_lock_waits_names_its_holder_and_dies_with_a_killed_runner(url: str) -> None:
    holder = {"command": "nodekit deploy", "pid": 4242, "user": "ci", "host": "runner-7",
              "since": "2026-11-30T10:00:00Z", "commit": "0123456789abcdef0123"}  # fmt: skip
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with PostgresBackend(url).lock("n1", holder=holder, timeout_s=1):
            held.set()
            release.wait(20)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    start = time.monotonic()
    with (
        pytest.raises(LockTimeout) as caught,
        PostgresBackend(url).lock("n1", holder={}, timeout_s=1),
    ):
        pass  # pragma: no cover - must not get here
    assert 0.9 <= time.monotonic() - start < 5
    message = str(caught.value)
    assert (
        "nodekit deploy (pid 4242, ci@runner-7, since 2026-11-30T10:00:00Z, commit 0123456789ab)"
        in message
    )
    with PostgresBackend(url).lock("n2", holder={}, timeout_s=1):
        pass  # another node is not blocked
    release.set()
    thread.join()

    # A runner killed while holding the lock: the next one gets it at once.
    script = (
        "import sys, time\n"
        "from nodekit.backends.postgres import PostgresBackend\n"
        "with PostgresBackend(sys.argv[1]).lock('n1', holder={'command': 'doomed'}, timeout_s=5):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    doomed = subprocess.Popen(
        [sys.executable, "-c", script, url], stdout=subprocess.PIPE, text=True
    )
    assert doomed.stdout is not None and doomed.stdout.readline().strip() == "held"
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    start = time.monotonic()
    with PostgresBackend(url).lock("n1", holder={}, timeout_s=10):
        assert time.monotonic() - start < 5


def test_every_runner_gets_the_same_secrets_sealed_at_rest(url: str, tmp_path: Path) -> None:
    names = tuple(f"broker/user{i}" for i in range(5))
    state = NodeState.of("n1")
    dirs = [tmp_path / f"run{i}" for i in range(4)]
    for d in dirs:
        d.mkdir()
    with ThreadPoolExecutor(4) as pool:  # four runners, one moment
        files = list(pool.map(lambda d: PostgresBackend(url).secrets_file(state, names, d), dirs))
    values = [yaml.safe_load(f.read_text())["nodekit_secrets"] for f in files]
    assert all(v == values[0] for v in values) and sorted(values[0]) == sorted(names)
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    with psycopg.connect(url) as conn:
        stored = b"".join(bytes(r[0]) for r in conn.execute("SELECT sealed FROM nodekit_secrets"))
    assert not any(v.encode() in stored for v in values[0].values())
    assert set(values[0].values()) <= set(PostgresBackend(url).secret_values(state))


def test_a_wrong_key_is_refused_with_the_fix(
    url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    PostgresBackend(url).secrets_file(NodeState.of("n1"), ("a/b",), tmp_path)
    monkeypatch.setenv("NODEKIT_SECRETS_KEY", "not-the-key-it-was-stored-with")
    with pytest.raises(BackendError, match="does not open the secrets") as caught:
        PostgresBackend(url).secrets_file(NodeState.of("n1"), ("a/b",), tmp_path)
    assert "NODEKIT_SECRETS_KEY" in str(caught.value.context["fix"])
    assert "not-the-key" not in str(caught.value)


def test_an_unreachable_backend_says_where_without_the_password(tmp_path: Path) -> None:
    backend = PostgresBackend(
        "postgres://nodekit:pw-never-shown@127.0.0.1:1/nodekit?sslmode=disable"
    )
    with pytest.raises(BackendError) as caught:
        backend.runs("n1")
    assert "127.0.0.1:1" in str(caught.value) and "pw-never-shown" not in str(caught.value)
    assert "make backend" in str(caught.value.context["fix"])


MIGRATED = """\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: nktest-migrate
site:
  region: eu-west
  timezone: UTC
  target: local
network:
  zones:
    - name: cell
      cidr: 10.217.1.0/24
compute:
  - name: solo
    role: edge
    zone: cell
    address: 10.217.1.10
software:
  - name: broker
    package: mosquitto
    host: solo
    settings:
      users: [edge]
"""


def test_migrate_moves_a_deployed_node_so_another_runner_sees_no_drift(
    url: str, tmp_path: Path
) -> None:
    site = tmp_path / "nktest-migrate.yaml"
    site.write_text(MIGRATED)
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NODEKIT_BACKEND", "PULUMI_CONFIG_PASSPHRASE")
    }

    def nodekit(
        runner: str, *args: str, backend: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**base, "NODEKIT_STATE": str(tmp_path / runner)}
        if backend:
            env["NODEKIT_BACKEND"] = backend
        return subprocess.run(
            [sys.executable, "-m", "nodekit.cli.main", *args],
            env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip

    try:
        laptop = nodekit("laptop", "deploy", str(site), "--yes")  # the local backend
        assert laptop.returncode == 0, laptop.stderr[-3000:]
        moved = nodekit("laptop", "backend", "migrate", "--to", url, "--format", "json")
        assert moved.returncode == 0, moved.stderr[-3000:]
        assert '"stack": true' in moved.stdout and '"secrets": 1' in moved.stdout

        drift = nodekit("ci", "drift", str(site), "--format", "json", backend=url)
        assert drift.returncode == 0, drift.stdout[-3000:] + drift.stderr[-3000:]
        again = nodekit("ci", "deploy", str(site), "--yes", "--format", "json", backend=url)
        assert again.returncode == 0, again.stderr[-3000:]
        (node,) = json.loads(again.stdout)["nodes"]
        changed = {s["stage"]: s["changed"] for s in node["stages"]}
        assert changed["infrastructure"] == 0 and changed["configure"] == 0  # same stack, secrets
        history = nodekit("ci", "history", "nktest-migrate", "--format", "json", backend=url)
        assert history.stdout.count('"command": "deploy"') == 2  # the laptop's and ci's
    finally:
        nodekit("ci", "destroy", str(site), "--yes", backend=url)
        nodekit("laptop", "destroy", str(site), "--yes")


def test_the_fleet_ca_is_made_once_for_every_runner_sealed_at_rest(
    url: str, tmp_path: Path
) -> None:
    from nodekit.run.fleet_tls import CA_SECRET, FLEET, blocks, fleet_ca

    dirs = [tmp_path / f"run{i}" for i in range(3)]
    for d in dirs:
        d.mkdir()
    with ThreadPoolExecutor(3) as pool:  # three runners' first deploys, one moment
        found = list(pool.map(lambda d: fleet_ca(PostgresBackend(url), d), dirs))
    assert all(ca == found[0] for ca in found)  # one CA, the first writer's
    assert blocks(found[0], "PRIVATE KEY") and blocks(found[0], "CERTIFICATE")
    assert not any(any(d.iterdir()) for d in dirs)  # no copy left in a run folder
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT node, name, sealed FROM nodekit_secrets WHERE node = %s", (FLEET,)
        ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [(FLEET, CA_SECRET)]  # outside any node
    key_line = blocks(found[0], "PRIVATE KEY")[0].splitlines()[1]
    assert key_line.encode() not in bytes(rows[0][2])  # ciphertext only

"""Helpers of the equipment tests: a test clock, twins on ephemeral ports, mosquitto."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodekit.equipment.twin import TwinThread, config_from_dict

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"


class FakeClock:
    """A clock the test moves by hand, so values change without sleeping."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class RunningTwin:
    thread: TwinThread
    equipment: dict[str, Any]
    state_file: Path
    secrets_file: Path
    clock: FakeClock

    def set_state(self, state: str) -> None:
        self.state_file.write_text(state + "\n")
        self.thread.refresh()

    def set_secrets(self, secrets: dict[str, Any] | None) -> None:
        if secrets is None:
            self.secrets_file.unlink(missing_ok=True)
        else:
            # a new file each time: the twin notices by size/mtime/inode
            tmp = self.secrets_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(secrets))
            tmp.replace(self.secrets_file)
        self.thread.refresh()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.thread.refresh()


def start_twin(
    tmp: Path,
    protocol: str,
    kind: str,
    name: str,
    *,
    secrets: dict[str, Any] | None = None,
    job_s: float = 90.0,
    extra: dict[str, Any] | None = None,
) -> RunningTwin:
    """A twin on 127.0.0.1, ephemeral port, with its own state and secrets files."""
    tmp.mkdir(parents=True, exist_ok=True)
    state_file, secrets_file = tmp / f"{name}.state", tmp / f"{name}.secrets.json"
    if secrets is not None:
        secrets_file.write_text(json.dumps(secrets))
    eq = {"name": name, "kind": kind, "protocol": protocol, "address": "127.0.0.1", "port": 0}
    raw = {
        "node": "test-node",
        "equipment": eq,
        "bind": "127.0.0.1",
        "state_file": str(state_file),
        "secrets_file": str(secrets_file),
        **(extra or {}),
    }
    clock = FakeClock()
    thread = TwinThread(config_from_dict(raw), clock=clock, job_s=job_s, watch_s=0.05)
    bound = dict(eq, port=thread.port)
    return RunningTwin(thread, bound, state_file, secrets_file, clock)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@dataclass
class Broker:
    host: str
    port: int
    users: dict[str, str]
    process: subprocess.Popen[bytes]


def start_mosquitto(tmp: Path, users: dict[str, str]) -> Broker:
    """mosquitto on 127.0.0.1 with a password file (no anonymous access)."""
    tmp.mkdir(parents=True, exist_ok=True)
    pwfile = tmp / "passwd"
    pwfile.touch()
    for user, password in users.items():
        subprocess.run([MOSQUITTO_PASSWD, "-b", str(pwfile), user, password], check=True)
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        "user root\n"  # root: do not drop privileges (the files are private); else ignored
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous false\n"
        f"password_file {pwfile}\n"
        "persistence false\n"
    )
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def listening() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    if not wait_for(listening, 10.0):
        proc.kill()
        raise RuntimeError("mosquitto did not start")
    return Broker("127.0.0.1", port, users, proc)

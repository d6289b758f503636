"""The PostgreSQL backend: one truth for many runners (``postgres://...``).

- Pulumi state: Pulumi's own ``postgres://`` DIY backend, same database
  (its table ``pulumi_state``); the passphrase is the secrets key.
- Locks: a session advisory lock per node, held on a connection of its own,
  so it dies with a killed runner; ``nodekit_locks`` names the holder.
- Secrets: ``nodekit_secrets``, sealed (AES-GCM, :mod:`nodekit.backends.sealed`).
- Shared files and runs: ``nodekit_files``, ``nodekit_runs`` (record and
  rendered output).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import yaml

from nodekit.backends.base import Backend, RunRecord, masked, shared_paths
from nodekit.backends.sealed import Sealer, secrets_key
from nodekit.errors import BackendError, LockTimeout
from nodekit.run.lock import NAME_GRACE_S, describe_holder
from nodekit.run.state import MakeSecret, NodeState

SCHEMA = """
CREATE TABLE IF NOT EXISTS nodekit_meta (key text PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE IF NOT EXISTS nodekit_locks (node text PRIMARY KEY, holder jsonb NOT NULL);
CREATE TABLE IF NOT EXISTS nodekit_files (
  node text NOT NULL, path text NOT NULL, data bytea NOT NULL,
  updated timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (node, path));
CREATE TABLE IF NOT EXISTS nodekit_secrets (
  node text NOT NULL, name text NOT NULL, sealed bytea NOT NULL, PRIMARY KEY (node, name));
CREATE TABLE IF NOT EXISTS nodekit_runs (
  node text NOT NULL, id text NOT NULL, started text NOT NULL, record jsonb NOT NULL,
  rendered bytea, PRIMARY KEY (node, id));
"""
SCHEMA_LOCK = 0x6E6F64656B6974  # "nodekit": serialises CREATE TABLE of concurrent runners
TABLES = ("nodekit_meta", "nodekit_locks", "nodekit_files", "nodekit_secrets", "nodekit_runs")


def _lock_key(node: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"nodekit/{node}".encode()).digest()[:8], "big", signed=True
    )


class PostgresBackend(Backend):
    name = "postgres"
    shared = True

    def __init__(self, url: str) -> None:
        self.url = url
        self._sealer: Sealer | None = None
        self._ready = False

    @property
    def display(self) -> str:
        return masked(self.url)

    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=10,
                keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3,
            )  # fmt: skip
        except psycopg.Error as error:
            raise BackendError(
                f"cannot reach the state backend {self.display}: {_first_line(error)}",
                fix="check NODEKIT_BACKEND (or --backend); for development: make backend",
            ) from None
        try:
            if not self._ready:
                # Only when a table is missing: CREATE needs a privilege a role that
                # uses existing tables need not have.
                present = conn.execute(
                    "SELECT count(to_regclass(t)) FROM unnest(%s::text[]) AS t", (list(TABLES),)
                ).fetchone()
                if not present or present[0] < len(TABLES):
                    with conn.transaction():
                        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                        conn.execute(SCHEMA)
                self._ready = True
            yield conn
        except psycopg.Error as error:
            raise BackendError(
                f"the state backend {self.display} refused: {_first_line(error)}"
            ) from None
        finally:
            conn.close()

    # -- locks ----------------------------------------------------------------

    @contextmanager
    def lock(
        self,
        node: str,
        *,
        holder: dict[str, Any],
        timeout_s: float,
        on_wait: Callable[[str], None] | None = None,
    ) -> Iterator[None]:
        key = _lock_key(node)
        with self._connect() as conn:  # the lock lives exactly as long as this session
            start = time.monotonic()
            told = False
            while not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:  # type: ignore[index]
                row = conn.execute(
                    "SELECT holder FROM nodekit_locks WHERE node = %s", (node,)
                ).fetchone()
                who = describe_holder(row[0] if row else None)
                waited = time.monotonic() - start
                if waited >= timeout_s:
                    raise LockTimeout(node=node, holder=who, waited_s=waited)
                # the holder names itself just after it takes the lock: give it a moment
                if on_wait and not told and (row or waited >= NAME_GRACE_S):
                    on_wait(who)
                    told = True
                time.sleep(min(1.0, max(0.05, timeout_s - waited)))
            conn.execute(
                "INSERT INTO nodekit_locks (node, holder) VALUES (%s, %s) "
                "ON CONFLICT (node) DO UPDATE SET holder = EXCLUDED.holder",
                (node, json.dumps(holder)),
            )
            try:
                yield
            finally:
                conn.execute("DELETE FROM nodekit_locks WHERE node = %s", (node,))
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    # -- shared files ---------------------------------------------------------

    def pull(self, state: NodeState) -> None:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT path, data FROM nodekit_files WHERE node = %s", (state.node,)
            ).fetchall()
        stored = {str(path): bytes(data) for path, data in rows}
        for local in list(shared_paths(state)):
            if str(local.relative_to(state.root)) not in stored:
                local.unlink()  # gone from the backend: another runner destroyed it
        for rel, data in stored.items():
            path = state.root / rel
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.is_file() or path.read_bytes() != data:
                path.write_bytes(data)
                path.chmod(0o600)

    def push(self, state: NodeState) -> None:
        files = {str(p.relative_to(state.root)): p.read_bytes() for p in shared_paths(state)}
        with self._connect() as conn, conn.transaction():
            conn.execute(
                "DELETE FROM nodekit_files WHERE node = %s AND NOT (path = ANY(%s))",
                (state.node, list(files)),
            )
            for rel, data in files.items():
                conn.execute(
                    "INSERT INTO nodekit_files (node, path, data) VALUES (%s, %s, %s) "
                    "ON CONFLICT (node, path) DO UPDATE SET data = EXCLUDED.data, updated = now()",
                    (state.node, rel, data),
                )

    # -- secrets --------------------------------------------------------------

    def _seal(self, conn: psycopg.Connection[Any]) -> Sealer:
        if self._sealer is None:
            key = secrets_key()
            conn.execute(
                "INSERT INTO nodekit_meta (key, value) VALUES ('secrets_salt', %s) "
                "ON CONFLICT (key) DO NOTHING",
                (os.urandom(16),),
            )
            row = conn.execute(
                "SELECT value FROM nodekit_meta WHERE key = 'secrets_salt'"
            ).fetchone()
            sealer = Sealer(key, bytes(row[0]))  # type: ignore[index]
            conn.execute(
                "INSERT INTO nodekit_meta (key, value) VALUES ('secrets_check', %s) "
                "ON CONFLICT (key) DO NOTHING",
                (sealer.check_value(),),
            )
            check = conn.execute(
                "SELECT value FROM nodekit_meta WHERE key = 'secrets_check'"
            ).fetchone()
            if not sealer.matches(bytes(check[0])):  # type: ignore[index]
                raise BackendError(
                    f"the secrets key does not open the secrets of {self.display}",
                    fix="set NODEKIT_SECRETS_KEY to the key this backend was first used with",
                )
            self._sealer = sealer
        return self._sealer

    def _values(self, conn: psycopg.Connection[Any], node: str) -> dict[str, str]:
        sealer = self._seal(conn)
        rows = conn.execute(
            "SELECT name, sealed FROM nodekit_secrets WHERE node = %s", (node,)
        ).fetchall()
        return {str(n): sealer.open(bytes(v), f"{node}/{n}") for n, v in rows}

    def secrets_file(
        self, state: NodeState, names: tuple[str, ...], run_dir: Path, make: MakeSecret = None
    ) -> Path:
        with self._connect() as conn:
            sealer = self._seal(conn)
            have = set(self._values(conn, state.node)) if make else set()
            for name in names:  # first writer wins: every runner ends with the same value
                if name in have:
                    continue
                value = (make(name) if make else None) or secrets.token_urlsafe(24)
                conn.execute(
                    "INSERT INTO nodekit_secrets (node, name, sealed) VALUES (%s, %s, %s) "
                    "ON CONFLICT (node, name) DO NOTHING",
                    (
                        state.node,
                        name,
                        sealer.seal(value, f"{state.node}/{name}"),
                    ),
                )
            values = self._values(conn, state.node)
        path = run_dir / ".secrets.yml"  # deleted when the run finishes
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump({"nodekit_secrets": dict(sorted(values.items()))}, handle)
        return path

    def import_secrets(self, state: NodeState, values: dict[str, str]) -> None:
        """Store given values (migrate); a value the backend already has is kept."""
        with self._connect() as conn:
            sealer = self._seal(conn)
            for name, value in sorted(values.items()):
                conn.execute(
                    "INSERT INTO nodekit_secrets (node, name, sealed) VALUES (%s, %s, %s) "
                    "ON CONFLICT (node, name) DO NOTHING",
                    (state.node, name, sealer.seal(value, f"{state.node}/{name}")),
                )

    def check(self) -> None:
        with self._connect() as conn:
            self._seal(conn)  # a wrong key is refused here, before anything runs

    def knows(self, node: str) -> bool:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM nodekit_files WHERE node = %s) "
                "OR EXISTS (SELECT 1 FROM nodekit_runs WHERE node = %s)",
                (node, node),
            ).fetchone()
        return bool(row and row[0])

    def secret_values(self, state: NodeState) -> list[str]:
        with self._connect() as conn:
            values = list(self._values(conn, state.node).values())
        password = urlsplit(self.url).password
        return [*values, secrets_key(), *([unquote(password)] if password else [])]

    # -- Pulumi ---------------------------------------------------------------

    def pulumi_env(self, state: NodeState) -> dict[str, str]:
        return {"PULUMI_BACKEND_URL": self.url, "PULUMI_CONFIG_PASSPHRASE": secrets_key()}

    def clear_pulumi_locks(self, project: str, stack: str) -> int:
        with self._connect() as conn:
            if conn.execute("SELECT to_regclass('pulumi_state')").fetchone()[0] is None:  # type: ignore[index]
                return 0
            cursor = conn.execute(
                "DELETE FROM pulumi_state WHERE key LIKE %s",
                (f"%.pulumi/locks/%/{project}/{stack}/%",),  # keys start with the database name
            )
            return cursor.rowcount

    def has_stack(self, state: NodeState) -> bool:
        return True  # Pulumi's backend says; a destroy of a stack that is not there is quick

    # -- runs -----------------------------------------------------------------

    def add_run(self, state: NodeState, record: RunRecord, rendered: bytes | None) -> str:
        base = str(record["id"])
        with self._connect() as conn:
            for n in range(1, 100):  # ids are per node; two runners may start in one second
                run_id = base if n == 1 else f"{base}-r{n}"
                row = conn.execute(
                    "INSERT INTO nodekit_runs (node, id, started, record, rendered) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
                    (state.node, run_id, str(record.get("started", "")),
                     json.dumps({**record, "id": run_id}), rendered),
                ).fetchone()  # fmt: skip
                if row:
                    return run_id
        raise BackendError(f"cannot store run {base} of {state.node}: id taken")

    def runs(self, node: str, limit: int | None = None) -> list[RunRecord]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT record FROM nodekit_runs WHERE node = %s ORDER BY started DESC, id DESC"
                + (" LIMIT %s" if limit else ""),
                (node, limit) if limit else (node,),
            ).fetchall()
        return [dict(r[0]) for r in rows]

    def rendering(self, node: str, run: str) -> bytes | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT rendered FROM nodekit_runs WHERE node = %s AND id = %s", (node, run)
            ).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def forget(self, state: NodeState) -> None:
        with self._connect() as conn, conn.transaction():
            conn.execute("DELETE FROM nodekit_secrets WHERE node = %s", (state.node,))
            conn.execute("DELETE FROM nodekit_files WHERE node = %s", (state.node,))


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__

"""State backends by name: ``NODEKIT_BACKEND`` (or ``--backend``) picks one.

backend_for(url) -> Backend     "local" or unset: this machine's state folder;
                                "postgres://...": PostgreSQL, shared by runners
"""

from __future__ import annotations

import os

from nodekit.backends.base import SHARED_FILES, Backend, RunRecord, masked
from nodekit.backends.local import LocalBackend
from nodekit.errors import UsageError

_CACHE: dict[str, Backend] = {}


def backend_for(url: str | None = None) -> Backend:
    """The backend a URL names (default: $NODEKIT_BACKEND, else local)."""
    url = (url if url is not None else os.environ.get("NODEKIT_BACKEND", "")).strip()
    if url in ("", "local"):
        return LocalBackend()
    if url.startswith(("postgres://", "postgresql://")):
        if url not in _CACHE:
            from nodekit.backends.postgres import PostgresBackend  # psycopg only when used

            _CACHE[url] = PostgresBackend(url.replace("postgresql://", "postgres://", 1))
        return _CACHE[url]
    raise UsageError(
        f"unknown state backend {masked(url)!r}",
        fix="NODEKIT_BACKEND=local (the default) or postgres://USER:PASS@HOST:PORT/DB?sslmode=...",
    )


__all__ = ["SHARED_FILES", "Backend", "RunRecord", "backend_for", "masked"]

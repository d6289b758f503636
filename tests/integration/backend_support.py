"""The PostgreSQL of `make backend`, for the tests: its test database's URL."""

from __future__ import annotations

import subprocess

from nodekit.render import PROJECT_ROOT


def backend_url() -> str:
    """Start (or find) the cluster; the URL of its nodekit_test database."""
    done = subprocess.run(
        ["bash", str(PROJECT_ROOT / "nodekit/toolchain/setup-backend.sh")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("NODEKIT_BACKEND=postgres://"), line
    return line.split("=", 1)[1].replace("/nodekit?", "/nodekit_test?")

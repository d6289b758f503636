"""The equipment agents as Python wheels for the site bundle.

The agents (twins, probe, collector, ingest: :mod:`nodekit.equipment`) run on
the node's hosts and twin containers, never from PyPI: the bundle's
``wheels/`` folder carries them as one wheel, ``nodekit-equipment``, built
here from the package's source (byte-stable: sorted entries, fixed times),
plus the wheels of their pinned dependencies for Debian 12's Python 3.11 on
x86_64, downloaded once into the cache. Hosts install them with
``pip install --no-index --find-links /srv/nodekit/bundle/wheels``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

from nodekit import __version__
from nodekit.errors import OperationError
from nodekit.toolchain import cache_dir

SOURCE = Path(__file__).parent / "equipment"
NAME, MODULE = "nodekit-equipment", "nodekit_equipment"
#: The agents' dependencies, pinned (the same pins as the project's own).
REQUIREMENTS = (
    "pymodbus==3.16.1",
    "asyncua==2.1.0",
    "paho-mqtt==2.2.0",
    "psycopg[binary]==3.3.9",
)
PLATFORMS = (*(f"manylinux_2_{n}_x86_64" for n in (17, 28, 34, 36)), "manylinux2014_x86_64")
MANIFEST = "nodekit-wheels.json"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _sources() -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted(SOURCE.glob("*.py"))]


@cache
def agent_version() -> str:
    """nodekit's version plus a digest of the agents' source and pins: a host
    reinstalls exactly when either changes."""
    digest = hashlib.sha256()
    for name, data in _sources():
        digest.update(name.encode() + b"\0" + data + b"\0")
    digest.update("\n".join(REQUIREMENTS).encode())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def agent_wheel_name() -> str:
    return f"{MODULE}-{agent_version()}-py3-none-any.whl"


def agent_wheel() -> bytes:
    """The ``nodekit-equipment`` wheel, the same bytes for the same source."""
    info = f"{MODULE}-{agent_version()}.dist-info"
    files = [(f"{MODULE}/{name}", data) for name, data in _sources()]
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {NAME}",
        f"Version: {agent_version()}",
        "Summary: nodekit's equipment agents: twins, probe, edge collector, telemetry ingest",
        "Requires-Python: >=3.11",
        *(f"Requires-Dist: {r}" for r in REQUIREMENTS),
    ]
    files.append((f"{info}/METADATA", ("\n".join(metadata) + "\n").encode()))
    wheel = "Wheel-Version: 1.0\nGenerator: nodekit\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files.append((f"{info}/WHEEL", wheel.encode()))
    record = [f"{path},sha256={_b64(data)},{len(data)}" for path, data in files]
    files.append((f"{info}/RECORD", ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files:
            entry = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def dependency_wheels(on_event: Callable[[str], None] | None = None) -> Path:
    """The folder of the dependencies' wheels in the cache, downloaded once."""
    key = hashlib.sha256(json.dumps([REQUIREMENTS, PLATFORMS]).encode()).hexdigest()[:16]
    folder = cache_dir() / "wheels" / key
    if (folder / ".complete").is_file():
        return folder
    if on_event:
        on_event(f"bundle: downloading the agents' Python wheels ({len(REQUIREMENTS)} pins)")
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    command = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
               "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
               *platforms, "--dest", str(tmp), *REQUIREMENTS]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        raise OperationError(
            f"cannot download the agents' wheels from the package index: {lines[-1]}",
            part="wheels",
        )
    (tmp / ".complete").write_text("\n".join(REQUIREMENTS) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
    return folder


def populate_wheels(dest: Path, on_event: Callable[[str], None] | None = None) -> int:
    """Make ``dest`` hold exactly the agent wheel and its dependencies; files changed."""
    dest.mkdir(parents=True, exist_ok=True)
    source = dependency_wheels(on_event)
    wanted = {p.name: p for p in sorted(source.glob("*.whl"))}
    agent = agent_wheel()
    changed = 0
    for stale in dest.iterdir():
        if stale.name not in wanted and stale.name not in (agent_wheel_name(), MANIFEST):
            stale.unlink()
            changed += 1
    for name, path in wanted.items():
        target = dest / name
        if target.is_file() and target.stat().st_size == path.stat().st_size:
            continue
        target.unlink(missing_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
        changed += 1
    target = dest / agent_wheel_name()
    if not target.is_file() or target.read_bytes() != agent:
        target.write_bytes(agent)
        changed += 1
    files = sorted([*wanted, agent_wheel_name()])
    manifest = json.dumps({"agent": agent_version(), "wheels": files}, indent=2) + "\n"
    if not (dest / MANIFEST).is_file() or (dest / MANIFEST).read_text() != manifest:
        (dest / MANIFEST).write_text(manifest)
    return changed

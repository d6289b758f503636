"""Checks of every real part nodekit needs, each with the fix when it fails."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from nodekit.toolchain import node_image_ref, pulumi_tools, tool_env, versions

SETUP = "make setup"  # installs every part below, idempotently


@dataclass(frozen=True)
class Check:
    """The outcome of checking one part of the toolchain."""

    part: str
    ok: bool
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"part": self.part, "ok": self.ok, "detail": self.detail, "fix": self.fix}


PYTHON_MODULES = (
    "pulumi",
    "pulumi_aws",
    "ansible",
    "ansible_runner",
    "jinja2",
    "yaml",
    "pydantic",
    "typer",
    "rich",
    "docker",
    "testinfra",
    "pytest",
    "ansible_mitogen",
)
# community.docker: the local target's connection; ansible.posix and
# community.postgresql: modules the roles use.
COLLECTIONS = ("community.docker", "ansible.posix", "community.postgresql")
# Host commands: apt-get and dpkg-scanpackages build site bundles, iptables
# keeps zone bridges open to their gateway (local target).
HOST_TOOLS = ("apt-get", "dpkg-scanpackages", "iptables")


def check_python() -> Check:
    missing = [name for name in PYTHON_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        return Check(
            "python deps",
            False,
            "missing: " + ", ".join(missing),
            f"{SETUP} (installs the project into .venv)",
        )
    return Check("python deps", True, f"{len(PYTHON_MODULES)} packages importable")


def check_collections() -> Check:
    missing = [
        name
        for name in COLLECTIONS
        if importlib.util.find_spec("ansible_collections." + name) is None
    ]
    if missing:
        return Check(
            "ansible collections",
            False,
            "missing: " + ", ".join(missing),
            f"{SETUP} (the `ansible` PyPI package carries them)",
        )
    return Check("ansible collections", True, ", ".join(COLLECTIONS))


def check_host_tools() -> Check:
    missing = [tool for tool in HOST_TOOLS if shutil.which(tool) is None]
    if missing:
        return Check(
            "host tools",
            False,
            "missing: " + ", ".join(missing),
            f"{SETUP} (installs dpkg-dev and docker.io, which brings iptables)",
        )
    return Check("host tools", True, ", ".join(HOST_TOOLS))


def _docker_client() -> object:
    import docker

    return docker.from_env(timeout=5)


def check_docker() -> Check:
    try:
        client = _docker_client()
        info = client.version()  # type: ignore[attr-defined]
    except Exception as error:  # any failure means: not reachable
        return Check(
            "docker engine",
            False,
            f"not reachable ({type(error).__name__})",
            f"{SETUP} (installs docker.io and starts dockerd), "
            "or start it: nodekit/toolchain/setup-docker.sh",
        )
    return Check("docker engine", True, f"dockerd {info.get('Version', '?')} answering")


def check_image() -> Check:
    ref = node_image_ref()
    fix = f"{SETUP} (builds it: nodekit/toolchain/build-node-image.sh)"
    try:
        client = _docker_client()
        client.images.get(ref)  # type: ignore[attr-defined]
    except Exception as error:
        name = type(error).__name__
        why = "not built" if name == "ImageNotFound" else f"cannot ask the engine ({name})"
        return Check("node image", False, f"{ref}: {why}", fix)
    return Check("node image", True, ref)


def check_pulumi() -> Check:
    tools = pulumi_tools()
    fix = f"{SETUP} (builds it from Go modules: nodekit/toolchain/build-pulumi.sh)"
    if not tools.cli.is_file():
        return Check("pulumi cli", False, f"not built ({tools.cli})", fix)
    try:
        run = subprocess.run(
            [str(tools.cli), "version"],
            capture_output=True,
            text=True,
            timeout=30,
            env=tool_env(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return Check("pulumi cli", False, f"does not run ({error})", fix)
    if run.returncode != 0:
        return Check("pulumi cli", False, f"`pulumi version` failed: {run.stderr.strip()}", fix)
    return Check("pulumi cli", True, f"{run.stdout.strip()} ({tools.cli})")


def check_language_host() -> Check:
    tools = pulumi_tools()
    fix = f"{SETUP} (builds it: nodekit/toolchain/build-pulumi.sh)"
    missing = [p.name for p in (tools.language_host, *tools.helpers) if not p.is_file()]
    if missing:
        return Check("pulumi python host", False, "missing: " + ", ".join(missing), fix)
    return Check(
        "pulumi python host",
        True,
        f"language host (sdk {versions()['PULUMI_LANGHOST_SDK_VERSION']}) and helper scripts",
    )


CHECKS: tuple[Callable[[], Check], ...] = (
    check_python,
    check_collections,
    check_host_tools,
    check_docker,
    check_image,
    check_pulumi,
    check_language_host,
)


def run_checks() -> list[Check]:
    """Run every check; never raises."""
    return [check() for check in CHECKS]

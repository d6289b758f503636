"""Checks of every real part nodekit needs, each with the fix when it fails."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from nodekit.toolchain import baseline_status, node_image_ref, pulumi_tools, tool_env, versions

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
    "psycopg",
    "cryptography",
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


def check_ssh_client() -> Check:
    missing = [tool for tool in ("ssh", "ssh-keygen", "tar") if shutil.which(tool) is None]
    if missing:
        return Check(
            "ssh client",
            False,
            "missing: " + ", ".join(missing),
            "apt-get install openssh-client tar (the ssh target reaches hosts with OpenSSH)",
        )
    return Check("ssh client", True, "ssh, ssh-keygen, tar")


def check_baseline() -> Check:
    status = baseline_status()
    if not status.is_file():
        return Check(
            "baseline",
            False,
            f"not built ({status})",
            f"{SETUP} (builds it: nodekit/toolchain/build-baseline.sh)",
        )
    return Check("baseline", True, f"minimal Debian 12 package list ({status.parent.name})")


def check_backend() -> Check:
    """The state backend of $NODEKIT_BACKEND: reachable, and the secrets key opens it."""
    from nodekit.backends import backend_for
    from nodekit.errors import NodekitError

    try:
        backend = backend_for()
        if backend.shared:
            from nodekit.backends.sealed import secrets_key

            secrets_key()
        backend.check()
    except NodekitError as error:
        return Check("state backend", False, str(error), str(error.context.get("fix") or ""))
    return Check("state backend", True, backend.display)


# Every part by its name; the common ones first. Targets name what else they
# need (nodekit.targets.*.toolchain).
CHECKS: dict[str, Callable[[], Check]] = {
    "python deps": check_python,
    "ansible collections": check_collections,
    "host tools": check_host_tools,
    "baseline": check_baseline,
    "pulumi cli": check_pulumi,
    "pulumi python host": check_language_host,
    "docker engine": check_docker,
    "node image": check_image,
    "ssh client": check_ssh_client,
    "state backend": check_backend,
}
COMMON = ("python deps", "ansible collections", "host tools", "baseline", "pulumi cli",
          "pulumi python host", "state backend")  # fmt: skip


def run_checks(parts: tuple[str, ...] | None = None) -> list[Check]:
    """Run the checks of the common parts and ``parts`` (all when None); never raises."""
    wanted = set(CHECKS) if parts is None else set(COMMON) | set(parts)
    return [check() for name, check in CHECKS.items() if name in wanted]

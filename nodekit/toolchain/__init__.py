"""Where the real toolchain lives: pinned versions, cache folders, tool paths.

The setup scripts beside this file install the parts (``make setup`` runs
them); this module only finds them, so the engine can use them and
``nodekit doctor`` can check them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSIONS_FILE = HERE / "versions.env"
IMAGE_SCRIPT = HERE / "build-node-image.sh"
IMAGE_PACKAGES = HERE / "image-packages.txt"
BASELINE_SCRIPT = HERE / "build-baseline.sh"
BASELINE_PACKAGES = HERE / "baseline-packages.txt"


def cache_dir() -> Path:
    """The cache shared by every clone: ``$NODEKIT_CACHE`` or ``~/.cache/nodekit``."""
    return Path(os.environ.get("NODEKIT_CACHE") or Path.home() / ".cache" / "nodekit")


@cache
def versions() -> dict[str, str]:
    """The pinned versions from versions.env (``KEY=VALUE`` lines)."""
    pinned: dict[str, str] = {}
    for raw in VERSIONS_FILE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            pinned[key.strip()] = value.strip()
    return pinned


@dataclass(frozen=True)
class PulumiTools:
    """Paths of the Pulumi engine parts built by build-pulumi.sh."""

    bin_dir: Path

    @property
    def cli(self) -> Path:
        return self.bin_dir / "pulumi"

    @property
    def language_host(self) -> Path:
        return self.bin_dir / "pulumi-language-python"

    @property
    def helpers(self) -> tuple[Path, ...]:
        return (
            self.bin_dir / "pulumi-language-python-exec",
            self.bin_dir / "pulumi-resource-pulumi-python",
        )

    @property
    def complete(self) -> bool:
        return (self.bin_dir.parent / ".complete").is_file()


def pulumi_tools() -> PulumiTools:
    pinned = versions()
    name = f"{pinned['PULUMI_VERSION']}-langhost-{pinned['PULUMI_LANGHOST_SDK_VERSION']}"
    return PulumiTools(cache_dir() / "pulumi" / name / "bin")


def node_image_ref() -> str:
    """The node image reference: its repository tagged with a hash of its recipe.

    Must agree with build-node-image.sh, which hashes the same three files.
    """
    digest = hashlib.sha256()
    for part in (IMAGE_SCRIPT, IMAGE_PACKAGES, VERSIONS_FILE):
        digest.update(part.read_bytes())
    return f"{versions()['NODE_IMAGE_REPO']}:{digest.hexdigest()[:12]}"


def _baseline_tag() -> str:
    """Must agree with build-baseline.sh, which hashes the same three files."""
    digest = hashlib.sha256()
    for part in (BASELINE_SCRIPT, BASELINE_PACKAGES, VERSIONS_FILE):
        digest.update(part.read_bytes())
    return digest.hexdigest()[:12]


def baseline_status() -> Path:
    """The dpkg status of a minimal Debian 12 host (site bundles resolve against it)."""
    return cache_dir() / "baseline" / _baseline_tag() / "status"


def baseline_image_ref() -> str:
    """The Docker image of that minimal host (the ssh target's test hosts)."""
    return f"{versions()['BASELINE_IMAGE_REPO']}:{_baseline_tag()}"


def tool_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment in which the Pulumi engine runs offline and quietly.

    The built Pulumi binaries and this Python's scripts come first on PATH;
    update checks and plugin downloads are off.
    """
    env = dict(os.environ if base is None else base)
    python_bin = str(Path(shutil.which("python3") or "/usr/bin/python3").parent)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(
        [str(pulumi_tools().bin_dir), venv_bin, python_bin, env.get("PATH", "")]
    )
    env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
    env.setdefault("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "true")
    env.setdefault("PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK", "true")
    env.setdefault("PULUMI_SKIP_CONFIRMATIONS", "true")
    env.setdefault("PULUMI_DIY_BACKEND_NO_LEGACY_WARNING", "true")
    return env

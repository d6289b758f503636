"""The apt side of a site bundle: this machine's apt, in a private state, resolves
the requested packages against the node image's dpkg status and downloads them.

Nothing of the host's own apt state is written: apt's lock and
``extended_states`` live in a private folder, the package lists are the host's
(read only), the ``.deb`` files go to nodekit's cache. Every apt failure becomes
one nodekit error (:func:`classify_apt_failure`), never a traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nodekit.errors import InputError, OperationError, ToolchainError

EventFn = Callable[[str], None]
APT_LISTS = Path("/var/lib/apt/lists")

# Debian policy 5.6.1: lower case letters, digits, + - . ; at least 2 chars.
_PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
# `apt-get -s` lines: "Inst NAME [OLD] (VERSION ORIGIN [ARCH])".
INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*\[([^\]]+)\]\)")
_UNKNOWN = (
    re.compile(r"^E: Unable to locate package (\S+)"),
    re.compile(r"^E: Package '([^']+)' has no installation candidate"),
    re.compile(r"^E: Couldn't find any package by (?:glob|regex) '([^']+)'"),
)


@dataclass(frozen=True)
class ResolvedDeb:
    """One package apt chose to install on the node image."""

    name: str
    version: str
    arch: str

    @property
    def filename(self) -> str:
        # apt's own archive name: an epoch's colon is URL-encoded.
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}.deb"


def check_names(packages: Sequence[str]) -> tuple[str, ...]:
    if isinstance(packages, str):
        raise InputError("packages must be a list of names, not one string")
    bad = sorted({p for p in packages if not _PACKAGE_NAME.match(p)})
    if bad:
        raise InputError("not a Debian package name: " + ", ".join(map(repr, bad)), packages=bad)
    if not packages:
        raise InputError("a bundle needs at least one package")
    return tuple(sorted(set(packages)))


def ensure_apt_lists(say: EventFn) -> None:
    if any(APT_LISTS.glob("*_Packages*")):
        return
    say("bundle: this host has no apt lists; running apt-get update")
    proc = subprocess.run(
        ["apt-get", "-q", "update"], capture_output=True, text=True, env=apt_env(), check=False
    )
    if proc.returncode != 0:
        raise ToolchainError(
            "apt-get update failed: " + apt_errors(proc.stderr or proc.stdout),
            part="apt",
            fix="run `apt-get update` as root (the host's Debian mirror must be reachable)",
        )


def apt_options(status: Path, state: Path, archives: Path) -> list[str]:
    """apt-get options that read the node image's status in a private state dir.

    The state dir holds apt's lock and ``extended_states``; the lists stay the
    host's. Locking is off because ``bundle.lock`` already serialises bundle
    builds and nothing but nodekit writes the .deb cache.
    """
    (archives / "partial").mkdir(parents=True, exist_ok=True)
    options = [
        "-q",
        "-o",
        f"Dir::State={state}",
        "-o",
        f"Dir::State::Lists={APT_LISTS}",
        "-o",
        f"Dir::State::status={status}",
        "-o",
        f"Dir::State::extended_states={state / 'extended_states'}",
        "-o",
        f"Dir::Cache::archives={archives}",
        "-o",
        "Dir::Cache::pkgcache=",
        "-o",
        "Dir::Cache::srcpkgcache=",
        "-o",
        "Debug::NoLocking=true",
        "-o",
        "APT::Install-Recommends=false",
    ]
    if os.geteuid() == 0:
        # The cache sits in root's home, which apt's _apt user cannot enter.
        options += ["-o", "APT::Sandbox::User=root"]
    return options


def resolve(options: list[str], requested: tuple[str, ...]) -> list[ResolvedDeb]:
    proc = run_apt([*options, "-s", "install", "-y", "--no-install-recommends"], requested)
    resolved = {}
    for line in proc.stdout.splitlines():
        match = INST.match(line)
        if match:
            deb = ResolvedDeb(*match.groups())
            resolved[deb.name] = deb
    return [resolved[name] for name in sorted(resolved)]


def run_apt(args: list[str], requested: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["apt-get", *args, *requested],
        capture_output=True,
        text=True,
        env=apt_env(),
        check=False,
    )
    if proc.returncode == 0:
        return proc
    raise classify_apt_failure(proc.stdout + "\n" + proc.stderr)


def classify_apt_failure(output: str) -> OperationError | InputError:
    """Turn apt-get's output into the right nodekit error (one place for all)."""
    unknown = sorted(
        {m.group(1) for line in output.splitlines() for rx in _UNKNOWN if (m := rx.match(line))}
    )
    if unknown:
        return InputError(
            "unknown Debian package(s) for Debian 12: " + ", ".join(unknown), packages=unknown
        )
    if "Unable to correct problems" in output or "unmet dependencies" in output:
        return OperationError(
            "apt cannot satisfy the dependencies of the bundle: " + apt_errors(output),
            part="apt",
        )
    return OperationError("apt-get failed: " + apt_errors(output), part="apt")


def apt_errors(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.startswith(("E:", "W:"))]
    return "; ".join(lines) or (output.strip().splitlines() or ["no output"])[-1]


def apt_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(LC_ALL="C", LANG="C", DEBIAN_FRONTEND="noninteractive")
    return env

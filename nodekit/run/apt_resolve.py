"""The apt side of a site bundle: this machine's apt, in a private state, resolves
the requested packages against the node image's dpkg status and downloads them.

Nothing of the host's own apt state is written: apt's lock and
``extended_states`` live in a private folder, the package lists are the host's
(read only), the ``.deb`` files go to nodekit's cache. Every apt failure becomes
one nodekit error (:func:`run_apt`), never a traceback.

A request ``name=version`` pins a package (``software[].version``): apt
resolves that version, and a private preferences file holds every package
built from the same source at it too (a pinned mosquitto needs the libmosquitto1
of its own version). The base role gives the node's apt the same preferences.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nodekit.blueprint.version_rules import is_debian_version
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
_NO_VERSION = re.compile(r"^E: Version '([^']+)' for '([^']+)' was not found")
# Above 1000: apt takes the pinned version even below an installed one.
PIN_PRIORITY = 1001


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
    """The requests, sorted and deduplicated: ``name``, or ``name=version`` for a pin
    (a package requested both pinned and not is requested pinned)."""
    if isinstance(packages, str):
        raise InputError("packages must be a list of names, not one string")
    bad = sorted({p for p in packages if not _request(p)})
    if bad:
        raise InputError(
            "not a Debian package name (or name=version): " + ", ".join(map(repr, bad)),
            packages=bad,
        )
    if not packages:
        raise InputError("a bundle needs at least one package")
    versions: dict[str, set[str]] = {}
    for request in packages:
        name, _, version = request.partition("=")
        versions.setdefault(name, set()).update({version} - {""})
    twice = sorted(f"{n} ({', '.join(sorted(v))})" for n, v in versions.items() if len(v) > 1)
    if twice:
        raise InputError("pinned to two versions in one bundle: " + "; ".join(twice))
    return tuple(sorted(f"{n}={min(v)}" if v else n for n, v in versions.items()))


def _request(text: str) -> bool:
    name, pinned, version = text.partition("=")
    return bool(_PACKAGE_NAME.match(name)) and (not pinned or is_debian_version(version))


def pins(requested: Sequence[str]) -> dict[str, str]:
    """Package -> version of the ``name=version`` requests."""
    split = (request.partition("=") for request in requested)
    return {name: version for name, pinned, version in split if pinned}


def preferences(pinned: Mapping[str, str]) -> str:
    """apt preferences holding each pinned package, and every package built from its
    source, at its version (nodekit's main packages are their source's namesakes:
    ``src:NAME``)."""
    return "".join(
        f"Package: {name} src:{name}\nPin: version {version}\nPin-Priority: {PIN_PRIORITY}\n\n"
        for name, version in sorted(pinned.items())
    )


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


def apt_options(
    status: Path, state: Path, archives: Path, pinned: Mapping[str, str] | None = None
) -> list[str]:
    """apt-get options that read the node image's status in a private state dir.

    The state dir holds apt's lock, ``extended_states`` and the preferences of
    the pins (in place of this machine's ``/etc/apt/preferences``); the lists
    stay the host's. Locking is off because ``bundle.lock`` already serialises
    bundle builds and nothing but nodekit writes the .deb cache.
    """
    (archives / "partial").mkdir(parents=True, exist_ok=True)
    (state / "preferences").write_text(preferences(pinned or {}))
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
        "-o",
        f"Dir::Etc::Preferences={state / 'preferences'}",
    ]
    if os.geteuid() == 0:
        # The cache sits in root's home, which apt's _apt user cannot enter.
        options += ["-o", "APT::Sandbox::User=root"]
    return options


def resolve(options: list[str], requested: tuple[str, ...]) -> list[ResolvedDeb]:
    proc = run_apt(options, ["-s", "install", "-y", "--no-install-recommends"], requested)
    resolved = {}
    for line in proc.stdout.splitlines():
        match = INST.match(line)
        if match:
            deb = ResolvedDeb(*match.groups())
            resolved[deb.name] = deb
    return [resolved[name] for name in sorted(resolved)]


def download(options: list[str], requested: tuple[str, ...]) -> None:
    """The resolved .deb files into the archives folder of ``options``."""
    run_apt(options, ["--download-only", "install", "-y", "--no-install-recommends"], requested)


def run_apt(
    options: list[str], command: list[str], requested: tuple[str, ...]
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["apt-get", *options, *command, *requested],
        capture_output=True,
        text=True,
        env=apt_env(),
        check=False,
    )
    if proc.returncode == 0:
        return proc
    output = proc.stdout + "\n" + proc.stderr
    missing = [
        (m.group(2), m.group(1)) for line in output.splitlines() if (m := _NO_VERSION.match(line))
    ]
    if missing:
        raise version_not_found(missing, {n: available_versions(options, n) for n, _ in missing})
    raise classify_apt_failure(output)


def available_versions(options: list[str], name: str) -> list[str]:
    """The versions of a package this machine's apt lists hold, newest first."""
    proc = subprocess.run(
        ["apt-cache", *options, "madison", name],
        capture_output=True,
        text=True,
        env=apt_env(),
        check=False,
    )
    versions: list[str] = []
    for line in proc.stdout.splitlines():  # " NAME | VERSION | MIRROR SUITE/main ARCH Packages"
        parts = [part.strip() for part in line.split("|")]
        if len(parts) == 3 and parts[0] == name and parts[2].endswith("Packages"):
            versions += [parts[1]] if parts[1] not in versions else []
    return versions


def version_not_found(
    missing: list[tuple[str, str]], available: dict[str, list[str]]
) -> InputError:
    """A pinned version the Debian archive does not have: the versions it has, the fix."""
    what = "; ".join(
        f"{name} {version} is not in the Debian 12 archive (this machine's apt lists); "
        f"the versions there: {', '.join(available.get(name) or []) or 'none'}"
        for name, version in missing
    )
    fix = (
        "set software[].version to one of those versions, or leave it out for the newest "
        "(a version released since the lists were fetched: run `apt-get update` here)"
    )
    return InputError(what, packages=[n for n, _ in missing], fix=fix)


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

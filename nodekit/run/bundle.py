"""Site bundles: a local apt repository with everything the node's roles install.

Nodes never reach a Debian mirror. Every package a role installs (and every
dependency the node image lacks) comes from a *bundle*: a folder of ``.deb``
files plus a flat apt index. :func:`build_bundle` makes one on this machine:

1. the *baseline* is the dpkg status of a minimal, freshly installed Debian
   12 (``toolchain/build-baseline.sh``: systemd, openssh-server, sudo,
   python3), so the bundle carries every other package a bare host needs;
2. this host's ``apt-get`` (Debian 12, same mirror) resolves the
   packages against that status file, in a private apt state folder (no lock
   or ``extended_states`` of the host's own apt is touched), and downloads the
   missing ``.deb`` files into the shared cache ``<cache>/debs/`` — a second
   bundle of the same packages downloads nothing (:mod:`nodekit.run.apt_resolve`);
3. exactly the resolved ``.deb`` files are hard-linked (or copied) into the
   bundle folder, indexed with ``dpkg-scanpackages`` into ``Packages`` and
   ``Packages.gz``, and described in ``nodekit-bundle.json``. Everything is
   sorted and timestamp-free: the same input gives the same bytes.

A node uses the bundle through one apt line (the ``base`` role writes it to
``/etc/apt/sources.list.d/nodekit.list``)::

    deb [trusted=yes] file:/srv/nodekit/bundle ./

On the local target the bundle folder is mounted read-only at
``/srv/nodekit/bundle`` in every node container; a real site copies the same
folder to that path on its hosts (or serves it to them), nothing else.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nodekit.errors import InputError, OperationError, ToolchainError
from nodekit.run.apt_resolve import (
    EventFn,
    apt_env,
    apt_options,
    check_names,
    download,
    ensure_apt_lists,
    pins,
    resolve,
)
from nodekit.toolchain import cache_dir

#: Where the Ansible roles live in a checkout; each role names its packages
#: in ``defaults/main.yml`` as ``<role>_apt_packages``.
ROLES_DIR = Path(__file__).resolve().parents[2] / "playbooks" / "roles"
#: The apt line a node uses to read the bundle (mounted or copied there).
NODE_BUNDLE_PATH = "/srv/nodekit/bundle"
APT_SOURCE_LINE = f"deb [trusted=yes] file:{NODE_BUNDLE_PATH} ./"
MANIFEST = "nodekit-bundle.json"
INDEX_FILES = ("Packages", "Packages.gz")
FORMAT = 1
SETUP = "make setup"


@dataclass(frozen=True)
class BundleResult:
    """What :func:`build_bundle` produced."""

    path: Path
    packages: tuple[str, ...]  # the .deb file names in the bundle, sorted
    bytes: int  # size of the bundle folder: .debs and index
    seconds: float
    reused: bool  # True when ``path`` already held this bundle


def build_bundle(
    packages: Sequence[str],
    dest: Path,
    *,
    baseline: Path,
    on_event: EventFn | None = None,
) -> BundleResult:
    """Build (or reuse) in ``dest`` the bundle of ``packages`` for hosts that
    have what the dpkg status file ``baseline`` lists. A package given as
    ``name=version`` is pinned: the bundle holds that version (and the packages
    of its source at it), or the build fails listing the versions there are.

    Raises :class:`InputError` for a malformed or unknown package name,
    :class:`ToolchainError` when apt, dpkg-dev or the baseline is missing,
    :class:`OperationError` when apt fails.
    """
    say = on_event or (lambda _message: None)
    started = time.monotonic()
    requested = check_names(packages)
    scanner = shutil.which("dpkg-scanpackages")
    if scanner is None:
        raise ToolchainError(
            "dpkg-scanpackages is missing (Debian package dpkg-dev)",
            part="dpkg-dev",
            fix=f"{SETUP} (installs dpkg-dev)",
        )
    if shutil.which("apt-get") is None:
        raise ToolchainError(
            "apt-get is missing: bundles are built with a Debian host's apt",
            part="apt",
            fix="build bundles on a Debian 12 machine",
        )
    dest = Path(dest)
    if not Path(baseline).is_file():
        raise ToolchainError(
            f"the baseline Debian 12 package list {baseline} is missing",
            part="baseline",
            fix=f"{SETUP} (builds it: nodekit/toolchain/build-baseline.sh)",
        )
    image_id = "sha256:" + _sha256(Path(baseline))  # what the bundle was resolved against
    reused = _reusable(dest, image_id, requested)
    if reused is not None:
        say(f"bundle: {dest} is up to date ({len(reused)} packages)")
        return BundleResult(
            dest, reused, _folder_bytes(dest), time.monotonic() - started, reused=True
        )

    debs = cache_dir() / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    with _locked(cache_dir() / "bundle.lock"):
        reused = _reusable(dest, image_id, requested)  # another runner built it meanwhile
        if reused is not None:
            return BundleResult(
                dest, reused, _folder_bytes(dest), time.monotonic() - started, reused=True
            )
        cloned = _clone_sibling(dest, image_id, requested)
        if cloned is not None:  # another node's bundle of the same packages: no apt run
            say(f"bundle: {dest} ready: {len(cloned)} packages (as another node's bundle)")
            return BundleResult(
                dest, cloned, _folder_bytes(dest), time.monotonic() - started, reused=False
            )
        status = Path(baseline)
        ensure_apt_lists(say)
        with tempfile.TemporaryDirectory(prefix="nodekit-apt-") as state:
            options = apt_options(status, Path(state), debs, pins(requested))
            resolved = resolve(options, requested)
            missing = [d for d in resolved if not (debs / d.filename).is_file()]
            if missing:
                say(f"bundle: downloading {len(missing)} of {len(resolved)} packages")
                download(options, requested)
            else:
                say(f"bundle: all {len(resolved)} packages are in the cache")
        names = tuple(sorted(d.filename for d in resolved))
        absent = [n for n in names if not (debs / n).is_file()]
        if absent:
            raise OperationError(
                "apt-get did not leave these packages in the cache: " + ", ".join(absent),
                part="apt",
            )
        _populate(dest, debs, names)
        _write_index(dest, scanner)
        _write_manifest(dest, image_id, requested, names)
    size = _folder_bytes(dest)
    say(f"bundle: {dest} ready: {len(names)} packages, {size / 1e6:.1f} MB")
    return BundleResult(dest, names, size, time.monotonic() - started, reused=False)


def role_apt_packages(roles: Iterable[str], roles_dir: Path = ROLES_DIR) -> list[str]:
    """The sorted union of the Debian packages the given roles install.

    Each role's ``defaults/main.yml`` names them under ``<role>_apt_packages``,
    the single source of truth the role itself installs from.
    """
    union: set[str] = set()
    for role in roles:
        defaults = Path(roles_dir) / role / "defaults" / "main.yml"
        if not defaults.is_file():
            raise InputError(
                f"unknown role {role!r}: {defaults} does not exist", role=role, path=str(defaults)
            )
        try:
            data = yaml.safe_load(defaults.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"{defaults}: not valid YAML: {exc}", role=role) from None
        key = f"{role}_apt_packages"
        value = data.get(key, []) if isinstance(data, dict) else None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError(f"{defaults}: {key} must be a list of package names", role=role)
        union.update(value)
    return sorted(union)


# --- the parts ---------------------------------------------------------------


def _populate(dest: Path, debs: Path, names: tuple[str, ...]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MANIFEST).unlink(missing_ok=True)  # not a finished bundle until rewritten
    wanted = set(names)
    for stale in dest.glob("*.deb"):
        if stale.name not in wanted:
            stale.unlink()
    for name in names:
        source, target = debs / name, dest / name
        if target.is_file() and _same_file(source, target):
            continue
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        target.chmod(0o644)


def _same_file(a: Path, b: Path) -> bool:
    sa, sb = a.stat(), b.stat()
    if (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino):
        return True
    return sa.st_size == sb.st_size and _sha256(a) == _sha256(b)


def _write_index(dest: Path, scanner: str) -> None:
    proc = subprocess.run(
        [scanner, "--multiversion", "."],
        cwd=dest,
        capture_output=True,
        env=apt_env(),
        check=False,
    )
    if proc.returncode != 0:
        raise ToolchainError(
            "dpkg-scanpackages failed: " + proc.stderr.decode(errors="replace").strip(),
            part="dpkg-dev",
            fix=SETUP,
        )
    packages = stable_index(proc.stdout)
    _write_atomic(dest / "Packages", packages)
    _write_atomic(dest / "Packages.gz", gzip_stable(packages))


def stable_index(raw: bytes) -> bytes:
    """A Packages index with its stanzas sorted by (Package, Version, Filename)."""
    stanzas = [s.strip(b"\n") for s in raw.split(b"\n\n") if s.strip()]

    def key(stanza: bytes) -> tuple[bytes, bytes, bytes]:
        fields = dict(
            line.split(b": ", 1)
            for line in stanza.split(b"\n")
            if b": " in line and not line.startswith(b" ")
        )
        return (
            fields.get(b"Package", b""),
            fields.get(b"Version", b""),
            fields.get(b"Filename", b""),
        )

    return b"".join(s + b"\n\n" for s in sorted(stanzas, key=key))


def gzip_stable(data: bytes) -> bytes:
    """Gzip without a name or timestamp in the header: the same bytes every time."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buffer.getvalue()


def manifest_bytes(
    image_id: str, requested: Sequence[str], debs: dict[str, tuple[str, int]]
) -> bytes:
    """The bundle's ``nodekit-bundle.json``: ``debs`` maps file name to (sha256, size)."""
    document: dict[str, Any] = {
        "format": FORMAT,
        "image_id": image_id,
        "requested": sorted(requested),
        "packages": [
            {"file": name, "sha256": debs[name][0], "size": debs[name][1]} for name in sorted(debs)
        ],
        "apt_source": APT_SOURCE_LINE,
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def _write_manifest(
    dest: Path, image_id: str, requested: tuple[str, ...], names: tuple[str, ...]
) -> None:
    digests = {name: (_sha256(dest / name), (dest / name).stat().st_size) for name in names}
    _write_atomic(dest / MANIFEST, manifest_bytes(image_id, requested, digests))


def _reusable(dest: Path, image_id: str, requested: tuple[str, ...]) -> tuple[str, ...] | None:
    """The .deb names of the bundle in ``dest`` if it was built from this input."""
    try:
        document = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(document, dict)
        or document.get("format") != FORMAT
        or document.get("image_id") != image_id
        or document.get("requested") != list(requested)
    ):
        return None
    try:
        sizes = {str(p["file"]): int(p["size"]) for p in document["packages"]}
    except (KeyError, TypeError, ValueError):
        return None
    present = {p.name: p.stat().st_size for p in dest.glob("*.deb")}
    if present != sizes or not all((dest / f).is_file() for f in INDEX_FILES):
        return None
    return tuple(sorted(sizes))


def _clone_sibling(dest: Path, image_id: str, requested: tuple[str, ...]) -> tuple[str, ...] | None:
    """Make ``dest`` from a bundle beside it built from the same input (nodes of one
    shape on one machine: eight of them deploy without eight apt runs); its .deb
    names, or None when there is none."""
    parent = dest.parent
    siblings = (
        sorted(p for p in parent.iterdir() if p.is_dir() and p != dest) if parent.is_dir() else []
    )
    for sibling in siblings:
        names = _reusable(sibling, image_id, requested)
        if names is None:
            continue
        _populate(dest, sibling, names)
        for name in INDEX_FILES:
            shutil.copyfile(sibling / name, dest / name)
        _write_atomic(dest / MANIFEST, (sibling / MANIFEST).read_bytes())
        return names
    return None


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

"""The site bundle copied to a host over SSH: only changed files travel.

One SSH call lists the checksums of the host's copy; one more streams a tar
of the files that differ (and removes files the bundle no longer has). Only
``tar``, ``sha256sum`` and ``sudo`` are needed on the host.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import tarfile
from pathlib import Path

from nodekit.errors import OperationError
from nodekit.render.plan import BUNDLE_MOUNT

_digests: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _digests[key] = digest.hexdigest()
    return _digests[key]


def deliver(bundle: Path, ssh_argv: list[str]) -> int:
    """Make the host's BUNDLE_MOUNT equal the bundle folder (and its one level of
    subfolders, e.g. wheels/); files changed."""
    target = shlex.quote(BUNDLE_MOUNT)
    listing = subprocess.run(
        [*ssh_argv, f"sudo -n mkdir -p {target} && cd {target} && "
         "sudo -n find . -maxdepth 2 -type f -exec sha256sum {} +"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if listing.returncode != 0:
        raise OperationError(f"cannot list {BUNDLE_MOUNT}: {listing.stderr.strip()[-300:]}")
    remote = {}
    for line in listing.stdout.splitlines():
        digest, _, name = line.partition("  ")
        remote[name.removeprefix("./")] = digest
    local = {
        p.relative_to(bundle).as_posix(): p
        for p in sorted(bundle.glob("*")) + sorted(bundle.glob("*/*"))
        if p.is_file()
    }  # the apt repository and its wheels/ folder
    send = [name for name, path in local.items() if remote.get(name) != _sha256(path)]
    stale = sorted(set(remote) - set(local))
    if not send and not stale:
        return 0
    remove = " ".join(shlex.quote(f"{BUNDLE_MOUNT}/{n}") for n in stale)
    command = f"sudo -n tar -x --no-same-owner -C {target}" + (
        f" && sudo -n rm -f {remove}" if stale else ""
    )
    with subprocess.Popen(
        [*ssh_argv, command], stdin=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdin is not None
        with tarfile.open(fileobj=proc.stdin, mode="w|") as archive:
            for name in send:
                info = archive.gettarinfo(str(local[name]), arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mode = 0o644
                with local[name].open("rb") as handle:
                    archive.addfile(info, handle)
        proc.stdin.close()
        error = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.wait(timeout=600) != 0:
            raise OperationError(f"cannot copy the bundle: {error.strip()[-300:]}")
    return len(send) + len(stale)

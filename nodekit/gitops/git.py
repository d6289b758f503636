"""Revisions of a fleet repository, read from git objects (the work tree is left alone)."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from nodekit.errors import UsageError


def git(repo: Path, *args: str, binary: bool = False) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, check=False, timeout=300
    )
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError(
            f"git {' '.join(args[:2])}: {message[-1] if message else 'failed'}",
            fix="run it inside the fleet's git repository, with a REF that exists there",
        )
    return "" if binary else done.stdout.decode()


def toplevel(where: Path) -> Path:
    return Path(git(where, "rev-parse", "--show-toplevel").strip())


def commit_of(repo: Path, ref: str) -> str:
    return git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}").strip()


def snapshot(repo: Path, commit: str, dest: Path) -> Path:
    """The tree of a commit, written into dest (from git objects: `git archive`)."""
    dest.mkdir(parents=True, exist_ok=True)
    if not git(repo, "ls-tree", "--name-only", commit).strip():
        return dest  # an empty tree (e.g. a fleet's first, empty commit)
    data = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", commit],
        capture_output=True, check=True, timeout=600,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest

"""What a no-change deploy may skip, and the proof that it may.

A deploy whose verify passed records a fingerprint in ``deployed.json``:

- ``inputs``: one digest of everything the run applies (the rendered files,
  the site bundle's file list, the secrets' values, the target's run-time
  variables, nodekit's version); secrets enter only through the digest;
- ``infra``: the infrastructure as the target sees it live (the local
  target: its containers and networks, running or not, addresses, image);
- ``hosts``: per host, what the roles manage as it is live: each managed
  file's digest and mode, each managed unit's state, each package's
  version, the firewall ruleset; gathered in one call per host.

The next deploy skips Pulumi, Ansible and verify only when its inputs are
the recorded ones and the live infrastructure and every host still match;
anything that differs is converged by the full stages (``deploy --full``
always runs them). What differs is named, so the operator sees why.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodekit import __version__
from nodekit.render.plan import NodePlan
from nodekit.targets import RunAccess, Runner, Target

Managed = dict[str, dict[str, list[str]]]  # host -> {"files": [...], "units": [...]}


@dataclass(frozen=True)
class Comparison:
    """Whether the live node is what the last verified deploy left."""

    run: str  # the run that recorded the fingerprint
    infra_same: bool
    differences: tuple[str, ...]  # "host: what differs", one per difference

    @property
    def same(self) -> bool:
        return self.infra_same and not self.differences


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def inputs_digest(
    rendered: Path, bundle: Path, secrets: Path, runner: Runner, target: Target
) -> str:
    """One digest of what a deploy applies (never the secrets themselves)."""
    files = {
        str(p.relative_to(rendered)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(rendered.rglob("*"))
        if p.is_file()
    }
    shipped = {
        str(p.relative_to(bundle)): p.stat().st_size
        for p in sorted(bundle.rglob("*"))
        if p.is_file()
    }
    return _digest({
        "version": __version__,
        "target": target.name,
        "rendered": files,
        "bundle": shipped,
        "secrets": hashlib.sha256(secrets.read_bytes()).hexdigest(),
        "extra_vars": runner.extra_vars,
        "host_vars": runner.host_vars,
    })  # fmt: skip


def host_script(
    files: list[str], units: list[str], packages: list[str], owned: list[str] | None = None
) -> str:
    """A POSIX shell script printing one line per managed thing, in a stable order.

    ``files``: what the roles wrote (a directory: its mode and owner only, its
    content is the software's own); ``owned``: the paths nodekit owns (a
    directory: also the digest of every file in it)."""
    lines: list[str] = []
    if files:
        lines += [
            f"for f in {shlex.join(sorted(files))}; do",
            '  if [ -f "$f" ]; then printf "file %s %s %s\\n" "$f" "$(stat -c %a:%U:%G "$f")"'
            ' "$(sha256sum < "$f" | cut -c1-64)";',
            '  elif [ -e "$f" ]; then printf "path %s %s\\n" "$f" "$(stat -c %F:%a:%U:%G "$f")";',
            '  else printf "file %s missing\\n" "$f"; fi',
            "done",
        ]
    if owned:
        lines += [
            f"for f in {shlex.join(sorted(owned))}; do",
            '  if [ -e "$f" ]; then printf "owned %s %s %s\\n" "$f" "$(stat -c %F:%a:%U:%G "$f")"'
            ' "$(find "$f" -type f -exec sha256sum {} + | sort | sha256sum | cut -c1-64)";',
            '  else printf "owned %s missing\\n" "$f"; fi',
            "done",
        ]
    if units:
        lines += [
            f"for u in {shlex.join(sorted(units))}; do",
            '  printf "unit %s %s %s\\n" "$u" "$(systemctl is-active "$u" 2>/dev/null)"'
            ' "$(systemctl is-enabled "$u" 2>/dev/null)"',
            "done",
        ]
    if packages:
        lines.append(
            "dpkg-query -W -f='package ${Package} ${Version} ${db:Status-Abbrev}\\n' "
            + shlex.join(sorted(packages))
            + " 2>&1 | sort"
        )
        # files of those packages changed since apt installed them (dpkg's checksums)
        lines.append(
            "dpkg -V " + shlex.join(sorted(packages)) + " 2>&1 | sed 's/^/altered /' | sort"
        )
    lines.append('printf "firewall %s\\n" "$(nft -s list ruleset 2>&1 | sha256sum | cut -c1-64)"')
    return "\n".join(lines) + "\n"


def live_hosts(
    node: NodePlan,
    target: Target,
    access: RunAccess,
    managed: Managed,
    packages: dict[str, list[str]],
) -> dict[str, list[str]]:
    """Each host's managed state, one call per host, hosts in parallel."""

    def one(host: Any) -> tuple[str, list[str]]:
        what = managed.get(host.name) or {}
        script = host_script(
            list(what.get("files") or []), list(what.get("units") or []),
            packages.get(host.name) or [], list(what.get("owned") or []),
        )  # fmt: skip
        rc, out = target.run_script(host, script, access)
        if rc != 0:
            return host.name, [f"unreachable rc={rc}"]
        return host.name, out.splitlines()

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(node.hosts)))) as pool:
        return dict(pool.map(one, node.hosts))


def differences(recorded: dict[str, list[str]], live: dict[str, list[str]]) -> list[str]:
    """What differs per host, said plainly (at most three per host)."""
    said: list[str] = []
    for host in sorted(set(recorded) | set(live)):
        was, now = recorded.get(host), live.get(host)
        if was is None or now is None:
            said.append(f"{host}: {'not recorded' if was is None else 'not in the plan'}")
            continue
        keyed_was = {_key(line): line for line in was}
        keyed_now = {_key(line): line for line in now}
        found = [
            _said(host, key, keyed_was.get(key), keyed_now.get(key))
            for key in sorted(set(keyed_was) | set(keyed_now))
            if keyed_was.get(key) != keyed_now.get(key)
        ]
        said += found[:3] + ([f"{host}: {len(found) - 3} more"] if len(found) > 3 else [])
    return said


KEYED = ("file", "path", "owned", "unit", "package")  # lines of one named thing each


def _said(host: str, key: str, was: str | None, now: str | None) -> str:
    if key.startswith("altered "):  # dpkg -V: a file of a package changed since apt
        change = "changed since apt installed it" if now else "restored"
        return f"{host}: package file {change}: {key.removeprefix('altered ')}"
    return f"{host}: {key} was '{_value(was)}', now '{_value(now)}'"


def _key(line: str) -> str:
    """What a line is about: ``file /etc/x``, ``unit mosquitto``, ``firewall``;
    an ``altered`` line (dpkg -V) is its own key."""
    kind, _, rest = line.partition(" ")
    if kind in KEYED:
        return f"{kind} {rest.split(' ', 1)[0]}"
    return line if kind == "altered" else kind


def _value(line: str | None) -> str:
    if line is None:
        return "absent"
    parts = line.split(" ")
    value = " ".join(parts[2:] if parts[0] in KEYED else parts[1:])
    return value[:40] if parts[0] in ("file", "owned", "firewall") else value


def record(
    inputs: str, infra: str | None, hosts: dict[str, list[str]], managed: Managed
) -> dict[str, Any]:
    return {"inputs": inputs, "infra": infra, "hosts": hosts, "managed": managed}


def compare(
    recorded: dict[str, Any] | None,
    *,
    run_id: str,
    inputs: str,
    node: NodePlan,
    target: Target,
    access: RunAccess,
    packages: dict[str, list[str]],
) -> Comparison | None:
    """None when nothing can be skipped before looking at hosts (no fingerprint,
    other inputs, or other hosts); else how the live node compares."""
    if not recorded or recorded.get("inputs") != inputs:
        return None
    if set(recorded.get("hosts") or {}) != {h.name for h in node.hosts}:
        return None
    infra_same = target.infrastructure_digest() == recorded.get("infra")
    if not infra_same:
        return Comparison(run_id, False, ())
    live = live_hosts(node, target, access, recorded.get("managed") or {}, packages)
    return Comparison(run_id, True, tuple(differences(recorded["hosts"], live)))

"""Which nodes a change reaches: every node resolved at two revisions, compared.

Each side is the tree of a commit (read from git objects) loaded with the
installed nodekit. A node is ``changed`` when its resolved blueprint differs
(the reasons are the keys whose values changed, located at head), or when a
role it uses differs in the repository's ``playbooks/`` (for a repository
that carries its own roles); ``added`` and ``removed`` nodes exist on one
side only. A comment or formatting edit changes no resolved value: it
reaches no node. With one installed nodekit, a node's rendering is a pure
function of its resolved blueprint (renders are path-independent), so equal
resolved blueprints mean equal renderings: nothing needs rendering here.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nodekit.backends import Backend
from nodekit.blueprint import Blueprint, validate
from nodekit.blueprint.keypaths import item_label, join
from nodekit.errors import BlueprintError, Diagnostic
from nodekit.gitops.git import commit_of, snapshot, toplevel
from nodekit.render import MANIFEST, PLAYBOOKS, render_files
from nodekit.render.plan import plan
from nodekit.run.history import APPLYING, unpack


@dataclass(frozen=True)
class NodeChange:
    node: str
    status: str  # changed | added | removed
    blueprint: str  # repository path of the Node file (at head; at base when removed)
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Affected:
    base: str  # commits
    head: str
    nodes: tuple[NodeChange, ...]
    unchanged: int
    base_problems: tuple[str, ...] = ()  # invalid at base: reported, not fatal
    head_blueprints: dict[str, Blueprint] = field(default_factory=dict, repr=False)
    base_blueprints: dict[str, Blueprint] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "nodes": [n.to_dict() for n in self.nodes],
            "unchanged": self.unchanged,
            "base_problems": list(self.base_problems),
        }

    def matrix(self) -> dict[str, Any]:
        """A CI job matrix of the nodes to deploy (changed and added)."""
        return {
            "include": [
                {"node": n.node, "blueprint": n.blueprint}
                for n in self.nodes
                if n.status in ("changed", "added")
            ]
        }


@dataclass
class Side:
    """One revision: its commit, its tree on disk and its nodes."""

    commit: str
    root: Path
    nodes: dict[str, Blueprint]
    diagnostics: tuple[Diagnostic, ...]

    _roles: dict[str, dict[str, str]] = field(default_factory=dict)

    def role_files(self, role: str) -> dict[str, str]:
        """Digests of a role's files ("": the site playbook) in this revision's own
        ``playbooks/`` (a repository without one: the installed roles), by path."""
        if role not in self._roles:
            books = self.root / "playbooks"
            if not (books / "roles").is_dir():
                books = PLAYBOOKS
            paths = (
                [books / "site.yml"] if not role else sorted((books / "roles" / role).rglob("*"))
            )
            self._roles[role] = {
                str(p.relative_to(books.parent)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in paths
                if p.is_file()
            }
        return self._roles[role]

    def rel(self, path: Path | str) -> str:
        text = str(path)
        prefix = str(self.root) + "/"
        return text[len(prefix) :] if text.startswith(prefix) else text


def load_side(repo: Path, ref: str, paths: list[str], scratch: Path) -> Side:
    commit = commit_of(repo, ref)
    root = snapshot(repo, commit, scratch / commit[:12])
    found = validate([root / p for p in paths if (root / p).exists()])
    side = Side(commit, root, {}, ())
    side.nodes = {b.name: b for b in found.blueprints}
    side.diagnostics = tuple(
        Diagnostic(side.rel(d.file), d.line, d.column, d.severity, d.message, d.path)
        for d in found.diagnostics
    )
    return side


def affected(
    where: Path,
    base: str | None,
    head: str = "HEAD",
    paths: list[str] | None = None,
    *,
    scratch: Path | None = None,
    deployed: Backend | None = None,
) -> Affected:
    """The nodes of ``head`` compared with those of ``base`` and/or (``deployed``)
    with the renderings recorded at each node's last deploy in that backend.
    An invalid blueprint at head raises :class:`BlueprintError` (exit 2),
    located; at base it is reported.

    The trees are written into ``scratch`` (kept, so the blueprints can be
    deployed or destroyed from them), else into a temporary folder."""
    if scratch is None:
        with tempfile.TemporaryDirectory(prefix="nodekit-affected-") as tmp:
            return affected(where, base, head, paths, scratch=Path(tmp), deployed=deployed)
    repo = toplevel(where)
    rels = [_repo_path(repo, where, p) for p in (paths or ["."])]
    new = load_side(repo, head, rels, scratch / "head")
    errors = [d for d in new.diagnostics if d.severity == "error"]
    if errors:
        raise BlueprintError(list(errors))
    by_base: list[NodeChange] = []
    old = Side("", scratch / "base", {}, ())
    if base is not None:
        old = load_side(repo, base, rels, scratch / "base")
        by_base = _compare(old, new)
    by_deploy = deployed_changes(new.nodes, deployed, new.rel)[0] if deployed else []
    changes = merge(by_base, by_deploy)
    unchanged = len(new.nodes) - sum(c.status != "removed" for c in changes)
    problems = tuple(str(d) for d in old.diagnostics if d.severity == "error")
    return Affected(
        old.commit, new.commit, changes, unchanged, problems, dict(new.nodes), dict(old.nodes)
    )


def _compare(old: Side, new: Side) -> list[NodeChange]:
    changes = []
    for name in sorted(set(old.nodes) | set(new.nodes)):
        before, after = old.nodes.get(name), new.nodes.get(name)
        if before is None and after is not None:
            changes.append(NodeChange(name, "added", new.rel(after.file)))
        elif after is None and before is not None:
            changes.append(NodeChange(name, "removed", old.rel(before.file)))
        elif before is not None and after is not None:
            reasons = _reasons(old, before, new, after)
            if reasons:
                changes.append(NodeChange(name, "changed", new.rel(after.file), reasons))
    return changes


def _repo_path(repo: Path, where: Path, path: str) -> str:
    full = (where / path).resolve()
    try:
        return str(full.relative_to(repo.resolve())) or "."
    except ValueError:
        return path  # already relative to the repository


def _reasons(old: Side, before: Blueprint, new: Side, after: Blueprint) -> tuple[str, ...]:
    reasons: list[str] = []
    if before.digest != after.digest:
        for path in changed_paths(before.data, after.data):
            where = after.origin(path)
            if where is not None:
                reasons.append(f"{path} ({new.rel(where.file)}:{where.line})")
            else:
                was = before.origin(path)
                at = f" (was at {old.rel(was.file)}:{was.line} at base)" if was else ""
                reasons.append(f"{path} removed{at}")
    reasons += [f"role changed: {rel}" for rel in _role_changes(old, before, new, after)]
    return tuple(reasons)


def _role_changes(old: Side, before: Blueprint, new: Side, after: Blueprint) -> list[str]:
    """Files of the roles the node uses that differ between the revisions' own
    ``playbooks/`` (a repository without one uses the installed roles: no change)."""
    roles = {r for h in plan(after.data).hosts for r in h.roles}
    roles |= {r for h in plan(before.data).hosts for r in h.roles}
    found = _differ(old.role_files(""), new.role_files(""))  # the site playbook
    for role in sorted(roles):
        found += _differ(old.role_files(role), new.role_files(role))
    return found


def _differ(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return sorted(rel for rel in set(a) | set(b) if a.get(rel) != b.get(rel))


def changed_paths(a: Any, b: Any, path: str = "") -> list[str]:
    """Key paths (``compute[edge-01].address``) whose values differ between a and b."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                out += changed_paths(a.get(key), b.get(key), join(path, str(key)))
        return out
    if isinstance(a, list) and isinstance(b, list):
        left = {item_label(v, i): v for i, v in enumerate(a)}
        right = {item_label(v, i): v for i, v in enumerate(b)}
        if all(k[1:-1].isdigit() for k in (*left, *right)) and (a and b):
            return [path] if a != b else []  # plain lists (ports, users): the list itself
        out = []
        for label in sorted(set(left) | set(right)):
            if left.get(label) != right.get(label):
                out += changed_paths(left.get(label), right.get(label), path + label)
        return out
    return [path] if a != b else []


def deployed_changes(
    blueprints: dict[str, Blueprint], backend: Backend, rel: Callable[[Path | str], str]
) -> tuple[list[NodeChange], int]:
    """Nodes whose rendering at head differs from the one recorded at their last
    deploy or rollback (nodekit's own version ignored): the way to see what an
    upgrade of nodekit, or a change deployed by hand, would do. A node never
    deployed is ``added``."""
    changes, unchanged = [], 0
    for name, blueprint in sorted(blueprints.items()):
        last = next((r for r in backend.runs(name) if r.get("command") in APPLYING), None)
        data = backend.rendering(name, str(last["id"])) if last else None
        if last is None or data is None:
            changes.append(NodeChange(name, "added", rel(blueprint.file), ("never deployed",)))
            continue
        with tempfile.TemporaryDirectory(prefix="nodekit-deployed-") as tmp:
            unpack(data, Path(tmp))
            old = {
                str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()
            }
        new = render_files(blueprint)
        differ = [
            rel_path
            for rel_path in sorted(set(old) | set(new))
            if rel_path != MANIFEST and _unversioned(old, rel_path) != _unversioned(new, rel_path)
        ]
        if differ:
            why = tuple(f"rendering changed since run {last['id']}: {f}" for f in differ)
            changes.append(NodeChange(name, "changed", rel(blueprint.file), why))
        else:
            unchanged += 1
    return changes, unchanged


def _unversioned(files: dict[str, bytes], rel_path: str) -> bytes | None:
    """A rendered file with the nodekit version that rendered it blanked out."""
    if rel_path not in files:
        return None
    try:
        version = str(json.loads(files[MANIFEST])["nodekit"]).encode()
    except (KeyError, ValueError):
        return files[rel_path]
    return files[rel_path].replace(b"nodekit " + version, b"nodekit VERSION")


def merge(*lists: list[NodeChange]) -> tuple[NodeChange, ...]:
    """One entry per node: statuses from the first list that names it, reasons joined."""
    out: dict[str, NodeChange] = {}
    for changes in lists:
        for c in changes:
            if c.node in out:
                kept = out[c.node]
                out[c.node] = NodeChange(
                    c.node, kept.status, kept.blueprint, kept.reasons + c.reasons
                )
            else:
                out[c.node] = c
    return tuple(out[n] for n in sorted(out))

"""Render a validated blueprint into the files the real tools run.

``render_files`` is pure (blueprint in, ``{relative path: bytes}`` out) and
byte-stable: no timestamps, sorted keys, paths relative to the blueprint.
``render`` writes them, rewriting only files whose bytes changed and
removing files an earlier render wrote that this one no longer does.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from nodekit import __version__, toolchain
from nodekit.errors import InputError
from nodekit.render import ansible, checks, text
from nodekit.render.plan import NodePlan, plan
from nodekit.toolchain import node_image_ref

if TYPE_CHECKING:
    from nodekit.blueprint import Blueprint

TEMPLATES = Path(__file__).parent / "templates"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = PROJECT_ROOT / "playbooks"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class RenderedFile:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class RenderResult:
    """What one render wrote."""

    node: str
    out_dir: Path
    files: tuple[RenderedFile, ...]
    written: int  # files whose bytes changed
    removed: int  # stale files of an earlier render
    secrets: tuple[str, ...]  # names (never values) of the secrets a deploy needs


def _pyrepr(value: Any) -> str:
    """A Python literal, wrapped for people to read; deterministic."""
    return text.python_literal(value, width=96)


@cache
def environment() -> jinja2.Environment:
    """The one Jinja environment: strict, stable, filters registered here."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # we render YAML, INI and Python, never HTML
    )
    env.filters["pyrepr"] = _pyrepr
    return env


def _yaml(header: str, data: Any) -> bytes:
    return f"---\n# {header}\n{text.yaml_block(data)}".encode()


def _json(data: Any) -> bytes:
    return (text.json_indented(data) + "\n").encode()


_image: dict[tuple[tuple[int, ...], ...], str] = {}
_SETTLED_NS = 2_000_000_000  # a file changed longer ago than this has telling stats


def cached_image_ref() -> str:
    """:func:`node_image_ref`, hashed again only when a file of the image recipe
    changed (its size, inode or times), not for every node.

    Like git's index, it keeps a reference only when the files changed well
    before it was computed, so that any later change shows in their stats.
    """
    recipe = (toolchain.IMAGE_SCRIPT, toolchain.IMAGE_PACKAGES, toolchain.VERSIONS_FILE)
    try:
        stats = [path.stat() for path in recipe]
    except OSError:
        return node_image_ref()
    key = tuple((s.st_size, s.st_ino, s.st_mtime_ns, s.st_ctime_ns) for s in stats)
    if key in _image:
        return _image[key]
    ref = node_image_ref()
    if max(s.st_ctime_ns for s in stats) < time.time_ns() - _SETTLED_NS:
        _image.clear()
        _image[key] = ref
    return ref


def _template(name: str, **context: Any) -> bytes:
    return environment().get_template(name).render(version=__version__, **context).encode()


def _source_paths(blueprint: Blueprint) -> list[tuple[str, Path]]:
    top = blueprint.sources[-1].parent
    return [(os.path.relpath(path, top), path) for path in blueprint.sources]


@cache
def _site_playbook_text() -> bytes:
    return (PLAYBOOKS / "site.yml").read_bytes()


def _site_playbook(node: NodePlan) -> bytes:
    """The project's site playbook, headed with the node it converges."""
    head = f"# Converges node {node.name}: nodekit's site playbook (playbooks/site.yml).\n"
    return head.encode() + _site_playbook_text()


def render_files(blueprint: Blueprint) -> dict[str, bytes]:
    """Every rendered file of one node, as bytes, keyed by path relative to DIR."""
    node: NodePlan = plan(blueprint.data)
    files: dict[str, bytes] = {"blueprint.json": _json(blueprint.data)}

    from nodekit.targets import target_for

    context = {"node": node, "stack_config": target_for(node).stack_config()}
    files["pulumi/Pulumi.yaml"] = _template(
        "Pulumi.yaml.j2",
        project=f"nodekit-{node.name}",
        description=blueprint.data["metadata"].get("description") or f"nodekit node {node.name}",
        **context,
    )
    files[f"pulumi/Pulumi.{node.stack}.yaml"] = _template("Pulumi.stack.yaml.j2", **context)
    files["pulumi/__main__.py"] = _template("__main__.py.j2", **context)

    files["ansible/ansible.cfg"] = _template(
        "ansible.cfg.j2", forks=max(5, len(node.hosts)), **context
    )
    files["ansible/site.yml"] = _site_playbook(node)
    files["ansible/inventory.yml"] = _yaml(
        f"Inventory of node {node.name}, rendered by nodekit.", ansible.inventory(node)
    )
    files["ansible/group_vars/all.yml"] = _yaml(
        f"Variables of every host of node {node.name}.", ansible.group_vars(node)
    )
    for host in node.hosts:
        files[f"ansible/host_vars/{host.name}.yml"] = _yaml(
            f"Variables of host {host.name}.", ansible.host_vars(node, host)
        )

    allowed, denied = checks.zone_matrix(node)
    files[f"tests/test_{node.name.replace('-', '_')}.py"] = _template(
        "test_node.py.j2",
        hosts=checks.host_specs(node),
        services=checks.services(node),
        checks=checks.declared_checks(node),
        flows_allowed=allowed,
        flows_denied=denied,
        packages=checks.packages(node),
        pins=checks.pins(node),
        equipment=checks.equipment(node),
        telemetry=checks.telemetry(node),
        unit_order=checks.unit_order(node),
        fqdns=checks.fqdns(node),
        **context,
    )

    files["tests/pytest.ini"] = (
        b"[pytest]\n# The node's checks run on their own, apart from any project settings.\n"
    )

    manifest = {
        "nodekit": __version__,
        "node": node.name,
        "blueprint_digest": blueprint.digest,
        "sources": [
            {"path": rel, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            for rel, path in _source_paths(blueprint)
        ],
        "files": {
            path: hashlib.sha256(content).hexdigest() for path, content in sorted(files.items())
        },
        "secrets": list(node.secrets),
    }
    files[MANIFEST] = _json(manifest)
    return files


def render(blueprint: Blueprint, out_dir: Path) -> RenderResult:
    """Write one node's rendered files into out_dir; only changed bytes are written."""
    files = render_files(blueprint)
    previous = _previous_files(out_dir)
    written = 0
    folders: set[Path] = set()  # made (or found) in this render
    for rel, content in sorted(files.items()):
        path = out_dir / rel
        if path.is_file() and path.read_bytes() == content:
            continue
        if path.parent not in folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            folders.add(path.parent)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(content)
        tmp.replace(path)
        written += 1
    removed = 0
    for rel in sorted(previous - files.keys()):
        stale = out_dir / rel
        if stale.is_file():
            stale.unlink()
            removed += 1
    manifest = json.loads(files[MANIFEST])
    digests = {**manifest["files"], MANIFEST: hashlib.sha256(files[MANIFEST]).hexdigest()}
    return RenderResult(
        node=manifest["node"],
        out_dir=out_dir,
        files=tuple(
            RenderedFile(rel, digests[rel], len(content)) for rel, content in sorted(files.items())
        ),
        written=written,
        removed=removed,
        secrets=tuple(manifest["secrets"]),
    )


def _previous_files(out_dir: Path) -> set[str]:
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return set()
    return set(manifest.get("files", {})) | {MANIFEST}


def load_rendered(out_dir: Path) -> RenderResult:
    """A rendered folder written earlier (e.g. a run's kept rendering), as a result."""
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError):
        raise InputError(f"{out_dir}: not a nodekit rendering (no readable {MANIFEST})") from None
    return RenderResult(
        node=str(manifest["node"]),
        out_dir=out_dir,
        files=tuple(
            RenderedFile(rel, digest, (out_dir / rel).stat().st_size)
            for rel, digest in sorted(files.items())
        ),
        written=0,
        removed=0,
        secrets=tuple(manifest.get("secrets", [])),
    )

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
import pprint
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import yaml

from nodekit import __version__
from nodekit.render import ansible, checks
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
    return pprint.pformat(value, width=96, sort_dicts=False)


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
    body = yaml.safe_dump(data, sort_keys=True, default_flow_style=False, width=1000)
    return f"---\n# {header}\n{body}".encode()


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _template(name: str, **context: Any) -> bytes:
    return environment().get_template(name).render(version=__version__, **context).encode()


def _source_paths(blueprint: Blueprint) -> list[tuple[str, Path]]:
    top = blueprint.sources[-1].parent
    return [(os.path.relpath(path, top), path) for path in blueprint.sources]


def render_files(
    blueprint: Blueprint, *, roles_path: Path = PLAYBOOKS / "roles"
) -> dict[str, bytes]:
    """Every rendered file of one node, as bytes, keyed by path relative to DIR."""
    node: NodePlan = plan(blueprint.data)
    files: dict[str, bytes] = {"blueprint.json": _json(blueprint.data)}

    context = {"node": node, "image": node_image_ref()}
    files["pulumi/Pulumi.yaml"] = _template(
        "Pulumi.yaml.j2",
        project=f"nodekit-{node.name}",
        description=blueprint.data["metadata"].get("description") or f"nodekit node {node.name}",
        **context,
    )
    files[f"pulumi/Pulumi.{node.stack}.yaml"] = _template("Pulumi.stack.yaml.j2", **context)
    files["pulumi/__main__.py"] = _template("__main__.py.j2", **context)

    files["ansible/ansible.cfg"] = _template(
        "ansible.cfg.j2", roles_path=str(roles_path), forks=max(5, len(node.hosts)), **context
    )
    files["ansible/site.yml"] = _template(
        "site.yml.j2", site_playbook=str(roles_path.parent / "site.yml"), **context
    )
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

    files[f"tests/test_{node.name.replace('-', '_')}.py"] = _template(
        "test_node.py.j2",
        hosts=checks.host_specs(node),
        services=checks.services(node),
        checks=checks.declared_checks(node),
        flows_allowed=checks.flows_allowed(node),
        flows_denied=checks.flows_denied(node),
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
    for rel, content in sorted(files.items()):
        path = out_dir / rel
        if path.is_file() and path.read_bytes() == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
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
    return RenderResult(
        node=manifest["node"],
        out_dir=out_dir,
        files=tuple(
            RenderedFile(rel, hashlib.sha256(content).hexdigest(), len(content))
            for rel, content in sorted(files.items())
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

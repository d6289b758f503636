"""`nodekit bundle`: everything an air-gapped site needs for one node.

    DIR/apt/            a local apt repository (the .debs and their Packages index)
    DIR/wheels/         the equipment agents' Python wheels (when the node has equipment
                        agents or twins): copy it to /srv/nodekit/bundle/wheels
    DIR/node-image.tar  the node image (`docker load -i` at the site)
    DIR/bundle.json     what is inside, with sizes

The same apt folder is what local-target containers mount at
/srv/nodekit/bundle; nodes install packages from it and from nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker

from nodekit.agents import populate_wheels
from nodekit.blueprint.packages import with_pins
from nodekit.errors import DockerError
from nodekit.render.plan import NodePlan, plan
from nodekit.run.bundle import build_bundle, role_apt_packages
from nodekit.targets import target_for
from nodekit.toolchain import baseline_status, node_image_ref

if TYPE_CHECKING:
    from nodekit.blueprint import Blueprint


@dataclass(frozen=True)
class SiteBundle:
    node: str
    path: Path
    packages: tuple[str, ...]
    bytes: int
    image_file: Path | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "path": str(self.path),
            "packages": list(self.packages),
            "bytes": self.bytes,
            "image_file": str(self.image_file) if self.image_file else None,
        }


def needs_wheels(node: NodePlan) -> bool:
    """Whether the node runs equipment agents (hosts) or twins (local target)."""
    twins = target_for(node).ships_image and any(m.twin for m in node.equipment)
    return twins or any(h.equipment_agent for h in node.hosts)


def node_packages(node: NodePlan) -> list[str]:
    """The Debian packages the node's roles install (without dependencies); a
    pinned one (software[].version) as ``name=version``."""
    roles = sorted({role for host in node.hosts for role in host.roles})
    return with_pins(role_apt_packages(roles), node.pins)


def make_site_bundle(
    blueprint: Blueprint,
    output: Path,
    *,
    include_image: bool = True,
    on_line: Callable[[str], None] | None = None,
) -> SiteBundle:
    node = plan(blueprint.data)
    image = node_image_ref()
    apt = build_bundle(
        node_packages(node), output / "apt", baseline=baseline_status(), on_event=on_line
    )
    total = apt.bytes
    if needs_wheels(node):
        populate_wheels(output / "wheels", on_line)
        total += sum(p.stat().st_size for p in (output / "wheels").iterdir())
    image_file = None
    if include_image and target_for(node).ships_image:
        image_file = output / "node-image.tar"
        client = docker.from_env(timeout=300)
        try:
            chunks = client.images.get(image).save(named=True)
        except docker.errors.DockerException as error:
            raise DockerError(f"cannot export the node image {image}: {error}") from None
        tmp = image_file.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        tmp.replace(image_file)
        total += image_file.stat().st_size
    (output / "bundle.json").write_text(
        json.dumps(
            {"node": node.name, "image": image, "packages": list(apt.packages), "bytes": total},
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )
    return SiteBundle(node.name, output, apt.packages, total, image_file)

"""An Ansible inventory plugin that reads nodekit blueprints directly.

With the project's ansible.cfg (it enables the plugin from
inventories/plugins), a source file such as::

    plugin: nodekit
    blueprint: ../blueprints/sites/lyon-additive-01.yaml

makes ``ansible-inventory -i inventories/lyon-additive-01.yml --graph`` show
the node's hosts in groups by role, zone and package, with the same
variables ``nodekit render`` writes (secrets stay references).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

from nodekit.blueprint import load
from nodekit.errors import BlueprintError
from nodekit.render import ansible as rendered
from nodekit.render.plan import plan

DOCUMENTATION = r"""
name: nodekit
short_description: nodekit blueprints as an Ansible inventory
description:
  - Loads, composes and validates a nodekit Node blueprint and adds its compute
    hosts with groups by role (role_*), zone (zone_*) and package (pkg_*).
options:
  plugin:
    description: The name of this plugin; must be C(nodekit).
    required: true
    choices: [nodekit]
  blueprint:
    description: Path of the Node blueprint, relative to this source file.
    required: true
    type: path
"""


class InventoryModule(BaseInventoryPlugin):  # type: ignore[misc]
    NAME = "nodekit"
    # Its values come from validated blueprints, as trusted as rendered files:
    # secret references such as {{ nodekit_secrets[...] }} must be templated.
    trusted_by_default = True

    def verify_file(self, path: str) -> bool:
        if not super().verify_file(path) or not path.endswith((".yml", ".yaml")):
            return False
        try:
            head = Path(path).read_text(errors="replace")[:4096]
        except OSError:
            return False
        return "plugin: nodekit" in head

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        config = self._read_config_data(path)
        blueprint_path = Path(path).parent / str(config.get("blueprint"))
        try:
            blueprint = load(blueprint_path)
        except BlueprintError as error:
            details = "\n".join(str(d) for d in error.diagnostics)
            raise AnsibleParserError(f"invalid blueprint {blueprint_path}:\n{details}") from None
        node = plan(blueprint.data)
        for key, value in rendered.group_vars(node).items():
            self.inventory.set_variable("all", key, value)
        for host in node.hosts:
            self.inventory.add_host(host.name)
            for key, value in rendered.host_vars(node, host).items():
                self.inventory.set_variable(host.name, key, value)
        for group, members in rendered.inventory(node)["all"]["children"].items():
            self.inventory.add_group(group)
            for member in members["hosts"]:
                self.inventory.add_child(group, member)

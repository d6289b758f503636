"""A rendering checked against the roles, with no host: what would fail at configure.

For each host of a rendered node and each role it gets, the variables Ansible
would see (role defaults, then group_vars, host_vars and the role's own vars,
with placeholder secrets) are checked against the role's argument specs,
every role variable is evaluated, and every template of the role is rendered,
all with Ansible's own templating. An undefined variable, a filter error, a
variable that evaluates to nothing, or a value of the wrong type surfaces
here in a fraction of a second instead of in a deploy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from nodekit.blueprint.packages import PACKAGES
from nodekit.render.ansible import group_name
from nodekit.render.plan import ROLE_ORDER

SECRET_REF = re.compile(r"""nodekit_secrets\[["']([^"']+)["']\]""")
# Values that exist only on a live host (facts, magic variables) that roles read.
HOST_ONLY: dict[str, Any] = {
    "ansible_check_mode": False,
    "base_container": {"rc": 1},  # base role: `systemd-detect-virt --container` (not one)
}


@dataclass(frozen=True)
class RoleProblem:
    host: str
    role: str
    what: str  # "argument spec", a variable name, or a template file
    message: str

    def __str__(self) -> str:
        return f"{self.host}: role {self.role}: {self.what}: {self.message}"


@cache
def _role(roles_dir: Path, role: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(defaults, vars, argument spec options) of a role, read once."""

    def read(*parts: str) -> dict[str, Any]:
        path = roles_dir.joinpath(role, *parts)
        return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}

    specs = read("meta", "argument_specs.yml").get("argument_specs", {})
    options = (specs.get("main") or {}).get("options") or {}
    return read("defaults", "main.yml"), read("vars", "main.yml"), options


def host_roles(groups: set[str]) -> tuple[str, ...]:
    """The roles site.yml applies to a host in these inventory groups."""
    own = sorted(s.role for s in PACKAGES.values() if group_name("pkg", s.name) in groups)
    return ROLE_ORDER + tuple(own)


def check_rendering(rendered: Path, roles_dir: Path) -> list[RoleProblem]:
    """Every problem the roles would meet with this rendering's variables."""
    ansible = rendered / "ansible"
    inventory = yaml.safe_load((ansible / "inventory.yml").read_text())["all"]
    group_vars = yaml.safe_load((ansible / "group_vars" / "all.yml").read_text()) or {}
    groups: dict[str, set[str]] = {}
    for group, body in (inventory.get("children") or {}).items():
        for host in (body or {}).get("hosts") or {}:
            groups.setdefault(host, set()).add(group)

    problems: list[RoleProblem] = []
    for host in sorted(inventory.get("hosts") or {}):
        text = (ansible / "host_vars" / f"{host}.yml").read_text()
        host_vars = yaml.safe_load(text) or {}
        secrets = {
            name: f"placeholder-secret-{i:04d}" for i, name in enumerate(SECRET_REF.findall(text))
        }
        for role in host_roles(groups.get(host, set())):
            defaults, role_vars, options = _role(roles_dir, role)
            variables = {
                **HOST_ONLY,
                **defaults,
                **group_vars,
                **host_vars,
                **role_vars,
                "nodekit_secrets": secrets,
                "inventory_hostname": host,
            }
            problems += _check_role(
                host,
                role,
                variables=variables,
                role_vars=role_vars,
                options=options,
                role_dir=roles_dir / role,
            )
    return problems


def _check_role(
    host: str,
    role: str,
    *,
    variables: dict[str, Any],
    role_vars: dict[str, Any],
    options: dict[str, Any],
    role_dir: Path,
) -> list[RoleProblem]:
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    problems: list[RoleProblem] = []
    templar = Templar(loader=DataLoader(), variables=_trusted(variables))

    def evaluate(what: str, source: Any) -> Any:
        try:
            return templar.template(_trusted(source))
        except Exception as error:  # Ansible's error types vary by version: report any
            problems.append(RoleProblem(host, role, what, _first_line(error)))
            return None

    values = {name: evaluate(name, variables[name]) for name in options if name in variables}
    for name, source in role_vars.items():
        failed = len(problems)
        if evaluate(name, source) is None and len(problems) == failed:
            problems.append(RoleProblem(host, role, name, "evaluates to nothing (None)"))
    if options:
        given = {k: v for k, v in values.items() if v is not None}
        for message in ArgumentSpecValidator(options).validate(given).error_messages:
            problems.append(RoleProblem(host, role, "argument spec", message))
    for template in sorted((role_dir / "templates").glob("*.j2")):
        evaluate(f"template {template.name}", template.read_text())
    return problems


def _trusted(value: Any) -> Any:
    """Values as Ansible holds them after loading its own files: templates are trusted."""
    from ansible.template import trust_as_template

    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    return value


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

"""software[].version rendered: the role installs name=version, the base role holds it,
verify checks it (test_package_version[host:software]); nothing of it without a pin."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import jinja2
import pytest
import yaml

from nodekit.blueprint import load
from nodekit.render import PLAYBOOKS, PROJECT_ROOT, render
from nodekit.render.rolecheck import check_rendering
from nodekit.run.apt_resolve import preferences
from nodekit.run.verify import _split

OLDER = "2.0.11-1.2+deb12u1"
NODE = f"""\
apiVersion: nodekit/v1
kind: Node
metadata: {{name: nkpin-render}}
site: {{region: eu-west, timezone: UTC, target: local}}
network:
  zones: [{{name: cell, cidr: 10.213.9.0/24}}]
compute:
  - {{name: solo, role: edge, zone: cell, address: 10.213.9.10}}
  - {{name: other, role: edge, zone: cell, address: 10.213.9.11}}
software:
  - name: broker
    package: mosquitto
    host: solo
    version: {OLDER}
    settings: {{allow_anonymous: true}}
  - {{name: db, package: postgresql, host: solo, version: 15.18-0+deb12u1}}
  - {{name: exporter, package: node-exporter, host: other}}
"""


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    (tmp_path / "node.yaml").write_text(NODE)
    render(load(tmp_path / "node.yaml"), tmp_path / "out")
    return tmp_path / "out"


def _host_vars(out: Path, host: str) -> dict[str, object]:
    return dict(yaml.safe_load((out / "ansible" / "host_vars" / f"{host}.yml").read_text()))


def _checks(out: Path) -> types.ModuleType:
    path = next((out / "tests").glob("test_*.py"))
    spec = importlib.util.spec_from_file_location("rendered_pin_checks", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_pinned_package_is_installed_at_its_version(rendered: Path) -> None:
    solo = _host_vars(rendered, "solo")
    assert solo["mosquitto_apt_packages"] == [f"mosquitto={OLDER}", "mosquitto-clients"]
    # postgresql-15 (the server) beside the metapackage the role installs
    assert solo["postgresql_apt_packages"] == [
        "acl", "postgresql", "python3-psycopg2", "postgresql-15=15.18-0+deb12u1",
    ]  # fmt: skip
    assert solo["nodekit_apt_pins"] == [
        {"package": "mosquitto", "version": OLDER},
        {"package": "postgresql-15", "version": "15.18-0+deb12u1"},
    ]
    other = _host_vars(rendered, "other")  # no pin: the roles' own lists, no preferences
    assert not [key for key in other if key.endswith("_apt_packages") or key == "nodekit_apt_pins"]
    assert check_rendering(rendered, PLAYBOOKS / "roles") == []


def test_no_pin_renders_nothing_of_it(tmp_path: Path) -> None:
    render(load(PROJECT_ROOT / "blueprints/sites/lyon-additive-01.yaml"), tmp_path)
    for path in (tmp_path / "ansible" / "host_vars").glob("*.yml"):
        text = path.read_text()
        assert "_apt_packages" not in text and "nodekit_apt_pins" not in text, path
    tests = next((tmp_path / "tests").glob("test_*.py")).read_text()
    assert "PINS" not in tests and "test_package_version" not in tests


class _Host:
    def __init__(self, stdout: str) -> None:
        self.stdout = stdout
        self.commands: list[str] = []

    def run(self, command: str) -> types.SimpleNamespace:
        self.commands.append(command)
        return types.SimpleNamespace(stdout=self.stdout, rc=0)


def test_verify_checks_the_installed_version(
    rendered: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = _checks(rendered)
    assert checks.PINS == [
        ("solo", "broker", "mosquitto", OLDER),
        ("solo", "db", "postgresql-15", "15.18-0+deb12u1"),
    ]
    marks = checks.test_package_version.pytestmark[0]
    assert checks._ids(marks.args[1], 0, 1) == ["solo:broker", "solo:db"]
    assert _split("test_package_version[solo:broker]") == ("solo", "package version broker")

    good = _Host(f"{OLDER}\tinstalled")
    monkeypatch.setattr(checks, "host", lambda name: good)
    checks.test_package_version("solo", "broker", "mosquitto", OLDER)
    assert good.commands == ["dpkg-query -W -f '${Version}\\t${db:Status-Status}' mosquitto"]
    wrong = [
        ("2.0.11-1.2+deb12u2\tinstalled", "2.0.11-1.2+deb12u2"),
        ("", "not installed"),
        (f"{OLDER}\tconfig-files", "not installed"),  # purged, its configuration left
    ]
    for stdout, seen in wrong:
        monkeypatch.setattr(checks, "host", lambda name, out=stdout: _Host(out))
        with pytest.raises(AssertionError) as caught:
            checks.test_package_version("solo", "broker", "mosquitto", OLDER)
        assert str(caught.value).splitlines()[0] == (
            f"solo: broker: mosquitto is {seen}, not the pinned {OLDER}"
        )


def test_the_base_role_holds_pins_as_the_bundle_does() -> None:
    # The node's apt (role base) and the bundle's (apt_resolve) read the same preferences.
    template = PLAYBOOKS / "roles/base/templates/apt_preferences.j2"
    env = jinja2.Environment(trim_blocks=True, keep_trailing_newline=True)  # as Ansible's
    pins = {"mosquitto": OLDER, "postgresql-15": "15.18-0+deb12u1"}
    text = env.from_string(template.read_text()).render(
        nodekit_apt_pins=[{"package": p, "version": v} for p, v in pins.items()]
    )

    def stanzas(text: str) -> list[str]:
        lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
        return [s.strip() for s in "\n".join(lines).split("\n\n") if s.strip()]

    assert stanzas(text) == stanzas(preferences(pins)) and len(stanzas(text)) == 2
    empty = env.from_string(template.read_text()).render(nodekit_apt_pins=[])
    assert stanzas(empty) == []

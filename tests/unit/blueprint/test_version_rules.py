"""software[].version: a Debian version of the software's main package, refused for
nodekit's own agents, malformed versions and two pins of one package in a node."""

from __future__ import annotations

import pytest
from blueprint_cases import VALID, Workspace, at

from nodekit.blueprint.packages import PACKAGES
from nodekit.blueprint.version_rules import is_debian_version
from nodekit.cli.main import main

BROKER = "    settings: {users: [edge]}\n"
assert BROKER in VALID


def _pinned(version: str) -> str:
    return VALID.replace(BROKER, BROKER + f"    version: {version}\n")


@pytest.mark.parametrize(
    "version",
    ["2.0.11-1.2+deb12u1", "1.5.0-1+b6", "15.18-0+deb12u1", "1:14.0.6-12", "2.42.0+ds-5+deb12u1",
     "1.0", "1.0~rc1", "2:1.2:3-4", "1.2-3-4", "0"],
)  # fmt: skip
def test_debian_versions_are_accepted(version: str) -> None:
    assert is_debian_version(version)


@pytest.mark.parametrize(
    "version",
    ["", "latest", "v2.0", "2.0 beta", "1.0-", "1.0:2", "a:1.0", ":1.0", "1.0-rev_1", "1.0_1",
     "1.0-1/2", "-1", "1.0-1 ", "2.0.11-1.2+deb12u1;rm"],
)  # fmt: skip
def test_malformed_versions_are_not_debian_versions(version: str) -> None:
    assert not is_debian_version(version)


def test_every_shipped_software_pins_its_main_package_or_is_an_agent() -> None:
    pins = {name: spec.main_package for name, spec in PACKAGES.items()}
    assert pins == {
        "mosquitto": "mosquitto",
        "node-exporter": "prometheus-node-exporter",
        "postgresql": "postgresql-15",
        "prometheus": "prometheus",
        "edge-collector": None,
        "telemetry-ingest": None,
    }


def test_a_pin_of_a_debian_version_is_accepted(ws: Workspace) -> None:
    found = ws.check(_pinned("2.0.11-1.2+deb12u1"))
    assert not [line for line in found if "error" in line], found


def test_a_malformed_version_is_refused_where_it_is(ws: Workspace) -> None:
    text = _pinned('"2.0 beta"')
    found = [line for line in ws.check(text) if ".version" in line]
    where = at(text, 'version: "2.0 beta"', value=True)
    assert found == [
        f"node.yaml:{where}: error: software[broker].version: '2.0 beta' is not a Debian "
        "version: [epoch:]upstream[-revision], the upstream part starting with a digit, in "
        "letters, digits and . + ~ - : (e.g. 2.0.11-1.2+deb12u1; `apt-cache madison "
        "mosquitto` lists them)"
    ]


def test_an_agent_s_version_is_refused_saying_why(ws: Workspace) -> None:
    agent = "  - {name: collector, package: edge-collector, host: edge-01, version: 1.0.0}\n"
    text = VALID.replace("checks:\n", agent + "checks:\n")
    found = [line for line in ws.check(text) if ".version" in line]
    assert len(found) == 1, found
    assert found[0].startswith(f"node.yaml:{at(text, 'version: 1.0.0', value=True)}: error: ")
    assert "software[collector].version: edge-collector is one of nodekit's own agents" in found[0]
    assert "its version is nodekit's" in found[0] and "remove version" in found[0]


def test_two_pins_of_one_package_must_agree(ws: Workspace) -> None:
    other = "  - {name: broker-2, package: mosquitto, host: edge-01, version: 2.0.11-1.2+deb12u2}\n"
    text = _pinned("2.0.11-1.2+deb12u1").replace("checks:\n", other + "checks:\n")
    found = [line for line in ws.check(text) if ".version" in line]
    assert len(found) == 1, found
    pinned = "software[broker-2].version: software[broker] pins mosquitto to 2.0.11-1.2+deb12u1"
    assert pinned in found[0]
    same = _pinned("2.0.11-1.2+deb12u1").replace(
        "checks:\n", other.replace("deb12u2", "deb12u1") + "checks:\n"
    )
    assert not [line for line in ws.check(same) if ".version" in line]


def test_validate_exits_2_on_a_bad_version(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.write("node.yaml", _pinned("latest"))
    assert main(["validate", "node.yaml"]) == 2
    err = capsys.readouterr().err
    assert "software[broker].version: 'latest' is not a Debian version" in err
    assert "Traceback" not in err

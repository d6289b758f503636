"""software[].version in the site bundle: `name=version` requests, resolved by this
machine's apt (offline: its package lists, `apt-get -s`), held with their source."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from nodekit.blueprint import load
from nodekit.blueprint.packages import with_pins
from nodekit.errors import InputError
from nodekit.render.plan import plan
from nodekit.run import apt_resolve
from nodekit.run.site_bundle import node_packages
from nodekit.toolchain import baseline_status

REPO = Path(__file__).resolve().parents[3]
# This Debian 12 machine's lists: bookworm has u2, bookworm-security still u1.
OLDER, NEWER = "2.0.11-1.2+deb12u1", "2.0.11-1.2+deb12u2"
MakeOptions = Callable[..., list[str]]


def test_pinned_requests_are_checked_and_merged() -> None:
    assert apt_resolve.check_names(["mosquitto", f"mosquitto={OLDER}", "chrony"]) == (
        "chrony",
        f"mosquitto={OLDER}",
    )
    assert apt_resolve.check_names(["postgresql-15=15.18-0+deb12u1", "acl"]) == (
        "acl",
        "postgresql-15=15.18-0+deb12u1",
    )
    with pytest.raises(InputError, match=r"name=version\): 'mosquitto=latest'"):
        apt_resolve.check_names(["mosquitto=latest"])
    with pytest.raises(InputError, match=r"'Mosquitto=1\.0'"):
        apt_resolve.check_names(["Mosquitto=1.0"])
    twice = re.escape(f"versions in one bundle: mosquitto ({OLDER}, {NEWER})")
    with pytest.raises(InputError, match=twice):
        apt_resolve.check_names([f"mosquitto={OLDER}", f"mosquitto={NEWER}"])


def test_pins_and_their_preferences() -> None:
    requested = ("acl", f"mosquitto={OLDER}", "postgresql-15=15.18-0+deb12u1")
    pins = apt_resolve.pins(requested)
    assert pins == {"mosquitto": OLDER, "postgresql-15": "15.18-0+deb12u1"}
    assert apt_resolve.preferences(pins) == (
        f"Package: mosquitto src:mosquitto\nPin: version {OLDER}\nPin-Priority: 1001\n\n"
        "Package: postgresql-15 src:postgresql-15\nPin: version 15.18-0+deb12u1\n"
        "Pin-Priority: 1001\n\n"
    )
    assert apt_resolve.preferences({}) == ""


def test_with_pins_replaces_or_adds_the_pinned_package() -> None:
    assert with_pins(["mosquitto", "mosquitto-clients"], {"mosquitto": OLDER}) == [
        f"mosquitto={OLDER}",
        "mosquitto-clients",
    ]
    assert with_pins(["postgresql", "acl"], {"postgresql-15": "15.18-0+deb12u1"}) == [
        "postgresql",
        "acl",
        "postgresql-15=15.18-0+deb12u1",
    ]
    assert with_pins(["acl"], {}) == ["acl"]


def test_the_node_s_packages_carry_its_pins() -> None:
    blueprint = load(REPO / "blueprints/sites/lyon-additive-01.yaml")
    data = blueprint.data
    plain = node_packages(plan(data))
    assert "mosquitto" in plain and not [p for p in plain if "=" in p]
    broker = next(s for s in data["software"] if s["package"] == "mosquitto")
    pinned = {**data, "software": [
        {**s, "version": OLDER} if s is broker else s for s in data["software"]
    ]}  # fmt: skip
    packages = node_packages(plan(pinned))
    assert f"mosquitto={OLDER}" in packages and "mosquitto" not in packages
    assert packages == [f"mosquitto={OLDER}" if p == "mosquitto" else p for p in plain]


# --- this machine's apt --------------------------------------------------------

# These tests read this machine's apt and the baseline: `make setup` provides both (a
# missing one fails them, never skips them).


@pytest.fixture
def options(tmp_path: Path) -> MakeOptions:
    def make(requested: tuple[str, ...], status: Path | None = None) -> list[str]:
        state = tmp_path / "state"
        state.mkdir(exist_ok=True)
        return apt_resolve.apt_options(
            status or baseline_status(), state, tmp_path / "debs", apt_resolve.pins(requested)
        )

    return make


def _available(name: str) -> list[str]:
    command = ["apt-cache", "madison", name]
    out = subprocess.run(command, capture_output=True, text=True, check=False).stdout
    return [line.split("|")[1].strip() for line in out.splitlines() if "Packages" in line]


def test_a_pin_resolves_the_older_version_with_its_own_library(
    options: MakeOptions,
) -> None:
    if not {OLDER, NEWER} <= set(_available("mosquitto")):
        pytest.fail(f"this machine's apt lists do not hold mosquitto {OLDER} and {NEWER}")
    requested = apt_resolve.check_names([f"mosquitto={OLDER}", "mosquitto-clients"])
    files = {d.filename for d in apt_resolve.resolve(options(requested), requested)}
    assert f"mosquitto_{OLDER}_amd64.deb" in files
    assert f"mosquitto_{NEWER}_amd64.deb" not in files
    # mosquitto needs libmosquitto1 (= its version): the source's packages follow the pin
    assert {f"libmosquitto1_{OLDER}_amd64.deb", f"mosquitto-clients_{OLDER}_amd64.deb"} <= files
    assert not [f for f in files if NEWER in f]
    unpinned = apt_resolve.check_names(["mosquitto", "mosquitto-clients"])
    files = {d.filename for d in apt_resolve.resolve(options(unpinned), unpinned)}
    assert f"mosquitto_{NEWER}_amd64.deb" in files  # without a pin, the newest


def test_an_unknown_version_lists_the_versions_there_are(options: MakeOptions) -> None:
    requested = apt_resolve.check_names(["mosquitto=9.9.9-1", "chrony"])
    with pytest.raises(InputError) as caught:
        apt_resolve.resolve(options(requested), requested)
    message = str(caught.value)
    assert message.startswith("mosquitto 9.9.9-1 is not in the Debian 12 archive")
    for version in _available("mosquitto"):
        assert version in message
    assert "set software[].version to one of those versions" in str(caught.value.context["fix"])


def test_the_preferences_hold_a_pin_below_an_installed_version(
    options: MakeOptions, tmp_path: Path
) -> None:
    # A host with the newer libmosquitto1 installed: its candidate is the pinned one
    # (priority 1001 allows the downgrade; the node's apt gets the same preferences).
    if OLDER not in _available("libmosquitto1"):
        pytest.fail(f"this machine's apt lists do not hold libmosquitto1 {OLDER}")
    status = tmp_path / "status"
    status.write_text(
        baseline_status().read_text()
        + f"\nPackage: libmosquitto1\nStatus: install ok installed\nVersion: {NEWER}\n"
        "Architecture: amd64\nMaintainer: x\nDescription: x\n"
    )
    for requested, candidate in (((f"mosquitto={OLDER}",), OLDER), (("mosquitto",), NEWER)):
        out = subprocess.run(
            ["apt-cache", *options(requested, status), "policy", "libmosquitto1"],
            capture_output=True,
            text=True,
            env=apt_resolve.apt_env(),
            check=True,
        ).stdout
        assert f"Installed: {NEWER}" in out and f"Candidate: {candidate}" in out, out


def test_nodekit_s_main_packages_are_their_source_s_namesakes() -> None:
    # The preferences pin src:NAME: it must be the source of each main package.
    from nodekit.blueprint.packages import PACKAGES

    for spec in PACKAGES.values():
        if spec.main_package is None:
            continue
        show = subprocess.run(
            ["apt-cache", "show", "--no-all-versions", spec.main_package],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        source = next((ln.split()[1] for ln in show.splitlines() if ln.startswith("Source:")), "")
        assert source in ("", spec.main_package), (spec.name, source)


MINI = """\
apiVersion: nodekit/v1
kind: Node
metadata: {name: nkpin-unknown}
site: {region: eu-west, timezone: UTC, target: local}
network:
  zones: [{name: cell, cidr: 10.213.9.0/24}]
compute:
  - {name: solo, role: edge, zone: cell, address: 10.213.9.10}
software:
  - name: broker
    package: mosquitto
    host: solo
    version: 9.9.9-1
    settings: {allow_anonymous: true}
"""


def test_a_deploy_with_an_unknown_version_fails_its_bundle_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nodekit.cli.main import main

    monkeypatch.setenv("NODEKIT_STATE", str(tmp_path / "state"))
    (tmp_path / "node.yaml").write_text(MINI)
    code = main(["deploy", str(tmp_path / "node.yaml"), "--yes", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.out + captured.err
    (result,) = json.loads(captured.out)["nodes"]
    assert [(s["stage"], s["ok"]) for s in result["stages"]] == [
        ("render", True),
        ("bundle", False),
    ]
    assert result["failed_stage"] == "bundle"
    assert result["error"].startswith(
        "nkpin-unknown: bundle failed: mosquitto 9.9.9-1 is not in the Debian 12 archive"
    )
    assert "2.0.11-1.2+deb12u" in result["error"]  # the versions there are
    assert result["fix"].startswith("set software[].version to one of those versions")

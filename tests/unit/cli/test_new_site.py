"""`nodekit new site`: a site blueprint that validates, on networks nobody uses."""

from __future__ import annotations

import ipaddress
import json
import shutil
from pathlib import Path

import pytest
from yamllint import linter
from yamllint.config import YamlLintConfig

from nodekit.blueprint import load, validate
from nodekit.blueprint.newsite import allocate
from nodekit.cli.main import main

REPO = Path(__file__).resolve().parents[3]
Net = ipaddress.IPv4Network


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped bases, overlays, sites and hubs (the working folder)."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "blueprints"
    for part in ("bases", "overlays", "sites", "hubs"):
        shutil.copytree(REPO / "blueprints" / part, root / part)
    shutil.copy(REPO / "blueprints/nodekit-blueprint-v1.schema.json", root)
    return root


def new(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    argv = ["new", "site", *args]
    if "--extends" not in args:
        argv += ["--extends", "blueprints/bases/additive-cell.yaml"]
    if "--overlay" not in args:
        argv += ["--overlay", "blueprints/overlays/eu-west.yaml"]
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, captured.err


def set_pool(fleet: Path, pool: str, region: str = "eu-west") -> None:
    overlay = fleet / f"overlays/{region}.yaml"
    text = overlay.read_text()
    start = text.index("  address_pool: ")
    end = text.index("\n", start)
    overlay.write_text(text[:start] + f"  address_pool: {pool}" + text[end:])


def zones_of(path: Path) -> list[Net]:
    return [Net(zone.cidr) for zone in load(path).node.network.zones]


def fleet_zones(root: Path, *, but: str = "") -> list[Net]:
    return [
        Net(zone.cidr)
        for blueprint in validate([root]).blueprints
        if blueprint.name != but
        for zone in blueprint.node.network.zones
    ]


def test_writes_a_site_that_validates_with_the_fleet(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = new(capsys, "lisbon-additive-01", "--format", "json")
    assert code == 0, err
    written = fleet / "sites/lisbon-additive-01.yaml"
    assert json.loads(out) == {
        "file": "blueprints/sites/lisbon-additive-01.yaml",
        "node": "lisbon-additive-01",
        "zones": [{"name": "ot", "cidr": "10.40.1.0/24"}, {"name": "it", "cidr": "10.40.2.0/24"}],
    }
    text = written.read_text()
    assert text.startswith(
        "# yaml-language-server: $schema=../nodekit-blueprint-v1.schema.json\n#\n"
        "# Site lisbon-additive-01, made by:\n"
        "#   nodekit new site lisbon-additive-01 \\\n"
        "#     --extends blueprints/bases/additive-cell.yaml \\\n"
        "#     --overlay blueprints/overlays/eu-west.yaml\n"
    )
    assert "  - ../bases/additive-cell.yaml\n  - ../overlays/eu-west.yaml\n" in text
    lint = YamlLintConfig(file=str(REPO / ".yamllint"))
    assert [str(problem) for problem in linter.run(text, lint)] == []  # as `make lint` wants
    result = validate([fleet])
    assert result.diagnostics == ()
    site = load(written).node
    assert site.addresses_of("gw-01") == {"it": "10.40.2.1", "ot": "10.40.1.1"}
    assert site.host("edge-01").address == "10.40.1.10"
    assert site.host("hist-01").address == "10.40.2.10"
    assert [e.address for e in site.equipment] == ["10.40.1.101", "10.40.1.102"]


def test_the_table_names_the_file_and_the_zones(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = new(capsys, "site-b", "--overlay", "blueprints/overlays/us-east.yaml")
    assert code == 0
    assert out.startswith("wrote blueprints/sites/site-b.yaml: node site-b, zones from pool ")
    assert "│ ot   │ 10.44.1.0/24 │" in out


def test_allocations_avoid_networks_used_anywhere_in_the_fleet(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A node in another folder of the fleet takes 10.40.1.0/24 and the upper half
    # of 10.40.0.0/16; the examples hold 10.41 to 10.43: no /16 of the pool is
    # free, so the zones go side by side where 10.40 has room.
    other = (fleet / "sites/porto-additive-01.yaml").read_text()
    other = other.replace("porto-additive-01", "plant-x").replace("10.42.1.", "10.40.1.")
    other = other.replace("10.42.2.0/24", "10.40.128.0/17").replace("10.42.2.", "10.40.128.")
    (fleet / "elsewhere").mkdir()
    (fleet / "elsewhere/plant-x.yaml").write_text(other)
    assert validate([fleet]).diagnostics == ()
    code, _, err = new(capsys, "site-new")
    assert code == 0, err
    mine = zones_of(fleet / "sites/site-new.yaml")
    assert mine == [Net("10.40.2.0/24"), Net("10.40.3.0/24")]
    used = fleet_zones(fleet, but="site-new")
    assert not any(a.overlaps(b) for a in mine for b in used)
    assert validate([fleet]).diagnostics == ()


def test_two_new_sites_in_a_row_get_different_blocks(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_pool(fleet, "10.60.0.0/14")
    assert new(capsys, "site-one")[0] == 0
    assert new(capsys, "site-two")[0] == 0
    one = zones_of(fleet / "sites/site-one.yaml")
    two = zones_of(fleet / "sites/site-two.yaml")
    assert one == [Net("10.60.1.0/24"), Net("10.60.2.0/24")]
    assert two == [Net("10.61.1.0/24"), Net("10.61.2.0/24")]
    assert validate([fleet]).diagnostics == ()


def test_a_full_pool_is_an_error_with_the_fix(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_pool(fleet, "10.41.0.0/23")  # Lyon uses 10.41.1.0/24: one /24 left, two needed
    code, out, err = new(capsys, "site-full")
    assert (code, out) == (2, "")
    assert "error: address pool 10.41.0.0/23 is exhausted: the site needs 2 free /24" in err
    assert "fix: widen site.address_pool in the region overlay" in err
    assert not (fleet / "sites/site-full.yaml").exists()


def test_an_overlay_without_a_pool_is_an_error(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overlay = fleet / "overlays/eu-west.yaml"
    overlay.write_text(overlay.read_text().replace("  address_pool: 10.40.0.0/14\n", ""))
    code, _, err = new(capsys, "site-x")
    assert code == 2
    assert "blueprints/overlays/eu-west.yaml has no site.address_pool" in err
    assert "fix: add `address_pool: CIDR` under `site:`" in err


def test_an_existing_file_is_never_overwritten(
    fleet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (fleet / "mine.yaml").write_text("keep me\n")
    code, _, err = new(capsys, "site-x", "-o", "blueprints/mine.yaml")
    assert code == 2
    assert "blueprints/mine.yaml already exists: nodekit new site never overwrites" in err
    assert "fix: choose another file with -o FILE" in err
    assert (fleet / "mine.yaml").read_text() == "keep me\n"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["Bad_Name"], "'Bad_Name' is not a valid node name"),
        (["lyon-additive-01"], "node name 'lyon-additive-01' is already used by blueprints/sites"),
        (["x", "--extends", "blueprints/bases/nope.yaml"], "base file blueprints/bases/nope"),
        (["x", "--overlay", "nope.yaml"], "overlay file nope.yaml not found"),
        (["x", "--fleet", "nowhere"], "fleet folder nowhere not found"),
    ],
)
def test_bad_input_exits_2_with_a_fix(
    fleet: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    code, _, err = new(capsys, *args)
    assert code == 2
    assert says in err
    assert "fix: " in err


def test_the_shipped_blueprints_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    target = tmp_path / "out/site.yaml"
    code, _, err = new(capsys, "test-site", "-o", str(target), "--fleet", "blueprints")
    assert code == 0, err
    mine = zones_of(target)
    assert not any(a.overlaps(b) for a in mine for b in fleet_zones(REPO / "blueprints"))
    assert validate([REPO / "blueprints", target]).diagnostics == ()
    assert [p.name for p in target.parent.iterdir()] == ["site.yaml"]  # no draft left


def test_allocate_prefers_a_free_block_then_a_run_then_anything() -> None:
    pool = Net("10.0.0.0/15")
    assert allocate(pool, 2, prefix=24, avoid=[]) == [Net("10.0.1.0/24"), Net("10.0.2.0/24")]
    busy = [Net("10.0.1.0/24"), Net("10.1.0.0/24")]
    assert allocate(pool, 2, prefix=24, avoid=busy) == [Net("10.0.2.0/24"), Net("10.0.3.0/24")]
    small = Net("10.0.0.0/22")
    gaps = [Net("10.0.1.0/24"), Net("10.0.3.0/24")]
    assert allocate(small, 2, prefix=24, avoid=gaps) == [Net("10.0.0.0/24"), Net("10.0.2.0/24")]

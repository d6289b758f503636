"""Rendering: byte-stable output, manifest digests, rewrites, secrets, and the
rendered files accepted by the real tools (ansible-playbook, ansible-lint,
ansible-inventory, pytest)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nodekit.blueprint import load
from nodekit.cli.main import main
from nodekit.render import PROJECT_ROOT, render, render_files

SITES = PROJECT_ROOT / "blueprints" / "sites"
LYON = SITES / "lyon-additive-01.yaml"
BIN = Path(sys.executable).parent


def test_render_is_byte_stable_across_runs_and_folders(tmp_path: Path) -> None:
    blueprint = load(LYON)
    first = render(blueprint, tmp_path / "a")
    second = render(load(LYON), tmp_path / "b")
    assert first.written == len(first.files)
    for f in first.files:
        assert (tmp_path / "a" / f.path).read_bytes() == (tmp_path / "b" / f.path).read_bytes()
    assert [f.sha256 for f in first.files] == [f.sha256 for f in second.files]


def test_rerender_writes_nothing_and_removes_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(load(LYON), out)
    again = render(load(LYON), out)
    assert again.written == 0 and again.removed == 0
    # An earlier render of a node with one more host left its host_vars behind.
    stale = out / "ansible" / "host_vars" / "old-host.yml"
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"]["ansible/host_vars/old-host.yml"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(manifest))
    stale.write_text("ansible_host: gone\n")
    result = render(load(LYON), out)
    assert not stale.exists()
    assert result.removed == 1


def test_manifest_lists_sources_and_digests_of_every_file(tmp_path: Path) -> None:
    render(load(LYON), tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["node"] == "lyon-additive-01"
    assert [s["path"] for s in manifest["sources"]] == [
        "../bases/additive-cell.yaml",
        "../overlays/eu-west.yaml",
        "lyon-additive-01.yaml",
    ]
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((tmp_path / rel).read_bytes()).hexdigest() == digest
    assert manifest["secrets"] == [
        "broker/collector", "broker/edge", "broker/historian", "broker/ingest",
        "historian-db/historian", "tls/broker", "tls/fleet-ca",
    ]  # fmt: skip


def test_no_secret_value_is_rendered_only_references(tmp_path: Path) -> None:
    render(load(LYON), tmp_path)
    hist = yaml.safe_load((tmp_path / "ansible" / "host_vars" / "hist-01.yml").read_text())
    assert hist["mosquitto_users"] == [
        {"name": "edge", "password": '{{ nodekit_secrets["broker/edge"] }}'},
        {"name": "historian", "password": '{{ nodekit_secrets["broker/historian"] }}'},
        # nodekit's own parts get their broker users (named after their software entries)
        {"name": "collector", "password": '{{ nodekit_secrets["broker/collector"] }}'},
        {"name": "ingest", "password": '{{ nodekit_secrets["broker/ingest"] }}'},
    ]


def test_cli_renders_several_nodes_into_subfolders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", str(SITES), "-o", str(tmp_path), "--format", "json"]) == 0
    nodes = {entry["node"] for entry in json.loads(capsys.readouterr().out)["nodes"]}
    assert nodes == {
        "lyon-additive-01",
        "porto-additive-01",
        "austin-additive-01",
        "bremen-additive-01",
    }
    for node in nodes:
        assert (tmp_path / node / "manifest.json").is_file()


def test_cli_render_of_invalid_blueprint_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(LYON.read_text().replace("10.41.1.10", "10.99.1.10"))
    bad_dir = tmp_path / "sites"
    bad_dir.mkdir()
    (bad_dir / "lyon.yaml").write_text(
        LYON.read_text()
        .replace("../bases/", str(SITES.parent / "bases") + "/")
        .replace("../overlays/", str(SITES.parent / "overlays") + "/")
        .replace("10.41.1.10", "10.99.1.10")
    )
    assert main(["render", str(bad_dir / "lyon.yaml"), "-o", str(tmp_path / "out")]) == 2
    assert "compute[edge-01].address" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    render(load(LYON), out)
    return out


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A real tool in the rendered folder, with nodekit's roles as nodekit runs it."""
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(PROJECT_ROOT / "playbooks" / "roles")}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, env=env)


def test_rendered_playbook_passes_syntax_check(rendered: Path) -> None:
    result = run(
        [str(BIN / "ansible-playbook"), "--syntax-check", "-i", "inventory.yml", "site.yml"],
        rendered / "ansible",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_ansible_passes_ansible_lint(rendered: Path) -> None:
    result = run(
        [
            str(BIN / "ansible-lint"),
            "--offline",
            "-q",
            "-c",
            str(PROJECT_ROOT / ".ansible-lint"),  # the project's lint profile
            "site.yml",
        ],
        rendered / "ansible",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_inventory_lists_hosts_and_groups(rendered: Path) -> None:
    result = run(
        [str(BIN / "ansible-inventory"), "-i", "inventory.yml", "--list"], rendered / "ansible"
    )
    assert result.returncode == 0, result.stderr
    inventory = json.loads(result.stdout)
    assert sorted(inventory["role_gateway"]["hosts"]) == ["gw-01"]
    assert sorted(inventory["zone_ot"]["hosts"]) == ["edge-01", "gw-01"]
    hostvars = inventory["_meta"]["hostvars"]
    assert hostvars["edge-01"]["ansible_host"] == "nk-lyon-additive-01-edge-01"
    assert hostvars["edge-01"]["nodekit_routes"] == [
        {"cidr": "10.41.2.0/24", "via": "10.41.1.1"},
        {"cidr": "100.64.0.0/24", "via": "10.41.1.1"},  # the local WAN, through the gateway
    ]
    assert hostvars["gw-01"]["nodekit_timezone"] == "Europe/Paris"


def test_inventory_plugin_reads_blueprints_directly() -> None:
    result = run(
        [str(BIN / "ansible-inventory"), "-i", "inventories/lyon-additive-01.yml", "--graph"],
        PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "@role_gateway:" in result.stdout and "|--gw-01" in result.stdout
    assert "@pkg_mosquitto:" in result.stdout


def test_inventory_plugin_and_render_agree(rendered: Path) -> None:
    def hostvars(args: list[str], cwd: Path) -> dict[str, object]:
        result = run([str(BIN / "ansible-inventory"), *args, "--list"], cwd)
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout)["_meta"]["hostvars"])

    plugin = hostvars(["-i", "inventories/lyon-additive-01.yml"], PROJECT_ROOT)
    files = hostvars(["-i", "inventory.yml"], rendered / "ansible")
    assert plugin == files


def test_rendered_checks_collect_with_pytest(rendered: Path) -> None:
    result = run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "."],
        rendered / "tests",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ids = result.stdout
    assert "test_service[hist-01:broker]" in ids
    assert "test_flow_allowed[edge-01:hist-01:1883/tcp]" in ids
    assert "test_flow_denied[edge-01:hist-01:22/tcp]" in ids
    assert "test_timezone[gw-01]" in ids


def test_rendered_pulumi_program_is_the_short_entry_point(rendered: Path) -> None:
    main_py = (rendered / "pulumi" / "__main__.py").read_text()
    assert "from nodekit.pulumi.node import program" in main_py
    stack = (rendered / "pulumi" / "Pulumi.lyon-additive-01.yaml").read_text()
    assert "nodekit:image: nodekit/node:" in stack


def test_a_render_names_no_path_of_this_machine(tmp_path: Path) -> None:
    """Renders are the same in any checkout: no absolute path of the machine that
    rendered them (the roles come from ANSIBLE_ROLES_PATH at run time)."""
    for site in sorted((PROJECT_ROOT / "blueprints" / "sites").glob("*.yaml")):
        for rel, data in render_files(load(site)).items():
            text = data.decode()
            assert str(PROJECT_ROOT) not in text, f"{site.name}: {rel}"
            assert str(Path.home()) not in text, f"{site.name}: {rel}"


def test_render_refuses_an_empty_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(LYON), "-o", ""]) == 2
    assert "give -o DIR" in capsys.readouterr().err


def test_a_render_inside_a_blueprint_folder_is_not_validated_as_blueprints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rendered YAML under a blueprint folder is output, not blueprints."""
    sites = tmp_path / "sites"
    sites.mkdir()
    (sites / "lyon.yaml").write_text(
        LYON.read_text()
        .replace("../bases/", f"{LYON.parent.parent}/bases/")
        .replace("../overlays/", f"{LYON.parent.parent}/overlays/")
    )
    assert main(["render", str(sites / "lyon.yaml"), "-o", str(sites / "out")]) == 0
    capsys.readouterr()
    assert main(["validate", str(sites)]) == 0
    assert capsys.readouterr().out.split() == ["ok", "lyon-additive-01", f"({sites / 'lyon.yaml'})"]


def test_explain_on_a_folder_says_it_takes_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(SITES)]) == 2
    err = capsys.readouterr().err
    assert "explain takes one blueprint file" in err and "lyon-additive-01" in err

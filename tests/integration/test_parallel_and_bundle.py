"""Eight nodes deployed by one `nodekit deploy` (separate workspaces, separate
locks, all at once), and the site bundle an air-gapped site receives.
benchmarks/parallel_nodes.py measures the wall time against one node."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import docker
import pytest
from _faults_support import small_node

from nodekit.cli.main import main
from nodekit.pulumi.docker_provider import NODE_LABEL
from nodekit.render import PROJECT_ROOT

pytestmark = pytest.mark.integration


def test_eight_nodes_deploy_in_parallel_and_destroy(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    docker_client: docker.DockerClient,
) -> None:
    monkeypatch.setenv("NODEKIT_STATE", str(tmp_path / "state"))
    sites = tmp_path / "sites"
    sites.mkdir()
    names = [f"nktest-par-{i}" for i in range(8)]
    for i, name in enumerate(names):
        (sites / f"{name}.yaml").write_text(small_node(name, f"10.212.{i}"))
    try:
        assert main(["deploy", str(sites), "--yes", "--format", "json"]) == 0
        results = json.loads(capsys.readouterr().out)["nodes"]
        assert sorted(r["node"] for r in results) == names
        for r in results:
            assert r["ok"], r["error"]
            assert [s["stage"] for s in r["stages"]][-2:] == ["verify", "record"]
        # Each node had its own stack, state and run folder.
        for name in names:
            assert (tmp_path / "state" / "nodes" / name / "pulumi" / "backend").is_dir()
        # The deploys overlapped in time: all eight were running at one moment.
        spans = []
        for r in results:
            lines = (Path(r["run_dir"]) / "events.jsonl").read_text().splitlines()
            events = [json.loads(line) for line in lines]
            spans.append((events[0]["at"], events[-1]["at"]))
        assert max(start for start, _ in spans) < min(end for _, end in spans)
        # Each node converged: its own host answers on its own network.
        for i, name in enumerate(names):
            box = docker_client.containers.get(f"nk-{name}-edge-01")
            assert (
                box.exec_run(["systemctl", "is-active", "prometheus-node-exporter"]).exit_code == 0
            )
            ip = box.attrs["NetworkSettings"]["Networks"]
            assert any(n.get("IPAddress") == f"10.212.{i}.10" for n in ip.values())
    finally:
        assert main(["destroy", str(sites), "--yes"]) == 0
    for name in names:
        assert not docker_client.containers.list(
            all=True, filters={"label": f"{NODE_LABEL}={name}"}, ignore_removed=True
        )


def test_site_bundle_holds_packages_index_and_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = PROJECT_ROOT / "blueprints" / "sites" / "lyon-additive-01.yaml"
    assert main(["bundle", str(site), "-o", str(tmp_path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    apt = tmp_path / "apt"
    index = (apt / "Packages").read_text()
    for package in ("mosquitto", "postgresql-15", "prometheus", "nftables", "chrony"):
        assert f"Package: {package}\n" in index
        assert any(name.startswith(package + "_") for name in report["packages"])
    for name in report["packages"]:
        assert (apt / name).is_file()
    with tarfile.open(tmp_path / "node-image.tar") as image:
        assert "manifest.json" in image.getnames()  # what `docker load` reads
    assert json.loads((tmp_path / "bundle.json").read_text())["node"] == "lyon-additive-01"

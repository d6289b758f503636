"""Benchmark: `affected` over a large fleet, and `gitops apply` against a plain deploy.

    .venv/bin/python benchmarks/gitops.py [--nodes 1000] [--apply-nodes 50] [--skip-apply]
                                          [--format json]

1. A git repository of N sites over two bases; a commit changes one base
   (half the fleet). `affected` of that commit (both revisions resolved
   from git objects) against rendering every node once at head.
   Goal: under 2x.
2. A repository of M one-host sites on the local target, one of them
   deployed. A commit changes that node; `gitops apply` of the commit
   against a plain `nodekit deploy` of the same kind of change to it,
   alternating, medians of 2 rounds each. Goal: within 1.2x. Everything
   deployed is destroyed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BASE = """\
apiVersion: nodekit/v1
kind: NodeBase
site:
  region: eu-west
  timezone: UTC
  target: local
compute:
  - name: gw
    role: gateway
    zone: it
  - name: edge
    role: edge
    zone: ot
software:
  - name: broker
    package: mosquitto
    host: gw
    settings:
      users: [edge]
  - name: exporter
    package: node-exporter
    host: edge
"""
SITE = """\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: bench-fleet-{i}
extends:
  - ../bases/{base}.yaml
network:
  zones:
    - name: it
      cidr: 10.{a}.{b}.0/25
    - name: ot
      cidr: 10.{a}.{b}.128/25
compute:
  - name: gw
    address: 10.{a}.{b}.1
    interfaces:
      - zone: ot
        address: 10.{a}.{b}.129
  - name: edge
    address: 10.{a}.{b}.130
"""
SMALL = """\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: bench-apply-{i}
site:
  region: eu-west
  timezone: {tz}
  target: local
network:
  zones:
    - name: cell
      cidr: 10.223.{i}.0/24
compute:
  - name: solo
    role: edge
    zone: cell
    address: 10.223.{i}.10
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def new_repo(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "bench@example.invalid")
    git(root, "config", "user.name", "bench")
    return root


def nodekit(*argv: str) -> tuple[int, str]:
    from nodekit.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(argv))
    return code, out.getvalue()


def bench_affected(scratch: Path, count: int) -> dict[str, float]:
    from nodekit.blueprint import load_all
    from nodekit.gitops.affected import affected
    from nodekit.render import render_files

    repo = new_repo(scratch / "fleet")
    (repo / "blueprints" / "bases").mkdir(parents=True)
    (repo / "blueprints" / "sites").mkdir()
    for base in ("a", "b"):
        (repo / "blueprints" / "bases" / f"{base}.yaml").write_text(BASE)
    for i in range(count):
        text = SITE.format(i=i, base="ab"[i % 2], a=100 + i // 256, b=i % 256)
        (repo / "blueprints" / "sites" / f"s{i}.yaml").write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "fleet")
    base_a = repo / "blueprints" / "bases" / "a.yaml"
    base_a.write_text(BASE.replace("users: [edge]", "users: [edge, mes]"))
    git(repo, "commit", "-qam", "base a: a user more")

    start = time.perf_counter()
    found = affected(repo, "HEAD~1", "HEAD", ["blueprints"])
    affected_s = time.perf_counter() - start
    assert len(found.nodes) == count // 2 + count % 2, len(found.nodes)

    start = time.perf_counter()
    for blueprint in load_all([repo / "blueprints"]):
        render_files(blueprint)
    render_s = time.perf_counter() - start
    return {"affected": affected_s, "render once": render_s}


def bench_apply(scratch: Path, count: int, rounds: int = 2) -> dict[str, float]:
    repo = new_repo(scratch / "apply")
    sites = repo / "blueprints"
    sites.mkdir()
    for i in range(1, count + 1):
        (sites / f"n{i}.yaml").write_text(SMALL.format(i=i, tz="UTC"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "fleet")
    os.chdir(repo)
    target = sites / "n1.yaml"
    applies: list[float] = []
    deploys: list[float] = []
    zones = iter(["Europe/Paris", "Europe/Berlin", "Europe/Rome", "Europe/Madrid"] * rounds)
    try:
        code, _ = nodekit("deploy", str(target), "--yes")  # the node exists beforehand
        assert code == 0
        for _ in range(rounds):  # alternating, so neither side gets the warmer caches
            target.write_text(SMALL.format(i=1, tz=next(zones)))
            git(repo, "commit", "-qam", "n1: another time zone")
            start = time.perf_counter()
            code, out = nodekit("gitops", "apply", "--base", "HEAD~1", "blueprints", "--yes",
                                "--format", "json")  # fmt: skip
            applies.append(time.perf_counter() - start)
            assert code == 0 and len(json.loads(out)["nodes"]) == 1, out
            target.write_text(SMALL.format(i=1, tz=next(zones)))
            git(repo, "commit", "-qam", "n1: another time zone")
            start = time.perf_counter()
            code, _ = nodekit("deploy", str(target), "--yes")
            deploys.append(time.perf_counter() - start)
            assert code == 0
    finally:
        nodekit("destroy", str(target), "--yes")
    apply_s, deploy_s = statistics.median(applies), statistics.median(deploys)
    return {"gitops apply (1 of N)": apply_s, "deploy alone": deploy_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--apply-nodes", type=int, default=50)
    parser.add_argument("--skip-apply", action="store_true")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="nodekit-bench-gitops-"))
    os.environ["NODEKIT_STATE"] = str(scratch / "state")
    os.environ.pop("NODEKIT_BACKEND", None)
    seconds = bench_affected(scratch, args.nodes)
    ratios: dict[str, float] = {
        "affected / render once": seconds["affected"] / seconds["render once"]
    }
    goals: dict[str, bool] = {"affected < 2x render once": ratios["affected / render once"] < 2}
    if not args.skip_apply:
        seconds |= bench_apply(scratch, args.apply_nodes)
        ratio = seconds["gitops apply (1 of N)"] / seconds["deploy alone"]
        ratios["gitops apply / deploy alone"] = ratio
        goals["gitops apply <= 1.2x deploy alone"] = ratio <= 1.2
    result: dict[str, Any] = {"nodes": args.nodes, "apply_nodes": args.apply_nodes,
                              "seconds": seconds, "ratios": ratios, "goals": goals}  # fmt: skip
    if args.format == "json":
        print(json.dumps(result, indent=2))
        return
    print(f"fleet of {args.nodes} nodes (affected), {args.apply_nodes} (apply)")
    for name, value in seconds.items():
        print(f"{name:<36} {value:8.2f} s")
    for name, value in ratios.items():
        print(f"{name:<36} {value:8.2f}")
    for name, ok in goals.items():
        print(f"{name:<36} {'PASS' if ok else 'MISS':>8}")
    sys.exit(0)


if __name__ == "__main__":
    main()

"""Benchmark: eight nodes deployed by one `nodekit deploy`, against one node.

    .venv/bin/python benchmarks/parallel_nodes.py [--format json] [--nodes N]

Each node is the same small edge node (one host: a broker and the node
exporter) on its own network, on the local target, with the site bundle and
node image built beforehand. Side by side in one run: the wall time of one
node's first deploy (through the CLI, as an operator runs it), then of N
nodes (default 8) in one `nodekit deploy FOLDER`. Goal: at most 3x.
Everything it creates is destroyed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NODE = """\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: {name}
site:
  region: eu-west
  timezone: Europe/Lisbon
  target: local
network:
  zones:
    - name: ot
      cidr: 10.223.{i}.0/24
compute:
  - name: edge-01
    role: edge
    zone: ot
    address: 10.223.{i}.10
software:
  - name: broker
    package: mosquitto
    host: edge-01
  - name: exporter
    package: node-exporter
    host: edge-01
"""


def nodekit(*args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "nodekit.cli.main", *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"nodekit {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--nodes", type=int, default=8)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="nodekit-bench-par-"))
    os.environ["NODEKIT_STATE"] = str(scratch / "state")
    one, many = scratch / "one", scratch / "many"
    one.mkdir()
    many.mkdir()
    (one / "bench-par-0.yaml").write_text(NODE.format(name="bench-par-0", i=0))
    for i in range(1, args.nodes + 1):
        (many / f"bench-par-{i}.yaml").write_text(NODE.format(name=f"bench-par-{i}", i=i))
    say = (lambda _m: None) if args.format == "json" else (lambda m: print(m, file=sys.stderr))
    rows: dict[str, float] = {}
    try:
        say("warming the bundle and the image (not timed) ...")
        nodekit("bundle", str(one / "bench-par-0.yaml"), "-o", str(scratch / "warm"))
        say("one node ...")
        rows["1 node"] = nodekit("deploy", str(one), "--yes")
        say(f"{args.nodes} nodes in one deploy ...")
        rows[f"{args.nodes} nodes"] = nodekit("deploy", str(many), "--yes")
    finally:
        for folder in (one, many):
            subprocess.run(
                [sys.executable, "-m", "nodekit.cli.main", "destroy", str(folder), "--yes"],
                capture_output=True, check=False,
            )  # fmt: skip
    ratio = rows[f"{args.nodes} nodes"] / rows["1 node"]
    goal = ratio <= 3.0
    if args.format == "json":
        print(json.dumps({"seconds": rows, "ratio": ratio, "goal_3x": goal}, indent=2))
        return
    for name, value in rows.items():
        print(f"{name:<24} {value:8.1f} s")
    label = f"{args.nodes} nodes / 1 node"
    print(f"{label:<24} {ratio:8.2f}    {'PASS' if goal else 'MISS'} (<= 3x)")


if __name__ == "__main__":
    main()

"""Benchmark: eight nodes deployed by one `nodekit deploy`, against one node.

    .venv/bin/python benchmarks/parallel_nodes.py [--format json] [--nodes N]

Each node is the same small edge node (one host: a broker and the node
exporter) on its own network, on the local target, with the site bundle and
node image built beforehand. Side by side in one run: the wall time of one
node's first deploy (through the CLI, as an operator runs it), then of N
nodes (default 8) in one `nodekit deploy FOLDER`. Goal: at most 3x.
Everything it creates is destroyed at the end.

Beside each wall time it reports the CPU seconds the whole machine spent
(/proc/stat: nodekit, Pulumi, Ansible, the checks, the containers, Docker and
the kernel; run it on a quiet machine) and the floor those set: N nodes'
work on this machine's cores cannot end sooner than
N x CPU(1 node) / cores, so no schedule beats a ratio of
N x CPU(1 node) / (cores x wall(1 node)). A ratio near its floor means the
nodes are packed well and only less work per node (or more cores) helps.
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


def busy_seconds() -> float:
    """CPU seconds the machine has spent on anything but idling (all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def nodekit(*args: str) -> tuple[float, float]:
    """Wall seconds and the machine's CPU seconds of one nodekit command."""
    start, busy = time.perf_counter(), busy_seconds()
    proc = subprocess.run(
        [sys.executable, "-m", "nodekit.cli.main", *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"nodekit {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, busy_seconds() - busy


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
    cpu: dict[str, float] = {}
    many_label = f"{args.nodes} nodes"
    try:
        say("warming the bundle and the image (not timed) ...")
        nodekit("bundle", str(one / "bench-par-0.yaml"), "-o", str(scratch / "warm"))
        say("one node ...")
        rows["1 node"], cpu["1 node"] = nodekit("deploy", str(one), "--yes")
        say(f"{args.nodes} nodes in one deploy ...")
        rows[many_label], cpu[many_label] = nodekit("deploy", str(many), "--yes")
    finally:
        for folder in (one, many):
            subprocess.run(
                [sys.executable, "-m", "nodekit.cli.main", "destroy", str(folder), "--yes"],
                capture_output=True, check=False,
            )  # fmt: skip
    cores = os.cpu_count() or 1
    ratio = rows[many_label] / rows["1 node"]
    floor = args.nodes * cpu["1 node"] / (cores * rows["1 node"])
    goal = ratio <= 3.0
    if args.format == "json":
        print(json.dumps({
            "seconds": rows, "cpu_seconds": cpu, "cores": cores, "ratio": ratio,
            "floor": floor, "goal_3x": goal,
        }, indent=2))  # fmt: skip
        return
    for name, value in rows.items():
        print(f"{name:<24} {value:8.1f} s   CPU {cpu[name]:6.1f} s")
    label = f"{args.nodes} nodes / 1 node"
    print(f"{label:<24} {ratio:8.2f}    {'PASS' if goal else 'MISS'} (<= 3x)")
    print(
        f"{'floor on ' + str(cores) + ' cores':<24} {floor:8.2f}    "
        f"({args.nodes} x {cpu['1 node']:.1f} CPU s / {cores} cores / {rows['1 node']:.1f} s: "
        "no schedule does better)"
    )


if __name__ == "__main__":
    main()

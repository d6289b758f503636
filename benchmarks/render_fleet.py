"""Benchmark: render a fleet of sites that share a base, against the I/O floor.

    .venv/bin/python benchmarks/render_fleet.py [--sites N] [--repeat R] [--format json]

Generates N Node files (default 1000) in a temporary folder, each extending
the real shared base and overlay (blueprints/bases/additive-cell.yaml and
blueprints/overlays/eu-west.yaml) with its own name, zone networks, VLANs
and addresses. Then, in the same run:

- nodekit: ``load`` each site file (one call per site, as a script
  rendering a fleet would) and ``render`` it into a fresh output folder;
- floor: the minimum any tool must do for the same result: read and
  YAML-parse each site file once and each shared base once (PyYAML's fastest
  loader, CSafeLoader when libyaml is present), and write the very bytes
  nodekit wrote (collected beforehand, same files, same sizes) into a fresh
  output folder.

Each side runs R times (default 3), in turns, and the best time counts. The goal is
nodekit within 4x of the floor.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from nodekit.blueprint import load
from nodekit.render import render

ROOT = Path(__file__).resolve().parents[1]
BASES = (
    ROOT / "blueprints/bases/additive-cell.yaml",
    ROOT / "blueprints/overlays/eu-west.yaml",
)
GOAL = 4.0
Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def site(index: int) -> tuple[str, str]:
    """Name and text of the site of this index: own name, networks, VLANs, addresses."""
    name = f"fleet-{index:05d}"
    a, b = 1 + (2 * index) // 256, (2 * index) % 256  # 10.a.b.0/24 and 10.a.b+1.0/24
    ot, it = f"10.{a}.{b}", f"10.{a}.{b + 1}"
    vlan = 2 + (2 * index) % 4000
    text = f"""\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: {name}
  description: Additive cell {index} of the fleet
extends:
  - {BASES[0]}
  - {BASES[1]}
site:
  location: Plant {index}
network:
  domain: {name}.example.internal
  zones:
    - name: ot
      cidr: {ot}.0/24
      vlan: {vlan}
    - name: it
      cidr: {it}.0/24
      vlan: {vlan + 1}
compute:
  - name: gw-01
    address: {it}.1
    interfaces:
      - zone: ot
        address: {ot}.1
  - name: edge-01
    address: {ot}.{10 + index % 50}
  - name: hist-01
    address: {it}.{10 + index % 50}
equipment:
  - name: printer-01
    address: {ot}.{101 + index % 50}
  - name: printer-02
    address: {ot}.{151 + index % 50}
"""
    return name, text


def generate(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True)
    files = []
    for index in range(count):
        name, text = site(index)
        path = folder / f"{name}.yaml"
        path.write_text(text)
        files.append(path)
    return files


def run_nodekit(sites: list[Path], out: Path) -> None:
    for path in sites:
        blueprint = load(path)
        render(blueprint, out / blueprint.name)


def collect(out: Path) -> list[tuple[Path, bytes]]:
    """Every file nodekit wrote (relative path, bytes), for the floor to write again."""
    return [
        (path.relative_to(out), path.read_bytes())
        for path in sorted(out.rglob("*"))
        if path.is_file()
    ]


def run_floor(sites: list[Path], outputs: list[tuple[Path, bytes]], out: Path) -> None:
    for path in (*BASES, *sites):
        yaml.load(path.read_bytes(), Loader=Loader)
    made: set[Path] = set()
    for rel, content in outputs:
        target = out / rel
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        target.write_bytes(content)


def timed(label: str, attempt: int, fn: Callable[[], None]) -> tuple[float, float]:
    """Wall and CPU seconds of one run."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"render_fleet: {label} run {attempt + 1}: {wall:.2f}s (cpu {cpu:.2f}s)", file=sys.stderr)
    return wall, cpu


def measure(count: int, repeat: int) -> dict[str, Any]:
    """Both sides, run in turns (so that both see the same machine), each into a
    fresh output folder; the best (shortest wall time) run of each side counts."""
    scratch = Path(tempfile.mkdtemp(prefix="nodekit-fleet-"))
    nodekit: list[tuple[float, float]] = []
    floor: list[tuple[float, float]] = []
    try:
        sites = generate(scratch / "sites", count)
        outputs: list[tuple[Path, bytes]] = []
        for attempt in range(repeat):
            out = scratch / f"nodekit-{attempt}"
            nodekit.append(timed("nodekit", attempt, partial(run_nodekit, sites, out)))
            outputs = outputs or collect(out)
            out = scratch / f"floor-{attempt}"
            floor.append(timed("floor", attempt, partial(run_floor, sites, outputs, out)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    (wall, cpu), (floor_wall, floor_cpu) = min(nodekit), min(floor)
    ratio = wall / floor_wall
    return {
        "sites": count,
        "repeat": repeat,
        "files_written": len(outputs),
        "bytes_written": sum(len(content) for _, content in outputs),
        "floor_loader": Loader.__name__,
        "nodekit_s": wall,
        "nodekit_ms_per_site": 1000 * wall / count,
        "nodekit_cpu_ms_per_site": 1000 * cpu / count,
        "nodekit_runs_s": [run[0] for run in nodekit],
        "floor_s": floor_wall,
        "floor_ms_per_site": 1000 * floor_wall / count,
        "floor_cpu_ms_per_site": 1000 * floor_cpu / count,
        "floor_runs_s": [run[0] for run in floor],
        "ratio": ratio,
        "cpu_ratio": cpu / floor_cpu if floor_cpu else None,
        "goal_ratio": GOAL,
        "pass": ratio <= GOAL,
    }


def table(result: dict[str, Any]) -> str:
    cpu_ratio = result["cpu_ratio"]
    rows = [
        ("sites", f"{result['sites']}"),
        ("files written", f"{result['files_written']} ({result['bytes_written']:,} bytes)"),
        ("nodekit total", f"{result['nodekit_s']:.3f} s"),
        ("nodekit per site", f"{result['nodekit_ms_per_site']:.2f} ms"),
        ("floor total", f"{result['floor_s']:.3f} s"),
        ("floor per site", f"{result['floor_ms_per_site']:.2f} ms"),
        ("ratio nodekit/floor", f"{result['ratio']:.2f}x"),
        ("goal", f"<= {result['goal_ratio']:g}x: {'PASS' if result['pass'] else 'MISS'}"),
        (
            "cpu per site",
            f"nodekit {result['nodekit_cpu_ms_per_site']:.2f} ms, "
            f"floor {result['floor_cpu_ms_per_site']:.2f} ms"
            + (f" ({cpu_ratio:.2f}x)" if cpu_ratio else ""),
        ),
    ]
    width = max(len(label) for label, _ in rows)
    note = (
        f"best of {result['repeat']} runs per side (wall time; the goal is on wall time); "
        f"floor parses with yaml.{result['floor_loader']}, each site and each shared base once"
    )
    return "\n".join([*(f"{label:<{width}}  {value}" for label, value in rows), note])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=1000, help="sites to render (1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side, best counts (3)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args(argv)
    if not 1 <= args.sites <= 30_000:
        parser.error("--sites must be between 1 and 30000")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    result = measure(args.sites, args.repeat)
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

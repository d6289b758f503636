"""Benchmark: the PostgreSQL backend's overhead on a no-change deploy.

    .venv/bin/python benchmarks/backend_overhead.py [--rounds N] [--format json]

Two copies of one small node (one host with a broker; own names and
networks), one on the local backend, one on the PostgreSQL of `make
backend` (database nodekit_test, emptied first), each deployed once, then no-change
deploys of both, alternating, side by side in one run. Reports the median
no-change deploy of each and the overhead (seconds and ratio). Goal: the
shared backend adds at most 2 s or 10%. Everything is destroyed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE = """\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: {name}
site:
  region: eu-west
  timezone: UTC
  target: local
network:
  zones:
    - name: cell
      cidr: 10.222.{n}.0/24
compute:
  - name: solo
    role: edge
    zone: cell
    address: 10.222.{n}.10
software:
  - name: broker
    package: mosquitto
    host: solo
    settings:
      users: [edge]
"""


def backend_url() -> str:
    done = subprocess.run(
        ["bash", str(ROOT / "nodekit/toolchain/setup-backend.sh")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return (
        done.stdout.strip().splitlines()[-1].split("=", 1)[1].replace("/nodekit?", "/nodekit_test?")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="nodekit-bench-backend-"))
    os.environ["NODEKIT_STATE"] = str(scratch / "state")
    os.environ.setdefault("NODEKIT_SECRETS_KEY", "benchmark-key-0123456789")
    import psycopg

    from nodekit.blueprint import load
    from nodekit.run import deploy as runs
    from nodekit.run.deploy import RunOptions

    backends = {"local": "local", "postgres": backend_url()}
    with psycopg.connect(backends["postgres"], autocommit=True) as conn:  # the test database
        for table in ("nodekit_meta", "nodekit_locks", "nodekit_files", "nodekit_secrets",
                      "nodekit_runs", "pulumi_state"):  # fmt: skip
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    blueprints = {}
    for n, name in enumerate(backends, start=1):
        site = scratch / f"bench-backend-{name}.yaml"
        site.write_text(SITE.format(name=f"bench-backend-{name}", n=n))
        blueprints[name] = load(site)
    say = (lambda _m: None) if args.format == "json" else (lambda m: print(m, file=sys.stderr))
    times: dict[str, list[float]] = {name: [] for name in backends}
    try:
        for name, url in backends.items():
            say(f"first deploy ({name}) ...")
            first = runs.deploy(blueprints[name], options=RunOptions(backend=url))
            assert first.ok, first.error
        for round_ in range(args.rounds):
            for name, url in backends.items():
                say(f"no-change deploy {round_ + 1}/{args.rounds} ({name}) ...")
                start = time.perf_counter()
                again = runs.deploy(blueprints[name], options=RunOptions(backend=url))
                times[name].append(time.perf_counter() - start)
                assert again.ok, again.error
    finally:
        for name, url in backends.items():
            runs.destroy(blueprints[name], options=RunOptions(backend=url))
    local, shared = (statistics.median(times[n]) for n in backends)
    result = {
        "seconds": {"no-change deploy (local)": local, "no-change deploy (postgres)": shared},
        "overhead_s": shared - local,
        "ratio": shared / local,
        "goal": shared - local <= 2 or shared / local <= 1.10,
        "rounds": times,
    }
    if args.format == "json":
        print(json.dumps(result, indent=2))
        return
    for label, value in result["seconds"].items():  # type: ignore[attr-defined]
        print(f"{label:<32} {value:8.1f} s")
    print(f"{'overhead':<32} {result['overhead_s']:8.2f} s  ({result['ratio']:.2f}x)")
    print(f"{'goal: <= 2 s or 10%':<32} {'PASS' if result['goal'] else 'MISS':>8}")


if __name__ == "__main__":
    main()

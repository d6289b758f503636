"""Benchmark: time to a verified node, and the configure stage against stock Ansible.

    .venv/bin/python benchmarks/deploy_node.py [--format json] [--skip-fresh]

Deploys the example additive cell (under its own name and networks, in a
temporary state folder) on the local target, with the node image and the
site bundle built beforehand ("once image and bundle exist"):

1. first deploy, from nothing to a verified node;
2. a no-change deploy of the same node (skips what is unchanged and still
   matches live), then one with ``--full`` (every stage);
3. the configure stage on the converged node: nodekit's settings (Mitogen,
   pipelining, no fact gathering) against plain ``ansible-playbook`` with
   stock settings, same roles, inventory and variables, side by side;
4. (unless --skip-fresh) the same comparison on freshly created containers,
   the first converge of each side.

Goals: first deploy within 90 s; no-change deploy within 10% of the first;
configure within 0.5x of stock Ansible. Everything it creates is destroyed
at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NODE = "bench-node"
SITE = f"""\
apiVersion: nodekit/v1
kind: Node
metadata:
  name: {NODE}
extends:
  - {ROOT}/blueprints/bases/additive-cell.yaml
  - {ROOT}/blueprints/overlays/eu-west.yaml
network:
  zones:
    - name: ot
      cidr: 10.221.1.0/24
    - name: it
      cidr: 10.221.2.0/24
compute:
  - name: gw-01
    address: 10.221.2.1
    interfaces:
      - zone: ot
        address: 10.221.1.1
  - name: edge-01
    address: 10.221.1.10
  - name: hist-01
    address: 10.221.2.10
equipment:
  - name: printer-01
    address: 10.221.1.101
  - name: printer-02
    address: 10.221.1.102
"""


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def stock_converge(state: Any, scratch: Path) -> float:
    """Plain ansible-playbook, stock settings: only the roles path is given."""
    cfg = scratch / "stock.cfg"
    cfg.write_text(f"[defaults]\nroles_path = {ROOT}/playbooks/roles\n")
    ansible = state.rendered / "ansible"
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(cfg),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i", str(ansible / "inventory.yml"),
        "-i", str(state.root / "inventory-outputs.yml"),
        "-e", f"@{state.secrets_file}",
        str(ansible / "site.yml"),
    ]  # fmt: skip
    start = time.perf_counter()
    run = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"stock ansible-playbook failed:\n{run.stdout[-3000:]}")
    return seconds


def nodekit_converge(state: Any, scratch: Path, node: Any) -> float:
    from nodekit.run.ansible_stage import run_playbook

    seconds, result = timed(
        lambda: run_playbook(
            state.rendered / "ansible",
            Path(tempfile.mkdtemp(dir=scratch)),
            extra_vars_file=state.secrets_file,
            extra_inventory=state.root / "inventory-outputs.yml",
        )
    )
    if not result.ok:
        raise SystemExit(f"nodekit configure failed: {result.failures}")
    return float(seconds)


def fresh_infrastructure(blueprint: Any, node: Any, state: Any) -> None:
    """Recreate the node's containers (no configuration) through the real engine."""
    from nodekit.run.stages import stack as _stack

    stack = _stack(node, state, state.rendered)
    stack.destroy(remove=False)
    stack.up()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--skip-fresh", action="store_true", help="skip step 4")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="nodekit-bench-"))
    os.environ["NODEKIT_STATE"] = str(scratch / "state")
    from nodekit.blueprint import load
    from nodekit.render.plan import plan
    from nodekit.run import deploy as runs
    from nodekit.run.bundle import build_bundle
    from nodekit.run.site_bundle import node_packages
    from nodekit.run.stages import bundle_path
    from nodekit.run.state import NodeState
    from nodekit.toolchain import baseline_status

    site = scratch / f"{NODE}.yaml"
    site.write_text(SITE)
    blueprint = load(site)
    node = plan(blueprint.data)
    state = NodeState.of(NODE)
    say = (lambda _m: None) if args.format == "json" else (lambda m: print(m, file=sys.stderr))
    build_bundle(node_packages(node), bundle_path(node), baseline=baseline_status())  # warm
    rows: dict[str, float] = {}
    try:
        say("first deploy ...")
        rows["first deploy"], first = timed(lambda: runs.deploy(blueprint))
        assert first.ok, first.error
        say("no-change deploy ...")
        rows["no-change deploy"], again = timed(lambda: runs.deploy(blueprint))
        assert again.ok and again.changed == 0, (again.error, again.changed)
        say("no-change deploy --full (every stage) ...")
        full = runs.RunOptions(full=True)
        forced_s, forced = timed(lambda: runs.deploy(blueprint, options=full))
        rows["no-change deploy --full"] = forced_s
        assert forced.ok and forced.changed == 0, (forced.error, forced.changed)
        say("configure, no change: nodekit vs stock ...")
        rows["configure no-change (nodekit)"] = nodekit_converge(state, scratch, node)
        rows["configure no-change (stock)"] = stock_converge(state, scratch)
        if not args.skip_fresh:
            say("configure, fresh containers: stock ...")
            fresh_infrastructure(blueprint, node, state)
            rows["configure first (stock)"] = stock_converge(state, scratch)
            say("configure, fresh containers: nodekit ...")
            fresh_infrastructure(blueprint, node, state)
            rows["configure first (nodekit)"] = nodekit_converge(state, scratch, node)
    finally:
        runs.destroy(blueprint)

    ratios = {
        "no-change / first deploy": rows["no-change deploy"] / rows["first deploy"],
        "no-change --full / first deploy": rows["no-change deploy --full"] / rows["first deploy"],
        "configure no-change nodekit / stock": rows["configure no-change (nodekit)"]
        / rows["configure no-change (stock)"],
    }
    if "configure first (stock)" in rows:
        ratios["configure first nodekit / stock"] = (
            rows["configure first (nodekit)"] / rows["configure first (stock)"]
        )
    goals = {
        "first deploy <= 90 s": rows["first deploy"] <= 90,
        "no-change deploy <= 10% of first": ratios["no-change / first deploy"] <= 0.10,
        "configure <= 0.5x stock (no change)": ratios["configure no-change nodekit / stock"] <= 0.5,
    }
    if "configure first nodekit / stock" in ratios:
        goals["configure <= 0.5x stock (first)"] = ratios["configure first nodekit / stock"] <= 0.5
    if args.format == "json":
        print(json.dumps({"seconds": rows, "ratios": ratios, "goals": goals}, indent=2))
        return
    print(f"{'measure':<36} {'seconds':>8}")
    for name, value in rows.items():
        print(f"{name:<36} {value:8.1f}")
    print()
    for name, value in ratios.items():
        print(f"{name:<36} {value:8.2f}")
    print()
    for name, ok in goals.items():
        print(f"{name:<36} {'PASS' if ok else 'MISS':>8}")


if __name__ == "__main__":
    main()

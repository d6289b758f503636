"""Run a node's rendered testinfra checks and name every failing one by host."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CheckFailure:
    host: str
    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.host}: {self.check}: {self.message}"


@dataclass(frozen=True)
class VerifyResult:
    passed: int
    failures: tuple[CheckFailure, ...]
    seconds: float
    junit: Path

    @property
    def ok(self) -> bool:
        return not self.failures


def _split(name: str) -> tuple[str, str]:
    """``test_service[edge-01:mqtt]`` -> ("edge-01", "service mqtt")."""
    base, _, params = name.partition("[")
    check = base.removeprefix("test_").replace("_", " ")
    parts = params.rstrip("]").split(":") if params else []
    host = parts[0] if parts else ""
    detail = " ".join(parts[1:])
    return host, f"{check} {detail}".strip()


def run_checks(
    tests_dir: Path, run_dir: Path, *, env: dict[str, str] | None = None
) -> VerifyResult:
    """Run the testinfra module(s) of tests_dir with pytest; JUnit XML into run_dir.

    ``env`` (from the target) is added to the environment, e.g. the ssh
    target's NODEKIT_SSH_CONFIG, which the rendered checks pass to testinfra."""
    junit = run_dir / "verify.xml"
    log = run_dir / "verify.log"
    start = time.monotonic()
    with log.open("w") as handle:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                str(tests_dir),
                "-q",
                "-p",
                "no:cacheprovider",
                "--rootdir",
                str(tests_dir),
                "-c",
                str(tests_dir / "pytest.ini"),
                f"--junitxml={junit}",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
            cwd=tests_dir,
            env={**os.environ, **(env or {}), "NODEKIT_LIVE_DIR": str(run_dir)},
        )
    seconds = time.monotonic() - start
    failures: list[CheckFailure] = []
    passed = 0
    root = ET.parse(junit).getroot() if junit.exists() else ET.Element("testsuites")
    for case in root.iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is None:
            if case.find("skipped") is None:
                passed += 1
            continue
        host, check = _split(case.get("name", ""))
        message = (problem.get("message") or "failed").splitlines()[0][:300]
        failures.append(CheckFailure(host, check, message))
    if not root.findall(".//testcase"):
        failures.append(CheckFailure("", "checks", f"pytest ran no check; see {log}"))
    return VerifyResult(passed, tuple(failures), seconds, junit)

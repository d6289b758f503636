"""`software[].version` pins the software's main Debian package (``PackageSpec.main_package``).

The site bundle carries that version, apt installs it, verify checks it. A
version is refused when it is not a Debian version, when the software is one
of nodekit's own agents (its version is nodekit's), or when another software
of the node pins the same package to another version (the node's bundle
carries one version of each package).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from nodekit.blueprint.model import Node
from nodekit.blueprint.packages import PACKAGES
from nodekit.blueprint.report import Report
from nodekit.blueprint.source import show

if TYPE_CHECKING:
    from nodekit.blueprint.rules import Skipped

_EPOCH = re.compile(r"[0-9]+")
_REVISION = re.compile(r"[A-Za-z0-9+.~]+")


def is_debian_version(text: str) -> bool:
    """Debian policy 5.6.12: ``[epoch:]upstream_version[-debian_revision]``.

    The upstream version starts with a digit and holds letters, digits and
    ``. + ~``, a hyphen only when a revision follows (the last hyphen starts
    it), a colon only after an epoch.
    """
    epoch, colon, rest = text.partition(":")
    if not colon:
        rest = text
    elif not _EPOCH.fullmatch(epoch):
        return False
    upstream, hyphen, revision = rest.rpartition("-")
    if not hyphen:
        upstream = rest
    elif not _REVISION.fullmatch(revision):
        return False
    chars = "A-Za-z0-9.+~" + (":" if colon else "") + ("-" if hyphen else "")
    return re.fullmatch(f"[0-9][{chars}]*", upstream) is not None


def check_versions(node: Node, report: Report, skipped: Skipped) -> None:
    pinned: dict[str, tuple[str, str]] = {}  # Debian package -> (software, version)
    for i, item in enumerate(node.software):
        spec = PACKAGES.get(item.package)
        if item.version is None or spec is None:  # (an unknown package is reported)
            continue
        loc = ("software", i, "version")
        if spec.main_package is None:
            report.error(
                loc,
                f"{item.package} is one of nodekit's own agents: its version is nodekit's "
                "(installed from nodekit's wheels in the site bundle), there is no Debian "
                "package to pin: remove version",
            )
        elif not is_debian_version(item.version):
            report.error(
                loc,
                f"{show(item.version)} is not a Debian version: [epoch:]upstream[-revision], "
                "the upstream part starting with a digit, in letters, digits and . + ~ - : "
                "(e.g. 2.0.11-1.2+deb12u1; `apt-cache madison "
                f"{spec.main_package}` lists them)",
            )
        else:
            first = pinned.setdefault(spec.main_package, (item.name, item.version))
            if first[1] != item.version:
                report.error(
                    loc,
                    f"software[{first[0]}] pins {spec.main_package} to {first[1]}: the node's "
                    "site bundle carries one version of each package; pin the same version "
                    "(or pin only one of them)",
                )

"""A new site blueprint, allocated from its region's pool: ``nodekit new site``.

The new file extends a base and a region overlay. Each zone of the composed
base and overlay gets a network from the overlay's ``site.address_pool``,
free across the fleet (every zone of every Node file below the fleet folder,
the local WAN and Docker's default bridge are avoided); the zones of one site
sit side by side in a /16 of their own when the pool has one free (like the
examples: 10.41.1.0/24, 10.41.2.0/24). Then every host, gateway interface and
addressed piece of equipment of the base gets an address in its zone. The
file is validated before it is put in place: a new site always validates.

Nothing here prints; errors are :class:`UsageError` (with a ``fix``) or, if
the result does not validate, :class:`BlueprintError`.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from nodekit.blueprint.compose import Files, absolute, compose, display, draft
from nodekit.blueprint.fields import NAME_PATTERN
from nodekit.blueprint.fleet import LOCAL_WAN
from nodekit.blueprint.loader import composed, validate
from nodekit.blueprint.model import API_VERSION
from nodekit.blueprint.rules import DOCKER_DEFAULT
from nodekit.blueprint.source import Diagnostics
from nodekit.errors import BlueprintError, Diagnostic, UsageError

Network = ipaddress.IPv4Network
SCHEMA_FILE = "nodekit-blueprint-v1.schema.json"
GATEWAY_FROM, HOST_FROM, EQUIPMENT_FROM = 1, 10, 101  # host numbers in a zone
BLOCK_PREFIX = 16  # a site's zones sit in one block of this size when one is free
LARGEST_POOL = 8


@dataclass(frozen=True)
class ZoneCidr:
    name: str
    cidr: str


@dataclass(frozen=True)
class NewSite:
    """What ``new_site`` wrote."""

    file: Path
    node: str
    pool: str
    zones: tuple[ZoneCidr, ...]
    warnings: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True)
class Fleet:
    """What a fleet folder already uses: node names (with their file) and networks."""

    names: dict[str, Path] = field(default_factory=dict)
    networks: tuple[Network, ...] = ()


def new_site(
    name: str,
    *,
    base: str | Path,
    overlay: str | Path,
    output: str | Path | None = None,
    fleet: str | Path | None = None,
) -> NewSite:
    """Write the blueprint of a new site ``name``; see the module's docstring."""
    base_file, overlay_file = _existing(base, "base"), _existing(overlay, "overlay")
    folder = absolute(fleet) if fleet is not None else overlay_file.parent.parent
    if not folder.is_dir():
        raise UsageError(
            f"fleet folder {display(folder)} not found",
            fix="give --fleet DIR, the folder that holds every Node blueprint of the fleet",
        )
    target = absolute(output) if output is not None else folder / "sites" / f"{name}.yaml"
    fleet_now = scan(folder)
    _check_name(name, fleet_now)
    _refuse_overwrite(target)
    merged = _compose(target, name, base_file, overlay_file)
    pool = _pool(merged, overlay_file)
    zones = [z["name"] for z in _items(merged.get("network", {}), "zones")]
    if not zones:
        raise UsageError(
            f"{display(base_file)} and {display(overlay_file)} define no network.zones",
            fix="extend a base that defines the site's zones (names; the networks are allocated)",
        )
    avoid = [*fleet_now.networks, Network(LOCAL_WAN), DOCKER_DEFAULT]
    networks = allocate(pool, len(zones), prefix=24, avoid=avoid)
    allocation = dict(zip(zones, networks, strict=True))
    site = _site(name, target, (base_file, overlay_file), merged, allocation)
    header = _header(name, base_file, overlay_file, pool, folder)
    text = render(site, header=header, schema=_schema(folder, target))
    warnings = _write(target, text)
    cidrs = tuple(ZoneCidr(zone, str(network)) for zone, network in allocation.items())
    return NewSite(target, name, str(pool), cidrs, warnings)


def scan(folder: Path) -> Fleet:
    """Names and zone networks of every Node file below ``folder``, valid or not."""
    names: dict[str, Path] = {}
    networks: list[Network] = []
    for path, data in composed([folder]):
        if not isinstance(data, dict):
            continue
        metadata = data.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if isinstance(name, str):
            names.setdefault(name, path)
        for zone in _items(data.get("network"), "zones"):
            try:
                networks.append(Network(str(zone.get("cidr")), strict=False))
            except ValueError:
                continue
    return Fleet(names, tuple(networks))


def allocate(pool: Network, count: int, *, prefix: int, avoid: Iterable[Network]) -> list[Network]:
    """``count`` networks of size ``prefix`` from ``pool`` that overlap nothing in ``avoid``.

    Preferably in a /16 block nobody uses (skipping its first subnet, as the
    examples do), else side by side in one block, else wherever they fit.
    """
    taken = list(avoid)
    if pool.prefixlen > prefix:
        raise _exhausted(pool, count, prefix, f"the pool is smaller than one /{prefix}")
    if pool.prefixlen < LARGEST_POOL:
        raise UsageError(
            f"address pool {pool} is larger than a /{LARGEST_POOL}",
            fix=f"give the region a pool of /{LARGEST_POOL} or smaller in site.address_pool",
        )

    def free(network: Network) -> bool:
        return not any(network.overlaps(other) for other in taken)

    blocks = list(pool.subnets(new_prefix=min(max(pool.prefixlen, BLOCK_PREFIX), prefix)))
    for block in blocks:
        if free(block):
            fresh = list(itertools.islice(block.subnets(new_prefix=prefix), 1, count + 1))
            if len(fresh) == count:
                return fresh
    for block in blocks:
        run: list[Network] = []
        for subnet in block.subnets(new_prefix=prefix):
            run = [*run, subnet] if free(subnet) else []
            if len(run) == count:
                return run
    found = list(itertools.islice(filter(free, pool.subnets(new_prefix=prefix)), count))
    if len(found) == count:
        return found
    raise _exhausted(pool, count, prefix, f"only {len(found)} free /{prefix} left")


def _exhausted(pool: Network, count: int, prefix: int, why: str) -> UsageError:
    return UsageError(
        f"address pool {pool} is exhausted: the site needs {count} free /{prefix} "
        f"network(s), {why} (the fleet's zones, the local WAN and Docker's bridge excluded)",
        fix="widen site.address_pool in the region overlay, or free networks in the fleet",
    )


def _existing(path: str | Path, what: str) -> Path:
    found = absolute(path)
    if not found.is_file():
        flag = "--extends" if what == "base" else "--overlay"
        raise UsageError(
            f"{what} file {path} not found",
            fix=f"give {flag} an existing blueprint file, e.g. blueprints/"
            + ("bases/additive-cell.yaml" if what == "base" else "overlays/eu-west.yaml"),
        )
    return found


def _check_name(name: str, fleet: Fleet) -> None:
    if not re.match(NAME_PATTERN, name):
        raise UsageError(
            f"{name!r} is not a valid node name",
            fix="lowercase letters, digits and '-', starting with a letter, ending with a "
            "letter or digit, at most 63 characters (e.g. lyon-additive-02)",
        )
    if name in fleet.names:
        raise UsageError(
            f"node name '{name}' is already used by {display(fleet.names[name])}",
            fix="choose another NAME (node names are unique across the fleet)",
        )


def _refuse_overwrite(target: Path) -> None:
    if target.exists():
        raise UsageError(
            f"{display(target)} already exists: nodekit new site never overwrites a file",
            fix="choose another file with -o FILE, or remove the existing one first",
        )


def _compose(target: Path, name: str, base: Path, overlay: Path) -> dict[str, Any]:
    """The merged base and overlay, seen from ``target`` (a stub Node extending both)."""
    files = Files()
    stub = (
        f"apiVersion: {API_VERSION}\nkind: Node\nmetadata: {{name: {name}}}\n"
        f"extends: [{_relative(base, target)!r}, {_relative(overlay, target)!r}]\n"
    )
    files.cache[target] = draft(target, stub)
    diagnostics = Diagnostics()
    root = compose(files, target, diagnostics).root
    errors = [d for d in diagnostics.items if d.severity == "error"]
    if errors or root is None or not isinstance(root.plain(), dict):
        raise BlueprintError(errors)
    merged: dict[str, Any] = root.plain()
    return merged


def _pool(merged: dict[str, Any], overlay: Path) -> Network:
    site = merged.get("site")
    value = site.get("address_pool") if isinstance(site, dict) else None
    if value is None:
        raise UsageError(
            f"{display(overlay)} has no site.address_pool: nowhere to allocate the zones from",
            fix="add `address_pool: CIDR` under `site:` in the region overlay "
            "(e.g. 10.40.0.0/14; a range no other region uses)",
        )
    try:
        return Network(str(value))
    except ValueError:
        raise UsageError(
            f"site.address_pool {value!r} in {display(overlay)} is not a network",
            fix="write ADDRESS/PREFIX with no host bits, e.g. 10.40.0.0/14",
        ) from None


def _items(mapping: Any, key: str) -> list[dict[str, Any]]:
    """The named items of a list in plain data (anything else left out)."""
    value = mapping.get(key) if isinstance(mapping, dict) else None
    items = value if isinstance(value, list) else []
    return [i for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)]


def _relative(path: Path, target: Path) -> str:
    return Path(os.path.relpath(path, target.parent)).as_posix()


class _Addresses:
    """Hands out free addresses of each zone, from a start host number up."""

    def __init__(self, zones: dict[str, Network]) -> None:
        self.zones = zones
        self.used: set[ipaddress.IPv4Address] = set()

    def take(self, zone: str, start: int) -> str | None:
        network = self.zones.get(zone)
        if network is None:
            return None
        for address in itertools.islice(network.hosts(), start - 1, None):
            if address not in self.used:
                self.used.add(address)
                return str(address)
        return None


def _site(
    name: str,
    target: Path,
    extends: tuple[Path, Path],
    merged: dict[str, Any],
    zones: dict[str, Network],
) -> dict[str, Any]:
    """The new file's document: what is the site's own, the rest inherited."""
    addresses = _Addresses(zones)
    hosts = _items(merged, "compute")
    compute = [_host(host, zones, addresses) for host in hosts]
    zone_of = {h["name"]: h.get("zone") for h in hosts}
    equipment = list(_equipment(_items(merged, "equipment"), zone_of, addresses))
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Node",
        "metadata": {"name": name},
        "extends": [_relative(path, target) for path in extends],
        "network": {"zones": [{"name": z, "cidr": str(n)} for z, n in zones.items()]},
        "compute": compute,
    }
    if equipment:
        document["equipment"] = equipment
    return document


def _host(host: dict[str, Any], zones: dict[str, Network], pool: _Addresses) -> dict[str, Any]:
    zone = str(host.get("zone"))
    if host.get("role") != "gateway":
        return {"name": host["name"], "address": pool.take(zone, HOST_FROM)}
    listed = [i.get("zone") for i in host.get("interfaces") or [] if isinstance(i, dict)]
    others = [z for z in (listed or list(zones)) if z in zones and z != zone]
    interfaces = [{"zone": z, "address": pool.take(z, GATEWAY_FROM)} for z in others]
    item: dict[str, Any] = {"name": host["name"], "address": pool.take(zone, GATEWAY_FROM)}
    if interfaces:
        item["interfaces"] = interfaces
    return item


def _equipment(
    items: list[dict[str, Any]], zone_of: dict[str, Any], pool: _Addresses
) -> Iterator[dict[str, Any]]:
    """An address for each entry that talks over the network (protocol, port or address)."""
    for item in items:
        if not any(item.get(key) is not None for key in ("protocol", "port", "address")):
            continue
        zone = item.get("zone") or zone_of.get(str(item.get("host")))
        if not isinstance(zone, str):
            continue
        entry: dict[str, Any] = {"name": item["name"]}
        if item.get("zone") is None:
            entry["zone"] = zone
        entry["address"] = pool.take(zone, EQUIPMENT_FROM)
        yield entry


def _header(name: str, base: Path, overlay: Path, pool: Network, folder: Path) -> list[str]:
    about = (
        f"Its zones come from the region's pool {pool}, free across the fleet in "
        f"{display(folder)}; its hosts, gateway interfaces and equipment got addresses "
        "in them. Edit it like any blueprint."
    )
    return [
        f"Site {name}, made by:",
        f"  nodekit new site {name} \\",
        f"    --extends {display(base)} \\",
        f"    --overlay {display(overlay)}",
        *textwrap.wrap(about, width=76),
    ]


def _schema(folder: Path, target: Path) -> str | None:
    schema = folder / SCHEMA_FILE
    return _relative(schema, target) if schema.is_file() else None


class _Dumper(yaml.SafeDumper):
    """Block style, list items indented under their key (as yamllint and the examples like)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def render(document: dict[str, Any], *, header: list[str], schema: str | None) -> str:
    """The file's text: the schema line for editors, the header as a comment, the document."""
    lines = [f"# yaml-language-server: $schema={schema}", "#"] if schema else []
    lines += [f"# {line}".rstrip() for line in header]
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    return "\n".join(lines) + "\n" + body


def _write(target: Path, text: str) -> tuple[Diagnostic, ...]:
    """Validate ``text`` as ``target`` (from a hidden draft beside it), then put it in place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.new")
    scratch.write_text(text)
    try:
        result = validate([scratch])
        if not result.ok:
            raise BlueprintError([_renamed(d, scratch, target) for d in result.diagnostics])
        _refuse_overwrite(target)
        scratch.replace(target)
    finally:
        scratch.unlink(missing_ok=True)
    return tuple(_renamed(d, scratch, target) for d in result.diagnostics)


def _renamed(diagnostic: Diagnostic, scratch: Path, target: Path) -> Diagnostic:
    if diagnostic.file != display(scratch):
        return diagnostic
    return replace(diagnostic, file=display(target))

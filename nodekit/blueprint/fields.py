"""The field types of the blueprint model (:mod:`nodekit.blueprint.model`):
names, DNS names, IPv4 addresses and networks, ports and port ranges, time
zones, Purdue levels and SSH public keys, each with the validator that checks
one value and the JSON Schema hints editors show.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import zoneinfo
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from nodekit.blueprint.source import did_you_mean

NAME_PATTERN = r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
PORT_PATTERN = r"^([0-9]{1,5})(-([0-9]{1,5}))?/(tcp|udp)$"
DNS_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
_NAME = re.compile(NAME_PATTERN)
_PORT = re.compile(PORT_PATTERN)
_DNS = re.compile(DNS_PATTERN)


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: lowercase letters, digits and '-', "
            "starting with a letter, ending with a letter or digit, at most 63 characters"
        )
    return value


def _dns(value: str) -> str:
    if len(value) > 253 or not _DNS.match(value):
        raise ValueError(f"{value!r} is not a DNS name (lowercase labels joined by '.')")
    return value


@functools.lru_cache(maxsize=4096)  # every load validates each address twice
def _ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None


@functools.lru_cache(maxsize=4096)
def _cidr(value: str) -> str:
    if "/" not in value:
        raise ValueError(f"{value!r} is not a network: write ADDRESS/PREFIX, e.g. 10.41.1.0/24")
    try:
        return str(ipaddress.IPv4Network(value))
    except ValueError:
        pass
    try:
        network = ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 network like 10.41.1.0/24") from None
    raise ValueError(f"{value!r} has host bits set (did you mean '{network}'?)")


def parse_port(value: str) -> tuple[int, int, str]:
    """`"1883/tcp"` -> `(1883, 1883, "tcp")`; `"8000-8010/udp"` -> `(8000, 8010, "udp")`."""
    match = _PORT.match(value)
    if not match:
        raise ValueError(f"{value!r} is not PORT/PROTO (e.g. '1883/tcp' or '8000-8010/udp')")
    low = int(match.group(1))
    high = int(match.group(3) or low)
    for port in (low, high):
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} in {value!r} is outside 1..65535")
    if high < low:
        raise ValueError(f"range {value!r} goes down: write LOW-HIGH")
    return low, high, match.group(4)


def _port(value: str) -> str:
    low, high, _ = parse_port(value)
    if low != high:
        raise ValueError(f"{value!r} is a range: give one PORT/PROTO here")
    return value


def _port_range(value: str) -> str:
    parse_port(value)
    return value


def _timezone(value: str) -> str:
    if value not in _timezones():
        hint = did_you_mean(value, _timezones()) or " (e.g. Europe/Paris, America/Chicago, UTC)"
        raise ValueError(f"{value!r} is not an IANA time zone{hint}")
    return value


def _schema(**extra: Any) -> Any:
    return Field(json_schema_extra=extra)


PURDUE_LEVELS = (0, 1, 2, 3, 3.5, 4, 5)


def _purdue(value: float) -> float:
    if value not in PURDUE_LEVELS:
        raise ValueError(f"{value:g} is not a Purdue level: one of 0, 1, 2, 3, 3.5 (DMZ), 4, 5")
    return int(value) if float(value).is_integer() else value


Name = Annotated[str, AfterValidator(_name), _schema(pattern=NAME_PATTERN)]
DnsName = Annotated[str, AfterValidator(_dns), _schema(pattern=DNS_PATTERN)]
IPv4 = Annotated[str, AfterValidator(_ipv4), _schema(format="ipv4")]
Cidr = Annotated[str, AfterValidator(_cidr), _schema(examples=["10.41.1.0/24"])]
Port = Annotated[str, AfterValidator(_port), _schema(pattern=r"^[0-9]{1,5}/(tcp|udp)$")]
PortRange = Annotated[str, AfterValidator(_port_range), _schema(pattern=PORT_PATTERN)]
Timezone = Annotated[str, AfterValidator(_timezone), _schema(examples=["Europe/Paris"])]
TcpPort = Annotated[int, Field(ge=1, le=65535)]
PUBLIC_KEY = (
    r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+)"
    r" [A-Za-z0-9+/]+={0,3}( .*)?$"
)

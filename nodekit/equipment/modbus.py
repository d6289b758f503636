"""Modbus TCP: the register map shared by the twin and the reader, and a tiny
stdlib client (function code 3, read holding registers).

The client deliberately does not use pymodbus: the twin serves with pymodbus,
the reader speaks raw MBAP frames, so each checks the other.

``python -m nodekit_equipment.modbus --host H [--port 502] [--count 8]`` dumps
the holding registers of a device (unit id 1).
"""

import argparse
import socket
import struct
from dataclasses import dataclass

from .sim import STATE_CODES, MachineStatus

UNIT_ID = 1
FC_READ_HOLDING = 3
ALL_KINDS = frozenset({"printer", "cnc", "plc", "sensor", "camera", "robot"})
MACHINE_KINDS = ALL_KINDS - {"sensor"}
SENSOR_KINDS = frozenset({"sensor"})


@dataclass(frozen=True)
class Register:
    """One value in the holding registers (4xxxx, zero-based addresses)."""

    address: int
    words: int  # 1 = 16 bit, 2 = 32 bit with the high word first
    metric: str  # metric name in readings and telemetry ("state" is the state code)
    signed: bool
    scale: float  # engineering value = raw * scale
    unit: str
    kinds: frozenset[str]  # equipment kinds whose readings include this value
    description: str


REGISTER_MAP: tuple[Register, ...] = (
    Register(0, 1, "state", False, 1, "", ALL_KINDS, "state code: 0 idle, 1 running, 2 error"),
    Register(1, 2, "cycle_count", False, 1, "", ALL_KINDS, "cycles (sensors: measurements)"),
    Register(3, 1, "spindle_rpm", False, 1, "rpm", MACHINE_KINDS, "spindle speed"),
    Register(4, 1, "temperature", True, 0.1, "°C", ALL_KINDS, "temperature in 0.1 °C"),
    Register(5, 1, "spindle_load", False, 0.1, "%", MACHINE_KINDS, "spindle load in 0.1 %"),
    Register(6, 1, "humidity", False, 0.1, "%RH", SENSOR_KINDS, "relative humidity, 0.1 %"),
    Register(7, 1, "pressure", False, 0.1, "hPa", SENSOR_KINDS, "air pressure in 0.1 hPa"),
)
REGISTER_COUNT = max(r.address + r.words for r in REGISTER_MAP)

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


def encode(status: MachineStatus) -> list[int]:
    """The holding registers 0..REGISTER_COUNT-1 for a machine status."""
    regs = [0] * REGISTER_COUNT
    values: dict[str, float] = {
        "state": status.state_code,
        "cycle_count": status.cycle_count,
        "spindle_rpm": status.spindle_rpm,
        "temperature": status.temperature,
        "spindle_load": status.spindle_load,
        "humidity": status.humidity,
        "pressure": status.pressure,
    }
    for reg in REGISTER_MAP:
        raw = round(values[reg.metric] / reg.scale)
        bits = 16 * reg.words
        low, high = (
            (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if reg.signed else (0, (1 << bits) - 1)
        )
        raw = min(max(raw, low), high) & ((1 << bits) - 1)
        for i in range(reg.words):
            regs[reg.address + i] = (raw >> (16 * (reg.words - 1 - i))) & 0xFFFF
    return regs


def decode(regs: list[int], kind: str) -> tuple[str, dict[str, float]]:
    """(state text, metrics) from holding registers 0..REGISTER_COUNT-1."""
    if len(regs) < REGISTER_COUNT:
        raise ValueError(f"expected {REGISTER_COUNT} registers, got {len(regs)}")
    state = "unknown"
    metrics: dict[str, float] = {}
    for reg in REGISTER_MAP:
        raw = 0
        for i in range(reg.words):
            raw = (raw << 16) | regs[reg.address + i]
        bits = 16 * reg.words
        if reg.signed and raw >= 1 << (bits - 1):
            raw -= 1 << bits
        if reg.metric == "state":
            state = STATE_CODES.get(raw, f"code {raw}")
        elif kind in reg.kinds:
            metrics[reg.metric] = float(round(raw * reg.scale, 6))
    return state, metrics


class ModbusError(Exception):
    """A Modbus exception response or a malformed frame."""


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the device")
        data += chunk
    return data


def read_holding_registers(
    host: str,
    port: int,
    address: int,
    count: int,
    *,
    unit: int = UNIT_ID,
    timeout: float = 3.0,
    transaction: int = 1,
) -> list[int]:
    """Read ``count`` holding registers from ``address`` (function code 3).

    Raises :class:`OSError` (refused, timeout, closed) or :class:`ModbusError`
    (exception response, malformed answer).
    """
    if not 1 <= count <= 125:
        raise ValueError("count must be 1..125")
    request = struct.pack(">HHHBBHH", transaction, 0, 6, unit, FC_READ_HOLDING, address, count)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(request)
        tid, proto, length, r_unit = struct.unpack(">HHHB", _recv_exact(sock, 7))
        if proto != 0 or not 2 <= length <= 254:
            raise ModbusError(f"not a Modbus TCP answer (protocol {proto}, length {length})")
        pdu = _recv_exact(sock, length - 1)
    if tid != transaction or r_unit != unit:
        raise ModbusError(f"answer for transaction {tid} unit {r_unit}, expected {transaction}")
    function = pdu[0]
    if function == FC_READ_HOLDING | 0x80:
        code = pdu[1] if len(pdu) > 1 else 0
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        raise ModbusError(f"exception {code} ({name}) reading {count} registers at {address}")
    if (
        function != FC_READ_HOLDING
        or len(pdu) < 2
        or pdu[1] != 2 * count
        or len(pdu) != 2 + 2 * count
    ):
        raise ModbusError(f"malformed answer to function {FC_READ_HOLDING}")
    return list(struct.unpack(f">{count}H", pdu[2:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nodekit_equipment.modbus", description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=502)
    parser.add_argument("--address", type=int, default=0)
    parser.add_argument("--count", type=int, default=REGISTER_COUNT)
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    try:
        regs = read_holding_registers(
            args.host, args.port, args.address, args.count, timeout=args.timeout
        )
    except (OSError, ModbusError) as exc:
        print(f"modbus-tcp at {args.host}:{args.port}: {exc}")
        return 1
    for i, value in enumerate(regs):
        print(f"HR{args.address + i}\t{value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

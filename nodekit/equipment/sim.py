"""Simulated machines: plausible values that change with wall-clock time.

A :class:`Machine` is driven by a clock (``time.time`` unless a test injects
its own) and a fault state: ``ok``, ``error`` or ``offline``. Work (print
progress, cycle counters) advances only while the machine is ``ok``; in
``error`` every value stays readable and the state says ``error``.

``python -m nodekit_equipment.sim --name printer-01 --kind printer`` prints a
few snapshots, handy to eyeball the values.
"""

import argparse
import json
import math
import random
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .common import Equipment

FAULTS = ("ok", "error", "offline")
STATE_CODES: dict[int, str] = {0: "idle", 1: "running", 2: "error", 3: "offline"}
STATE_NUMBERS: dict[str, int] = {text: code for code, text in STATE_CODES.items()}
AMBIENT_C = 24.0
CYCLE_S = 3.0  # one machine cycle every 3 s
SAMPLE_S = 1.0  # a sensor takes one measurement a second

Clock = Callable[[], float]


@dataclass(frozen=True)
class PrinterStatus:
    """What a 3D printer reports (Moonraker / OctoPrint twins)."""

    state: str  # printing | complete | error
    message: str
    filename: str
    progress: float  # 0..1
    print_duration: float  # s spent printing the current job
    total_duration: float  # s since the job started, pauses included
    estimated_time: float  # s the whole job takes
    filament_used: float  # mm
    extruder_temp: float
    extruder_target: float
    extruder_power: float  # 0..1
    bed_temp: float
    bed_target: float
    bed_power: float


@dataclass(frozen=True)
class MachineStatus:
    """What a PLC, CNC, robot or sensor reports (Modbus / OPC UA / MQTT twins)."""

    state: str  # running | error
    state_code: int  # see STATE_CODES
    cycle_count: int
    spindle_rpm: float
    spindle_load: float  # %
    temperature: float  # °C
    humidity: float  # %RH
    pressure: float  # hPa


PRINTER_METRICS = (
    "extruder_temp",
    "extruder_target",
    "extruder_power",
    "bed_temp",
    "bed_target",
    "bed_power",
    "progress",
    "print_duration",
    "filament_used",
)
MACHINE_METRICS = ("cycle_count", "spindle_rpm", "spindle_load", "temperature")
SENSOR_METRICS = ("cycle_count", "temperature", "humidity", "pressure")


def metrics_for_kind(kind: str) -> tuple[str, ...]:
    """The metric names a machine of this kind publishes over MQTT."""
    if kind == "printer":
        return PRINTER_METRICS
    if kind == "sensor":
        return SENSOR_METRICS
    return MACHINE_METRICS


class Machine:
    """A simulated machine; thread-safe, cheap to query on every request."""

    def __init__(
        self,
        equipment: Equipment,
        *,
        clock: Clock = time.time,
        job_s: float = 90.0,
        complete_s: float = 5.0,
    ) -> None:
        self.equipment = equipment
        self.clock = clock
        self.job_s = job_s
        self.complete_s = complete_s
        seed = zlib.crc32(equipment.name.encode())
        self._rng = random.Random(seed)
        self._first_job = 1 + seed % 400
        self._base_cycles = 10_000 + seed % 50_000
        self._lock = threading.Lock()
        self._fault = "ok"
        self._run_before = 0.0  # s of work done before the current ok-period
        self._run_since: float | None = clock()
        self._fault_since = clock()

    @property
    def fault(self) -> str:
        return self._fault

    def set_fault(self, fault: str) -> bool:
        """Switch to ``ok``, ``error`` or ``offline``; True when it changed."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault state {fault!r} (one of {', '.join(FAULTS)})")
        with self._lock:
            if fault == self._fault:
                return False
            now = self.clock()
            if self._run_since is not None:
                self._run_before += max(0.0, now - self._run_since)
            self._run_since = now if fault == "ok" else None
            self._fault = fault
            self._fault_since = now
            return True

    def worked_s(self, now: float | None = None) -> float:
        """Seconds this machine has spent working (``ok``) since it was created."""
        now = self.clock() if now is None else now
        with self._lock:
            extra = 0.0 if self._run_since is None else max(0.0, now - self._run_since)
            return self._run_before + extra

    def _noise(self, spread: float) -> float:
        return self._rng.uniform(-spread, spread)

    def _cooling(self, start: float, now: float) -> float:
        """Temperature of a heater switched off at the last fault change."""
        return AMBIENT_C + (start - AMBIENT_C) * math.exp(-(now - self._fault_since) / 120.0)

    def printer(self) -> PrinterStatus:
        now = self.clock()
        worked = self.worked_s(now)
        period = self.job_s + self.complete_s
        job_index, into = divmod(worked, period)
        filename = f"part-{self._first_job + int(job_index):04d}.gcode"
        progress = min(1.0, into / self.job_s)
        printing = into < self.job_s
        if self._fault != "ok":
            state = "error"
            message = "MCU 'mcu' shutdown: Heater extruder not heating at expected rate"
            ext_target = bed_target = 0.0
            ext_temp = self._cooling(215.0, now) + self._noise(0.3)
            bed_temp = self._cooling(60.0, now) + self._noise(0.2)
            ext_power = bed_power = 0.0
        else:
            state = "printing" if printing else "complete"
            message = "" if printing else "Print finished"
            ext_target, bed_target = 215.0, 60.0
            ext_temp = ext_target + self._noise(0.6)
            bed_temp = bed_target + self._noise(0.3)
            ext_power = 0.38 + self._noise(0.05)
            bed_power = 0.27 + self._noise(0.04)
        return PrinterStatus(
            state=state,
            message=message,
            filename=filename,
            progress=round(progress, 4),
            print_duration=round(progress * self.job_s, 3),
            total_duration=round(into, 3),
            estimated_time=self.job_s,
            filament_used=round(progress * 2350.0, 2),
            extruder_temp=round(ext_temp, 2),
            extruder_target=ext_target,
            extruder_power=round(ext_power, 3),
            bed_temp=round(bed_temp, 2),
            bed_target=bed_target,
            bed_power=round(bed_power, 3),
        )

    def machine(self) -> MachineStatus:
        now = self.clock()
        worked = self.worked_s(now)
        sensor = self.equipment.kind == "sensor"
        error = self._fault != "ok"
        cycles = self._base_cycles + int(worked // (SAMPLE_S if sensor else CYCLE_S))
        if sensor:
            rpm = load = 0.0
            temperature = 21.5 + 0.8 * math.sin(now / 600.0) + self._noise(0.1)
        elif error:
            rpm = load = 0.0
            temperature = self._cooling(38.5, now) + self._noise(0.1)
        else:
            rpm = 12_000.0 + self._noise(40.0)
            load = 42.0 + self._noise(6.0)
            temperature = 38.5 + self._noise(0.4)
        state = "error" if error else "running"
        return MachineStatus(
            state=state,
            state_code=STATE_NUMBERS[state],
            cycle_count=cycles,
            spindle_rpm=round(rpm, 1),
            spindle_load=round(load, 1),
            temperature=round(temperature, 2),
            humidity=round(45.0 + 5.0 * math.sin(now / 900.0) + self._noise(0.5), 1),
            pressure=round(1013.2 + self._noise(0.4), 1),
        )

    def reading(self) -> tuple[str, dict[str, float]]:
        """(state text, metrics) as the MQTT twin publishes them for this kind."""
        names = metrics_for_kind(self.equipment.kind)
        values: dict[str, float]
        if self.equipment.kind == "printer":
            p = self.printer()
            values = {k: float(v) for k, v in asdict(p).items() if k in names}
            return p.state, values
        m = self.machine()
        values = {k: float(v) for k, v in asdict(m).items() if k in names}
        return m.state, values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nodekit_equipment.sim", description=__doc__)
    parser.add_argument("--name", default="sim-01")
    parser.add_argument("--kind", default="plc")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--every", type=float, default=1.0)
    args = parser.parse_args(argv)
    machine = Machine(Equipment(args.name, args.kind, "mqtt", "127.0.0.1", None))
    for i in range(args.count):
        if i:
            time.sleep(args.every)
        state, values = machine.reading()
        print(json.dumps({"state": state, "metrics": values}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

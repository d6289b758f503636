"""The simulation: values move with time, jobs cycle, faults freeze work."""

from __future__ import annotations

import pytest
from equipment_helpers import FakeClock

from nodekit.equipment.common import Equipment
from nodekit.equipment.sim import MACHINE_METRICS, SENSOR_METRICS, Machine


def machine(kind: str, clock: FakeClock, **kw: float) -> Machine:
    return Machine(Equipment("m-01", kind, "mqtt", "127.0.0.1", None), clock=clock, **kw)


def test_printer_job_progresses_completes_and_a_new_job_starts() -> None:
    clock = FakeClock()
    m = machine("printer", clock, job_s=90.0, complete_s=5.0)
    first = m.printer()
    assert first.state == "printing"
    assert first.filename.startswith("part-") and first.filename.endswith(".gcode")
    clock.advance(45)
    half = m.printer()
    assert half.progress == pytest.approx(0.5)
    assert half.print_duration == pytest.approx(45.0)
    assert half.filament_used > first.filament_used
    assert 213 < half.extruder_temp < 217 and half.extruder_target == 215
    assert 59 < half.bed_temp < 61 and half.bed_target == 60
    clock.advance(47)
    done = m.printer()
    assert (done.state, done.progress, done.filename) == ("complete", 1.0, first.filename)
    clock.advance(5)
    nxt = m.printer()
    assert nxt.state == "printing" and nxt.progress < 0.05
    assert int(nxt.filename[5:9]) == int(first.filename[5:9]) + 1


def test_error_stops_work_but_values_stay_readable() -> None:
    clock = FakeClock()
    m = machine("plc", clock)
    clock.advance(30)
    running = m.machine()
    assert running.state == "running" and running.state_code == 1
    assert 11_800 < running.spindle_rpm < 12_200 and 37 < running.temperature < 40
    assert m.set_fault("error") is True
    assert m.set_fault("error") is False
    clock.advance(60)
    broken = m.machine()
    assert broken.state == "error" and broken.state_code == 2
    assert broken.cycle_count == running.cycle_count  # the counter stands still in error
    assert broken.temperature > 20  # readable, cooling down
    m.set_fault("ok")
    clock.advance(9)
    assert m.machine().cycle_count == running.cycle_count + 3  # one cycle per 3 s


def test_printer_error_state() -> None:
    clock = FakeClock()
    m = machine("printer", clock)
    m.set_fault("error")
    p = m.printer()
    assert p.state == "error" and p.message and p.extruder_target == 0


def test_unknown_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        machine("plc", FakeClock()).set_fault("broken")


@pytest.mark.parametrize(("kind", "names"), [("sensor", SENSOR_METRICS), ("cnc", MACHINE_METRICS)])
def test_reading_has_the_kind_metrics(kind: str, names: tuple[str, ...]) -> None:
    clock = FakeClock()
    m = machine(kind, clock)
    state, values = m.reading()
    assert state == "running" and set(values) == set(names)
    if kind == "sensor":
        assert 30 < values["humidity"] < 60 and 1000 < values["pressure"] < 1030
    clock.advance(10)
    assert m.reading()[1]["cycle_count"] > values["cycle_count"]

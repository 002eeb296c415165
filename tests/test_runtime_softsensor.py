"""Soft-sensor block of the runtime: quality rules, T²/Q tags, references, the paced clock."""

from __future__ import annotations

import json
import math
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgectl import spectra as sp
from edgectl.devices import Spectrum
from edgectl.errors import ConfigError, DeviceTimeoutError, SpectrumShapeError
from edgectl.quality import Quality
from edgectl.runtime.clock import LockstepClock
from edgectl.runtime.reactor_config import SoftSensorConfig, SoftSensorCorrection
from edgectl.runtime.softsensor import STATUS_CODES, SoftSensorBlock, SoftSensorSet
from edgectl.runtime.tags import TagStore

AXIS = np.linspace(400.0, 1800.0, 300)
BAND = np.exp(-(((AXIS - 1125.0) / 15.0) ** 2))
OTHER = np.exp(-(((AXIS - 1500.0) / 20.0) ** 2))


def _spectrum(conc: float, rng: np.random.Generator, extra: float = 0.0) -> np.ndarray:
    return 1.0 + 0.05 * conc * BAND + extra * OTHER + 0.001 * rng.standard_normal(AXIS.size)


@pytest.fixture(scope="module")
def sensor() -> sp.SoftSensor:
    rng = np.random.default_rng(1)
    conc = rng.uniform(0.0, 5.0, 60)
    x = np.array([_spectrum(c, rng) for c in conc])
    return sp.SoftSensor.fit(AXIS, x, conc, [sp.MeanCenter()], 1, units=("g/L",))


CLOCK = [0.0]


class FakeDriver:
    def __init__(self, axis: np.ndarray = AXIS) -> None:
        self.axis = axis
        self.next: np.ndarray | Exception = np.ones(axis.size)
        self.seq = 0
        self.saturated = False

    def read_axis(self) -> np.ndarray:
        return self.axis

    def acquire(self) -> Spectrum:
        if isinstance(self.next, Exception):
            raise self.next
        self.seq += 1
        return Spectrum(self.axis, self.next, self.seq, 1000, self.saturated)


class SyncWorker:
    """Runs submitted calls at once (the I/O worker's thread, without the thread)."""

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args))
        except Exception as exc:
            fut.set_exception(exc)
        return fut


def _block(
    sensor: sp.SoftSensor, driver: FakeDriver, correction: SoftSensorCorrection | None = None
) -> tuple[SoftSensorBlock, TagStore]:
    cfg = SoftSensorConfig(
        model="m.json", spectrometer="raman", tag="glc", period_s=60.0, correction=correction
    )
    block = SoftSensorBlock("glucose", cfg, sensor, driver, SyncWorker(), lambda: CLOCK[0])
    block.check_instrument()
    tags = TagStore()
    SoftSensorSet({"glucose": block}).define_tags(tags)
    return block, tags


def _scan(block: SoftSensorBlock, tags: TagStore, t: float) -> None:
    CLOCK[0] = t
    block.update(tags, t)  # starts an acquisition (runs at once here)
    block.update(tags, t)  # collects it


def test_in_model_is_good_with_t2_and_q(sensor: sp.SoftSensor) -> None:
    drv = FakeDriver()
    drv.next = _spectrum(2.0, np.random.default_rng(5))
    block, tags = _block(sensor, drv)
    _scan(block, tags, 0.0)
    s = tags.read("glc", 0.0)
    assert s.quality is Quality.GOOD
    assert abs(s.value - 2.0) < 0.1
    assert tags.read("glc.status", 0.0).value == STATUS_CODES["in_model"]
    assert math.isfinite(tags.read("glc.t2", 0.0).value)
    assert math.isfinite(tags.read("glc.q", 0.0).value)
    assert tags.tag("glc").unit == "g/L"
    assert tags.tag("glc").max_age_s == 180.0  # 3 × period


def test_out_of_model_keeps_the_value_but_bad(sensor: sp.SoftSensor) -> None:
    drv = FakeDriver()
    drv.next = _spectrum(2.0, np.random.default_rng(5), extra=0.5)  # a band never calibrated
    block, tags = _block(sensor, drv)
    _scan(block, tags, 0.0)
    s = tags.read("glc", 0.0)
    assert s.quality is Quality.BAD
    assert math.isfinite(s.value)
    assert tags.read("glc.status", 0.0).value == STATUS_CODES["out_of_model"]
    assert tags.read("glc.q", 0.0).value > sensor.q_limit


@pytest.mark.parametrize(
    ("spectrum", "saturated", "status"),
    [
        (np.full(AXIS.size, 0.05), False, "invalid"),  # flat dropout
        (np.full(AXIS.size, np.nan), False, "invalid"),
        (np.ones(AXIS.size), True, "saturated"),
    ],
)
def test_unusable_spectra_keep_the_last_value_bad(
    sensor: sp.SoftSensor, spectrum: np.ndarray, saturated: bool, status: str
) -> None:
    drv = FakeDriver()
    drv.next = _spectrum(3.0, np.random.default_rng(2))
    block, tags = _block(sensor, drv)
    _scan(block, tags, 0.0)
    good = tags.read("glc", 0.0).value
    drv.next, drv.saturated = spectrum, saturated
    _scan(block, tags, 60.0)
    s = tags.read("glc", 60.0)
    assert s.quality is Quality.BAD
    assert s.value == good
    assert tags.read("glc.status", 60.0).value == STATUS_CODES[status]
    assert block.counts[status] == 1


def test_failed_acquisition_marks_bad_and_recovers(sensor: sp.SoftSensor) -> None:
    drv = FakeDriver()
    drv.next = _spectrum(1.0, np.random.default_rng(3))
    block, tags = _block(sensor, drv)
    _scan(block, tags, 0.0)
    drv.next = DeviceTimeoutError("raman: no reply to 'ACQ'")
    _scan(block, tags, 60.0)
    assert tags.read("glc", 60.0).quality is Quality.BAD
    assert tags.read("glc.status", 60.0).value == STATUS_CODES["acquisition_failed"]
    assert "no reply" in block.last_error
    drv.next = _spectrum(1.0, np.random.default_rng(4))
    _scan(block, tags, 120.0)
    assert tags.read("glc", 120.0).quality is Quality.GOOD


def test_same_sequence_number_is_not_predicted_twice(sensor: sp.SoftSensor) -> None:
    drv = FakeDriver()
    drv.next = _spectrum(1.0, np.random.default_rng(3))
    block, tags = _block(sensor, drv)
    _scan(block, tags, 0.0)
    drv.seq -= 1  # the instrument has no new spectrum
    _scan(block, tags, 60.0)
    assert sum(block.counts.values()) == 1
    assert tags.read("glc", 60.0).time_s == 0.0


def test_acquires_once_per_period(sensor: sp.SoftSensor) -> None:
    drv = FakeDriver()
    drv.next = _spectrum(1.0, np.random.default_rng(3))
    block, tags = _block(sensor, drv)
    for t in np.arange(0.0, 600.0, 10.0):
        block.update(tags, float(t))
    assert drv.seq == 10


def test_references_correct_a_biased_sensor(sensor: sp.SoftSensor) -> None:
    rng = np.random.default_rng(9)
    drv = FakeDriver()
    block, tags = _block(sensor, drv, SoftSensorCorrection(q_bias=0.5))
    true = 2.0
    for k in range(40):
        # the spectra read 0.5 g/L high (a drifted instrument)
        drv.next = _spectrum(true + 0.5, rng)
        _scan(block, tags, 600.0 * k)
        if k in (10, 20, 30):
            out = block.add_reference(true, 600.0 * k)
            assert out["accepted"]
    raw = tags.read("glc.raw", 600.0 * 39).value
    corrected = tags.read("glc", 600.0 * 39).value
    assert abs(raw - 2.5) < 0.1
    assert abs(corrected - true) < 0.15
    assert len(block.references) == 3


def test_learnt_bias_survives_a_restart(sensor: sp.SoftSensor) -> None:
    """Resume: the correction learnt from the references so far is part of the saved state,
    so the corrected glucose does not jump back to the raw prediction after a restart."""
    rng = np.random.default_rng(11)
    drv = FakeDriver()
    block, tags = _block(sensor, drv, SoftSensorCorrection(q_bias=0.5))
    for k in range(30):
        drv.next = _spectrum(2.5, rng)  # reads 0.5 g/L high
        _scan(block, tags, 600.0 * k)
        if k in (10, 20):
            assert block.add_reference(2.0, 600.0 * k)["accepted"]
    saved = json.loads(json.dumps(SoftSensorSet({"glucose": block}).state()))
    fresh, fresh_tags = _block(sensor, drv, SoftSensorCorrection(q_bias=0.5))
    SoftSensorSet({"glucose": fresh}).restore(saved)
    assert len(fresh.references) == 2
    drv.next = _spectrum(2.5, rng)
    _scan(fresh, fresh_tags, 600.0 * 30)
    assert abs(fresh_tags.read("glc", 600.0 * 30).value - 2.0) < 0.15
    # a damaged saved filter is reported, the sensor goes on from its prior
    other, _ = _block(sensor, drv, SoftSensorCorrection(q_bias=0.5))
    other.restore({"kalman": '{"format": "?"}', "references": []})
    assert "correction state not restored" in other.last_error


def test_axis_that_does_not_cover_the_model_is_refused(sensor: sp.SoftSensor) -> None:
    with pytest.raises(SpectrumShapeError, match="does not cover"):
        _block(sensor, FakeDriver(np.linspace(500.0, 1800.0, 300)))


def test_wider_instrument_axis_is_resampled(sensor: sp.SoftSensor) -> None:
    axis = np.linspace(300.0, 1900.0, 500)
    drv = FakeDriver(axis)
    rng = np.random.default_rng(6)
    drv.next = np.interp(axis, AXIS, _spectrum(4.0, rng))
    block, tags = _block(sensor, drv)
    _scan(block, tags, 0.0)
    assert abs(tags.read("glc", 0.0).value - 4.0) < 0.2


def test_unknown_soft_sensor_names_known_ones() -> None:
    with pytest.raises(ConfigError, match="soft sensors: \\[\\]"):
        SoftSensorSet({})["glucose"]


def test_model_file_path_is_relative_to_the_reactor(tmp_path: Path, sensor: sp.SoftSensor) -> None:
    sensor.save(tmp_path / "models" / "m.json")

    class Hub:
        drivers = {"raman": FakeDriver()}
        workers = {"sim://raman": SyncWorker()}
        clock = LockstepClock(1.0)

    from edgectl.runtime.reactor_config import DeviceConfig, ReactorConfig, ReactorInfo

    cfg = ReactorConfig(
        reactor=ReactorInfo(name="t"),
        devices={"raman": DeviceConfig(profile="generic/spectrometer-ascii", port="sim://raman")},
        softsensors={
            "glucose": SoftSensorConfig(model="models/m.json", spectrometer="raman", tag="glc")
        },
    )
    ss = SoftSensorSet.from_config(cfg, tmp_path, Hub())
    assert ss["glucose"].sensor.n_components == 1

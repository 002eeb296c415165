"""The spectrometer: frame codec (property tests), driver against the plant-backed emulator,
every emulator fault kind."""

from __future__ import annotations

import itertools
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from _devices import fast_profile, max_wait_s
from edgectl.devices import DRIVERS, Spectrometer, open_device
from edgectl.emulators import EMULATORS, get_emulator, reset_emulators, set_plant
from edgectl.errors import DeviceError, DeviceTimeoutError, ProtocolError
from edgectl.io.profile import load_profile
from edgectl.io.spectral import (
    FLAG_SATURATED,
    MAX_COUNT,
    FrameDecoder,
    crc16_ccitt,
    encode_frame,
)
from edgectl.sim import Plant, PlantConfig, load_plant_config
from edgectl.spectra import SoftSensor

PROFILE = "generic/spectrometer-ascii"
_names = itertools.count()

finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)
arrays = hnp.arrays(np.float64, st.integers(1, 300), elements=finite)


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    reset_emulators()
    yield
    reset_emulators()


def _decode_all(data: bytes) -> list[object]:
    """Every outcome of decoding ``data``: frames and ProtocolErrors, in order."""
    dec = FrameDecoder("t")
    dec.feed(data)
    out: list[object] = []
    while True:
        try:
            frame = dec.next_frame()
        except ProtocolError as exc:
            out.append(exc)
            continue
        if frame is None:
            return out
        out.append(frame)


# -- codec --------------------------------------------------------------------------------------


def test_crc_is_ccitt_false() -> None:
    assert crc16_ccitt(b"123456789") == 0x29B1  # catalogue check value of CRC-16/CCITT-FALSE


@given(values=arrays, dtype=st.sampled_from("fd"), seq=st.integers(0, 2**32 - 1))
def test_round_trip(values: np.ndarray, dtype: str, seq: int) -> None:
    [frame] = _decode_all(encode_frame("S", values, dtype=dtype, seq=seq))
    assert frame.kind == "S"  # type: ignore[attr-defined]
    assert frame.seq == seq  # type: ignore[attr-defined]
    want = values.astype(np.float32).astype(np.float64) if dtype == "f" else values
    np.testing.assert_array_equal(frame.values, want)  # type: ignore[attr-defined]


@settings(max_examples=200)
@given(values=arrays, junk=st.binary(max_size=64), tail=st.binary(max_size=64))
def test_garbage_around_a_frame(values: np.ndarray, junk: bytes, tail: bytes) -> None:
    data = encode_frame("S", values, dtype="d", seq=7)
    outcomes = _decode_all(junk + data + tail)
    frames = [o for o in outcomes if not isinstance(o, ProtocolError)]
    for f in frames:  # whatever else happens, a returned frame is never a corrupted one
        if f.seq == 7 and f.values.size == values.size:  # type: ignore[attr-defined]
            np.testing.assert_array_equal(f.values, values)  # type: ignore[attr-defined]
    if b"#" not in junk:
        assert any(
            f.seq == 7 and np.array_equal(f.values, values)  # type: ignore[attr-defined]
            for f in frames
        )


@given(values=arrays, cut=st.data())
def test_truncated_frame_waits_then_completes(values: np.ndarray, cut: st.DataObject) -> None:
    data = encode_frame("S", values, seq=1)
    n = cut.draw(st.integers(0, len(data) - 1))
    dec = FrameDecoder("t")
    dec.feed(data[:n])
    assert dec.next_frame() is None
    dec.feed(data[n:])
    frame = dec.next_frame()
    assert frame is not None
    assert frame.values.size == values.size


@settings(max_examples=300)
@given(values=arrays, where=st.data(), flip=st.integers(1, 255))
def test_any_corrupted_byte_is_never_accepted(
    values: np.ndarray, where: st.DataObject, flip: int
) -> None:
    data = bytearray(encode_frame("S", values, dtype="d", seq=3))
    i = where.draw(st.integers(0, len(data) - 1))
    data[i] ^= flip
    outcomes = _decode_all(bytes(data))
    assert all(isinstance(o, ProtocolError) for o in outcomes)  # no frame from a corrupted one
    for o in outcomes:
        assert "frame" in str(o)  # names the frame and its bytes


def test_bad_crc_names_the_bytes() -> None:
    data = bytearray(encode_frame("S", [1.0, 2.0], seq=1))
    data[12] ^= 0xFF
    [err] = _decode_all(bytes(data))
    assert isinstance(err, ProtocolError)
    assert "bad CRC" in str(err)
    assert "header 23 53 66" in str(err)


def test_err_line_is_a_refusal() -> None:
    [err] = _decode_all(b"ERR integration time out of range\r\n")
    assert isinstance(err, ProtocolError)
    assert "refused" in str(err)


@pytest.mark.parametrize("count", [0, MAX_COUNT + 1])
def test_encoder_refuses_bad_counts(count: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.16384"):
        encode_frame("S", np.zeros(count))


def test_implausible_header_is_skipped() -> None:
    count_too_big = struct.pack(">BBBBIH", 0x23, ord("S"), ord("f"), 0, 0, 60000)
    good = encode_frame("A", [400.0, 401.0], dtype="d")
    [frame] = _decode_all(count_too_big + good)
    assert frame.kind == "A"  # type: ignore[attr-defined]


# -- driver against the emulator ----------------------------------------------------------------


def _spec(plant: object | None = None, **params: str) -> tuple[Spectrometer, str]:
    name = f"spec{next(_names)}"
    if plant is not None:
        set_plant(plant, name)  # type: ignore[arg-type]
        params["plant"] = name
    query = "&".join(f"{k}={v}" for k, v in params.items())
    url = f"sim://{name}?profile={PROFILE}" + (f"&{query}" if query else "")
    return Spectrometer(url, fast_profile(PROFILE), integration_ms=1000), name


def test_registered_for_profile_and_emulator() -> None:
    assert DRIVERS[PROFILE] is Spectrometer
    assert load_profile(PROFILE).emulator["type"] in EMULATORS
    dev = open_device(f"sim://reg?profile={PROFILE}", PROFILE)
    try:
        assert isinstance(dev, Spectrometer)
        assert dev.identify() == "EDGECTL,RAMAN-1047,SN0001,1.0"
    finally:
        dev.close()


def test_spectrum_is_the_plants_latest() -> None:
    plant = Plant(PlantConfig.cho_2l(seed=3))
    spec, _ = _spec(plant)
    with spec:
        axis, counts = spec.read_spectrum()
        p_axis, p_y = plant.spectrum()
        np.testing.assert_allclose(axis, p_axis, rtol=0, atol=1e-9)
        np.testing.assert_allclose(counts, p_y.astype(np.float32), rtol=1e-6)
        first = spec.acquire().seq
        assert spec.acquire().seq == first  # the plant has not acquired a new spectrum
        plant.advance(plant.config.spectrometer.period_s, 10.0)
        assert spec.acquire().seq == first + 1


def test_integration_time_scales_counts_and_saturates() -> None:
    spec, name = _spec()
    with spec:
        base = spec.acquire().intensities
        assert spec.set_integration_time_ms(250) == 250
        quarter = spec.acquire()
        np.testing.assert_allclose(quarter.intensities, base, rtol=1e-6)  # counts per second
        assert not quarter.is_saturated
        spec.set_integration_time_ms(59000)  # 59 s × ~2 counts/s > 60 counts full scale
        sat = spec.acquire()
        assert sat.is_saturated
        emu = get_emulator(name)
        assert emu.integration_ms == 59000


def test_out_of_range_integration_is_refused() -> None:
    spec, _ = _spec()
    with spec, pytest.raises(DeviceError, match="refused"):
        spec.set_integration_time_ms(60001)


@pytest.mark.parametrize("kind", ["garbage", "truncate", "silence", "late:0.3"])
def test_transient_fault_is_retried(kind: str) -> None:
    spec, name = _spec()
    with spec:
        first = spec.acquire()
        get_emulator(name).faults.apply_spec(f"{kind}*1")
        again = spec.acquire()
        assert again.seq > first.seq
        assert spec.frames.retries_used == 1
        np.testing.assert_allclose(again.intensities, first.intensities)


@pytest.mark.parametrize(
    ("kind", "error"),
    [("garbage", ProtocolError), ("truncate", ProtocolError), ("silence", DeviceTimeoutError)],
)
def test_persistent_fault_raises_in_time_then_recovers(kind: str, error: type[Exception]) -> None:
    spec, name = _spec()
    with spec:
        emu = get_emulator(name)
        emu.faults.inject(kind)
        t0 = time.monotonic()
        with pytest.raises(error, match=name):
            spec.acquire()
        assert time.monotonic() - t0 < max_wait_s(spec.profile)
        emu.faults.clear()
        assert spec.acquire().intensities.size == 1047


def test_error_reply_is_a_refusal() -> None:
    spec, name = _spec()
    with spec:
        get_emulator(name).faults.inject("error", count=1)
        with pytest.raises(ProtocolError, match="refused"):
            spec.acquire()
        assert spec.acquire().intensities.size == 1047


def test_disconnect_raises_then_reconnects_and_rereads_the_axis() -> None:
    spec, name = _spec()
    with spec:
        emu = get_emulator(name)
        opens = spec.port.opens
        emu.faults.inject("disconnect", 0.3)
        with pytest.raises(DeviceError):
            spec.acquire()
        time.sleep(0.35)
        assert spec.acquire().intensities.size == 1047
        assert spec.port.opens > opens  # reopened; start-up ran again (integration time, axis)
        assert emu.power_cycles == 1


def test_stuck_repeats_the_last_spectrum() -> None:
    spec, name = _spec()
    with spec:
        a = spec.acquire()
        get_emulator(name).faults.inject("stuck", count=2)
        assert spec.acquire().seq == a.seq
        assert spec.acquire().seq == a.seq
        assert spec.acquire().seq == a.seq + 1


def test_drift_raises_the_background() -> None:
    spec, name = _spec()
    with spec:
        a = spec.acquire().intensities
        get_emulator(name).faults.inject("drift", 5.0)
        time.sleep(0.1)
        b = spec.acquire().intensities
        assert float(np.min(b - a)) > 0.3


def test_spike_fault_raises_one_or_two_pixel_spikes_for_count_spectra() -> None:
    plant = Plant(PlantConfig.cho_2l(seed=3))
    spec, name = _spec(plant)
    with spec:
        clean = spec.acquire().intensities
        get_emulator(name).faults.apply_spec("spike:4*2")
        top = float(np.max(np.abs(plant.spectrum()[1])))  # counts at 1 s integration
        for _ in range(2):
            diff = spec.acquire().intensities - clean
            hit = np.flatnonzero(np.abs(diff) > 1e-3 * top)
            assert 1 <= hit.size <= 8  # 4 spikes of 1 or 2 pixels (two may share one)
            runs = np.split(hit, np.flatnonzero(np.diff(hit) > 1) + 1)
            assert all(len(r) <= 4 for r in runs)  # no wider than two overlapping 2-px spikes
            assert np.all(diff[hit] >= 0.5 * top * (1 - 1e-6))
            assert np.all(diff[hit] <= 3.0 * top)
        np.testing.assert_allclose(spec.acquire().intensities, clean)  # count used up
        assert get_emulator(name).faults.active == []


def test_band_fault_is_a_gaussian_at_mid_axis() -> None:
    plant = Plant(PlantConfig.cho_2l(seed=3))
    spec, name = _spec(plant)
    with spec:
        axis, clean = spec.read_spectrum()
        get_emulator(name).faults.inject("band", 0.1)
        diff = spec.acquire().intensities - clean
        top = float(np.max(np.abs(plant.spectrum()[1])))
        mid = 0.5 * (axis[0] + axis[-1])
        assert abs(axis[int(np.argmax(diff))] - mid) < 2.0
        assert float(np.max(diff)) == pytest.approx(0.1 * top, rel=1e-3)
        half = axis[diff > 0.05 * top]  # above half maximum: the 30 cm⁻¹ FWHM
        assert float(half[-1] - half[0]) == pytest.approx(30.0, abs=3.0)
        assert float(np.max(np.abs(diff[np.abs(axis - mid) > 100.0]))) < 1e-4 * top
        get_emulator(name).faults.clear()
        np.testing.assert_allclose(spec.acquire().intensities, clean)


def test_band_is_out_of_the_cho_model_and_spikes_are_not() -> None:
    """What the faults are for: the CHO glucose model (examples/) rejects the interferent by
    its Q residual and its Despike step removes the spikes (same prediction as clean)."""
    root = Path(__file__).resolve().parents[1]
    sensor = SoftSensor.load(root / "examples" / "models" / "cho-glucose.json")
    plant = Plant(load_plant_config(root / "examples" / "cho-fedbatch-2L.plant.toml"), seed=3)
    plant.advance(3600.0, 30.0)
    spec, name = _spec(plant)
    with spec:
        emu = get_emulator(name)
        clean = sensor.predict(spec.acquire().intensities)
        assert clean.is_in_model
        emu.faults.apply_spec("band:0.05*1")
        banded = sensor.predict(spec.acquire().intensities)
        assert banded.status == "out_of_model"
        assert banded.q > 5.0 * sensor.q_limit
        emu.faults.apply_spec("spike:3*20")
        for _ in range(20):
            spiked = sensor.predict(spec.acquire().intensities)
            assert spiked.is_in_model
            assert spiked.value == pytest.approx(clean.value, abs=0.03)


def test_flag_saturated_is_bit_zero() -> None:
    [frame] = _decode_all(encode_frame("S", [1.0], flags=FLAG_SATURATED))
    assert frame.is_saturated  # type: ignore[attr-defined]


@pytest.mark.parametrize("transport", ["pty", "tcp"])
def test_driver_over_a_real_pty_and_tcp(transport: str) -> None:
    """Out of process wiring (``edgectl emulate``): 4 kB binary frames over a raw pty or TCP."""
    from edgectl.emulators import create_emulator
    from edgectl.emulators.server import PtyServer, TcpServer

    plant = Plant(PlantConfig.cho_2l(seed=5))
    emu = create_emulator(PROFILE, plant, name="raman-pty")
    server = PtyServer(emu) if transport == "pty" else TcpServer(emu)
    url = server.path if isinstance(server, PtyServer) else f"socket://127.0.0.1:{server.port}"
    try:
        with Spectrometer(url, PROFILE, integration_ms=1000) as spec:
            for _ in range(3):
                axis, counts = spec.read_spectrum()
                np.testing.assert_allclose(counts, plant.spectrum()[1].astype(np.float32))
                assert axis.size == 1047
    finally:
        server.stop()

"""Reply fuzzing of every driver (issue 12 "Replies that cannot hurt").

Each driver runs on its real transport against its emulator, whose replies hypothesis mutates
(:mod:`tests._fuzz`): whatever comes back, a call returns a finite reading or raises an error
of the :class:`~edgectl.errors.DeviceError` family, which the I/O worker turns into a BAD
reading. ``EDGECTL_FUZZ_CASES`` sets the cases per driver of the default run (200). The long
run, ``test_replies_cannot_hurt_long``, makes ``EDGECTL_FUZZ_LONG_CASES`` cases per driver
(default 10 000), counts escapes instead of stopping at the first, and prints one line of
figures per driver; it runs only when selected::

    .venv/bin/pytest tests/test_device_fuzz.py -m slow -s
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _fuzz import FUZZ_DRIVERS, FuzzPort, FuzzSerial, Stats, exercise, fuzz_profile
from _runs import skip_unless_selected_as_slow
from edgectl.devices import DRIVERS, Spectrometer
from edgectl.emulators import create_emulator
from edgectl.errors import ProtocolError
from edgectl.plant import ConstantPlant

CASES = int(os.environ.get("EDGECTL_FUZZ_CASES", "200"))
LONG_CASES = int(os.environ.get("EDGECTL_FUZZ_LONG_CASES", "10000"))


def test_every_driver_is_fuzzed() -> None:
    assert sorted(DRIVERS) == FUZZ_DRIVERS
    assert len(FUZZ_DRIVERS) == 13


# the per-test timeout (300 s) is for the default run; a long run gets ~0.1 s per case
@pytest.mark.timeout(max(300.0, CASES * 0.1))
@pytest.mark.parametrize("profile", FUZZ_DRIVERS)
def test_replies_cannot_hurt(profile: str) -> None:
    stats = Stats()

    @settings(
        max_examples=CASES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.integers(0, 2**64 - 1))
    def run(seed: int) -> None:
        exercise(profile, seed, stats)

    run()
    print(f"{profile}: {CASES} cases, {stats}")  # figures of a long run (pytest -s)
    # the fuzz reached the parsers: calls returned values and bad replies were refused
    assert stats.calls > 0, stats
    assert stats.returned > 0, stats
    assert sum(stats.device_errors.values()) > 0, stats


# Cases the long run found escaping (seeds of ``exercise``): NaN/inf bit patterns in a binary
# spectrum frame (numpy's cast warning), counts that overflow per second of integration, a
# control character float() refuses inside a number the pattern takes ("\x1e456789").
FOUND = [("generic/spectrometer-ascii", seed) for seed in (2844, 5566, 5616)] + [
    ("mettler-toledo/mt-sics", seed)
    for seed in (12175258803532097384, 7753719568744173082, 16157947489562848712)
]


@pytest.mark.parametrize(("profile", "seed"), FOUND)
def test_replies_the_long_run_found_cannot_hurt(profile: str, seed: int) -> None:
    stats = Stats()
    exercise(profile, seed, stats)  # an escape (or a numpy warning: filterwarnings error) raises
    assert stats.cases == 1
    assert sum(stats.device_errors.values()) > 0


# 0.025 s per case alone on this machine, ~0.15 s with 13 drivers in parallel (23-26 min)
@pytest.mark.slow
@pytest.mark.timeout(max(600.0, LONG_CASES * 0.25))
@pytest.mark.parametrize("profile", FUZZ_DRIVERS)
def test_replies_cannot_hurt_long(profile: str, request: pytest.FixtureRequest) -> None:
    """The long run of issue 12 (>= 10 000 cases per driver): every escape is counted, so the
    figures say how many cases found one, and the test fails if any did."""
    skip_unless_selected_as_slow(request)
    stats = Stats()

    @settings(
        max_examples=LONG_CASES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.integers(0, 2**64 - 1))
    def run(seed: int) -> None:
        exercise(profile, seed, stats, count_escapes=True)
        if stats.cases % 1000 == 0:  # progress of a long run (pytest -s)
            print(f"FUZZ {profile}: {stats.cases} cases, escapes {stats.escapes}", flush=True)

    run()
    errors = sum(stats.device_errors.values())
    print(
        f"\nFUZZ {profile}: cases {stats.cases}, calls {stats.calls}, returned {stats.returned}, "
        f"DeviceError family {errors}, replies {stats.replies} ({stats.mutated} mutated), "
        f"escapes {sum(stats.escapes.values())} {stats.escapes}"
    )
    assert stats.cases >= LONG_CASES
    assert stats.escapes == {}
    assert stats.returned > 0
    assert errors > 0


class _Swap:
    """Replaces the replies that start with ``prefix`` once ``new`` is set."""

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.new: bytes | None = None

    def __call__(self, reply: bytes) -> bytes:
        if self.new is not None and reply.startswith(self.prefix):
            return self.new
        return reply


def _spectrometer(swap: _Swap) -> Spectrometer:
    prof = fuzz_profile("generic/spectrometer-ascii")
    emulator = create_emulator(prof, ConstantPlant(), params={"delay_scale": "0"})
    return Spectrometer(FuzzPort(FuzzSerial(emulator, swap, Stats()), prof), prof, name="spec")


@pytest.mark.parametrize(
    "reply", [b"INT " + b"9" * 400, b"INT 0", b"INT 99999999", b"INT 00000000000000000"]
)
def test_integration_time_that_is_not_a_time_is_a_protocol_error(reply: bytes) -> None:
    swap = _Swap(b"INT ")
    spec = _spectrometer(swap)
    swap.new = reply + b"\r\n"
    with pytest.raises(ProtocolError, match="integration_ms"):
        spec.read_integration_time_ms()


def test_spectrum_with_a_non_finite_value_is_a_protocol_error() -> None:
    import numpy as np

    from edgectl.io.spectral import encode_frame

    swap = _Swap(b"#S")
    spec = _spectrometer(swap)
    counts = np.ones(spec.read_axis().size)
    counts[7] = np.inf
    swap.new = encode_frame("S", counts, seq=3)
    with pytest.raises(ProtocolError, match="non-finite"):
        spec.acquire()

"""Process spectrometers: text commands plus counted binary spectrum frames."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgectl.devices.base import SerialDevice, reply_int
from edgectl.errors import DeviceError, InvalidInputError, ProtocolError
from edgectl.io.profile import DeviceProfile
from edgectl.io.spectral import SpectralProtocol
from edgectl.io.transport import Port

__all__ = ["Spectrometer", "Spectrum"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Spectrum:
    """One acquisition.

    ``intensities`` are counts per second of integration on ``wavenumber_cm1``; ``seq`` is the
    instrument's acquisition counter (equal to the previous one: no new spectrum yet).
    """

    wavenumber_cm1: FloatArray
    intensities: FloatArray
    seq: int
    integration_ms: int
    is_saturated: bool


class Spectrometer(SerialDevice):
    """A process spectrometer speaking the ``generic/spectrometer-ascii`` protocol.

    Parameters
    ----------
    port, profile, name
        See :class:`~edgectl.devices.base.SerialDevice`.
    integration_ms
        Integration time set at start-up (and again after the device lost power); None keeps
        the device's own.

    Examples
    --------
    >>> with Spectrometer("sim://spec-doc?profile=generic/spectrometer-ascii") as spec:
    ...     axis, counts = spec.read_spectrum()
    ...     axis.size == counts.size, round(float(axis[0])), spec.integration_ms
    (True, 400, 1000)
    """

    kind = "spectrometer"
    default_profile = "generic/spectrometer-ascii"

    @classmethod
    def check_options(cls, **options: Any) -> None:
        ms = options.get("integration_ms")
        if ms is not None and (isinstance(ms, bool) or ms not in range(1, 600_001)):
            raise InvalidInputError(f"integration_ms must be 1..600000, got {ms!r}")

    def __init__(
        self,
        port: str | Port,
        profile: str | Path | DeviceProfile | None = None,
        *,
        integration_ms: int | None = None,
        name: str | None = None,
    ) -> None:
        self.check_options(integration_ms=integration_ms)
        self._wanted_ms = None if integration_ms is None else int(integration_ms)
        self.integration_ms = 0
        self._axis: FloatArray | None = None
        super().__init__(port, profile, name=name, startup=False)
        s = self.profile.serial
        self.frames = SpectralProtocol(
            self.port,
            name=self.name,
            terminator=s.terminator_out.encode(s.encoding),
            timeout_s=s.timeout_s,
            retries=s.retries,
        )
        try:
            self.start_up()
        except Exception:
            if self._owns_port:
                self.port.close()
            raise

    def start_up(self) -> None:
        """Set the integration time (if given), read it back and read the axis."""
        opens = self.port.opens
        if self._wanted_ms is not None:
            self.protocol.query("set_integration", integration_ms=self._wanted_ms)
        self.integration_ms = self._integration(self.protocol.query("query_integration"))
        self._axis = self._read_axis()
        self._ready_opens = opens

    def _ensure_ready(self) -> None:
        self._check_open()
        if self.port.opens != self._ready_opens or self._axis is None:
            self.start_up()

    def _timeout(self, command: str) -> float | None:
        spec = self.profile.commands.get(command)
        return None if spec is None else spec.timeout_s

    def _read_axis(self) -> FloatArray:
        frame = self.frames.request(
            self.profile.commands["axis"].send, "A", timeout_s=self._timeout("axis")
        )
        axis = frame.values
        with np.errstate(over="ignore", invalid="ignore"):  # ±1e308 steps: not increasing
            increasing = axis.size >= 2 and bool(np.all(np.diff(axis) > 0))
        if not (np.all(np.isfinite(axis)) and increasing):
            raise DeviceError(f"{self.name}: wavenumber axis is not finite and increasing")
        return axis

    # -- public API -----------------------------------------------------------------------------

    def identify(self) -> str:
        """``maker,model,serial,firmware`` as the device reports it."""
        v = self.query("identify")
        return f"{v['maker']},{v['model']},{v['serial_number']},{v['firmware']}"

    def read_axis(self) -> FloatArray:
        """The wavenumber axis, cm⁻¹ (read from the device at start-up and after a reopen)."""
        self._ensure_ready()
        assert self._axis is not None
        return self._axis.copy()

    def set_integration_time_ms(self, integration_ms: int) -> int:
        """Set the integration time; returns the value the device reports back."""
        ms = int(integration_ms)
        if not 1 <= ms <= 600_000:
            raise InvalidInputError(f"integration_ms must be 1..600000, got {integration_ms!r}")
        self._check_open()
        self.query("set_integration", integration_ms=ms)
        got = self._integration(self.query("query_integration"))
        if got != ms:
            raise DeviceError(f"{self.name}: integration time {ms} ms not taken, reports {got}")
        self._wanted_ms = ms
        self.integration_ms = got
        return got

    def read_integration_time_ms(self) -> int:
        self.integration_ms = self._integration(self.query("query_integration"))
        return self.integration_ms

    def _integration(self, values: dict[str, Any]) -> int:
        """The integration time of a ``query_integration`` reply: a whole number of ms in the
        instrument's range, else ProtocolError (``INT 1e999`` is not a time)."""
        return reply_int(
            values, "integration_ms", device=self.name, what="query_integration", lo=1, hi=600_000
        )

    def acquire(self) -> Spectrum:
        """One spectrum in counts per second of integration, with its sequence number."""
        self._ensure_ready()
        frame = self.frames.request(
            self.profile.commands["acquire"].send, "S", timeout_s=self._timeout("acquire")
        )
        assert self._axis is not None
        if not np.all(np.isfinite(frame.values)):
            bad = int(np.count_nonzero(~np.isfinite(frame.values)))
            raise ProtocolError(f"{self.name}: spectrum {frame.seq} has {bad} non-finite value(s)")
        if frame.values.size != self._axis.size:
            raise DeviceError(
                f"{self.name}: spectrum has {frame.values.size} points, the axis {self._axis.size}"
            )
        seconds = self.integration_ms / 1000.0 if self.integration_ms > 0 else math.nan
        with np.errstate(over="ignore", invalid="ignore"):
            per_s = frame.values / seconds
        if not np.all(np.isfinite(per_s)):
            raise ProtocolError(
                f"{self.name}: spectrum {frame.seq} overflows counts per second"
                f" at {self.integration_ms} ms integration"
            )
        return Spectrum(
            self._axis,
            per_s,
            frame.seq,
            self.integration_ms,
            frame.is_saturated,
        )

    def read_spectrum(self) -> tuple[FloatArray, FloatArray]:
        """``(wavenumber_cm1, intensities)`` of one acquisition (counts per second)."""
        s = self.acquire()
        return s.wavenumber_cm1.copy(), s.intensities

    def read_seq(self) -> float:
        """Acquisition counter of the latest spectrum (a pollable reading)."""
        return float(self.acquire().seq)

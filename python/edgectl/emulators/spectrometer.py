"""Emulator of the generic process spectrometer (``generic/spectrometer-ascii``).

Text commands come from the profile (``*IDN?``, ``INT``, ``INT?``); ``AXIS?`` and ``ACQ``
answer with binary frames (:mod:`edgectl.io.spectral`). The spectrum is the plant's latest
(:meth:`edgectl.plant.PlantIO.spectrum`: spikes, noise, baseline drift and dropout faults come
from the plant) in detector counts: intensity × integration time (s), clipped at
``full_scale_counts`` with the saturation flag set. The sequence number counts the plant's
acquisitions (``spectrum_time_s`` when the plant has it; otherwise every ``ACQ`` is a new one).

Emulator faults act as on every device (garbage, truncate, late, silence, disconnect, error);
``stuck`` repeats the last spectrum with its sequence number; ``drift:R`` adds R counts per
second to every pixel (a rising background). Two faults act on the spectrum itself, for the
soft sensor's guards (softsensor.md §10 item 3), each on every spectrum while active (``*count``:
that many spectra):

- ``spike:N`` — N cosmic-ray spikes (default 3) drawn uniformly over the axis, each one pixel
  or two adjacent pixels (even odds), each pixel raised by 0.5–1.5 × the spectrum's maximum (a
  cosmic-ray event on a CCD is one or two pixels, often as bright as the strongest band). A
  model's Despike step must remove them.
- ``band:A`` — an interferent band (a contaminant, a fouled window) of height A × the
  spectrum's maximum (default 0.05), Gaussian with a 30 cm⁻¹ FWHM at the middle of the axis:
  a spectral feature no calibration spectrum had, so the Q residual puts the spectrum out of
  the model.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgectl.emulators.line import LineEmulator, Reply
from edgectl.io.spectral import FLAG_SATURATED, encode_frame

__all__ = ["SpectrometerEmulator"]

#: Full width at half maximum of the ``band`` fault's interferent, cm⁻¹.
BAND_FWHM_CM1 = 30.0


class SpectrometerEmulator(LineEmulator):
    SPECTRAL = True

    def power_on(self) -> None:
        emu = self.profile.emulator
        self.integration_ms = int(emu.get("integration_ms", 1000))
        self.full_scale = float(emu.get("full_scale_counts", math.inf))
        self.int_range = (
            int(emu.get("min_integration_ms", 1)),
            int(emu.get("max_integration_ms", 60000)),
        )
        self.seq = 0
        self._plant_t = math.nan
        self._last: bytes | None = None
        self.acquisitions = 0

    def garbage_terminator(self) -> bytes:
        return b"\r\n"

    def on_identify(self, g: dict[str, Any]) -> Reply:
        emu = self.profile.emulator
        return {k: emu.get(k, "?") for k in ("maker", "model", "serial_number", "firmware")}

    def on_set_integration(self, g: dict[str, Any]) -> Reply:
        ms = int(g["integration_ms"])
        lo, hi = self.int_range
        if not lo <= ms <= hi:
            return b"ERR integration time out of range\r\n"
        self.integration_ms = ms
        return {}

    def on_query_integration(self, g: dict[str, Any]) -> Reply:
        return {"integration_ms": self.integration_ms}

    def on_axis(self, g: dict[str, Any]) -> Reply:
        axis, _ = self.plant.spectrum()
        return encode_frame("A", axis, dtype="d", seq=self.seq)

    def on_acquire(self, g: dict[str, Any]) -> Reply:
        if self.faults.is_active("stuck") and self._last is not None:
            self.faults.take(("stuck",))
            return self._last
        axis, intensities = self.plant.spectrum()
        t = getattr(self.plant, "spectrum_time_s", None)
        if t is None or t != self._plant_t:
            self.seq = (self.seq + 1) & 0xFFFFFFFF
            self._plant_t = math.nan if t is None else float(t)
        y = self._spectral_faults(np.asarray(axis, dtype=np.float64), intensities)
        counts = y * (self.integration_ms / 1000.0)
        counts = counts + self.faults.drift_offset() * (self.integration_ms / 1000.0)
        flags = 0
        if counts.size and float(np.nanmax(counts)) >= self.full_scale:
            flags |= FLAG_SATURATED
            counts = np.minimum(counts, self.full_scale)
        self.acquisitions += 1
        self._last = encode_frame("S", counts, dtype="f", seq=self.seq, flags=flags)
        return self._last

    def _spectral_faults(self, axis: np.ndarray, intensities: Any) -> np.ndarray:
        """The plant's spectrum with the active ``band`` and ``spike`` faults added."""
        y = np.array(intensities, dtype=np.float64)
        if not y.size:
            return y
        top = float(np.nanmax(np.abs(y)))
        band = self.faults.take(("band",))
        if band is not None:
            height = (0.05 if band.value is None else band.value) * top
            sigma = BAND_FWHM_CM1 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
            mid = 0.5 * (float(axis[0]) + float(axis[-1]))
            y += height * np.exp(-0.5 * ((axis - mid) / sigma) ** 2)
        spike = self.faults.take(("spike",))
        if spike is not None:
            for _ in range(int(3 if spike.value is None else spike.value)):
                at = self._rng.randrange(y.size)
                for i in range(at, min(at + self._rng.randrange(1, 3), y.size)):
                    y[i] += top * self._rng.uniform(0.5, 1.5)
        return y

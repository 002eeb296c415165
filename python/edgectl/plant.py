"""The contract between a plant (simulated or constant) and the device emulators.

Emulators (``edgectl.emulators``) answer each device's protocol from a plant: a probe emulator
reads ``plant.read("ph")``, a pump emulator writes ``plant.write("feed_rate_ml_min", 1.2)``.
The simulator's :class:`edgectl.sim.Plant` implements this protocol; :class:`ConstantPlant`
holds fixed values for tests that need no process dynamics.

Signal names carry units and are shared by the simulator, the emulators, the HIL suite and the
example configs. Readings (what sensors report):

==========================  ==========================================================
``temp_c``                  liquid temperature (Pt100 in the vessel)
``jacket_temp_c``           circulator / jacket temperature
``ph``                      pH electrode
``do_pct``                  dissolved oxygen, % air saturation
``stirrer_rpm``             stirrer speed read back
``air_flow_sccm`` ...       gas flows read back: air, o2, co2, n2 (``<gas>_flow_sccm``)
``reactor_mass_g``          balance under the vessel
``feed_mass_g``             balance under the feed bottle (also ``base_mass_g``, ``acid_mass_g``)
``foam``                    foam probe: 1.0 when foam touches it, else 0.0
``pressure_bar``            head pressure, gauge
==========================  ==========================================================

Actuators (what controllers write): ``heater_duty`` (0–1), ``cooling_duty`` (0–1),
``stirrer_rpm_sp``, ``<gas>_flow_sccm_sp``, ``<pump>_rate_ml_min`` for ``feed``, ``base``,
``acid`` and ``antifoam`` pumps, ``jacket_temp_sp_c``.

A plant is shared by many emulator threads: implementations make ``read``/``write``/``spectrum``
thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["DEFAULT_READINGS", "ConstantPlant", "PlantIO"]


@runtime_checkable
class PlantIO(Protocol):
    """What a device emulator needs from a plant."""

    def read(self, signal: str) -> float:
        """Current sensor value (noise, lag and faults included); KeyError if unknown."""
        ...

    def write(self, actuator: str, value: float) -> None:
        """Set an actuator; KeyError if unknown."""
        ...

    def spectrum(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Latest spectrum as (wavenumber_cm1 axis, intensities)."""
        ...


DEFAULT_READINGS: Mapping[str, float] = {
    "temp_c": 37.0,
    "jacket_temp_c": 37.0,
    "ph": 7.0,
    "do_pct": 40.0,
    "stirrer_rpm": 300.0,
    "air_flow_sccm": 1000.0,
    "o2_flow_sccm": 0.0,
    "co2_flow_sccm": 0.0,
    "n2_flow_sccm": 0.0,
    "reactor_mass_g": 2000.0,
    "feed_mass_g": 500.0,
    "base_mass_g": 250.0,
    "acid_mass_g": 250.0,
    "foam": 0.0,
    "pressure_bar": 0.0,
}


class ConstantPlant:
    """A plant of constant readings: actuator writes are stored, readings never move.

    Parameters
    ----------
    readings
        Overrides of :data:`DEFAULT_READINGS`.
    """

    def __init__(self, readings: Mapping[str, float] | None = None) -> None:
        self._lock = threading.Lock()
        self._readings = dict(DEFAULT_READINGS)
        if readings:
            self._readings.update(readings)
        self._actuators: dict[str, float] = {}
        self._axis = np.linspace(400.0, 1800.0, 1047)

    def read(self, signal: str) -> float:
        with self._lock:
            if signal in self._readings:
                return self._readings[signal]
            if signal in self._actuators:
                return self._actuators[signal]
        raise KeyError(f"plant has no signal {signal!r}")

    def write(self, actuator: str, value: float) -> None:
        with self._lock:
            self._actuators[actuator] = float(value)

    def set_reading(self, signal: str, value: float) -> None:
        """Change a constant reading (tests use it to move the 'process')."""
        with self._lock:
            self._readings[signal] = float(value)

    @property
    def actuators(self) -> dict[str, float]:
        """Copy of the last value written to each actuator."""
        with self._lock:
            return dict(self._actuators)

    def spectrum(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        centre = 1125.0
        intensities = 1.0 + np.exp(-(((self._axis - centre) / 15.0) ** 2))
        return self._axis.copy(), intensities

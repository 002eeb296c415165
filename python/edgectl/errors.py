"""The edgectl exception hierarchy.

Every error raised by edgectl derives from :class:`EdgectlError`. Errors from the Rust core are
mapped onto these classes in one place (``rust/edgectl-py/src/errors.rs``), so callers catch
the same classes whether a check ran in Rust or in Python.
"""

from __future__ import annotations

__all__ = [
    "AlarmError",
    "AlarmStateError",
    "ConfigError",
    "DeviceError",
    "DeviceTimeoutError",
    "EdgectlError",
    "InterlockError",
    "InvalidInputError",
    "ModelFileError",
    "NumericalError",
    "ProfileError",
    "ProtocolError",
    "SpectrumShapeError",
]


class EdgectlError(Exception):
    """Base class for every edgectl error."""


class ConfigError(EdgectlError, ValueError):
    """Bad configuration: names the file, the key path and the rule broken."""


class ProfileError(ConfigError):
    """Bad firmware profile: names the profile file and the key."""


class InvalidInputError(EdgectlError, ValueError):
    """A value passed to a block is unusable (non-finite, out of range, bad time step)."""


class SpectrumShapeError(EdgectlError, ValueError):
    """A spectrum does not match the model's wavenumber axis."""


class ModelFileError(EdgectlError, ValueError):
    """A soft-sensor model or state file is unreadable, of the wrong version or the wrong axis."""


class NumericalError(EdgectlError, ArithmeticError):
    """A numerical method failed (singular matrix, no convergence)."""


class DeviceError(EdgectlError, OSError):
    """A pump, probe, controller or port misbehaved; names the device and the command."""


class DeviceTimeoutError(DeviceError, TimeoutError):
    """No valid reply within the profile timeout."""


class ProtocolError(DeviceError):
    """A reply did not match the protocol (bad frame, checksum, pattern); names the bytes."""


class AlarmError(EdgectlError):
    """An alarm operation was refused (unknown alarm, acknowledging an inactive alarm)."""


class AlarmStateError(AlarmError):
    """An alarm operation that the alarm's state does not allow (shelve a disabled alarm,
    unshelve one not shelved, ...). ``why`` names the case for the faces that map it onto
    their own codes (OPC 10000-9 status codes): ``disabled``, ``already_enabled``,
    ``already_disabled``, ``not_shelved``, ``already_shelved``, ``not_acked``,
    ``already_confirmed``."""

    def __init__(self, message: str, why: str) -> None:
        super().__init__(message)
        self.why = why


class InterlockError(EdgectlError):
    """An interlock forbids the requested action."""

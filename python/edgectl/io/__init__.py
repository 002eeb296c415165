"""Serial I/O: profiles, ports, the profile-driven protocol engines and the per-port worker."""

from __future__ import annotations

from edgectl.io.profile import BoardProfile, DeviceProfile, load_board, load_profile
from edgectl.io.transport import Port
from edgectl.io.worker import IoWorker, Quality, Reading

__all__ = [
    "BoardProfile",
    "DeviceProfile",
    "IoWorker",
    "Port",
    "Quality",
    "Reading",
    "load_board",
    "load_profile",
]

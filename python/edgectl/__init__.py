"""edgectl: the open bench bioreactor controller.

Rust computes (control blocks, soft sensor, plant simulator); Python schedules, talks to devices
and reads configuration. Import this package, not the private ``edgectl._core``.
"""

from __future__ import annotations

from edgectl import errors
from edgectl._core import __version__

__all__ = ["__version__", "errors"]

"""edgectl: the open bench bioreactor controller.

Rust computes (control blocks, soft sensor, plant simulator); Python schedules, talks to devices
and reads configuration. Import this package, not the private ``edgectl._core``.

The REPL's entry point is :func:`connect`::

    >>> r = edgectl.connect("runs/ecoli-2L.sock")   # doctest: +SKIP
    >>> r.loops["ph"].kp = 0.8                       # doctest: +SKIP
"""

from __future__ import annotations

from edgectl import errors
from edgectl._core import __version__
from edgectl.remote import Reactor, connect

__all__ = ["Reactor", "__version__", "connect", "errors"]

"""Quality of a process value, as in a PLC process image; one definition for the whole package.

Stored as a small integer by the historian. ``GOOD`` is a fresh, valid reading; ``UNCERTAIN`` a
reading the source doubts (out of its calibrated range, a substituted value); ``BAD`` no usable
value (device error, parse failure, out-of-model spectrum, non-finite reading, never read);
``STALE`` a reading older than its configured age (the blocks that use it go to their safe
action). Statistics and control use ``GOOD`` values only.
"""

from __future__ import annotations

import enum

__all__ = ["Quality"]


class Quality(enum.IntEnum):
    """Quality of a tag value."""

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2
    STALE = 3

    @property
    def is_good(self) -> bool:
        return self is Quality.GOOD

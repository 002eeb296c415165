"""Stage health of a DO cascade: does each stage's actuator deliver what it is commanded?

An MFC whose gas supply fails reads 0 sccm whatever its setpoint; a cascade that keeps handing
over to that stage limit-cycles between it and the next (issue 7, HIL "MFC failing during the
cascade"). Each stage with a ``feedback`` tag (the device's read-back of the achieved value) is
compared with the command the controller applied on the previous scan:

- deviating by more than ``stage_tolerance`` × (max − min) for ``stage_fault_s`` → the stage is
  *failed*: the cascade skips it (:meth:`edgectl.control.DoCascade.set_stage_enabled`) and the
  alarm ``<loop>.<output>.failed`` is raised;
- failed, commanded a value the read-back can tell from no delivery (|command| above the
  tolerance) and tracking it for ``stage_recover_s`` → healthy again, the stage is used again.

A read-back that is not GOOD (stale, bad reply) judges nothing: the time until the next judged
scan does not count towards either delay. A stage that cannot be judged where it is parked (a
failed O2 stage above the active one, parked at 0 sccm) is restored by the operator
(``set_stage(output, enabled=True)``), then judged afresh. Commercial
controllers raise the same "gas-flow deviation" from the MFC read-back (DCU3 §6.13, reference
control.md §4); skipping the stage is the cascade's sequential logic applied to what is left.
"""

from __future__ import annotations

import math

from edgectl.quality import Quality
from edgectl.runtime.tags import Sample

__all__ = ["StageMonitor"]


class StageMonitor:
    """Read-back versus command of one cascade stage, with on- and off-delays."""

    def __init__(
        self,
        loop: str,
        index: int,
        output: str,
        feedback: str,
        span: float,
        *,
        tolerance: float,
        fault_s: float,
        recover_s: float,
    ) -> None:
        self.loop = loop
        self.index = index
        self.output = output
        self.feedback = feedback
        self.band = tolerance * span  # in output units
        self.fault_s = fault_s
        self.recover_s = recover_s
        self.failed = False
        # seconds of consecutive judged scans deviating (healthy) or tracking (failed), and
        # the time of the last judged scan (None: the last scan judged nothing)
        self._elapsed_s = 0.0
        self._last_s: float | None = None

    @property
    def health_tag(self) -> str:
        """``<loop>.<output>.health``: 1 healthy, 0 failed."""
        return f"{self.loop}.{self.output}.health"

    @property
    def alarm(self) -> str:
        """``<loop>.<output>.failed``."""
        return f"{self.loop}.{self.output}.failed"

    def reset(self, failed: bool) -> None:
        """Set the state by hand (operator), timers cleared."""
        self.failed = failed
        self._elapsed_s = 0.0
        self._last_s = None

    def update(self, now_s: float, command: float | None, feedback: Sample | None) -> bool | None:
        """Judge one scan; returns the new health (True/False) on a change, else None."""
        if (
            command is None
            or not math.isfinite(command)
            or feedback is None
            or feedback.quality is not Quality.GOOD
            or not math.isfinite(feedback.value)
        ):
            self._last_s = None  # nothing to judge: the time until the next judged scan
            return None  # does not count
        deviates = abs(feedback.value - command) > self.band
        informative = abs(command) > self.band  # a dead actuator would not read this
        counting = deviates if not self.failed else (not deviates and informative)
        if not counting:
            self._elapsed_s = 0.0
            self._last_s = None
            return None
        if self._last_s is not None:
            self._elapsed_s += now_s - self._last_s
        self._last_s = now_s
        limit = self.recover_s if self.failed else self.fault_s
        if self._elapsed_s >= limit:
            self.reset(not self.failed)
            return not self.failed
        return None

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

A read-back that is not GOOD (stale, bad reply) judges nothing: the timers hold. Commercial
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
        self._since_s: float | None = None  # start of the present deviation / recovery

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
        self._since_s = None

    def update(self, now_s: float, command: float | None, feedback: Sample | None) -> bool | None:
        """Judge one scan; returns the new health (True/False) on a change, else None."""
        if (
            command is None
            or not math.isfinite(command)
            or feedback is None
            or feedback.quality is not Quality.GOOD
            or not math.isfinite(feedback.value)
        ):
            return None  # nothing to judge: keep the timers
        deviates = abs(feedback.value - command) > self.band
        if not self.failed:
            if not deviates:
                self._since_s = None
                return None
            if self._since_s is None:
                self._since_s = now_s
            if now_s - self._since_s >= self.fault_s:
                self.reset(True)
                return False
            return None
        informative = abs(command) > self.band  # a dead actuator would not read this
        if deviates or not informative:
            self._since_s = None
            return None
        if self._since_s is None:
            self._since_s = now_s
        if now_s - self._since_s >= self.recover_s:
            self.reset(False)
            return True
        return None

"""At-line analysis of recipe samples: a sampling step's result becomes a soft-sensor reference.

A recipe sampling step with ``analyse = { <softsensor> = "<plant key>" }`` draws its volume from
the simulated plant (:meth:`edgectl.sim.Plant.take_sample`, which removes the broth and returns
the true states) and queues each analysed value; ``result_delay_s`` later (the analyser's
turnaround) the controller hands it to the soft sensor with its *sampling* time, so the
correction uses it only from the time it became known. On a real rig the values come from a
person or a LIMS through the operator service (``edgectl sample add``) instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from edgectl.errors import ConfigError
from edgectl.runtime.recipe import Sampling

__all__ = ["AtLineAnalyser", "PendingResult"]


@dataclass(frozen=True)
class PendingResult:
    """One analysed value waiting for its result time (clock seconds)."""

    known_s: float
    sensor: str
    value: float
    sampled_s: float
    analyser: str


@dataclass
class AtLineAnalyser:
    """Analyses recipe samples drawn with ``take_sample(volume_ml) -> {key: value}``."""

    take_sample: Callable[[float], Mapping[str, float]]
    pending: list[PendingResult] = field(default_factory=list)

    def sample(self, step: Sampling, now_s: float) -> list[PendingResult]:
        """Draw the step's sample now and queue its analysed values."""
        truth = self.take_sample(step.volume_ml)
        queued = []
        for sensor, key in step.analyse.items():
            if key not in truth:
                raise ConfigError(
                    f"recipe sampling {step.label!r}: analyse.{sensor} = {key!r} is not "
                    f"measured in a sample (keys: {sorted(truth)})"
                )
            queued.append(
                PendingResult(
                    now_s + step.result_delay_s, sensor, float(truth[key]), now_s, step.analyser
                )
            )
        self.pending.extend(queued)
        return queued

    def due(self, now_s: float) -> list[PendingResult]:
        """The results known by ``now_s``, in the order they became known (removed)."""
        ready = sorted((p for p in self.pending if p.known_s <= now_s), key=lambda p: p.known_s)
        self.pending = [p for p in self.pending if p.known_s > now_s]
        return ready

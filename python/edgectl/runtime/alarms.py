"""Alarms with hysteresis, on-delay and acknowledgement; interlocks that force outputs safe.

Alarm states follow the ISA-18.2 life cycle: NORMAL → ACTIVE (unacknowledged) → ACKED (still in
alarm) → NORMAL, or ACTIVE → RTN_UNACK (returned to normal, not yet acknowledged) → NORMAL on
acknowledgement. High/low limits clear only past the hysteresis band (control.md §4.4: PV alarms
with hysteresis, latching or blocking). A high/low alarm holds its state while its tag is not
GOOD; the tag's ``stale`` alarm covers that case.

Interlocks act on outputs after the control blocks: ``limit`` caps outputs, ``force`` sets them,
``trip`` drives every output to its safe value and latches until reset. The over-temperature
ladder (reduce → disable → trip, control.md §4.4 after Pioreactor ``models.py``) is three
interlocks on three high alarms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec

from edgectl.config import Struct
from edgectl.errors import AlarmError, ConfigError
from edgectl.quality import Quality
from edgectl.runtime.tags import Sample

__all__ = [
    "Alarm",
    "AlarmEvent",
    "AlarmManager",
    "AlarmSpec",
    "AlarmState",
    "Interlock",
    "InterlockSpec",
]


class AlarmState(StrEnum):
    NORMAL = "normal"
    ACTIVE = "active"  #: in alarm, not acknowledged
    ACKED = "acked"  #: in alarm, acknowledged
    RTN_UNACK = "rtn_unack"  #: back to normal, not acknowledged


# Severities as the historian stores them (ISA-18.2 priorities plus "info").
Severity = Literal["info", "low", "medium", "high", "critical"]


class AlarmSpec(Struct, frozen=True, kw_only=True):
    """One alarm on one tag.

    ``kind``: ``high`` (value > limit), ``low`` (value < limit), ``stale`` (quality not GOOD for
    ``delay_s``; ``limit`` unused), ``deviation`` (|value − reference tag| > limit).
    """

    tag: str
    kind: Literal["high", "low", "stale", "deviation"]
    limit: float = math.nan
    hysteresis: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    delay_s: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    severity: Severity = "high"
    message: str = ""
    reference: str = ""  # the tag a deviation alarm compares with (e.g. a setpoint tag)

    def __post_init__(self) -> None:
        if self.kind != "stale" and not math.isfinite(self.limit):
            raise ValueError(f"a {self.kind} alarm needs a finite limit")
        if self.kind == "deviation" and not self.reference:
            raise ValueError("a deviation alarm needs a reference tag")

    def describe(self) -> str:
        """The alarm's text: ``message``, else what it watches (``temp_c > 38.5``)."""
        if self.message:
            return self.message
        if self.kind == "stale":
            return f"{self.tag} has no good reading"
        if self.kind == "deviation":
            return f"{self.tag} deviates from {self.reference} by more than {self.limit:g}"
        return f"{self.tag} {'>' if self.kind == 'high' else '<'} {self.limit:g}"


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """A state change of an alarm, as written to the historian."""

    name: str
    time_s: float
    transition: Literal["raise", "clear", "ack"]
    state: AlarmState
    severity: str
    value: float
    message: str
    who: str = ""


class Alarm:
    """Runtime state of one :class:`AlarmSpec`."""

    def __init__(self, name: str, spec: AlarmSpec) -> None:
        self.name = name
        self.spec = spec
        self.state = AlarmState.NORMAL
        self._pending_since: float | None = None
        self.raised_s: float | None = None
        self.time_in_alarm_s = 0.0
        self._last_eval_s: float | None = None
        # operator annotations (edgectl.operator: shelve, enable, confirm). They change what is
        # annunciated, never what is evaluated, recorded or interlocked.
        self.enabled = True
        self.shelved: Literal["", "timed", "oneshot"] = ""
        self.unshelve_s: float | None = None  #: clock time a timed shelve ends
        self.acked_in_episode = False  #: acknowledged since it last raised
        self.confirmed = False  #: confirmed since it last raised

    @property
    def in_alarm(self) -> bool:
        return self.state in (AlarmState.ACTIVE, AlarmState.ACKED)

    def _condition(self, s: Sample, samples: Mapping[str, Sample]) -> bool | None:
        """True (in alarm), False (clear) or None (cannot tell: hold)."""
        spec = self.spec
        if spec.kind == "stale":
            return s.quality is not Quality.GOOD
        if s.quality is not Quality.GOOD:
            return None
        v = s.value
        if spec.kind == "high":
            return v > spec.limit if not self.in_alarm else v > spec.limit - spec.hysteresis
        if spec.kind == "low":
            return v < spec.limit if not self.in_alarm else v < spec.limit + spec.hysteresis
        ref = samples.get(spec.reference)
        if ref is None or ref.quality is not Quality.GOOD:
            return None
        dev = abs(v - ref.value)
        return dev > spec.limit if not self.in_alarm else dev > spec.limit - spec.hysteresis

    def evaluate(self, samples: Mapping[str, Sample], now_s: float) -> AlarmEvent | None:
        if self._last_eval_s is not None and self.in_alarm:
            self.time_in_alarm_s += max(0.0, now_s - self._last_eval_s)
        self._last_eval_s = now_s
        s = samples.get(self.spec.tag)
        if s is None:
            raise ConfigError(f"alarm {self.name!r}: unknown tag {self.spec.tag!r}")
        cond = self._condition(s, samples)
        if cond is None:
            return None
        if cond and not self.in_alarm:
            if self._pending_since is None:
                self._pending_since = now_s
            if now_s - self._pending_since >= self.spec.delay_s:
                self._pending_since = None
                self.state = AlarmState.ACTIVE
                self.raised_s = now_s
                self.acked_in_episode = self.confirmed = False
                return self._event(now_s, "raise", s.value)
            return None
        if not cond:
            self._pending_since = None
            if self.in_alarm:
                self.state = (
                    AlarmState.NORMAL if self.state is AlarmState.ACKED else AlarmState.RTN_UNACK
                )
                return self._event(now_s, "clear", s.value)
        return None

    def acknowledge(self, now_s: float, who: str) -> AlarmEvent:
        if self.state is AlarmState.ACTIVE:
            self.state = AlarmState.ACKED
        elif self.state is AlarmState.RTN_UNACK:
            self.state = AlarmState.NORMAL
        else:
            raise AlarmError(f"alarm {self.name!r} is {self.state.value}: nothing to acknowledge")
        self.acked_in_episode = True
        return self._event(now_s, "ack", math.nan, who)

    def annotations(self) -> dict[str, Any]:
        """The operator annotations (saved with the controller's state)."""
        return {
            "enabled": self.enabled,
            "shelved": self.shelved,
            "unshelve_s": self.unshelve_s,
            "acked_in_episode": self.acked_in_episode,
            "confirmed": self.confirmed,
        }

    def restore_annotations(self, saved: Mapping[str, Any]) -> None:
        self.enabled = bool(saved.get("enabled", True))
        shelved = saved.get("shelved", "")
        self.shelved = shelved if shelved in ("timed", "oneshot") else ""
        until = saved.get("unshelve_s")
        self.unshelve_s = float(until) if isinstance(until, int | float) else None
        self.acked_in_episode = bool(saved.get("acked_in_episode", False))
        self.confirmed = bool(saved.get("confirmed", False))

    def _event(
        self,
        now_s: float,
        transition: Literal["raise", "clear", "ack"],
        value: float,
        who: str = "",
    ) -> AlarmEvent:
        spec = self.spec
        return AlarmEvent(
            self.name,
            now_s,
            transition,
            self.state,
            spec.severity,
            value,
            spec.describe(),
            who,
        )


class InterlockSpec(Struct, frozen=True, kw_only=True):
    """Outputs forced while any of ``alarms`` is in alarm.

    ``action``: ``limit`` caps each listed output at its value, ``force`` sets it, ``trip``
    drives every output to its safe value and latches until :meth:`AlarmManager.reset_trip`.
    ``latch`` keeps a limit/force interlock engaged until reset even after its alarms clear.
    """

    alarms: list[str]
    action: Literal["limit", "force", "trip"]
    outputs: dict[str, float] = {}
    latch: bool = False
    message: str = ""


class Interlock:
    """Runtime state of one :class:`InterlockSpec`."""

    def __init__(self, name: str, spec: InterlockSpec) -> None:
        self.name = name
        self.spec = spec
        self.engaged = False

    def apply(self, outputs: dict[str, float], safe: Mapping[str, float]) -> None:
        """Modify ``outputs`` in place as the engaged interlock demands."""
        if not self.engaged:
            return
        if self.spec.action == "trip":
            outputs.update(safe)
            return
        for out, value in self.spec.outputs.items():
            if self.spec.action == "limit":
                outputs[out] = min(outputs.get(out, value), value)
            else:
                outputs[out] = value


class AlarmManager:
    """All alarms and interlocks of a reactor; evaluated once per scan."""

    def __init__(
        self,
        alarms: Mapping[str, AlarmSpec],
        interlocks: Mapping[str, InterlockSpec] | None = None,
    ) -> None:
        self.alarms = {name: Alarm(name, spec) for name, spec in alarms.items()}
        self.interlocks = {name: Interlock(name, spec) for name, spec in (interlocks or {}).items()}
        for name, il in self.interlocks.items():
            for a in il.spec.alarms:
                if a not in self.alarms:
                    raise ConfigError(f"interlocks.{name}.alarms: unknown alarm {a!r}")
        self.tripped = False

    def evaluate(self, samples: Mapping[str, Sample], now_s: float) -> list[AlarmEvent]:
        """Evaluate every alarm, then engage or release interlocks; returns the alarm events."""
        events = [e for a in self.alarms.values() if (e := a.evaluate(samples, now_s))]
        for il in self.interlocks.values():
            hot = any(self.alarms[a].in_alarm for a in il.spec.alarms)
            if hot:
                il.engaged = True
                if il.spec.action == "trip":
                    self.tripped = True
            elif not (il.spec.latch or il.spec.action == "trip"):
                il.engaged = False
        return events

    def apply(self, outputs: dict[str, float], safe: Mapping[str, float]) -> list[str]:
        """Apply every engaged interlock to ``outputs``; returns the names of those engaged."""
        engaged = []
        for il in self.interlocks.values():
            if il.engaged:
                il.apply(outputs, safe)
                engaged.append(il.name)
        return engaged

    def acknowledge(self, name: str | None, now_s: float, who: str) -> list[AlarmEvent]:
        """Acknowledge one alarm, or every unacknowledged one when ``name`` is None."""
        if name is not None:
            if name not in self.alarms:
                raise AlarmError(f"unknown alarm {name!r}")
            return [self.alarms[name].acknowledge(now_s, who)]
        return [
            a.acknowledge(now_s, who)
            for a in self.alarms.values()
            if a.state in (AlarmState.ACTIVE, AlarmState.RTN_UNACK)
        ]

    def expire_shelving(self, events: list[AlarmEvent], now_s: float) -> list[tuple[str, str]]:
        """End timed shelves whose time is up and one-shot shelves of alarms that cleared in
        ``events`` (OPC 10000-9 §5.8.10); returns (alarm, why) of each one ended."""
        ended = []
        for a in self.alarms.values():
            if a.shelved == "timed" and a.unshelve_s is not None and now_s >= a.unshelve_s:
                a.shelved, a.unshelve_s = "", None
                ended.append((a.name, "timed shelve ended"))
        for ev in events:
            a = self.alarms[ev.name]
            if ev.transition == "clear" and a.shelved == "oneshot":
                a.shelved = ""
                ended.append((a.name, "one-shot shelve ended: the alarm cleared"))
        return ended

    def reset_trip(self) -> list[str]:
        """Release latched interlocks whose alarms are clear; returns those still engaged."""
        still = []
        for il in self.interlocks.values():
            if il.engaged and not any(self.alarms[a].in_alarm for a in il.spec.alarms):
                il.engaged = False
            elif il.engaged:
                still.append(il.name)
        self.tripped = any(
            il.engaged and il.spec.action == "trip" for il in self.interlocks.values()
        )
        return still

    def active(self) -> list[Alarm]:
        """Alarms not in NORMAL state."""
        return [a for a in self.alarms.values() if a.state is not AlarmState.NORMAL]

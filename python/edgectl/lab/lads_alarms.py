"""The controller's alarms as OPC UA conditions (OPC 10000-9, Alarms & Conditions).

One condition instance per alarm of the controller's alarm set, a component of the sensor
function of the alarm's tag (or of the functional unit when the tag has no function), with the
type of its kind:

=========== =============================== ===================================================
kind        condition type                  limits
=========== =============================== ===================================================
high, low   ExclusiveLevelAlarmType         HighLimit / LowLimit; LimitState High / Low
deviation   ExclusiveDeviationAlarmType     HighLimit = limit, LowLimit = −limit; SetpointNode
                                            = the loop's TargetValue when the reference is a
                                            setpoint tag (``temp.sp``); LimitState by the sign
stale       OffNormalAlarmType              —
=========== =============================== ===================================================

The edgectl life cycle (ISA-18.2) maps onto the two states of an alarm condition: ``active`` →
Active, unacknowledged; ``acked`` → Active, acknowledged; ``rtn_unack`` → inactive,
unacknowledged; ``normal`` → inactive, acknowledged, ``Retain`` false. Severity: info 100,
low 300, medium 500, high 700, critical 900 (the bands of OPC 10000-9 §5.5.2).

Every state change is one event, sent to the event subscriptions of the Server object, the
device and the functional unit (asyncua does not forward events along the notifier tree), and
written to the condition's nodes. ``ConditionRefresh`` / ``ConditionRefresh2`` replay the
retained conditions to one subscription between a RefreshStart and a RefreshEnd event.
The condition methods (Acknowledge, Confirm, AddComment, Enable, Disable and the ShelvingState's
TimedShelve, OneShotShelve, Unshelve) are linked by :mod:`edgectl.lab.lads_methods`: each is an
operator-service change as the session's user. Each condition has the optional ShelvingState
(ShelvedStateMachineType), MaxTimeShelved (``[operator] max_shelve_s``), ConfirmedState and
Confirm (the type's method, shared) of AlarmConditionType.

Shelved and disabled conditions are not annunciated: the event of the change that shelves or
disables one is sent (SuppressedOrShelved true, or EnabledState Disabled with Retain false),
then its state changes go to its nodes only, without an event and without a ConditionRefresh
replay, until it is unshelved or enabled (one event with its state then). The controller goes
on evaluating the alarm, recording it in the alarm log and acting on its interlocks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["SEVERITY", "AlarmConditions", "Condition", "add_conditions"]

#: edgectl severity → OPC UA Severity (1..1000)
SEVERITY: Final = {"info": 100, "low": 300, "medium": 500, "high": 700, "critical": 900}
_LEVEL: Final = 9482  # ExclusiveLevelAlarmType
_DEVIATION: Final = 9764  # ExclusiveDeviationAlarmType
_OFF_NORMAL: Final = 10637  # OffNormalAlarmType
_TYPE_OF: Final = {"high": _LEVEL, "low": _LEVEL, "deviation": _DEVIATION}
_PROCESS_CLASS: Final = 11164  # ProcessConditionClassType
_LIMIT_STATE_ID: Final = {"High": 9331, "Low": 9333}  # ExclusiveLimitStateMachineType states
_SHELVED_STATE_MACHINE: Final = 2929  # ShelvedStateMachineType
#: edgectl shelve kind → (ShelvedStateMachineType state name, its node id)
_SHELVING: Final = {
    "": ("Unshelved", 2930),
    "timed": ("TimedShelved", 2932),
    "oneshot": ("OneShotShelved", 2933),
}
_CONFIRM: Final = 9113  # AcknowledgeableConditionType.Confirm (shared by every condition)
_DURATION: Final = 290
# (active, acknowledged) of each edgectl alarm state
_STATES: Final = {
    "normal": (False, True),
    "active": (True, False),
    "acked": (True, True),
    "rtn_unack": (False, False),
}
# event fields also written to the condition's own nodes (browse path below the condition)
_NODE_FIELDS: Final = (
    "Retain",
    "ActiveState",
    "ActiveState/Id",
    "AckedState",
    "AckedState/Id",
    "EnabledState",
    "EnabledState/Id",
    "Severity",
    "LastSeverity",
    "Message",
    "Comment",
    "ClientUserId",
    "ConditionName",
    "ConditionClassId",
    "ConditionClassName",
    "SourceNode",
    "SourceName",
    "EventType",
    "EventId",
    "Time",
    "Quality",
    "InputNode",
    "HighLimit",
    "LowLimit",
    "SetpointNode",
    "LimitState/CurrentState",
    "LimitState/CurrentState/Id",
    "ShelvingState/CurrentState",
    "ShelvingState/CurrentState/Id",
    "ShelvingState/UnshelveTime",
    "SuppressedOrShelved",
    "ConfirmedState",
    "ConfirmedState/Id",
)


@dataclass(slots=True)
class Condition:
    """One alarm's condition: its node, its event (the current state) and what changed it."""

    name: str
    kind: str
    tag: str
    reference: str
    node: Any
    event: Any
    #: event field → the condition's variable node holding it
    fields: dict[str, Any] = field(default_factory=dict)
    state: str = "normal"
    #: EventIds sent since the condition was last normal (an Acknowledge names one of them)
    episode: set[bytes] = field(default_factory=set)
    #: the operator annotations shown (edgectl.runtime.alarms.Alarm.annotations)
    enabled: bool = True
    shelved: str = ""
    confirmed: bool = False
    shelving: Any = None  # the ShelvingState object (its methods' parent)

    @property
    def annunciated(self) -> bool:
        """Whether its changes are sent as events (enabled, not shelved)."""
        return self.enabled and not self.shelved


def _put(event: Any, name: str, value: Any, vtype: Any) -> None:
    event.add_property(name, value, vtype)


async def add_conditions(
    server: Any,
    ns: int,
    unit: Any,
    functions: Mapping[str, Any],
    values: Mapping[str, Any],
    targets: Mapping[str, Any],
    alarms: Mapping[str, Any],
    *,
    max_shelve_s: float = 8 * 3600.0,
) -> dict[str, Condition]:
    """The condition instances of ``alarms`` (name → :class:`~edgectl.runtime.alarms.AlarmSpec`):
    each under the function of its tag (``functions``; else under ``unit``), its InputNode the
    tag's value node (``values``), a deviation alarm's SetpointNode the TargetValue of the loop
    whose ``<loop>.sp`` it references (``targets``); MaxTimeShelved ``max_shelve_s``."""
    from asyncua import ua
    from asyncua.common import events
    from asyncua.common.instantiate_util import instantiate

    out: dict[str, Condition] = {}
    for name, spec in alarms.items():
        source = functions.get(spec.tag, unit)
        type_id = _TYPE_OF.get(spec.kind, _OFF_NORMAL)
        type_node = server.get_node(ua.NodeId(type_id))
        cid = ua.NodeId(f"{source.nodeid.Identifier}.{name}", ns)
        node = (
            await instantiate(
                source,
                type_node,
                nodeid=cid,
                bname=ua.QualifiedName(name, ns),
                dname=ua.LocalizedText(name),
                instantiate_optional=False,
            )
        )[0]
        shelving = await _add_optional(server, node, cid, ns, max_shelve_s)
        ev = await events.get_event_obj_from_type_node(type_node)
        v = ua.VariantType
        severity = SEVERITY.get(spec.severity, 500)
        source_name = spec.tag if spec.tag in functions else (await unit.read_browse_name()).Name
        value_node = values.get(spec.tag)
        for fname, value, vtype in (
            ("NodeId", cid, v.NodeId),  # the ConditionId (asyncua's name for it)
            ("SourceNode", source.nodeid, v.NodeId),
            ("SourceName", source_name, v.String),
            ("ConditionName", name, v.String),
            ("ConditionClassId", ua.NodeId(_PROCESS_CLASS), v.NodeId),
            ("ConditionClassName", ua.LocalizedText("Process"), v.LocalizedText),
            ("BranchId", ua.NodeId(), v.NodeId),
            ("Message", ua.LocalizedText(spec.describe()), v.LocalizedText),
            ("Severity", severity, v.UInt16),
            ("LastSeverity", severity, v.UInt16),
            ("Quality", ua.StatusCode(ua.StatusCodes.Good), v.StatusCode),
            ("EnabledState", ua.LocalizedText("Enabled"), v.LocalizedText),
            ("EnabledState/Id", True, v.Boolean),
            ("InputNode", value_node.nodeid if value_node is not None else ua.NodeId(), v.NodeId),
            ("SuppressedOrShelved", False, v.Boolean),
            ("ShelvingState/CurrentState", ua.LocalizedText("Unshelved"), v.LocalizedText),
            ("ShelvingState/CurrentState/Id", ua.NodeId(_SHELVING[""][1]), v.NodeId),
            ("ShelvingState/UnshelveTime", 0.0, v.Double),
            ("MaxTimeShelved", max_shelve_s * 1000.0, v.Double),
            ("ConfirmedState", ua.LocalizedText("Unconfirmed"), v.LocalizedText),
            ("ConfirmedState/Id", False, v.Boolean),
            ("Comment", ua.LocalizedText(""), v.LocalizedText),
            ("ClientUserId", "", v.String),
        ):
            _put(ev, fname, value, vtype)
        if spec.kind in ("high", "low"):
            limit_name = "HighLimit" if spec.kind == "high" else "LowLimit"
            _put(ev, limit_name, float(spec.limit), v.Double)
        elif spec.kind == "deviation":
            _put(ev, "HighLimit", float(spec.limit), v.Double)
            _put(ev, "LowLimit", -float(spec.limit), v.Double)
            loop = spec.reference.removesuffix(".sp")
            sp = targets.get(loop) if spec.reference.endswith(".sp") else None
            _put(ev, "SetpointNode", sp.nodeid if sp is not None else ua.NodeId(), v.NodeId)
        else:
            _put(ev, "NormalState", ua.NodeId(), v.NodeId)
        cond = Condition(name, spec.kind, spec.tag, spec.reference, node, ev, shelving=shelving)
        _set_state(cond, "normal", dt.datetime.now(dt.UTC), None, initial=True)
        for path in _NODE_FIELDS:
            try:
                cond.fields[path] = await node.get_child([f"0:{p}" for p in path.split("/")])
            except ua.UaError:
                continue
        out[name] = cond
    return out


async def _add_optional(server: Any, node: Any, cid: Any, ns: int, max_shelve_s: float) -> Any:
    """The optional AlarmConditionType members edgectl serves: ShelvingState (with its
    methods), MaxTimeShelved, ConfirmedState and Confirm (the type's method, referenced)."""
    from asyncua import ua
    from asyncua.common.instantiate_util import instantiate

    base = cid.Identifier
    shelving = (
        await instantiate(
            node,
            server.get_node(ua.NodeId(_SHELVED_STATE_MACHINE)),
            nodeid=ua.NodeId(f"{base}.ShelvingState", ns),
            bname=ua.QualifiedName("ShelvingState", 0),
            dname=ua.LocalizedText("ShelvingState"),
            instantiate_optional=False,
        )
    )[0]
    top = await node.add_property(
        ua.NodeId(f"{base}.MaxTimeShelved", ns),
        ua.QualifiedName("MaxTimeShelved", 0),
        ua.Variant(max_shelve_s * 1000.0, ua.VariantType.Double),
    )
    await top.write_attribute(
        ua.AttributeIds.DataType, ua.DataValue(ua.Variant(ua.NodeId(_DURATION)))
    )
    confirmed = await node.add_variable(
        ua.NodeId(f"{base}.ConfirmedState", ns),
        ua.QualifiedName("ConfirmedState", 0),
        ua.LocalizedText("Unconfirmed"),
    )
    await confirmed.add_property(
        ua.NodeId(f"{base}.ConfirmedState.Id", ns), ua.QualifiedName("Id", 0), False
    )
    await node.add_reference(
        ua.NodeId(_CONFIRM), ua.NodeId(ua.ObjectIds.HasComponent), forward=True, bidirectional=False
    )
    return shelving


def _set_state(
    cond: Condition,
    state: str,
    now: dt.datetime,
    values: Mapping[str, Any] | None,
    *,
    initial: bool = False,
) -> None:
    """Put ``state`` into the condition's event fields (``values``: the tags, for the side of a
    deviation; ``initial``: every field, not only those that changed)."""
    from asyncua import ua

    v = ua.VariantType
    ev = cond.event
    active, acked = _STATES.get(state, (True, False))
    was_active, was_acked = (not active, not acked) if initial else _STATES[cond.state]
    if active != was_active:
        _put(
            ev, "ActiveState", ua.LocalizedText("Active" if active else "Inactive"), v.LocalizedText
        )
        _put(ev, "ActiveState/Id", active, v.Boolean)
        _put(ev, "ActiveState/TransitionTime", now, v.DateTime)
        if active:  # a new episode: the previous acknowledgement's note goes
            _put(ev, "Comment", ua.LocalizedText(""), v.LocalizedText)
            _put(ev, "ClientUserId", "", v.String)
    if acked != was_acked:
        _put(
            ev,
            "AckedState",
            ua.LocalizedText("Acknowledged" if acked else "Unacknowledged"),
            v.LocalizedText,
        )
        _put(ev, "AckedState/Id", acked, v.Boolean)
        _put(ev, "AckedState/TransitionTime", now, v.DateTime)
    _put(ev, "Retain", state != "normal" and cond.enabled, v.Boolean)
    # the side of a limit: when it became active, or from the tags (a method's re-sync has
    # none and keeps the side shown)
    if cond.kind in ("high", "low", "deviation") and (active != was_active or values is not None):
        side = ""
        if active:
            side = "High" if cond.kind == "high" else "Low"
            if cond.kind == "deviation" and values is not None:
                value = (values.get(cond.tag) or {}).get("value")
                ref = (values.get(cond.reference) or {}).get("value")
                if value is not None and ref is not None:
                    side = "High" if value > ref else "Low"
        state_id = ua.NodeId(_LIMIT_STATE_ID[side]) if side else ua.NodeId()
        _put(ev, "LimitState/CurrentState", ua.LocalizedText(side), v.LocalizedText)
        _put(ev, "LimitState/CurrentState/Id", state_id, v.NodeId)
    cond.state = state


class AlarmConditions:
    """The conditions of one server at run time (module docstring).

    Parameters
    ----------
    server
        The asyncua ``Server``.
    conditions
        Alarm name → condition (:func:`add_conditions`).
    notifiers
        The node ids whose event subscriptions get every condition event.
    """

    def __init__(self, server: Any, conditions: dict[str, Condition], notifiers: list[Any]) -> None:
        self.server = server
        self.conditions = conditions
        self.by_id = {c.event.NodeId: c for c in conditions.values()}
        #: ShelvingState node id → its condition (the parent of TimedShelve, ...)
        self.by_shelving = {
            c.shelving.nodeid: c for c in conditions.values() if c.shelving is not None
        }
        self.notifiers = notifiers
        self._lock = asyncio.Lock()
        #: (alarm, "ack" | "confirm") → (user, comment) of a change under way through OPC UA
        self._notes: dict[tuple[str, str], tuple[str, str]] = {}

    def note(self, name: str, user: str, comment: str, kind: str = "ack") -> None:
        """Who acknowledges (or confirms) ``name`` and why: shown in that change's event."""
        self._notes[(name, kind)] = (user, comment)

    def forget(self, name: str, kind: str = "ack") -> None:
        self._notes.pop((name, kind), None)

    async def link(self) -> None:
        """Mark the notifiers as event sources and take over ConditionRefresh(2)."""
        from asyncua import ua

        for nid in self.notifiers:
            await self.server.get_node(nid).set_event_notifier([ua.EventNotifier.SubscribeToEvents])
        for mid in (
            ua.ObjectIds.ConditionType_ConditionRefresh,
            ua.ObjectIds.ConditionType_ConditionRefresh2,
        ):
            self.server.link_method(self.server.get_node(ua.NodeId(mid)), self.refresh)

    async def sync(
        self, rows: Mapping[str, Mapping[str, Any]], values: Mapping[str, Any] | None
    ) -> None:
        """Bring every condition to its alarm (``rows``: name → the controller's
        ``alarm_conditions()`` row: state and annotations); one event per annunciated
        condition that changed, or that was shelved or disabled by this change."""
        from asyncua import ua

        v = ua.VariantType
        async with self._lock:
            for name, cond in self.conditions.items():
                row = rows.get(name) or {}
                new = str(row.get("state", "normal"))
                enabled = bool(row.get("enabled", True))
                shelved = str(row.get("shelved", ""))
                confirmed = bool(row.get("confirmed", False))
                was_annunciated = cond.annunciated
                until = row.get("unshelve_s")
                if shelved == "timed" and isinstance(until, int | float):
                    left_ms = max(0.0, (float(until) - float(row.get("now_s", 0.0))) * 1000.0)
                    _put(cond.event, "ShelvingState/UnshelveTime", left_ms, v.Double)
                    await self._write_field(cond, "ShelvingState/UnshelveTime")
                if (new, enabled, shelved, confirmed) == (
                    cond.state,
                    cond.enabled,
                    cond.shelved,
                    cond.confirmed,
                ):
                    continue
                now = dt.datetime.now(dt.UTC)
                # an operator's change of the condition is always evented; a change of the
                # alarm's state only while annunciated (or as it stops being annunciated)
                annotated = (enabled, shelved, confirmed) != (
                    cond.enabled,
                    cond.shelved,
                    cond.confirmed,
                )
                if enabled != cond.enabled:
                    cond.enabled = enabled
                    text = "Enabled" if enabled else "Disabled"
                    _put(cond.event, "EnabledState", ua.LocalizedText(text), v.LocalizedText)
                    _put(cond.event, "EnabledState/Id", enabled, v.Boolean)
                    _put(cond.event, "EnabledState/TransitionTime", now, v.DateTime)
                if shelved != cond.shelved:
                    cond.shelved = shelved
                    state_name, state_id = _SHELVING.get(shelved, _SHELVING[""])
                    _put(
                        cond.event,
                        "ShelvingState/CurrentState",
                        ua.LocalizedText(state_name),
                        v.LocalizedText,
                    )
                    _put(cond.event, "ShelvingState/CurrentState/Id", ua.NodeId(state_id), v.NodeId)
                    _put(cond.event, "SuppressedOrShelved", bool(shelved), v.Boolean)
                    if not shelved:
                        _put(cond.event, "ShelvingState/UnshelveTime", 0.0, v.Double)
                if confirmed != cond.confirmed:
                    cond.confirmed = confirmed
                    text = "Confirmed" if confirmed else "Unconfirmed"
                    _put(cond.event, "ConfirmedState", ua.LocalizedText(text), v.LocalizedText)
                    _put(cond.event, "ConfirmedState/Id", confirmed, v.Boolean)
                    note = self._notes.pop((name, "confirm"), None)
                    if note is not None and confirmed:
                        self._put_note(cond, note)
                was_acked = _STATES[cond.state][1]
                _set_state(cond, new, now, values)  # also Retain (false while disabled)
                note = self._notes.pop((name, "ack"), None)
                if note is not None and _STATES[new][1] and not was_acked:
                    self._put_note(cond, note)
                await self._emit(cond, send=annotated or was_annunciated or cond.annunciated)

    def _put_note(self, cond: Condition, note: tuple[str, str]) -> None:
        from asyncua import ua

        _put(cond.event, "ClientUserId", note[0], ua.VariantType.String)
        _put(cond.event, "Comment", ua.LocalizedText(note[1]), ua.VariantType.LocalizedText)

    async def comment(self, name: str, user: str, text: str) -> None:
        """An AddComment applied by the operator service: Comment and ClientUserId, one event
        (when the condition is annunciated)."""
        async with self._lock:
            cond = self.conditions[name]
            self._put_note(cond, (user, text))
            await self._emit(cond, send=cond.annunciated)

    async def _write_field(self, cond: Condition, path: str) -> None:
        from asyncua import ua

        node = cond.fields.get(path)
        ev = cond.event
        if node is not None and getattr(ev, path, None) is not None:
            dv = ua.DataValue(ua.Variant(getattr(ev, path), ev.data_types[path]))
            await self.server.write_attribute_value(node.nodeid, dv)

    async def _emit(self, cond: Condition, *, send: bool = True) -> None:
        """A new EventId and Time, the fields written to the condition's nodes, and the event
        sent (``send``: false for a shelved or disabled condition)."""
        from asyncua import ua

        ev = cond.event
        now = dt.datetime.now(dt.UTC)
        event_id = uuid.uuid4().bytes
        _put(ev, "EventId", event_id, ua.VariantType.ByteString)
        _put(ev, "Time", now, ua.VariantType.DateTime)
        _put(ev, "ReceiveTime", now, ua.VariantType.DateTime)
        if cond.state == "normal":
            cond.episode.clear()
        else:
            cond.episode.add(event_id)
        for path in cond.fields:
            await self._write_field(cond, path)
        if send:
            await self._send(ev, None)

    async def _send(self, ev: Any, subscription_id: int | None) -> None:
        service = self.server.iserver.subscription_service
        subs = list(service.subscriptions.items())
        for nid in self.notifiers:
            ev.emitting_node = nid
            for sid, sub in subs:
                if subscription_id is None or sid == subscription_id:
                    await sub.monitored_item_srv.trigger_event(ev)

    async def refresh(self, parent: Any, subscription: Any, *more: Any) -> Any:
        """ConditionRefresh(SubscriptionId) / ConditionRefresh2(SubscriptionId,
        MonitoredItemId): RefreshStart, every retained annunciated condition (not shelved, not
        disabled), RefreshEnd, to that subscription (OPC 10000-9 §5.5.7)."""
        from asyncua import ua
        from asyncua.common.event_objects import RefreshEndEvent, RefreshStartEvent

        sid = getattr(subscription, "Value", subscription)
        if sid not in self.server.iserver.subscription_service.subscriptions:
            return ua.StatusCode(ua.StatusCodes.BadSubscriptionIdInvalid)
        async with self._lock:
            for cls, retained in ((RefreshStartEvent, True), (RefreshEndEvent, False)):
                marker = cls(sourcenode=ua.NodeId(ua.ObjectIds.Server))
                now = dt.datetime.now(dt.UTC)
                marker.EventId = uuid.uuid4().bytes
                marker.Time = marker.ReceiveTime = now
                marker.SourceName = "Server"
                await self._send(marker, sid)
                if retained:
                    for cond in self.conditions.values():
                        if cond.state != "normal" and cond.annunciated:
                            await self._send(cond.event, sid)
        return []

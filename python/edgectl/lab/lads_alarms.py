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
``Acknowledge`` is linked by the server (:meth:`edgectl.lab.opcua_server.OpcUaServer`): it
becomes the operator service's ``ack`` as the session's user.
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
) -> dict[str, Condition]:
    """The condition instances of ``alarms`` (name → :class:`~edgectl.runtime.alarms.AlarmSpec`):
    each under the function of its tag (``functions``; else under ``unit``), its InputNode the
    tag's value node (``values``), a deviation alarm's SetpointNode the TargetValue of the loop
    whose ``<loop>.sp`` it references (``targets``)."""
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
        cond = Condition(name, spec.kind, spec.tag, spec.reference, node, ev)
        _set_state(cond, "normal", dt.datetime.now(dt.UTC), None, initial=True)
        for path in _NODE_FIELDS:
            try:
                cond.fields[path] = await node.get_child([f"0:{p}" for p in path.split("/")])
            except ua.UaError:
                continue
        out[name] = cond
    return out


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
    _put(ev, "Retain", state != "normal", v.Boolean)
    if cond.kind in ("high", "low", "deviation"):
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
        self.notifiers = notifiers
        self._lock = asyncio.Lock()
        #: alarm → (user, comment) of an acknowledgement under way through OPC UA
        self._notes: dict[str, tuple[str, str]] = {}

    def note(self, name: str, user: str, comment: str) -> None:
        """Who acknowledges ``name`` and why: shown in the event of the acknowledgement."""
        self._notes[name] = (user, comment)

    def forget(self, name: str) -> None:
        self._notes.pop(name, None)

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

    async def sync(self, states: Mapping[str, str], values: Mapping[str, Any] | None) -> None:
        """Bring every condition to its alarm's state (``states``: name → edgectl state of the
        alarms not normal); one event per condition that changed."""
        from asyncua import ua

        async with self._lock:
            for name, cond in self.conditions.items():
                new = states.get(name, "normal")
                if new == cond.state:
                    continue
                was_acked = _STATES[cond.state][1]
                _set_state(cond, new, dt.datetime.now(dt.UTC), values)
                note = self._notes.pop(name, None)
                if note is not None and _STATES[new][1] and not was_acked:
                    v = ua.VariantType
                    _put(cond.event, "ClientUserId", note[0], v.String)
                    _put(cond.event, "Comment", ua.LocalizedText(note[1]), v.LocalizedText)
                await self._emit(cond)

    async def _emit(self, cond: Condition) -> None:
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
        for path, node in cond.fields.items():
            if hasattr(ev, path) and getattr(ev, path) is not None:
                dv = ua.DataValue(ua.Variant(getattr(ev, path), ev.data_types[path]))
                await self.server.write_attribute_value(node.nodeid, dv)
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
        MonitoredItemId): RefreshStart, every retained condition, RefreshEnd, to that
        subscription (OPC 10000-9 §5.5.7)."""
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
                        if cond.state != "normal":
                            await self._send(cond.event, sid)
        return []

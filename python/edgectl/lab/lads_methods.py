"""The methods of the alarm conditions (OPC 10000-9 §5.5.4, §5.7.3, §5.7.4, §5.8.10), each an
operator-service change as the OPC UA session's user (:class:`edgectl.operator.changes.Change`):

=============================== ==================== =========================================
method                          operator change      Bad status of the refusals it may get
=============================== ==================== =========================================
Acknowledge(EventId, Comment)   ``ack``              BadEventIdUnknown,
                                                     BadConditionBranchAlreadyAcked
Confirm(EventId, Comment)       ``confirm``          BadEventIdUnknown, BadInvalidState (not
                                                     acknowledged), BadConditionBranch-
                                                     AlreadyConfirmed
AddComment(EventId, Comment)    ``comment``          BadEventIdUnknown, BadInvalidArgument
                                                     (empty), BadConditionDisabled
Enable(), Disable()             ``enable``           BadConditionAlreadyEnabled / -Disabled
ShelvingState.TimedShelve(ms)   ``shelve``           BadShelvingTimeOutOfRange (over
                                                     MaxTimeShelved), BadConditionDisabled
ShelvingState.OneShotShelve()   ``shelve``           BadConditionAlreadyShelved
ShelvingState.Unshelve()        ``shelve``           BadConditionNotShelved
=============================== ==================== =========================================

Every method also gets ``BadUserAccessDenied`` when the user's role lacks the right (audited,
rule ``rights``; ``enable`` is an engineer's right by default). A method may be called on the
condition's own method node or as the type's method with the condition (the ShelvingState for
the shelving methods) as the object. The Comment becomes the audit record's reason
(``OPC UA Confirm: <comment>``); an AddComment's text is the record's value.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from edgectl.errors import EdgectlError
from edgectl.lab.lads_alarms import AlarmConditions, Condition
from edgectl.operator.changes import Change
from edgectl.operator.users import Identity

__all__ = ["ConditionMethods"]

# method → the node ids of the type's method (called with the condition as the object)
_TYPE_METHODS: Final = {
    "Acknowledge": 9111,  # AcknowledgeableConditionType_Acknowledge
    "Confirm": 9113,
    "AddComment": 9029,  # ConditionType_AddComment
    "Enable": 9027,
    "Disable": 9028,
    "TimedShelve": 2949,  # ShelvedStateMachineType_TimedShelve
    "OneShotShelve": 2948,
    "Unshelve": 2947,
}
_ON_SHELVING: Final = frozenset({"TimedShelve", "OneShotShelve", "Unshelve"})


class ConditionMethods:
    """Links and serves the condition methods of one server (module docstring).

    ``owner`` is the :class:`~edgectl.lab.opcua_server.OpcUaServer`: its ``identity_of``,
    ``caller`` (the session's asyncua user), ``change`` (one operator change → None or a Bad
    status) and ``resync`` (read the alarms into the conditions again).
    """

    def __init__(self, owner: Any, conditions: AlarmConditions) -> None:
        self.owner = owner
        self.conditions = conditions

    def link(self, server: Any, ns: int) -> None:
        from asyncua import ua

        for method, type_id in _TYPE_METHODS.items():
            server.link_method(server.get_node(ua.NodeId(type_id)), self._handler(method))
        for cond in self.conditions.conditions.values():
            base = cond.node.nodeid.Identifier
            for method in ("Acknowledge", "AddComment", "Enable", "Disable"):
                node = server.get_node(ua.NodeId(f"{base}.{method}", ns))
                server.link_method(node, self._handler(method))
            for method in _ON_SHELVING:
                node = server.get_node(ua.NodeId(f"{base}.ShelvingState.{method}", ns))
                server.link_method(node, self._handler(method))

    def _handler(self, method: str) -> Any:
        async def handle(parent: Any, *args: Any) -> Any:
            return await self.call(method, parent, [getattr(a, "Value", a) for a in args])

        return handle

    async def call(self, method: str, parent: Any, args: list[Any]) -> Any:
        """One condition method on the condition (or ShelvingState) ``parent``."""
        from asyncua import ua

        c = self.conditions
        cond = (c.by_shelving if method in _ON_SHELVING else c.by_id).get(parent)
        if cond is None:
            return ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown)
        try:
            ident: Identity = self.owner.identity_of(self.owner.caller())
        except EdgectlError as exc:
            return ua.StatusCode(self.owner.status_of(exc))
        text = ""
        if method in ("Acknowledge", "Confirm", "AddComment"):
            eid = args[0] if args else None
            if not isinstance(eid, bytes) or not _known(cond, eid):
                return ua.StatusCode(ua.StatusCodes.BadEventIdUnknown)
            comment = args[1] if len(args) > 1 else None
            text = str(getattr(comment, "Text", None) or "")
        try:
            change = _change_of(method, cond, args, text)
        except (TypeError, ValueError):
            return ua.StatusCode(ua.StatusCodes.BadInvalidArgument)
        reason = (
            f"OPC UA {method}: {text}" if text and method != "AddComment" else f"OPC UA {method}"
        )
        kind = {"Acknowledge": "ack", "Confirm": "confirm"}.get(method)
        if kind is not None:
            c.note(cond.name, ident.name, text, kind)
        status = await asyncio.to_thread(self.owner.change, ident, change, reason)
        if status is not None:
            if kind is not None:
                c.forget(cond.name, kind)
            return ua.StatusCode(_condition_status(method, status))
        if method == "AddComment":
            await c.comment(cond.name, ident.name, text)
        await self.owner.resync()
        return []


def _known(cond: Condition, event_id: bytes) -> bool:
    """An EventId of this condition: sent since it was last normal, or its latest event."""
    return event_id in cond.episode or event_id == getattr(cond.event, "EventId", None)


def _change_of(method: str, cond: Condition, args: list[Any], text: str) -> Change:
    name = cond.name
    if method == "Acknowledge":
        return Change.ack(name)
    if method == "Confirm":
        return Change.confirm(name)
    if method == "AddComment":
        return Change.comment(name, text)
    if method in ("Enable", "Disable"):
        return Change.enable(name, method == "Enable")
    if method == "OneShotShelve":
        return Change.shelve(name, None)
    if method == "Unshelve":
        return Change.unshelve(name)
    ms = args[0] if args else None
    if isinstance(ms, bool) or not isinstance(ms, int | float):
        raise TypeError("TimedShelve needs ShelvingTime (Duration, ms)")
    return Change.shelve(name, float(ms) / 1000.0)


def _condition_status(method: str, status: int) -> int:
    """The Part 9 code of a refusal where one is defined for the method."""
    from asyncua import ua

    codes = ua.StatusCodes
    if status == int(codes.BadOutOfRange):  # the service's limits or validation
        return int(
            {
                "Acknowledge": codes.BadConditionBranchAlreadyAcked,
                "TimedShelve": codes.BadShelvingTimeOutOfRange,
                "AddComment": codes.BadInvalidArgument,
            }.get(method, codes.BadInvalidArgument)
        )
    return status

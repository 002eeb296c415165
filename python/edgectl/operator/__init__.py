"""The operator service (DESIGN.md part 9): the one door into a running controller.

Every face — the REPL socket (:mod:`edgectl.runtime.rpc`, ``edgectl.connect``) today, the web,
MQTT and OPC UA faces later — calls :class:`OperatorService` and nothing else. A change is a
transaction: authenticate → authorise by role → e-signature where the config requires one →
validate against the config's limits → audit record (the value that will be applied, the proven
user, this change's reason) committed durably → applied between two scans. If a step fails,
nothing is applied and the caller gets a :class:`RefusedError` naming the rule, the user and the
value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgectl.operator.changes import Change
from edgectl.operator.config import LoopLimits, OperatorConfig
from edgectl.operator.errors import AuthenticationError, RefusedError, RunStoppedError
from edgectl.operator.users import Identity, User, UserStore

if TYPE_CHECKING:
    from edgectl.operator.service import Applied, OperatorService
    from edgectl.operator.session import Session

__all__ = [
    "Applied",
    "AuthenticationError",
    "Change",
    "Identity",
    "LoopLimits",
    "OperatorConfig",
    "OperatorService",
    "RefusedError",
    "RunStoppedError",
    "Session",
    "User",
    "UserStore",
]


def __getattr__(name: str) -> Any:
    # the service imports the runtime, whose config imports this package: load it on use
    if name in ("Applied", "OperatorService"):
        from edgectl.operator import service

        return getattr(service, name)
    if name == "Session":
        from edgectl.operator.session import Session

        return Session
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

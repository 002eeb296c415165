"""A client's session of the operator service: what a face may call, as whom.

One session per socket connection (its identity from the peer's credentials) or per in-process
handle (the process's OS user). ``login(user, password)`` switches it to another edgectl user.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from edgectl.errors import EdgectlError
from edgectl.operator.changes import Change
from edgectl.operator.config import QUERIES
from edgectl.operator.errors import AuthenticationError
from edgectl.operator.users import Identity

if TYPE_CHECKING:
    from edgectl.operator.service import OperatorService

__all__ = ["Session"]


class Session:
    """One client of the service: a socket connection or an in-process handle. The methods in
    :attr:`EXPORTED` are what a face may call; each runs as the session's identity."""

    # the controller's queries (passed through after the "read" right), then the session's own
    # calls and the changes
    EXPORTED = QUERIES | {
        "whoami",
        "login",
        "loop_set",
        "loop_manual",
        "autotune_start",
        "ack",
        "alarm_shelve",
        "alarm_unshelve",
        "alarm_enable",
        "alarm_comment",
        "alarm_confirm",
        "reset_trip",
        "phase_request",
        "add_reference",
        "model_switch",
        "stop",
    }

    def __init__(self, service: OperatorService, identity: Identity | None, error: str) -> None:
        self.service = service
        self.identity = identity
        self._error = error

    def call(self, method: str, params: Mapping[str, Any]) -> Any:
        """Dispatch one request of a face (``who`` is refused: identity is proven, not sent)."""
        if method not in self.EXPORTED:
            raise EdgectlError(f"unknown method {method!r}")
        if "who" in params:
            raise AuthenticationError(
                "'who' is not accepted: the controller identifies you (socket peer "
                "credentials, or login(user, password))",
                rule="authentication",
            )
        return getattr(self, method)(**params)

    def _user(self) -> Identity:
        if self.identity is None:
            raise AuthenticationError(
                f"not authenticated: {self._error}; log in with a password",
                rule="authentication",
            )
        return self.identity

    # identity
    def whoami(self) -> dict[str, str]:
        u = self._user()
        return {"name": u.name, "role": u.role, "source": u.source, "full_name": u.full_name}

    def login(self, user: str, password: str) -> dict[str, str]:
        self.identity = self.service.login(user, password)
        return self.whoami()

    # queries
    def _q(self, method: str, **params: Any) -> Any:
        return self.service.query(self._user(), method, **params)

    def info(self) -> Any:
        return self._q("info")

    def read_tags(self, names: list[str] | None = None) -> Any:
        return self._q("read_tags", names=names)

    def trend(self, tag: str, seconds: float) -> Any:
        return self._q("trend", tag=tag, seconds=seconds)

    def loop_names(self) -> Any:
        return self._q("loop_names")

    def loop_get(self, loop: str) -> Any:
        return self._q("loop_get", loop=loop)

    def autotune_status(self, loop: str) -> Any:
        return self._q("autotune_status", loop=loop)

    def alarms(self) -> Any:
        return self._q("alarms")

    def alarm_conditions(self) -> Any:
        return self._q("alarm_conditions")

    def softsensor_status(self) -> Any:
        return self._q("softsensor_status")

    # history (edgectl.runtime.history)
    def history(
        self,
        tag: str,
        start_s: float | None = None,
        end_s: float | None = None,
        buckets: int = 800,
    ) -> Any:
        return self._q("history", tag=tag, start_s=start_s, end_s=end_s, buckets=buckets)

    def events_log(self, last: int = 500) -> Any:
        return self._q("events_log", last=last)

    def alarm_log(self, last: int = 500) -> Any:
        return self._q("alarm_log", last=last)

    def audit_log(self, last: int = 500) -> Any:
        return self._q("audit_log", last=last)

    def audit_verify(self) -> Any:
        return self._q("audit_verify")

    def recipe_status(self, references: int = 50) -> Any:
        """Phases, the phase now, operator transitions, the timeline, at-line references."""
        return self._q("recipe_status", references=references)

    # changes
    def _c(self, change: Change, reason: str, signature: Mapping[str, Any] | None = None) -> Any:
        return self.service.change(self._user(), change, reason=reason, signature=signature)

    def loop_set(
        self,
        loop: str,
        param: str,
        value: Any,
        reason: str = "",
        signature: Mapping[str, Any] | None = None,
    ) -> Any:
        """Set one loop setting; returns the old value."""
        return self._c(Change.loop(loop, str(param), value), reason, signature).old

    def loop_manual(
        self,
        loop: str,
        output: float | None = None,
        reason: str = "",
        signature: Mapping[str, Any] | None = None,
    ) -> Any:
        """Manual mode, holding the output or at ``output`` (loop units); returns the old."""
        return self._c(Change.manual(loop, output), reason, signature).old

    def autotune_start(
        self, loop: str, options: Mapping[str, Any] | None = None, reason: str = ""
    ) -> Any:
        return self._c(Change.autotune(loop, options or {}), reason).result

    def ack(self, name: str | None = None, reason: str = "") -> Any:
        return self._c(Change.ack(name), reason).result

    def alarm_shelve(
        self,
        name: str,
        duration_s: float | None = None,
        reason: str = "",
        signature: Mapping[str, Any] | None = None,
    ) -> Any:
        """Shelve alarm ``name`` for ``duration_s`` clock seconds, or until it clears (None)."""
        return self._c(Change.shelve(name, duration_s), reason, signature).result

    def alarm_unshelve(
        self, name: str, reason: str = "", signature: Mapping[str, Any] | None = None
    ) -> Any:
        return self._c(Change.unshelve(name), reason, signature).result

    def alarm_enable(
        self,
        name: str,
        enabled: bool = True,
        reason: str = "",
        signature: Mapping[str, Any] | None = None,
    ) -> Any:
        return self._c(Change.enable(name, enabled), reason, signature).result

    def alarm_comment(self, name: str, text: str, reason: str = "") -> Any:
        return self._c(Change.comment(name, text), reason).result

    def alarm_confirm(self, name: str, reason: str = "") -> Any:
        return self._c(Change.confirm(name), reason).result

    def reset_trip(self, reason: str = "", signature: Mapping[str, Any] | None = None) -> Any:
        return self._c(Change.reset_trip(), reason, signature).result

    def phase_request(self, to: str, reason: str = "") -> Any:
        return self._c(Change.phase(to), reason).result

    def add_reference(
        self,
        sensor: str,
        value: float,
        sampled_s: float | None = None,
        reason: str = "",
        analyser: str = "",
    ) -> Any:
        return self._c(Change.reference(sensor, value, sampled_s, analyser), reason).result

    def model_switch(
        self,
        sensor: str,
        model: str | int,
        reason: str = "",
        signature: Mapping[str, Any] | None = None,
    ) -> Any:
        """Release a model file or an earlier version of soft sensor ``sensor`` (e-signed by
        default); returns the released version."""
        return self._c(Change.model_switch(sensor, model), reason, signature).result

    def stop(self, reason: str = "", signature: Mapping[str, Any] | None = None) -> Any:
        return self._c(Change.stop(), reason, signature).result

"""The operator service: the one door into a running controller.

Every face (the REPL socket today; the web, MQTT and OPC UA faces later) turns a request into
one call here with the caller's proven :class:`~edgectl.operator.users.Identity`. A change is a
transaction, in this order, and nothing is applied unless every step passes:

1. **authenticate** — the face proves who calls (socket peer credentials, a password);
2. **authorise** — the user's role holds the command's right (``[operator] rights``);
3. **e-signature** — for the commands the config marks critical (default: ``stop``,
   ``reset_trip``) the user re-enters their password and states the meaning of the signature
   (in the spirit of 21 CFR 11.200); a reason is then required;
4. **validate** — against the config's limits (setpoint range, manual output within the loop's
   output range in its own units, gain ranges), giving the value that *will* be applied;
5. **audit** — one record with that value, the authenticated user and this change's reason,
   committed durably (``synchronous=FULL``). The audit trail is also the change's write-ahead
   record: the controller's saved state says up to which record it is complete, and a resume
   re-applies the records after it, so an audited change is in force after a crash;
6. **apply** — handed to the controller between two scans (:meth:`Controller.apply_change`).

No step waits on storage while holding the scan lock: validation reads snapshots, the audit
write (which may wait out SQLite's busy timeout) runs with only the service's own lock, which
serialises changes so the trail's order is the order they are applied in. Refused changes are
audited too (action ``refused``, with the rule), so a probe of someone's rights leaves a trace.
"""

from __future__ import annotations

import contextlib
import math
import os
import pwd
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgectl.errors import EdgectlError
from edgectl.operator.changes import Change, validate_loop_change
from edgectl.operator.config import QUERIES, OperatorConfig, users_path
from edgectl.operator.errors import AuthenticationError, RefusedError, RunStoppedError
from edgectl.operator.throttle import LoginThrottle
from edgectl.operator.users import Identity, UserStore

if TYPE_CHECKING:
    from edgectl.operator.session import Session

__all__ = ["Applied", "OperatorService"]


@dataclass(frozen=True, slots=True)
class Applied:
    """What a change did: its audit record, the values before and after, the controller's
    answer (``result``)."""

    seq: int
    target: str
    old: Any
    new: Any
    result: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "target": self.target,
            "old": self.old,
            "new": self.new,
            "result": self.result,
        }


def _os_user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"


def _clean(value: Any, limit: int = 200) -> Any:
    """A requested value as it may be recorded: JSON-safe and short."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value) if math.isfinite(float(value)) else repr(float(value))
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class OperatorService:
    """The operator service of one controller (see the module docstring).

    Parameters
    ----------
    controller
        The :class:`edgectl.runtime.controller.Controller` it fronts.
    config
        The ``[operator]`` section.
    users
        The users file.
    """

    def __init__(self, controller: Any, config: OperatorConfig, users: UserStore) -> None:
        self.controller = controller
        self.config = config
        self.users = users
        unknown = sorted(set(config.loops) - set(controller.loops))
        if unknown:
            raise EdgectlError(
                f"$.operator.loops: unknown loop(s) {unknown} (loops: {sorted(controller.loops)})"
            )
        # configured settings: the base of default gain ranges
        self._configured = {name: controller.loop_get(name) for name in controller.loops}
        self._output_ranges = self._loop_output_ranges()
        self.throttle = LoginThrottle(
            config.login_max_failures,
            config.login_lockout_s,
            max(3600.0, config.login_lockout_s),
        )
        self._txn = threading.Lock()
        self._closed: str | None = None
        self._wake = threading.Event()
        self._drainer = threading.Thread(
            target=self._drain_loop, name="operator-audit", daemon=True
        )
        self._drainer.start()
        controller.operator = self

    @classmethod
    def for_run(cls, controller: Any, cfg: Any, config_path: str | Path) -> OperatorService:
        """The service of a run: ``cfg`` is its ReactorConfig; the users file is the one
        ``[operator] users_file`` names, or the one beside the run's database."""
        op: OperatorConfig = cfg.operator
        path = users_path(Path(config_path).parent, op.users_file, controller.historian.path)
        return cls(controller, op, UserStore(path))

    def _loop_output_ranges(self) -> dict[str, tuple[float, float]]:
        out: dict[str, tuple[float, float]] = {}
        outputs = self.controller.cfg.outputs
        for name, view in self.controller.loops.items():
            s = self._configured[name]
            if len(view.outputs) == 1 and view.outputs[0] in outputs:
                o = outputs[view.outputs[0]]
                out[name] = (float(o.min), float(o.max))
            elif "output_min" in s:
                out[name] = (float(s["output_min"]), float(s["output_max"]))
        return out

    # -- identity --------------------------------------------------------------------------------

    def identify_peer(self, uid: int) -> Identity:
        """The identity of a socket peer running as OS user ``uid`` (SO_PEERCRED).

        ``[operator] os_users`` maps OS user names to edgectl users; an OS user with the name
        of an edgectl user is that user; the controller's own OS user is ``admin`` unless the
        users file gives it another role."""
        os_name = _os_user(uid)
        name = self.config.os_users.get(os_name, os_name)
        user = self.users.get(name)
        source = f"peer uid {uid} ({os_name})"
        if user is not None:
            return Identity(user.name, user.role, source, user.full_name)
        if uid == os.getuid():
            return Identity(name, "admin", f"{source}, the controller's own user")
        raise AuthenticationError(
            f"OS user {os_name!r} (uid {uid}) is not an edgectl user: add it with "
            f"`edgectl users add {name} --role viewer` or map it in [operator.os_users]",
            rule="authentication",
            user=os_name,
        )

    def identify_process(self) -> Identity:
        """The identity of a caller in this process: the process's own OS user."""
        ident = self.identify_peer(os.getuid())
        return Identity(ident.name, ident.role, "in-process", ident.full_name)

    def login(self, name: str, password: str) -> Identity:
        """Password login as edgectl user ``name`` (the failure is audited). After
        ``login_max_failures`` wrong passwords in a row the name is locked for a while
        (:class:`~edgectl.operator.throttle.LoginThrottle`): refused unchecked, audited."""
        shown = str(_clean(name, 40))
        key = name if isinstance(name, str) else shown
        locked = self.throttle.locked_for_s(key)
        if locked > 0.0:
            why = f"locked for {locked:.0f} s more after repeated wrong passwords"
            self._audit_quietly(shown or "?", "login_locked", "operator.login", None, None, why)
            raise AuthenticationError(
                f"login as {shown!r} refused: {why}", rule="lockout", user=shown
            )
        user = self.users.check_password(name, password) if isinstance(name, str) else None
        if user is None:
            span = self.throttle.failed(key)
            why = "wrong password" + (f"; locked for {span:.0f} s" if span else "")
            self._audit_quietly(shown or "?", "login_failed", "operator.login", None, None, why)
            tail = f"; the name is now locked for {span:.0f} s" if span else ""
            raise AuthenticationError(
                f"login as {shown!r} refused: unknown user or wrong password{tail}",
                rule="authentication",
                user=shown,
            )
        self.throttle.succeeded(key)
        return Identity(user.name, user.role, "password", user.full_name)

    def session(self, identity: Identity | None, error: str = "") -> Session:
        """A session of one client (one socket connection, one in-process handle)."""
        from edgectl.operator.session import Session

        return Session(self, identity, error)

    def open_session(self, uid: int | None) -> Session:
        """A session for a socket peer (:class:`edgectl.runtime.rpc.RpcServer` calls it)."""
        if uid is None:
            return self.session(None, "the socket peer's credentials could not be read")
        try:
            return self.session(self.identify_peer(uid))
        except AuthenticationError as exc:
            return self.session(None, str(exc))

    # -- life ------------------------------------------------------------------------------------

    def check_running(self, *, changing: bool) -> None:
        """Raise :class:`RunStoppedError` once the run stops (changes: as soon as it is
        stopping; queries: once the service is closed)."""
        if self._closed is not None:
            raise RunStoppedError(f"run stopped ({self._closed}): the controller takes no calls")
        if changing and self.controller.stopped.is_set():
            why = self.controller.stop_reason or "stopping"
            raise RunStoppedError(f"run stopped ({why}): no more changes")

    def close(self, reason: str = "the run closed") -> None:
        """Take no more calls; write the audit records still pending (idempotent)."""
        if self._closed is not None:
            return
        with self._txn:
            self._closed = reason
        self._wake.set()
        self._drainer.join(timeout=15.0)
        with contextlib.suppress(EdgectlError):
            self._drain()

    # -- queries ---------------------------------------------------------------------------------

    def query(self, user: Identity, method: str, **params: Any) -> Any:
        """A read (tags, trend, loops, alarms, status): needs the ``read`` right."""
        self.check_running(changing=False)
        self._authorise(user, "read", method, None)
        if method not in QUERIES:
            raise EdgectlError(f"unknown query {method!r}")
        try:
            return getattr(self.controller, method)(**params)
        except EdgectlError:
            if self._closed is not None or self.controller.stopped.is_set():
                raise RunStoppedError("run stopped: the historian is closing") from None
            raise

    # -- changes ---------------------------------------------------------------------------------

    def change(
        self,
        user: Identity,
        change: Change,
        *,
        reason: str = "",
        signature: Mapping[str, Any] | None = None,
    ) -> Applied:
        """Run one change as a transaction (module docstring); :class:`RefusedError` names the
        rule when a step refuses, and then nothing was applied."""
        self.check_running(changing=True)
        try:
            reason = self._check_text(reason, "reason", user, allow_empty=True)
            self._authorise(user, change.command, change.target, change.value)
            manifest = self._check_signature(user, change, signature, reason)
        except RefusedError as exc:
            self._audit_refusal(user, change, exc)
            raise
        with self._txn:
            self.check_running(changing=True)
            with contextlib.suppress(EdgectlError):
                self._drain()  # automatic changes applied before this one are recorded first
            try:
                old, new = self._validate(user, change)
            except RefusedError as exc:
                self._audit_refusal(user, change, exc)
                raise
            except (EdgectlError, KeyError, ValueError, TypeError) as exc:
                text = str(exc)
                if not text.startswith(change.target):  # name the target once
                    text = f"{change.target}: {text}"
                refused = RefusedError(
                    f"{text} (user {user.name})",
                    rule="validation",
                    user=user.name,
                    value=change.value,
                )
                self._audit_refusal(user, change, refused)
                raise refused from exc
            if change.command == "ack" and not new:
                return Applied(0, change.target, None, [], [])  # nothing to acknowledge
            record_reason = f"{reason} [{manifest}]" if manifest else reason
            action = "set" if "param" in change.params else change.command
            seq = self._audit(user, action, change.target, old, new, record_reason, change.value)
            value = new
            if change.command == "stop":
                value = f"operator stop by {user.name}" + (f": {reason}" if reason else "")
            try:
                result = self.controller.apply_change(
                    change.command, change.target, change.params, value, seq=seq, who=user.name
                )
            except Exception as exc:
                self._audit_quietly(
                    user.name,
                    "not_applied",
                    change.target,
                    None,
                    {"seq": seq},
                    f"audit #{seq} withdrawn: {type(exc).__name__}: {exc}",
                )
                raise RefusedError(
                    f"{change.target}: not applied: {exc} (user {user.name}; audit #{seq} "
                    "withdrawn)",
                    rule="apply",
                    user=user.name,
                    value=change.value,
                ) from exc
        return Applied(seq, change.target, old, new, result)

    def _authorise(self, user: Identity, command: str, target: str, value: Any) -> None:
        if command not in self.config.rights_of(user.role):
            raise RefusedError(
                f"{target}: user {user.name} (role {user.role}) has no right to {command!r}"
                f" (value {_clean(value, 60)!r}); rights of {user.role}: "
                f"{', '.join(sorted(self.config.rights_of(user.role))) or 'none'}",
                rule="rights",
                user=user.name,
                value=value,
            )

    def _check_text(self, text: Any, what: str, user: Identity, *, allow_empty: bool) -> str:
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise RefusedError(
                f"the {what} must be text (user {user.name})", rule=what, user=user.name
            )
        text = text.strip()
        if len(text) > self.config.max_text_chars:
            raise RefusedError(
                f"the {what} has {len(text)} characters; at most {self.config.max_text_chars} "
                f"(user {user.name})",
                rule=what,
                user=user.name,
            )
        if not allow_empty and not text:
            raise RefusedError(
                f"a {what} is required (user {user.name})", rule=what, user=user.name
            )
        return text

    def _check_signature(
        self, user: Identity, change: Change, signature: Mapping[str, Any] | None, reason: str
    ) -> str:
        if change.command not in self.config.critical:
            return ""
        if not isinstance(signature, Mapping) or not signature.get("password"):
            raise RefusedError(
                f"{change.target}: {change.command!r} needs an e-signature of {user.name}: "
                "re-enter the password and give its meaning (e.g. 'approved'), with a reason",
                rule="e-signature",
                user=user.name,
                value=change.value,
            )
        meaning = self._check_text(signature.get("meaning"), "meaning", user, allow_empty=False)
        if not reason:
            raise RefusedError(
                f"{change.target}: an e-signed {change.command!r} needs a reason (user "
                f"{user.name})",
                rule="e-signature",
                user=user.name,
            )
        locked = self.throttle.locked_for_s(user.name)
        if locked > 0.0:
            raise RefusedError(
                f"{change.target}: e-signature of {user.name} refused: locked for "
                f"{locked:.0f} s more after repeated wrong passwords",
                rule="e-signature",
                user=user.name,
                value=change.value,
            )
        signer = self.users.check_password(user.name, str(signature.get("password")))
        if signer is not None:
            self.throttle.succeeded(user.name)
        else:
            span = self.throttle.failed(user.name)
            has = self.users.get(user.name)
            why = (
                "wrong password"
                if has is not None and has.password_hash
                else f"{user.name} has no password (edgectl users add {user.name} --role "
                f"{user.role})"
            )
            if span:
                why += f"; {user.name} is now locked for {span:.0f} s"
            raise RefusedError(
                f"{change.target}: e-signature of {user.name} refused: {why}",
                rule="e-signature",
                user=user.name,
                value=change.value,
            )
        who = f"{signer.name} ({signer.full_name})" if signer.full_name else signer.name
        return f"e-signed by {who}, meaning: {meaning}"

    def _validate(self, user: Identity, change: Change) -> tuple[Any, Any]:
        """(old, new): the state before and the value that will be applied."""
        ctl = self.controller
        p = change.params
        cmd = change.command
        if "param" in p:
            loop, param = str(p["loop"]), str(p["param"])
            settings = ctl.loop_get(loop)
            new = validate_loop_change(
                loop,
                param,
                change.value,
                settings=settings,
                configured=self._configured.get(loop, {}),
                limits=self.config.loops.get(loop),
                gain_span=self.config.gain_span,
                output_range=self._output_ranges.get(loop),
                user=user.name,
            )
            return _old_value(settings, param, new), new
        if cmd == "autotune":
            return None, ctl.preview_autotune(str(p["loop"]), change.value or {})
        if cmd == "ack":
            return None, ctl.preview_ack(p.get("name"))
        if cmd == "reset_trip":
            return {"tripped": ctl.info()["tripped"]}, ctl.preview_reset_trip()
        if cmd == "phase_request":
            return ctl.preview_phase(str(change.value)), str(change.value)
        if cmd == "add_reference":
            return None, ctl.preview_reference(
                str(p["sensor"]), change.value, p.get("sampled_s"), str(p.get("analyser") or "")
            )
        if cmd == "model_switch":
            return ctl.preview_model_switch(str(p["sensor"]), change.value)
        if cmd in ("shelve", "enable", "confirm", "comment"):
            return self._validate_alarm_op(user, change)
        if cmd == "stop":
            return None, "stop"
        raise EdgectlError(f"unknown operator command {cmd!r}")

    def _validate_alarm_op(self, user: Identity, change: Change) -> tuple[Any, Any]:
        """A shelve within ``max_shelve_s``, a comment of text within ``max_text_chars``; the
        alarm's state checked by the controller (:meth:`ControllerChanges.preview_alarm_op`)."""
        value = change.value
        if change.command == "comment":
            value = self._check_text(value, "comment", user, allow_empty=False)
        elif change.command == "shelve" and isinstance(value, Mapping):
            d = value.get("duration_s")
            top = self.config.max_shelve_s
            if value.get("kind") == "timed" and isinstance(d, int | float) and not 0 < d <= top:
                raise RefusedError(
                    f"{change.target}: shelve for {_clean(d)!r} s refused for user {user.name}: "
                    f"within (0, {top:g}] s ([operator] max_shelve_s)",
                    rule="limits",
                    user=user.name,
                    value=d,
                )
        name = str(change.params.get("name"))
        old, new = self.controller.preview_alarm_op(change.command, name, value)
        return old, new

    # -- audit -----------------------------------------------------------------------------------

    def _audit(
        self, user: Identity, action: str, target: str, old: Any, new: Any, reason: str, asked: Any
    ) -> int:
        ctl = self.controller
        try:
            rec = ctl.historian.audit.record(
                actor=user.name,
                action=action,
                target=target,
                old=old,
                new=new,
                reason=reason,
                time_s=ctl.audit_time_s(),
            )
        except EdgectlError as exc:
            raise RefusedError(
                f"{target}: not changed: the audit record could not be written ({exc}); nothing "
                f"was applied (user {user.name}, value {_clean(asked, 60)!r})",
                rule="audit",
                user=user.name,
                value=asked,
            ) from exc
        return int(rec.seq)

    def _audit_refusal(self, user: Identity, change: Change, exc: RefusedError) -> None:
        self._audit_quietly(
            user.name,
            "refused",
            change.target,
            None,
            {"command": change.command, "value": _clean(change.value), "rule": exc.rule},
            str(exc)[: self.config.max_text_chars],
        )

    def _audit_quietly(
        self, actor: str, action: str, target: str, old: Any, new: Any, reason: str
    ) -> None:
        """Record a refusal or a withdrawal; a failure to record it is an event, not an error
        that would hide the refusal."""
        ctl = self.controller
        try:
            ctl.historian.audit.record(
                actor=actor,
                action=action,
                target=target,
                old=old,
                new=new,
                reason=reason,
                time_s=ctl.audit_time_s(),
            )
        except EdgectlError as exc:
            with contextlib.suppress(EdgectlError):
                ctl._event_now("audit", "operator", f"{action} of {actor} not recorded: {exc}")

    def _drain(self) -> None:
        """Write the audit records of automatic changes the scan queued (autotune results)."""
        ctl = self.controller
        queue = ctl.deferred_audit
        while queue:
            item = queue[0]
            rec = ctl.historian.audit.record(**item)
            queue.popleft()
            with ctl.lock:
                # every change up to this record is applied: audit, then apply, run under _txn
                ctl.operator_seq = max(ctl.operator_seq, int(rec.seq))

    def _drain_loop(self) -> None:
        historian = self.controller.historian
        # ends with the service, or with the historian of a run that served no socket
        while self._closed is None and not getattr(historian, "_closed", False):
            self._wake.wait(0.5)
            self._wake.clear()
            if self.controller.deferred_audit and self._closed is None:
                with self._txn, contextlib.suppress(EdgectlError):
                    self._drain()


def _old_value(settings: Mapping[str, Any], param: str, new: Any) -> Any:
    if param == "mode" and isinstance(new, Mapping):
        return {"mode": settings.get("mode"), "output": settings.get("output")}
    if param.startswith("stages."):
        _, out, what = param.split(".")
        st = settings["stages"][out]
        if what == "enabled":
            return st["enabled"]
        gains = st["degraded_gains"] if st["degraded"] and st["degraded_gains"] else st["gains"]
        if gains is None:
            return settings.get(what)
        return gains[what]
    return settings.get(param)

"""``edgectl.connect``: the REPL's handle on a running controller.

::

    >>> r = edgectl.connect("runs/ecoli-2L.sock")      # an `edgectl run` service
    >>> r.whoami()                                     # who the controller says you are
    >>> r.tags["temp_c"]                               # value, time_s, quality, unit
    >>> r.reason = "retune after probe swap"           # the reason of the NEXT change only
    >>> r.loops["ph"].kp = 8.0                         # bumpless, audited before it acts
    >>> r.loops["temp"].setpoint = 36.5
    >>> r.loops["ph"].manual(0.2)                      # manual at 0.2 mL/min (the loop's units)
    >>> r.loops["ph"].autotune()
    >>> t_s, v = r.trend("do_pct", 600)                 # the last ten minutes
    >>> r.ack()                                         # acknowledge every alarm
    >>> r.stop(reason="end of run", meaning="approved")  # e-signed: prompts for the password

Identity is proven, never claimed: on the socket the controller reads your OS user from the
kernel (SO_PEERCRED) and maps it to an edgectl user and role; ``connect(..., user=, password=)``
logs in as another edgectl user. ``edgectl.connect(controller)`` wraps a controller in this
process, acting as this process's OS user. Changes the config marks critical (``stop``,
``reset_trip`` by default) take an e-signature: the password re-entered (``password=``, or a
prompt on a terminal) and its ``meaning``.
"""

from __future__ import annotations

import getpass
import math
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from edgectl.runtime.rpc import RpcClient

__all__ = ["Loop", "Reactor", "connect"]


class _Api(Protocol):
    def call(self, method: str, **params: Any) -> Any: ...


class _Direct:
    """A session of the operator service of a controller in this process."""

    def __init__(self, target: Any) -> None:
        service = getattr(target, "operator", None)
        if service is None:
            # a controller built without a run: the users file beside its database
            from edgectl.operator.config import users_path
            from edgectl.operator.service import OperatorService
            from edgectl.operator.users import UserStore

            cfg = target.cfg
            path = users_path(Path("."), cfg.operator.users_file, target.historian.path)
            service = OperatorService(target, cfg.operator, UserStore(path))
        self._session = service.session(service.identify_process())

    def call(self, method: str, **params: Any) -> Any:
        return self._session.call(method, params)

    def close(self) -> None:
        return None


class Loop:
    """A control loop of the running controller; attributes read and write its settings."""

    def __init__(self, reactor: Reactor, name: str) -> None:
        object.__setattr__(self, "_reactor", reactor)
        object.__setattr__(self, "name", name)

    @property
    def settings(self) -> dict[str, Any]:
        """Every setting and live value of the loop (mode, setpoint, output, gains, ...)."""
        result: dict[str, Any] = self._reactor._api.call("loop_get", loop=self.name)
        return result

    def __getattr__(self, param: str) -> Any:
        settings = self.settings
        if param not in settings:
            raise AttributeError(f"loop {self.name!r} has no setting {param!r}")
        return settings[param]

    def __setattr__(self, param: str, value: Any) -> None:
        self._reactor._change("loop_set", loop=self.name, param=param, value=value)

    def auto(self) -> None:
        """Switch to automatic (bumpless)."""
        self._reactor._change("loop_set", loop=self.name, param="mode", value="auto")

    def manual(self, output: float | None = None) -> None:
        """Switch to manual, holding the current output or at ``output`` — in the loop's own
        units (its ``output_min`` … ``output_max``: mL/min for a pump loop, −100…100 % for a
        split range); one change, one audit record."""
        self._reactor._change("loop_manual", loop=self.name, output=output)

    def off(self) -> None:
        """Switch off: the loop's outputs go to their safe values."""
        self._reactor._change("loop_set", loop=self.name, param="mode", value="off")

    def set_stage(
        self,
        output: str,
        *,
        enabled: bool | None = None,
        kp: float | None = None,
        ti_s: float | None = None,
    ) -> None:
        """DO cascades: take stage ``output`` out of use (``enabled=False``: it stays out even
        if its read-back tracks) or back (also clears a failure), or set its own master gains.
        Each change is audited. ``settings["stages"]`` shows the stages' state."""
        if enabled is None and kp is None and ti_s is None:
            raise ValueError(f"set_stage({output!r}): give enabled, kp or ti_s")
        for what, value in (("enabled", enabled), ("kp", kp), ("ti_s", ti_s)):
            if value is not None:
                self._reactor._change(
                    "loop_set", loop=self.name, param=f"stages.{output}.{what}", value=value
                )

    def autotune(self, **options: float) -> dict[str, Any]:
        """Start a relay autotune; poll :meth:`autotune_status` for the result."""
        result: dict[str, Any] = self._reactor._change(
            "autotune_start", loop=self.name, options=options
        )
        return result

    def autotune_status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._reactor._api.call("autotune_status", loop=self.name)
        return result

    def __repr__(self) -> str:
        try:
            s = self.settings
        except Exception as exc:  # a repr must not raise
            return f"<Loop {self.name} (unreadable: {exc})>"
        return f"<Loop {_loop_line(self.name, s)}>"

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self.settings]


class _Loops(Mapping[str, Loop]):
    def __init__(self, reactor: Reactor) -> None:
        self._reactor = reactor

    def _names(self) -> list[str]:
        names: list[str] = self._reactor._api.call("loop_names")
        return names

    def __getitem__(self, name: str) -> Loop:
        if name not in self._names():
            raise KeyError(f"no loop {name!r} (loops: {self._names()})")
        return Loop(self._reactor, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        try:
            width = max([6, *(len(n) for n in self)])
            rows = [_loop_line(n, self._reactor._api.call("loop_get", loop=n), width) for n in self]
        except Exception as exc:  # a repr must not raise
            return f"<loops (unreadable: {exc})>"
        return "\n".join(["loops (PV, SP, OUT, mode):", *(f"  {row}" for row in rows)])


def _num(v: Any) -> str:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return "-" if v is None else str(v)


def _loop_line(name: str, s: Mapping[str, Any], width: int = 6) -> str:
    """``temp  split_range  PV temp_c=37.02 (good)  SP 37  OUT 14.6  auto``; the name padded to
    ``width`` (a listing aligns its columns on its longest loop name)."""
    kind = {"PidLoop": "pid", "SplitRangeLoop": "split_range", "CascadeLoop": "do_cascade"}.get(
        str(s.get("type")), str(s.get("type", "")).removesuffix("Loop").lower()
    )
    parts = [f"{name:<{width}} {kind:<11}"]
    if s.get("pv"):
        q = s.get("pv_quality")
        parts.append(f"PV {s['pv']}={_num(s.get('pv_value'))}" + (f" ({q})" if q else ""))
    if "setpoint" in s:
        sp = f"SP {_num(s['setpoint'])}"
        if s.get("working_setpoint") not in (None, s["setpoint"]):
            sp += f" (ramping, now {_num(s['working_setpoint'])})"
        parts.append(sp)
    if "output" in s:
        parts.append(
            f"OUT {_num(s['output'])} [{_num(s.get('output_min'))}..{_num(s.get('output_max'))}]"
        )
    elif s.get("outputs"):
        parts.append(f"OUT -> {', '.join(s['outputs'])}")
    parts.append(str(s.get("mode", "")) + (" PV BAD" if s.get("pv_bad") else ""))
    return "  ".join(parts)


class _Tags(Mapping[str, dict[str, Any]]):
    def __init__(self, reactor: Reactor) -> None:
        self._reactor = reactor

    def _all(self) -> dict[str, dict[str, Any]]:
        tags: dict[str, dict[str, Any]] = self._reactor._api.call("read_tags")
        return tags

    def __getitem__(self, name: str) -> dict[str, Any]:
        tags: dict[str, dict[str, Any]] = self._reactor._api.call("read_tags", names=[name])
        return tags[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        try:
            tags = self._all()
        except Exception as exc:  # a repr must not raise
            return f"<tags (unreadable: {exc})>"
        width = max((len(n) for n in tags), default=4)
        rows = [
            f"  {n:<{width}}  {_num(t['value']):>10} {t.get('unit', ''):<7} {t['quality']}"
            for n, t in sorted(tags.items())
        ]
        return "\n".join([f"tags ({len(tags)}):", *rows])


class Reactor:
    """Operator handle on one running controller (see module docs)."""

    def __init__(self, api: _Api) -> None:
        self._api = api
        self.reason = ""  # the reason of the next change (then cleared)
        self.loops: Mapping[str, Loop] = _Loops(self)
        self.tags: Mapping[str, dict[str, Any]] = _Tags(self)

    def _change(
        self, method: str, signature: Mapping[str, Any] | None = None, **params: Any
    ) -> Any:
        """One change with this change's reason: ``reason`` applies to it only."""
        if signature is not None:
            params["signature"] = dict(signature)
        reason, self.reason = self.reason, ""  # the next change only, made or refused
        return self._api.call(method, reason=reason, **params)

    def _signed(
        self,
        method: str,
        reason: str | None,
        meaning: str | None,
        password: str | None,
        **params: Any,
    ) -> Any:
        if reason is not None:
            self.reason = reason
        if password is None and sys.stdin.isatty():
            me = self.whoami()["name"]
            if meaning is None:
                meaning = input(f"e-signature of {me}: meaning (e.g. approved): ")
            password = getpass.getpass(f"e-signature of {me}: password: ")
        signature = None if password is None else {"password": password, "meaning": meaning}
        return self._change(method, signature=signature, **params)

    @property
    def user(self) -> str:
        """The authenticated user's name."""
        return str(self.whoami()["name"])

    def whoami(self) -> dict[str, str]:
        """Who the controller says you are: name, role, how it knows (peer uid, password)."""
        me: dict[str, str] = self._api.call("whoami")
        return me

    def login(self, user: str, password: str) -> dict[str, str]:
        """Act as edgectl user ``user`` from now on (password checked by the controller)."""
        me: dict[str, str] = self._api.call("login", user=user, password=password)
        return me

    def info(self) -> dict[str, Any]:
        """Name, phase, clock time, scans, overruns, lateness, trip state."""
        info: dict[str, Any] = self._api.call("info")
        return info

    @property
    def phase(self) -> str:
        return str(self.info()["phase"])

    def request_phase(self, to: str) -> None:
        """Operator transition to phase ``to`` (the recipe must allow it)."""
        self._change("phase_request", to=to)

    def trend(
        self, tag: str, seconds: float = 600.0
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(time_s, value) of ``tag`` over the last ``seconds`` of process time."""
        data = self._api.call("trend", tag=tag, seconds=seconds)
        return np.asarray(data["time_s"], float), np.asarray(data["value"], float)

    def alarms(self) -> list[dict[str, Any]]:
        """Alarms not in the normal state."""
        alarms: list[dict[str, Any]] = self._api.call("alarms")
        return alarms

    def ack(self, name: str | None = None) -> list[dict[str, Any]]:
        """Acknowledge one alarm, or all of them."""
        acked: list[dict[str, Any]] = self._change("ack", name=name)
        return acked

    def alarm_conditions(self) -> list[dict[str, Any]]:
        """Every alarm with its state and annotations (enabled, shelved, unshelve_s, ...)."""
        rows: list[dict[str, Any]] = self._api.call("alarm_conditions")
        return rows

    def shelve(self, name: str, duration_s: float | None = None) -> dict[str, Any]:
        """Shelve alarm ``name`` for ``duration_s`` clock seconds (at most ``[operator]
        max_shelve_s``), or until it clears (None). Still evaluated, recorded, interlocked."""
        out: dict[str, Any] = self._change("alarm_shelve", name=name, duration_s=duration_s)
        return out

    def unshelve(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self._change("alarm_unshelve", name=name)
        return out

    def enable_alarm(self, name: str, enabled: bool = True) -> dict[str, Any]:
        """Enable (or, ``enabled=False``, disable) alarm ``name``: an engineer's right."""
        out: dict[str, Any] = self._change("alarm_enable", name=name, enabled=enabled)
        return out

    def comment(self, name: str, text: str) -> None:
        """A comment on alarm ``name``, in the audit trail and the event log."""
        self._change("alarm_comment", name=name, text=text)

    def confirm(self, name: str) -> dict[str, Any]:
        """Confirm alarm ``name`` (acknowledged since it last raised)."""
        out: dict[str, Any] = self._change("alarm_confirm", name=name)
        return out

    def reset_trip(
        self,
        *,
        reason: str | None = None,
        meaning: str | None = None,
        password: str | None = None,
    ) -> list[str]:
        """Release latched interlocks whose alarms have cleared; returns those still engaged.
        A critical command by default: e-signed (``password``, ``meaning``) with a reason."""
        still: list[str] = self._signed("reset_trip", reason, meaning, password)
        return still

    def add_reference(
        self, sensor: str, value: float, sampled_s: float | None = None, analyser: str = ""
    ) -> dict[str, Any]:
        """An at-line reference for soft sensor ``sensor`` (sample drawn at clock time
        ``sampled_s``, default now; measured by ``analyser``): corrects its bias filter if it
        has one; audited, with you as the person who entered it."""
        params: dict[str, Any] = {"sensor": sensor, "value": value, "sampled_s": sampled_s}
        if analyser:
            params["analyser"] = analyser
        out: dict[str, Any] = self._change("add_reference", **params)
        return out

    def softsensors(self) -> dict[str, Any]:
        """Status of every soft sensor: counts per spectrum status, last result, last error."""
        out: dict[str, Any] = self._api.call("softsensor_status")
        return out

    def switch_model(
        self,
        sensor: str,
        model: str | int,
        *,
        reason: str | None = None,
        meaning: str | None = None,
        password: str | None = None,
    ) -> dict[str, Any]:
        """Release a model file (a new version) or an earlier version number of soft sensor
        ``sensor``. A critical command by default: e-signed with a reason; audited."""
        out: dict[str, Any] = self._signed(
            "model_switch", reason, meaning, password, sensor=sensor, model=model
        )
        return out

    def stop(
        self,
        *,
        reason: str | None = None,
        meaning: str | None = None,
        password: str | None = None,
    ) -> None:
        """Stop the run: outputs safe, historian flushed. A critical command by default:
        e-signed (``password``, ``meaning``) with a reason."""
        self._signed("stop", reason, meaning, password)

    def close(self) -> None:
        close = getattr(self._api, "close", None)
        if close:
            close()

    def __enter__(self) -> Reactor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        try:
            i = self.info()
        except Exception as exc:  # a repr must not raise
            return f"<Reactor (unreachable: {exc})>"
        return f"<Reactor {i.get('name')} phase={i.get('phase')} t={i.get('time_s', 0):.0f}s>"


def connect(
    target: str | Path | Any,
    *,
    user: str | None = None,
    password: str | None = None,
    who: str | None = None,
) -> Reactor:
    """Connect to a controller: a socket path of an `edgectl run` service, or a controller object
    running in this process.

    The controller identifies you (your OS user, through the socket); ``user`` and ``password``
    log in as another edgectl user. ``who`` is the old name of ``user``: it is checked, never
    trusted — a name that is not the authenticated user needs its password.
    """
    api: Any = RpcClient(target) if isinstance(target, str | Path) else _Direct(target)
    reactor = Reactor(api)
    name = user if user is not None else who
    try:
        if password is not None:
            reactor.login(name or reactor.user, password)
        elif name is not None and name != reactor.user:
            from edgectl.operator.errors import AuthenticationError

            raise AuthenticationError(
                f"you are {reactor.user!r} to this controller, not {name!r}: pass password= to "
                f"log in as {name!r}",
                rule="authentication",
                user=reactor.user,
            )
    except BaseException:
        reactor.close()
        raise
    return reactor

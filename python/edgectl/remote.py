"""``edgectl.connect``: the REPL's handle on a running controller.

::

    >>> r = edgectl.connect("runs/ecoli.sock")       # an `edgectl run` service
    >>> r.tags["temp_c"]                             # value, time_s, quality
    >>> r.loops["ph"].kp = 0.8                       # bumpless, written to the audit trail
    >>> r.loops["temp"].setpoint = 30.0
    >>> r.loops["temp"].autotune()
    >>> t_s, v = r.trend("do_pct", 600)               # the last ten minutes
    >>> r.ack()                                       # acknowledge every alarm

The same object wraps a controller in this process (``edgectl.connect(controller)``), so a run
started from the REPL is tuned the same way. Every change carries ``who`` (default: the login
name) and an optional ``reason`` (``r.reason = "retune after probe swap"``).
"""

from __future__ import annotations

import getpass
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
    """Calls the controller's API methods in this process."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def call(self, method: str, **params: Any) -> Any:
        if method not in self._target.EXPORTED:
            raise AttributeError(f"controller has no API method {method!r}")
        return getattr(self._target, method)(**params)

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
        """Switch to manual, holding the current output or setting ``output``."""
        self._reactor._change("loop_set", loop=self.name, param="mode", value="manual")
        if output is not None:
            self._reactor._change("loop_set", loop=self.name, param="output", value=output)

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
        s = self.settings
        shown = ", ".join(f"{k}={v!r}" for k, v in s.items())
        return f"<Loop {self.name}: {shown}>"

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


class Reactor:
    """Operator handle on one running controller (see module docs)."""

    def __init__(self, api: _Api, who: str | None = None) -> None:
        self._api = api
        self.who = who or _login()
        self.reason = ""
        self.loops: Mapping[str, Loop] = _Loops(self)
        self.tags: Mapping[str, dict[str, Any]] = _Tags(self)

    def _change(self, method: str, **params: Any) -> Any:
        return self._api.call(method, who=self.who, reason=self.reason, **params)

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

    def reset_trip(self) -> list[str]:
        """Release latched interlocks whose alarms have cleared; returns those still engaged."""
        still: list[str] = self._change("reset_trip")
        return still

    def add_reference(
        self, sensor: str, value: float, sampled_s: float | None = None
    ) -> dict[str, Any]:
        """An at-line reference for soft sensor ``sensor`` (sample drawn at clock time
        ``sampled_s``, default now): corrects its bias filter if it has one; audited."""
        out: dict[str, Any] = self._change(
            "add_reference", sensor=sensor, value=value, sampled_s=sampled_s
        )
        return out

    def softsensors(self) -> dict[str, Any]:
        """Status of every soft sensor: counts per spectrum status, last result, last error."""
        out: dict[str, Any] = self._api.call("softsensor_status")
        return out

    def stop(self) -> None:
        """Stop the run: outputs safe, historian flushed."""
        self._change("stop")

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


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def connect(target: str | Path | Any, *, who: str | None = None) -> Reactor:
    """Connect to a controller: a socket path of an `edgectl run` service, or a controller object
    running in this process."""
    if isinstance(target, str | Path):
        return Reactor(RpcClient(target), who)
    return Reactor(_Direct(target), who)

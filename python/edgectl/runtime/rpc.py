"""Local RPC for the live REPL: JSON lines over a Unix domain socket.

A running controller serves its operator API on a socket file (mode 0600, so only its user can
connect); ``edgectl.connect(path)`` speaks to it. One request per line::

    {"id": 7, "method": "loop_set", "params": {"loop": "ph", "param": "kp", "value": 0.8}}

and one reply per line, ``{"id": 7, "result": ...}`` or
``{"id": 7, "error": {"type": "ConfigError", "message": "..."}}``. Errors of the
:mod:`edgectl.errors` hierarchy (and the operator service's :class:`RefusedError`,
:class:`RunStoppedError`) are re-raised on the client as the same class.

Served on a controller, the target is the operator service (:mod:`edgectl.operator`): each
connection is a session whose identity is the peer's OS user, read from the socket with
``SO_PEERCRED`` (the kernel's word, not the client's), and only the session's ``EXPORTED``
methods are callable. Once the server closes, every open session answers "run stopped".
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import socketserver
import struct
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from edgectl import errors
from edgectl.errors import EdgectlError

__all__ = ["RpcClient", "RpcServer"]

_MAX_LINE = 1 << 20


def _encode(obj: Any) -> bytes:
    return json.dumps(obj, default=_default, allow_nan=True).encode() + b"\n"


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"cannot send {type(obj).__name__} over RPC")


def peer_uid(sock: socket.socket) -> int | None:
    """The OS user id of the process at the other end of a Unix socket (SO_PEERCRED)."""
    peercred = getattr(socket, "SO_PEERCRED", None)
    if peercred is None:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, peercred, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", raw)
    return int(uid)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        session = None
        opener = getattr(self.server.target, "open_session", None)
        if opener is not None:
            session = opener(peer_uid(self.request))
        self.server.track(self.request, True)
        try:
            self._serve(session)
        finally:
            self.server.track(self.request, False)

    def _serve(self, session: Any) -> None:
        while True:
            line = self.rfile.readline(_MAX_LINE)
            if not line:
                return
            reply = self.server.dispatch(line, session)
            try:
                self.wfile.write(_encode(reply))
                self.wfile.flush()
            except OSError:
                return


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, path: str, target: Any, exported: frozenset[str]) -> None:
        self.target = target
        self.exported = exported
        self.closed = False
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(path, _Handler)

    def track(self, sock: socket.socket, is_open: bool) -> None:
        with self._open_lock:
            if is_open:
                self._open.add(sock)
            else:
                self._open.discard(sock)

    def hang_up(self) -> None:
        """End every open connection (their clients read end-of-file)."""
        with self._open_lock:
            socks = list(self._open)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def dispatch(self, line: bytes, session: Any = None) -> dict[str, Any]:
        req_id = None
        try:
            req = json.loads(line)
            req_id = req.get("id")
            method = req["method"]
            params = req.get("params") or {}
            if not isinstance(method, str) or not isinstance(params, dict):
                raise EdgectlError("a request is {id, method: str, params: object}")
            if self.closed:
                from edgectl.operator.errors import RunStoppedError

                raise RunStoppedError("run stopped: the controller takes no more calls")
            if session is not None:
                result = session.call(method, params)
            else:
                if method not in self.exported:
                    raise EdgectlError(f"unknown method {method!r}")
                result = getattr(self.target, method)(**params)
            return {"id": req_id, "result": result}
        except Exception as exc:  # every error goes back to the client, the server lives on
            error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
            if hasattr(exc, "rule"):  # a refusal: the rule, the user and the value asked
                error["refusal"] = {
                    "rule": exc.rule,
                    "user": getattr(exc, "user", ""),
                    "value": _plain(getattr(exc, "value", None)),
                }
            return {"id": req_id, "error": error}


class RpcServer:
    """Serve ``target`` on the Unix socket ``path`` (a thread): an operator service (one
    session per connection, see the module docstring) or any object, whose ``exported``
    methods are then callable."""

    def __init__(self, path: str | Path, target: Any, exported: Iterable[str] = ()) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            _remove_if_dead(self.path)
        old_umask = os.umask(0o177)
        try:
            self._server = _Server(str(self.path), target, frozenset(exported))
        finally:
            os.umask(old_umask)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="edgectl-rpc", daemon=True
        )

    def start(self) -> RpcServer:
        self._thread.start()
        return self

    def close(self, reason: str = "the run closed") -> None:
        """Stop serving: open sessions answer "run stopped" and are hung up, the operator
        service takes no more calls, the socket file is removed (idempotent)."""
        self._server.closed = True
        closer = getattr(self._server.target, "close", None)
        if closer is not None and hasattr(self._server.target, "open_session"):
            closer(reason)
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.hang_up()
        self._server.server_close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _remove_if_dead(path: Path) -> None:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()  # a stale socket file from a process that died
        return
    finally:
        probe.close()
    raise EdgectlError(f"{path}: another controller is already serving on this socket")


class RpcClient:
    """Blocking client of :class:`RpcServer`; thread-safe (one request at a time)."""

    def __init__(self, path: str | Path, timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout_s)
        try:
            self._sock.connect(str(self.path))
        except OSError as exc:
            self._sock.close()
            raise EdgectlError(f"cannot connect to a controller at {self.path}: {exc}") from exc
        self._file = self._sock.makefile("rb")
        self._lock = threading.Lock()
        self._next_id = 0

    def call(self, method: str, **params: Any) -> Any:
        with self._lock:
            self._next_id += 1
            self._sock.sendall(_encode({"id": self._next_id, "method": method, "params": params}))
            line = self._file.readline(_MAX_LINE)
        if not line:
            raise EdgectlError(f"controller at {self.path} closed the connection")
        reply = json.loads(line)
        if "error" in reply:
            raise _rebuild(reply["error"])
        return reply["result"]

    def close(self) -> None:
        self._file.close()
        self._sock.close()


def _plain(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _rebuild(err: dict[str, Any]) -> Exception:
    from edgectl.operator import errors as operator_errors

    name = err.get("type", "")
    cls: Callable[[str], Exception] | None = getattr(
        errors, name, getattr(operator_errors, name, None)
    )
    refusal = err.get("refusal")
    if isinstance(cls, type) and issubclass(cls, operator_errors.RefusedError):
        r = refusal if isinstance(refusal, dict) else {}
        return cls(
            err.get("message", ""),
            rule=str(r.get("rule", "")),
            user=str(r.get("user", "")),
            value=r.get("value"),
        )
    if isinstance(cls, type) and issubclass(cls, Exception):
        return cls(err.get("message", ""))
    builtin = {"ValueError": ValueError, "KeyError": KeyError, "TypeError": TypeError}
    return builtin.get(err.get("type", ""), EdgectlError)(
        f"{err.get('type')}: {err.get('message')}"
    )


def finite_or_none(x: float) -> float | None:
    """JSON has no NaN in strict readers: send None for non-finite values."""
    return x if math.isfinite(x) else None

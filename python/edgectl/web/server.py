"""The dashboard's server: uvicorn on its own thread and event loop inside the controller
process (``edgectl run CONFIG --http HOST:PORT``).

It listens on loopback unless the operator set up users (password login) and TLS: a dashboard
beyond this machine without them would send passwords and session cookies in clear text.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from edgectl.errors import ConfigError
from edgectl.web.app import build_app
from edgectl.web.auth import WebSessions

__all__ = ["DashboardServer", "is_loopback", "parse_http"]


def parse_http(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6; port 0 picks a free one) → (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"--http {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        n = int(port)
    except ValueError:
        raise ConfigError(f"--http {text!r}: port {port!r} is not a number") from None
    if not 0 <= n <= 65535:
        raise ConfigError(f"--http {text!r}: port must be 0 to 65535")
    return host, n


def is_loopback(host: str) -> bool:
    """True when ``host`` names only this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DashboardServer:
    """The dashboard of one operator service, served on ``host:port``.

    Parameters
    ----------
    service
        The run's :class:`edgectl.operator.OperatorService`.
    host, port
        Where to listen (port 0: a free port, see :attr:`port` once started).
    tls_cert, tls_key
        PEM files; both or neither. Required, with at least one user in the users file, to
        listen beyond loopback.
    idle_s
        Sessions idle this long are logged out (seconds).
    """

    def __init__(
        self,
        service: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        idle_s: float = 900.0,
        max_age_s: float = 12 * 3600.0,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ConfigError("dashboard: give both --tls-cert and --tls-key, or neither")
        for p in (tls_cert, tls_key):
            if p is not None and not Path(p).is_file():
                raise ConfigError(f"dashboard: TLS file {p} does not exist")
        if not is_loopback(host):
            if tls_cert is None:
                raise ConfigError(
                    f"dashboard: refusing to listen on {host} without TLS: passwords and session "
                    "cookies would cross the network in clear text (give --tls-cert and "
                    "--tls-key, or listen on 127.0.0.1)"
                )
            if not service.users.users():
                raise ConfigError(
                    f"dashboard: refusing to listen on {host}: the users file "
                    f"{service.users.path} has no users to log in with (edgectl users add NAME "
                    "--role ROLE)"
                )
        self.service = service
        self.host = host
        self.sessions = WebSessions(service, idle_s=idle_s, max_age_s=max_age_s)
        self.tls = tls_cert is not None
        self._stopping = threading.Event()
        app = build_app(self.sessions, secure_cookie=self.tls, on_stop=self._stopping.is_set)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            raise ConfigError(f"dashboard: cannot listen on {host}:{port}: {exc}") from exc
        self._sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            # the live stream is server-sent events: no WebSocket stack loaded (uvicorn's "auto"
            # imports websockets when it is installed), and h11, the pure-Python HTTP parser
            http="h11",
            ws="none",
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=None if tls_cert is None else str(tls_cert),
            ssl_keyfile=None if tls_key is None else str(tls_key),
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="dashboard", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    def _serve(self) -> None:
        # its own event loop on this thread; uvicorn installs no signal handler off the main
        # thread, so SIGINT/SIGTERM stay the run's
        self._server.run(sockets=[self._sock])

    def start(self, timeout_s: float = 30.0) -> DashboardServer:
        """Serve on the dashboard's thread; returns once uvicorn accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise ConfigError(f"dashboard: the server on {self.url} did not start")
            if time.monotonic() > deadline:
                break  # the socket listens: requests wait in its backlog
            time.sleep(0.01)
        return self

    def close(self) -> None:
        """Stop serving (live streams end; idempotent)."""
        self._stopping.set()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10.0)
        self._sock.close()

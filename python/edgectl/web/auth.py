"""Browser sessions of the dashboard: password login through the operator service, an idle
and an absolute expiry, and a CSRF token per session.

A session is an opaque random cookie (``secrets.token_urlsafe``, 256 bits; ``HttpOnly``,
``SameSite=Strict``, ``Secure`` when served over TLS) mapped, in memory, to the
:class:`edgectl.operator.Session` the login opened, so every call of the browser runs as the
proven user and the service authorises it by role. Every change (a POST) must carry the
session's CSRF token (synchroniser-token pattern, OWASP CSRF Prevention Cheat Sheet) in the
``csrf`` form field or the ``X-CSRF-Token`` header; it is compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgectl.errors import ConfigError

if TYPE_CHECKING:
    from edgectl.operator.session import Session
    from edgectl.operator.users import Identity

__all__ = ["COOKIE", "WebSession", "WebSessions"]

#: name of the session cookie
COOKIE = "edgectl_session"


@dataclass(slots=True)
class WebSession:
    """One logged-in browser."""

    token: str
    csrf: str
    session: Session
    identity: Identity
    created_s: float
    last_seen_s: float
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check_csrf(self, sent: Any) -> bool:
        """True when ``sent`` is this session's CSRF token."""
        return isinstance(sent, str) and hmac.compare_digest(sent.encode(), self.csrf.encode())


class WebSessions:
    """The logged-in browsers of one dashboard.

    Parameters
    ----------
    service
        The :class:`edgectl.operator.OperatorService`.
    idle_s
        A session unused this long (seconds) is logged out.
    max_age_s
        A session is logged out this long after its login whatever its use (seconds).
    clock
        Monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        service: Any,
        *,
        idle_s: float = 900.0,
        max_age_s: float = 12 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (0 < idle_s <= max_age_s):
            raise ConfigError(
                f"dashboard sessions: need 0 < idle_s <= max_age_s, got {idle_s}, {max_age_s}"
            )
        self.service = service
        self.idle_s = float(idle_s)
        self.max_age_s = float(max_age_s)
        self.clock = clock
        self._lock = threading.Lock()
        self._by_token: dict[str, WebSession] = {}

    def login(self, name: str, password: str) -> WebSession:
        """A new session of ``name`` (:class:`AuthenticationError` on a wrong password; the
        service audits the failure)."""
        identity = self.service.login(name, password)
        now = self.clock()
        ws = WebSession(
            token=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            session=self.service.session(identity),
            identity=identity,
            created_s=now,
            last_seen_s=now,
        )
        with self._lock:
            self._prune(now)
            self._by_token[ws.token] = ws
        return ws

    def get(self, token: str | None) -> WebSession | None:
        """The live session of ``token`` (its idle time restarts), or None when there is none
        or it expired (then it is gone)."""
        if not token:
            return None
        now = self.clock()
        with self._lock:
            ws = self._by_token.get(token)
            if ws is None:
                return None
            if self._expired(ws, now):
                del self._by_token[token]
                return None
            ws.last_seen_s = now
            return ws

    def alive(self, ws: WebSession) -> bool:
        """True while ``ws`` is logged in and not expired (a live stream checks this; it does
        not count as use)."""
        with self._lock:
            return self._by_token.get(ws.token) is ws and not self._expired(ws, self.clock())

    def logout(self, token: str | None) -> None:
        with self._lock:
            self._by_token.pop(token or "", None)

    def count(self) -> int:
        """Sessions logged in now."""
        with self._lock:
            self._prune(self.clock())
            return len(self._by_token)

    def _expired(self, ws: WebSession, now: float) -> bool:
        return now - ws.last_seen_s > self.idle_s or now - ws.created_s > self.max_age_s

    def _prune(self, now: float) -> None:
        for token in [t for t, ws in self._by_token.items() if self._expired(ws, now)]:
            del self._by_token[token]

"""The SiLA 2 LockController (org.silastandard/core/LockController/v2) of the edgectl server.

A client locks the server for exclusive use with ``LockServer(LockIdentifier, Timeout)``; while
it is locked every command that changes the process (the operator changes of the edgectl
features) needs the ``LockIdentifier`` metadata as well as the access token: without it the call
is refused (``InvalidMetadata``, a framework error), with another identifier it is refused
(``InvalidLockIdentifier``). Reads, subscriptions and ``GetEstimate`` stay open to every logged-in
user, so dashboards keep reading a locked reactor. A call with the right identifier restarts the
timeout; a timeout of 0 s never expires. The lock sits on top of the operator service: a locked
command is still authorised, bounded and audited as its user. Locking needs a login whose role
has a right other than ``read`` (a viewer cannot lock operators out).

The ``sila2`` package (0.14) ships the feature definition and base class; its own
implementation asks for the metadata even while unlocked and treats a timeout of 0 as expired,
so this one is written against the definition instead.
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["ServerLock", "lock_controller"]


class ServerLock:
    """The lock state: identifier, timeout (monotonic seconds), thread safe."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._identifier: str | None = None
        self._timeout_s = 0.0
        self._last_use_s = 0.0

    def _expire(self) -> None:
        if (
            self._identifier is not None
            and self._timeout_s > 0.0
            and time.monotonic() - self._last_use_s > self._timeout_s
        ):
            self._identifier = None

    @property
    def locked(self) -> bool:
        """Whether the server is locked now."""
        with self._mutex:
            self._expire()
            return self._identifier is not None

    def lock(self, identifier: str, timeout_s: float) -> bool:
        """Lock with ``identifier``; False when already locked."""
        with self._mutex:
            self._expire()
            if self._identifier is not None:
                return False
            self._identifier = identifier
            self._timeout_s = max(0.0, float(timeout_s))
            self._last_use_s = time.monotonic()
            return True

    def check(self, identifier: str) -> bool:
        """Whether ``identifier`` opens the lock (then the timeout restarts)."""
        with self._mutex:
            self._expire()
            if self._identifier is None or identifier != self._identifier:
                return False
            self._last_use_s = time.monotonic()
            return True

    def unlock(self, identifier: str) -> str:
        """Unlock: "" when done, else ``"not_locked"`` or ``"wrong_identifier"``."""
        with self._mutex:
            self._expire()
            if self._identifier is None:
                return "not_locked"
            if identifier != self._identifier:
                return "wrong_identifier"
            self._identifier = None
            return ""


def lock_controller(
    server: Any, state: ServerLock, protected: list[Any], may_lock: Any, identity_of: Any
) -> Any:
    """The LockController implementation: ``protected`` are the lock-protected commands,
    ``identity_of(metadata)`` the caller's identity, ``may_lock(identity)`` whether it may
    lock or unlock."""
    from sila2.features.lockcontroller import (
        InvalidLockIdentifier,
        LockControllerBase,
        LockControllerFeature,
        LockServer_Responses,
        ServerAlreadyLocked,
        ServerNotLocked,
        UnlockServer_Responses,
    )
    from sila2.server import MetadataInterceptor

    class Check(MetadataInterceptor):
        def intercept(self, parameters: Any, metadata: Any, target_call: Any) -> None:
            if not state.check(str(metadata[LockControllerFeature["LockIdentifier"]])):
                raise InvalidLockIdentifier

    class LockController(LockControllerBase):
        """LockServer, UnlockServer, IsLocked (module docstring)."""

        def __init__(self, parent_server: Any) -> None:
            super().__init__(parent_server=parent_server)
            parent_server.add_metadata_interceptor(Check([LockControllerFeature["LockIdentifier"]]))

        def get_IsLocked(self, *, metadata: Any) -> bool:
            return state.locked

        def LockServer(self, LockIdentifier: str, Timeout: int, *, metadata: Any) -> Any:
            may_lock(identity_of(metadata))
            if not state.lock(str(LockIdentifier), float(Timeout)):
                raise ServerAlreadyLocked
            return LockServer_Responses()

        def UnlockServer(self, LockIdentifier: str, *, metadata: Any) -> Any:
            may_lock(identity_of(metadata))
            why = state.unlock(str(LockIdentifier))
            if why == "not_locked":
                raise ServerNotLocked
            if why:
                raise InvalidLockIdentifier
            return UnlockServer_Responses()

        def get_calls_affected_by_LockIdentifier(self) -> list[Any]:
            # only while locked: once unlocked no identifier has to be sent (LockController v2)
            return list(protected) if state.locked else []

    return LockController(server)

"""Who may do what on the OPC UA server (:mod:`edgectl.lab.opcua_server`): the user manager
that logs sessions in as operator-service users, and the attribute service that turns writes
of TargetValue nodes into operator changes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

__all__ = ["TargetWrites", "UserManager"]


class UserManager:
    """asyncua user manager: the operator service's users (every remote user is asyncua's
    ``User`` role: asyncua's ``Admin`` would bypass the access levels)."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> Any:
        from asyncua.crypto.permission_rules import User, UserRole

        ident = self.owner.login(username, password)
        if ident is None:
            return None
        return User(role=UserRole.User, name=ident.name)


class TargetWrites:
    """asyncua's attribute service, with the writes of TargetValue nodes turned into operator
    changes (the value is written to the node only once the change is applied)."""

    def __init__(self, owner: Any, inner: Any) -> None:
        self.owner = owner
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def write(self, params: Any, user: Any = None) -> list[Any]:
        from asyncua import ua

        nodes = self.owner.nodes
        targets: Mapping[Any, str] = (
            {n.nodeid: loop for loop, n in nodes.targets.items()} if nodes is not None else {}
        )
        results: list[Any] = []
        for wv in params.NodesToWrite:
            loop = targets.get(wv.NodeId)
            if loop is None or wv.AttributeId != ua.AttributeIds.Value:
                one = ua.WriteParameters(NodesToWrite=[wv])
                results.extend(await self.inner.write(one, user=user))
                continue
            value = wv.Value.Value.Value if wv.Value and wv.Value.Value else None
            status = await asyncio.to_thread(self.owner.write_target, user, loop, value)
            if status is not None:
                results.append(ua.StatusCode(status))
                continue
            one = ua.WriteParameters(NodesToWrite=[wv])
            results.extend(await self.inner.write(one, user=user))
        return results

"""Errors of the operator service: a refused change names the rule, the user and the value."""

from __future__ import annotations

from typing import Any

from edgectl.errors import EdgectlError

__all__ = ["AuthenticationError", "RefusedError", "RunStoppedError"]


class RefusedError(EdgectlError, PermissionError):
    """An operator change was refused; nothing was applied.

    Attributes
    ----------
    rule
        The rule that refused it: ``rights``, ``e-signature``, ``limits``, ``audit``, ...
    user
        The authenticated user who asked.
    value
        The value asked for (None when the change has none).
    """

    def __init__(self, message: str, *, rule: str = "", user: str = "", value: Any = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.user = user
        self.value = value


class AuthenticationError(RefusedError):
    """The caller could not be identified (unknown OS user, wrong password)."""


class RunStoppedError(EdgectlError):
    """The run is stopping or stopped: the operator service takes no more calls."""

"""The operator dashboard: ``edgectl run CONFIG --http HOST:PORT``.

An ASGI application (Starlette on uvicorn, :mod:`edgectl.web.server`) in the controller
process, on its own thread and event loop, that talks only to the operator service
(:mod:`edgectl.operator`): login with the users file's passwords, server-side role checks, CSRF
tokens on every change, live trends by server-sent events, min/max-downsampled history. Every
asset ships in the package (``static/``; dygraphs 2.2.1, MIT, from Debian's ``libjs-dygraphs``,
unmodified, with its licence in ``static/vendor/dygraphs-COPYRIGHT``).
"""

from __future__ import annotations

from edgectl.web.server import DashboardServer, is_loopback, parse_http

__all__ = ["DashboardServer", "is_loopback", "parse_http"]

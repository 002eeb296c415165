"""The dashboard's ASGI application (Starlette): pages, the live stream, the JSON and CSV
reads, and the changes. Every handler calls the operator service through the logged-in
browser's :class:`edgectl.operator.Session` — the same calls the REPL socket makes — so every
change is authenticated, authorised by role, bounded, e-signed where required and audited
before it acts; the server refuses what the user's role does not allow, whatever the page shows.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from edgectl.errors import EdgectlError
from edgectl.operator.errors import AuthenticationError, RefusedError, RunStoppedError
from edgectl.web import pages
from edgectl.web.auth import COOKIE, WebSession, WebSessions

__all__ = ["STREAM_PERIOD_S", "build_app"]

STATIC = Path(__file__).with_name("static")
#: how often the live stream looks at the tags (seconds): it sends when they changed since the
#: last message — a scan ran — so a change reaches the browser within a scan plus this, and at
#: least every ``STREAM_IDLE_S`` when nothing scans
STREAM_PERIOD_S = 0.04
STREAM_IDLE_S = 1.0
_SECURITY_HEADERS = {
    # every asset is served by the dashboard itself: no CDN, no inline script
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    # dygraphs colours its legend with style attributes; scripts stay 'self' only
    "style-src 'self' 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _value(text: str) -> Any:
    """A form value as the service expects it: a number when it reads as one."""
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        f = float(t)
    except ValueError:
        return t
    return f if math.isfinite(f) else t


def _clock_s(text: str) -> float | None:
    """Run time ``h:mm`` or ``h:mm:ss`` (hours may exceed 24) in seconds; blank: None (now)."""
    t = text.strip()
    if not t:
        return None
    parts = t.split(":")
    try:
        if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
            raise ValueError
        nums = [int(p) for p in parts] + [0]
        h, m, sec = nums[0], nums[1], nums[2]
        if m >= 60 or sec >= 60:
            raise ValueError
    except ValueError:
        raise ValueError(f"sampled at: {t!r} is not a run time h:mm or h:mm:ss") from None
    return float(h * 3600 + m * 60 + sec)


def _finite(v: Any) -> Any:
    """``v`` with every non-finite number as None (JSON has no NaN)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, Mapping):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite(x) for x in v]
    return v


def build_app(
    sessions: WebSessions,
    *,
    secure_cookie: bool = False,
    stream_period_s: float = STREAM_PERIOD_S,
    on_stop: Callable[[], bool] | None = None,
) -> Starlette:
    """The dashboard of the service ``sessions`` logs in to. ``secure_cookie``: served over
    TLS (the cookie is then ``Secure``). ``on_stop()`` is True once the server is stopping
    (live streams end)."""
    service = sessions.service
    stopping = on_stop or (lambda: False)

    def html(body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(body, status_code=status, headers=_SECURITY_HEADERS)

    def current(request: Request) -> WebSession | None:
        return sessions.get(request.cookies.get(COOKIE))

    def to_login(request: Request) -> Response:
        nxt = quote(request.url.path, safe="/")
        return RedirectResponse(f"/login?next={nxt}&expired=1", status_code=303)

    async def call(ws: WebSession, method: str, **params: Any) -> Any:
        # the service may wait for the audit trail's commit: not on the event loop
        return await run_in_threadpool(ws.session.call, method, params)

    def flash_of(request: Request) -> tuple[str, bool]:
        msg = request.query_params.get("msg", "")
        return msg[:600], request.query_params.get("ok") == "1"

    def back(path: str, msg: str, ok: bool) -> Response:
        return RedirectResponse(f"{path}?ok={int(ok)}&msg={quote(msg)}", status_code=303)

    async def render(
        request: Request, title: str, build: Any, scripts: tuple[str, ...] = ()
    ) -> Response:
        ws = current(request)
        if ws is None:
            return to_login(request)
        try:
            body = await build(ws)
        except (AuthenticationError, RefusedError) as exc:
            return html(
                pages.page(
                    title, "", user=ws.identity, csrf=ws.csrf, flash=str(exc), flash_ok=False
                ),
                403,
            )
        except RunStoppedError as exc:
            return html(
                pages.page(
                    title, "", user=ws.identity, csrf=ws.csrf, flash=str(exc), flash_ok=False
                ),
                503,
            )
        msg, ok = flash_of(request)
        return html(
            pages.page(
                title, body, user=ws.identity, csrf=ws.csrf, flash=msg, flash_ok=ok, scripts=scripts
            )
        )

    async def change_guard(request: Request) -> tuple[WebSession | None, Any, Response | None]:
        """The session and form of a change, or the response refusing it (401, 403)."""
        ws = current(request)
        if ws is None:
            return None, None, PlainTextResponse("not logged in (or the session expired)", 401)
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            return None, None, PlainTextResponse(f"cross-origin request from {origin} refused", 403)
        form = await request.form()
        if not ws.check_csrf(form.get("csrf") or request.headers.get("x-csrf-token")):
            return (
                None,
                None,
                PlainTextResponse("CSRF token missing or wrong: reload the page", 403),
            )
        return ws, form, None

    # -- login ------------------------------------------------------------------------------
    async def login_get(request: Request) -> Response:
        err = (
            "your session expired or you are not logged in"
            if request.query_params.get("expired")
            else ""
        )
        return html(pages.login_page(err, request.query_params.get("next", "/")))

    async def login_post(request: Request) -> Response:
        form = await request.form()
        nxt = str(form.get("next") or "/")
        if not nxt.startswith("/") or nxt.startswith("//"):
            nxt = "/"
        try:
            ws = await run_in_threadpool(
                sessions.login, str(form.get("user", "")), str(form.get("password", ""))
            )
        except AuthenticationError as exc:
            return html(pages.login_page(str(exc), nxt), 401)
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(
            COOKIE, ws.token, httponly=True, samesite="strict", secure=secure_cookie, path="/"
        )
        return resp

    async def logout(request: Request) -> Response:
        ws, _, refused = await change_guard(request)
        if refused is not None:
            return refused
        assert ws is not None
        sessions.logout(ws.token)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    # -- pages ------------------------------------------------------------------------------
    async def overview(request: Request) -> Response:
        async def build(ws: WebSession) -> str:
            info = await call(ws, "info")
            names = await call(ws, "loop_names")
            loops = {n: await call(ws, "loop_get", loop=n) for n in names}
            tags = await call(ws, "read_tags")
            alarms = await call(ws, "alarms")
            conditions = await call(ws, "alarm_conditions")
            events = await call(ws, "events_log", last=5000)
            phases = [e["time_s"] for e in events if e["kind"] == "phase"]
            return pages.overview_page(
                info, tags, loops, alarms, phases[-1] if phases else None, conditions
            )

        return await render(request, "Overview", build, ("app.js",))

    async def trends(request: Request) -> Response:
        async def build(ws: WebSession) -> str:
            tags = sorted(await call(ws, "read_tags"))
            names = await call(ws, "loop_names")
            pvs = {n: str((await call(ws, "loop_get", loop=n)).get("pv") or "") for n in names}
            first = next((p for p in pvs.values() if p in tags), "")
            sel = request.query_params.get("tag") or first or (tags[0] if tags else "")
            return pages.trends_page(tags, pvs, sel)

        return await render(request, "Trends", build, ("vendor/dygraph.min.js", "trends.js"))

    async def loops_view(request: Request) -> Response:
        async def build(ws: WebSession) -> str:
            names = await call(ws, "loop_names")
            loops = {n: await call(ws, "loop_get", loop=n) for n in names}
            rights = service.config.rights_of(ws.identity.role)
            return pages.loops_page(loops, ws.csrf, list(service.config.critical), rights)

        return await render(request, "Loops", build)

    async def recipe_view(request: Request) -> Response:
        async def build(ws: WebSession) -> str:
            status = await call(ws, "recipe_status")
            wanted = sorted({s["tag"] for s in (status.get("softsensors") or {}).values()})
            tags = await call(ws, "read_tags")
            units = {t: str(tags[t]["unit"]) for t in wanted if t in tags}
            rights = service.config.rights_of(ws.identity.role)
            return pages.recipe_page(status, units, ws.csrf, rights)

        return await render(request, "Recipe", build)

    async def alarms_view(request: Request) -> Response:
        async def build(ws: WebSession) -> str:
            return pages.alarms_page(
                await call(ws, "alarms"),
                await call(ws, "alarm_log", last=500),
                ws.csrf,
                await call(ws, "alarm_conditions"),
            )

        return await render(request, "Alarms", build)

    async def audit_view(request: Request) -> Response:
        async def build(ws: WebSession) -> str:
            return pages.audit_page(
                await call(ws, "audit_log", last=500), await call(ws, "audit_verify")
            )

        return await render(request, "Audit trail", build)

    async def events_view(request: Request) -> Response:
        async def build(ws: WebSession) -> str:
            return pages.events_page(await call(ws, "events_log", last=1000))

        return await render(request, "Events", build)

    async def export_view(request: Request) -> Response:
        async def build(ws: WebSession) -> str:
            return pages.export_page(sorted(await call(ws, "read_tags")))

        return await render(request, "Export", build)

    # -- changes ----------------------------------------------------------------------------
    async def loop_change(request: Request) -> Response:
        ws, form, refused = await change_guard(request)
        if refused is not None:
            return refused
        assert ws is not None
        loop = request.path_params["loop"]
        param = str(form.get("param", ""))
        value = _value(str(form.get("value", "")))
        reason = str(form.get("reason", ""))
        sig = None
        if form.get("sig_password"):
            sig = {
                "password": str(form["sig_password"]),
                "meaning": str(form.get("sig_meaning", "")),
            }
        try:
            if param == "mode" and value == "manual":
                old = await call(ws, "loop_manual", loop=loop, reason=reason, signature=sig)
            else:
                old = await call(
                    ws,
                    "loop_set",
                    loop=loop,
                    param=param,
                    value=value,
                    reason=reason,
                    signature=sig,
                )
        except (RefusedError, AuthenticationError) as exc:
            return (
                back("/loops", f"refused: {exc}", False)
                if "text/html" in request.headers.get("accept", "")
                else PlainTextResponse(f"refused: {exc}", 403)
            )
        except (EdgectlError, KeyError, ValueError, TypeError) as exc:
            return back("/loops", f"error: {exc}", False)
        return back("/loops", f"loops.{loop}.{param}: {pages.fmt(old)} → {pages.fmt(value)}", True)

    async def ack(request: Request) -> Response:
        ws, form, refused = await change_guard(request)
        if refused is not None:
            return refused
        assert ws is not None
        name = str(form.get("name", "")) or None
        try:
            done = await call(ws, "ack", name=name, reason=str(form.get("reason", "")))
        except (RefusedError, AuthenticationError) as exc:
            return (
                back("/alarms", f"refused: {exc}", False)
                if "text/html" in request.headers.get("accept", "")
                else PlainTextResponse(f"refused: {exc}", 403)
            )
        except (EdgectlError, KeyError, ValueError) as exc:
            return back("/alarms", f"error: {exc}", False)
        names = ", ".join(d["name"] for d in done) or "nothing"
        return back("/alarms", f"acknowledged {names} as {ws.identity.name}", True)

    async def refused_or_error(request: Request, path: str, exc: Exception) -> Response:
        if isinstance(exc, RefusedError | AuthenticationError):
            if "text/html" in request.headers.get("accept", ""):
                return back(path, f"refused: {exc}", False)
            return PlainTextResponse(f"refused: {exc}", 403)
        if "text/html" in request.headers.get("accept", ""):
            return back(path, f"error: {exc}", False)
        return PlainTextResponse(f"error: {exc}", 400)

    async def phase_request(request: Request) -> Response:
        ws, form, refused = await change_guard(request)
        if refused is not None:
            return refused
        assert ws is not None
        to = str(form.get("to", ""))
        try:
            await call(ws, "phase_request", to=to, reason=str(form.get("reason", "")))
        except (RefusedError, AuthenticationError, EdgectlError, KeyError, ValueError) as exc:
            return await refused_or_error(request, "/recipe", exc)
        return back("/recipe", f"transition to {to} requested as {ws.identity.name}", True)

    async def sample_add(request: Request) -> Response:
        ws, form, refused = await change_guard(request)
        if refused is not None:
            return refused
        assert ws is not None
        sensor = str(form.get("sensor", ""))
        text = str(form.get("value", "")).strip()
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            return await refused_or_error(
                request, "/recipe", ValueError(f"value: {text!r} is not a finite number")
            )
        try:
            out = await call(
                ws,
                "add_reference",
                sensor=sensor,
                value=value,
                sampled_s=_clock_s(str(form.get("sampled", ""))),
                reason=str(form.get("reason", "")),
                analyser=str(form.get("analyser", "")),
            )
        except (RefusedError, AuthenticationError, EdgectlError, KeyError, ValueError) as exc:
            return await refused_or_error(request, "/recipe", exc)
        est = out.get("estimate") if isinstance(out, Mapping) else None
        tail = f", estimate now {pages.fmt(est)}" if est is not None else ""
        return back("/recipe", f"{sensor}: reference {pages.fmt(value)} entered{tail}", True)

    # -- data -------------------------------------------------------------------------------
    async def api(request: Request, method: str, **params: Any) -> Response:
        ws = current(request)
        if ws is None:
            return JSONResponse({"error": "not logged in"}, 401)
        try:
            data = _finite(await call(ws, method, **params))
            return JSONResponse(data, headers=_SECURITY_HEADERS)
        except (RefusedError, AuthenticationError) as exc:
            return JSONResponse({"error": str(exc)}, 403)
        except (EdgectlError, KeyError, ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)

    async def api_history(request: Request) -> Response:
        q = request.query_params
        try:
            start = float(q["start_s"]) if q.get("start_s") else None
            end = float(q["end_s"]) if q.get("end_s") else None
            buckets = int(q.get("buckets", "800"))
        except ValueError as exc:
            return JSONResponse({"error": f"bad query: {exc}"}, 400)
        return await api(
            request, "history", tag=q.get("tag", ""), start_s=start, end_s=end, buckets=buckets
        )

    async def api_markers(request: Request) -> Response:
        ws = current(request)
        if ws is None:
            return JSONResponse({"error": "not logged in"}, 401)
        events = await call(ws, "events_log", last=5000)
        alarms = await call(ws, "alarm_log", last=5000)
        out = [
            {"time_s": e["time_s"], "kind": "phase", "label": e["message"]}
            for e in events
            if e["kind"] == "phase"
        ]
        out += [
            {"time_s": a["time_s"], "kind": "alarm", "label": a["name"]}
            for a in alarms
            if a["transition"] == "raise"
        ]
        return JSONResponse(_finite(out), headers=_SECURITY_HEADERS)

    async def stream(request: Request) -> Response:
        ws = current(request)
        if ws is None:
            return PlainTextResponse("not logged in", 401)
        wanted = [t for t in request.query_params.get("tags", "").split(",") if t] or None
        live: WebSession = ws

        async def events() -> AsyncIterator[str]:
            yield "retry: 1000\n\n"
            last_stamp = ""
            last_sent = -math.inf
            loop = asyncio.get_running_loop()
            while sessions.alive(live) and not stopping():
                try:
                    # a look is one read of the tags; a scan since the last look changes their
                    # times (at least their age), and only then is the run's state read too
                    tags = await call(live, "read_tags", names=wanted)
                    stamp = repr([(t["time_s"], t["age_s"]) for t in tags.values()])  # NaN-safe
                    idle = loop.time() - last_sent >= STREAM_IDLE_S
                    info = await call(live, "info") if stamp != last_stamp or idle else None
                except RunStoppedError:
                    yield "event: stopped\ndata: {}\n\n"
                    return
                except (EdgectlError, KeyError) as exc:
                    yield f"event: error\ndata: {json.dumps(str(exc))}\n\n"
                    return
                if info is not None:
                    last_stamp, last_sent = stamp, loop.time()
                    data = {
                        "time_s": info["time_s"],
                        "phase": info["phase"],
                        "tripped": info["tripped"],
                        "tags": tags,
                    }
                    yield f"data: {json.dumps(_finite(data), allow_nan=False, default=str)}\n\n"
                await asyncio.sleep(stream_period_s)
            yield "event: expired\ndata: {}\n\n"

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def export_csv(request: Request) -> Response:
        ws = current(request)
        if ws is None:
            return to_login(request)
        names = request.query_params.getlist("tag")
        try:
            info = await call(ws, "info")
            tags = await call(ws, "read_tags", names=names or None)
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(["elapsed_s", "elapsed_h", "tag", "value", "unit"])
            for name in tags:
                tr = await call(ws, "trend", tag=name, seconds=float(info["time_s"]) + 1.0)
                unit = tags[name]["unit"]
                for t, v in zip(tr["time_s"], tr["value"], strict=True):
                    w.writerow([f"{t:.3f}", f"{t / 3600.0:.6f}", name, repr(v), unit])
        except (RefusedError, AuthenticationError) as exc:
            return PlainTextResponse(f"refused: {exc}", 403)
        except (EdgectlError, KeyError) as exc:
            return PlainTextResponse(f"error: {exc}", 400)
        fname = f"{info['name']}.csv"
        return Response(
            buf.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{fname}"'},
        )

    def q(method: str, **fixed: Any) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            return await api(request, method, **fixed)

        return handler

    routes = [
        Route("/login", login_get, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", overview),
        Route("/trends", trends),
        Route("/loops", loops_view),
        Route("/loops/{loop}", loop_change, methods=["POST"]),
        Route("/recipe", recipe_view),
        Route("/recipe/phase", phase_request, methods=["POST"]),
        Route("/recipe/sample", sample_add, methods=["POST"]),
        Route("/alarms", alarms_view),
        Route("/alarms/ack", ack, methods=["POST"]),
        Route("/audit", audit_view),
        Route("/events", events_view),
        Route("/export", export_view),
        Route("/export.csv", export_csv),
        Route("/api/info", q("info")),
        Route("/api/tags", q("read_tags")),
        Route("/api/loops", q("loop_names")),
        Route("/api/audit", q("audit_log", last=500)),
        Route("/api/recipe", q("recipe_status")),
        Route("/api/history", api_history),
        Route("/api/markers", api_markers),
        Route("/api/stream", stream),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes)

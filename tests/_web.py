"""A running controller on the simulated plant with its dashboard, and a small HTTP client
(standard library only) that keeps the session cookie — shared by the dashboard tests."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import re
import threading
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgectl.config import to_toml_text
from edgectl.operator import UserStore
from edgectl.runtime.build import Run, open_run
from edgectl.web import DashboardServer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ecoli-fedbatch-2L.toml"
PASSWORD = "correct horse battery"
USERS = {"olga": "operator", "vic": "viewer", "erin": "engineer"}


def config(tmp_path: Path) -> Path:
    """The E. coli example with a DO alarm that raises within seconds of simulated time (its
    limit above any DO, so it does not wait for the culture's DO descent: the tests' wait for
    it holds at any load) and the gains e-signed."""
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["alarms"]["do_low"].update({"limit": 200.0, "delay_s": 5.0})
    data.setdefault("operator", {})["critical"] = ["stop", "reset_trip", "tune"]
    path = tmp_path / "reactor.toml"
    path.write_text(to_toml_text(data), encoding="utf-8")
    return path


CHO = ROOT / "examples" / "cho-fedbatch-2L.toml"


def cho_config(tmp_path: Path) -> Path:
    """The CHO example (absolute paths) with the soft sensor's bias correction on and an
    operator transition out of the batch phase, for the recipe page."""
    text = CHO.read_text(encoding="utf-8")
    ex = CHO.parent
    for old, new in (
        ('model = "models/cho-glucose.json"', f'model = "{ex}/models/cho-glucose.json"'),
        ('config = "cho-fedbatch-2L.plant.toml"', f'config = "{ex}/cho-fedbatch-2L.plant.toml"'),
        (
            'tag = "glucose_g_l"\nperiod_s = 300.0\n',
            'tag = "glucose_g_l"\nperiod_s = 300.0\ncorrection = { kind = "bias_kalman" }\n',
        ),
        (
            '    { to = "fed-batch", after_s = 86400.0 },\n',
            '    { to = "fed-batch", after_s = 86400.0 },\n'
            '    { to = "fed-batch", operator = true },\n',
        ),
    ):
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "cho.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Dash:
    run: Run
    server: DashboardServer
    url: str


@contextlib.contextmanager
def dashboard(
    tmp_path: Path,
    *,
    speed: float = 600.0,
    make_config: Callable[[Path], Path] = config,
    **kw: Any,
) -> Iterator[Dash]:
    """A run of ``make_config(tmp_path)`` (default: the E. coli example, :func:`config`)
    scanning on its own thread, with its dashboard on a free loopback port."""
    store = UserStore(tmp_path / "run.users")
    for name, role in USERS.items():
        store.add(name, role, PASSWORD, full_name=name.title())
    run = open_run(
        make_config(tmp_path),
        speed=speed,
        db=tmp_path / "run.db",
        socket_path=tmp_path / "run.sock",
    )
    worker = threading.Thread(target=run.run, name="scan", daemon=True)
    server = None
    try:
        worker.start()
        server = DashboardServer(run.controller.operator, "127.0.0.1", 0, **kw).start()
        yield Dash(run, server, server.url.rstrip("/"))
    finally:
        if server is not None:
            server.close()
        run.stop()
        worker.join(timeout=60)
        run.close()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kw: Any) -> None:
        return None


@dataclass
class Reply:
    status: int
    body: str
    headers: Any


class Client:
    """A browser-like client: a cookie jar, forms posted with the page's CSRF token."""

    def __init__(
        self, base: str, *, follow: bool = True, jar: http.cookiejar.CookieJar | None = None
    ) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar() if jar is None else jar
        handlers: list[Any] = [urllib.request.HTTPCookieProcessor(self.jar)]
        if not follow:
            handlers.append(NoRedirect())
        self.opener = urllib.request.build_opener(*handlers)
        self.csrf = ""

    def request(
        self, path: str, data: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        body = None if data is None else urllib.parse.urlencode(data, doseq=True).encode()
        req = urllib.request.Request(self.base + path, data=body, headers=headers or {})
        try:
            with self.opener.open(req, timeout=60) as r:
                reply = Reply(r.status, r.read().decode(), r.headers)
        except urllib.error.HTTPError as e:
            reply = Reply(e.code, e.read().decode(), e.headers)
        m = re.search(r'data-csrf="([^"]*)"', reply.body)
        if m and m.group(1):
            self.csrf = m.group(1)
        return reply

    def get(self, path: str) -> Reply:
        return self.request(path)

    def post(self, path: str, **fields: Any) -> Reply:
        fields.setdefault("csrf", self.csrf)
        return self.request(path, fields, {"Accept": "application/json"})

    def json(self, path: str) -> Any:
        r = self.get(path)
        assert r.status == 200, (r.status, r.body)
        return json.loads(r.body)

    def login(self, user: str, password: str = PASSWORD) -> Reply:
        return self.request("/login", {"user": user, "password": password, "next": "/"})

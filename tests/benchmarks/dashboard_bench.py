"""Figures of the operator dashboard (no assertion; prints what it measured):

1. RSS the dashboard adds to the controller: VmRSS after the run is open and scanning, then
   after ``edgectl.web`` is imported, the server started, a password login (scrypt) and five
   live streams attached;
2. scan lateness at 10 Hz in real time without, then with, five browsers' live streams
   attached (same scenario as ``scan_lateness.py``, without its busy REPL);
3. tag change → browser latency: a setpoint written through the operator service until the
   overview page in headless chromium shows it (wall clock of the same machine; p50/p99), from
   the request and from the service call's return (the change is then queued for the next
   scan: what is left is the scan, the live stream and the page);
4. a 14-day trend: the min/max-downsampled history of a tag sampled every ``--sample-s``
   over 14 days, as the trend page asks for it (800 buckets).

    .venv/bin/python tests/benchmarks/dashboard_bench.py --seconds 60 --changes 100
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import tomllib
import urllib.parse
import urllib.request
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from edgectl.config import to_toml_text  # noqa: E402
from edgectl.operator import UserStore  # noqa: E402
from edgectl.runtime.build import open_run  # noqa: E402

PASSWORD = "correct horse battery"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def login_cookie(url: str, user: str) -> str:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a: Any, **k: Any) -> None:
            return None

    body = urllib.parse.urlencode({"user": user, "password": PASSWORD}).encode()
    opener = urllib.request.build_opener(NoRedirect())
    try:
        opener.open(url + "login", data=body, timeout=30)
    except urllib.error.HTTPError as e:  # the 303 to the overview
        return str(e.headers["set-cookie"]).split(";")[0]
    raise RuntimeError("login did not redirect")


def streams(url: str, cookie: str, n: int, stop: threading.Event) -> list[int]:
    counts = [0] * n

    def one(i: int) -> None:
        req = urllib.request.Request(url + "api/stream?tags=temp_c,ph,do_pct")
        req.add_header("Cookie", cookie)
        with urllib.request.urlopen(req, timeout=30) as r:
            while not stop.is_set():
                if r.readline().startswith(b"data: {"):
                    counts[i] += 1

    for i in range(n):
        threading.Thread(target=one, args=(i,), daemon=True).start()
    return counts


def lateness(tmp: Path, seconds: float, browsers: int) -> str:
    from edgectl.web import DashboardServer

    data = tomllib.loads((ROOT / "examples" / "ecoli-fedbatch-2L.toml").read_text())
    data["reactor"]["scan_period_s"] = 0.1
    d = tmp / f"lat{browsers}"
    d.mkdir()
    cfg = d / "reactor.toml"
    cfg.write_text(to_toml_text(data))
    UserStore(d / "run.users").add("olga", "operator", PASSWORD)
    run = open_run(cfg, speed=1.0, db=d / "run.db", socket_path=d / "r.sock")
    server = DashboardServer(run.controller.operator).start()
    stop = threading.Event()
    counts: list[int] = []
    if browsers:
        counts = streams(server.url, login_cookie(server.url, "olga"), browsers, stop)
    try:
        run.run(seconds)
    finally:
        stop.set()
        lat = run.scheduler.lateness.summary_ms()
        stats = run.scheduler.stats
        server.close()
        run.close()
    return (
        f"  {browsers} browsers: p50 {lat['p50_ms']:.3f} ms  p99 {lat['p99_ms']:.3f} ms  max "
        f"{lat['max_ms']:.3f} ms  overruns {stats.overruns}  ({stats.scans} scans; stream "
        f"messages {sum(counts)})"
    )


def rss_and_latency(tmp: Path, changes: int) -> None:
    data = tomllib.loads((ROOT / "examples" / "ecoli-fedbatch-2L.toml").read_text())
    data["reactor"]["scan_period_s"] = 0.1
    d = tmp / "rss"
    d.mkdir()
    cfg = d / "reactor.toml"
    cfg.write_text(to_toml_text(data))
    UserStore(d / "run.users").add("olga", "operator", PASSWORD)
    run = open_run(cfg, speed=1.0, db=d / "run.db", socket_path=d / "r.sock")
    worker = threading.Thread(target=run.run, daemon=True)
    worker.start()
    time.sleep(5.0)
    before = rss_mb()
    from edgectl.web import DashboardServer

    server = DashboardServer(run.controller.operator).start()
    stop = threading.Event()
    cookie = login_cookie(server.url, "olga")
    counts = streams(server.url, cookie, 5, stop)
    time.sleep(10.0)
    after = rss_mb()
    print(
        f"RSS: controller {before:.1f} MB; with the dashboard and 5 live streams "
        f"{after:.1f} MB: +{after - before:.1f} MB (stream messages {sum(counts)})"
    )
    stop.set()
    try:
        latency(server, run, cookie, changes)
    finally:
        server.close()
        run.stop()
        worker.join()
        run.close()


def latency(server: Any, run: Any, cookie: str, changes: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service

    from test_web_browser import chromium

    binary, drv = chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(drv), options=opts)
    try:
        d.get(server.url + "login")
        name, _, value = cookie.partition("=")
        d.add_cookie({"name": name, "value": value, "path": "/"})
        d.get(server.url)
        d.set_script_timeout(10)
        d.execute_script(
            "window.__seen = [];"
            "var el = document.querySelector('[data-tag=\"temp.sp\"]');"
            "new MutationObserver(function () {"
            "  window.__seen.push([Date.now(), el.textContent]);"
            "  if (window.__wake) { window.__wake(); }"
            "}).observe(el, {childList: true, characterData: true, subtree: true});"
        )
        # waits in the page until the text is shown (no polling from here, which would load
        # the machine it measures); resolves with the time it was first shown, or null
        wait_shown = (
            "var shown = arguments[0], t0 = arguments[1], done = arguments[2];"
            "function look() {"
            "  var hit = window.__seen.filter(function (s) {"
            "    return s[1] === shown && s[0] >= t0;"
            "  });"
            "  if (hit.length) { window.__wake = null; done(hit[0][0]); return true; }"
            "  return false;"
            "}"
            "if (!look()) { window.__wake = look; }"
        )
        service = run.controller.operator
        session = service.session(service.login("olga", PASSWORD))
        out: list[float] = []
        call: list[float] = []
        after: list[float] = []
        for i in range(changes):
            sp = 36.0 + (i % 2) * 0.5 + 0.01 * (i % 7)
            shown = f"{sp:.4g}"
            t0 = time.time() * 1000.0
            session.loop_set("temp", "setpoint", sp, reason="latency benchmark")
            t_ret = time.time() * 1000.0
            try:
                t_shown = d.execute_async_script(wait_shown, shown, t0)
            except TimeoutException:
                t_shown = None
            if t_shown is not None:
                out.append(t_shown - t0)
                call.append(t_ret - t0)
                after.append(t_shown - t_ret)
            d.execute_script("window.__seen = []; window.__wake = null;")
            time.sleep(0.05 + 0.037 * (i % 5))  # changes at varying phases of the scan

        def fig(xs: list[float]) -> str:
            xs = sorted(xs)
            p99 = xs[min(len(xs) - 1, round(0.99 * (len(xs) - 1)))]
            return f"p50 {statistics.median(xs):.0f} ms, p99 {p99:.0f} ms, max {xs[-1]:.0f} ms"

        print(
            f"tag change → browser ({len(out)}/{changes} seen; load average "
            f"{os.getloadavg()[0]:.1f}):\n"
            f"  from the request: {fig(out)}\n"
            f"  the service call (checks, audit commit, change queued for the scan): {fig(call)}\n"
            f"  from the service's return (next scan, live stream, page): {fig(after)}"
        )
    finally:
        d.quit()


def trend_14_days(tmp: Path, sample_s: float) -> None:
    from edgectl.historian import Historian

    h = Historian(tmp / "14d.db")
    n = int(14 * 86400 / sample_s)
    t0 = 1.7e9
    t_fill = time.perf_counter()
    for k in range(n):
        h.record("temp_c", 37.0 + 0.1 * ((k * 7919) % 101) / 101.0, time_s=t0 + k * sample_s)
        if k % 100_000 == 0:
            h.flush()
    h.flush()
    fill = time.perf_counter() - t_fill
    times = []
    for _ in range(5):
        t = time.perf_counter()
        rows = h.minmax("temp_c", t0, t0 + 14 * 86400.0, 800)
        times.append(time.perf_counter() - t)
    h.close()
    print(
        f"14-day trend ({n} samples every {sample_s:g} s, written in {fill:.0f} s): 800 buckets "
        f"in {min(times) * 1000:.0f} ms best / {statistics.median(times) * 1000:.0f} ms median "
        f"({len(rows)} buckets)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=60.0, help="each lateness run (wall s)")
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--sample-s", type=float, default=1.0)
    ap.add_argument("--only", choices=("rss", "lateness", "trend"), default=None)
    args = ap.parse_args()
    with TemporaryDirectory() as tmp:
        if args.only in (None, "rss"):
            rss_and_latency(Path(tmp), args.changes)
        if args.only in (None, "lateness"):
            print(f"scan lateness at 10 Hz, real time, {args.seconds:g} s each:")
            print(lateness(Path(tmp), args.seconds, 0))
            print(lateness(Path(tmp), args.seconds, 5))
        if args.only in (None, "trend"):
            trend_14_days(Path(tmp), args.sample_s)


if __name__ == "__main__":
    main()

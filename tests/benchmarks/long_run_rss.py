"""Memory and descriptors of long runs (issue 12 "Long run"; DESIGN: RSS flat after day 1).

Two measurements of ``edgectl run`` as a child process, Linux only (``/proc/<pid>/status``
VmRSS, ``/proc/<pid>/fd``):

1. **Long run**: a reactor config (default the 14-day CHO example) to its end at ``--speed``
   (default 1e6: as fast as the lockstep clock lets it, it waits for the scan and the I/O
   workers). Every ``--every-s`` wall seconds the child's RSS and descriptors are sampled and
   its simulated time read over the REPL socket (one short client session per sample). Printed:
   one row per simulated day (largest and last RSS, descriptors), then the RSS range after
   day 1 and its growth from the start of day 1 (goal: within 5 MB).
2. **REPL sessions**: a second run of the same config at ``--sessions-speed`` serves
   ``--sessions`` client sessions one after another (connect, ``trend`` of ``--trend-tag``,
   ``info``, disconnect); the child's descriptors and RSS are printed every 100 sessions
   (goal: descriptors flat).

Run after ``make build`` (release)::

    .venv/bin/python tests/benchmarks/long_run_rss.py                      # both, ~5-10 min
    .venv/bin/python tests/benchmarks/long_run_rss.py --days 2 --sessions 0
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def rss_mb(pid: int) -> float:
    """Resident set of ``pid`` in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def open_fds(pid: int) -> int:
    """Open descriptors of ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def _run_cmd(config: Path, speed: float, hours: float, db: Path, sock: Path) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from edgectl.cli import main; sys.exit(main(sys.argv[1:]))",
        "run",
        str(config),
        "--speed",
        f"{speed:g}",
        "--duration",
        f"{hours:g}",
        "--db",
        str(db),
        "--socket",
        str(sock),
    ]


def simulated_s(socket: Path) -> float | None:
    """The controller's simulated time, or None while its socket does not answer."""
    from edgectl import connect

    try:
        r = connect(socket)
        try:
            return float(r.info()["time_s"])
        finally:
            with contextlib.suppress(Exception):
                r.close()
    except Exception:
        return None


def long_run(config: Path, speed: float, days: float, every_s: float) -> dict[str, Any]:
    """Run ``config`` for ``days`` at ``speed``; samples of (simulated day, RSS MB, fds)."""
    with tempfile.TemporaryDirectory() as tmp:
        db, sock = Path(tmp) / "run.db", Path(tmp) / "run.sock"
        cmd = _run_cmd(config, speed, days * 24.0, db, sock)
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        samples: list[tuple[float, float, int]] = []
        t0 = time.monotonic()
        try:
            while child.poll() is None:
                time.sleep(every_s)
                try:
                    rss, fds = rss_mb(child.pid), open_fds(child.pid)
                except (FileNotFoundError, ProcessLookupError):
                    break
                sim = simulated_s(sock)
                if sim is not None:
                    samples.append((sim / 86400.0, rss, fds))
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=600)
        wall_s = time.monotonic() - t0
    return {"samples": samples, "wall_s": wall_s, "rc": child.returncode, "out": out}


def print_long_run(config: Path, speed: float, res: dict[str, Any]) -> None:
    samples: list[tuple[float, float, int]] = res["samples"]
    print(f"{config.name} at {speed:g}x: {res['wall_s']:.0f} s wall, rc {res['rc']}")
    print(" day   RSS max MB   RSS last MB   descriptors max")
    by_day: dict[int, list[tuple[float, int]]] = {}
    for day, rss, fds in samples:
        by_day.setdefault(int(day), []).append((rss, fds))
    for day in sorted(by_day):
        rows = by_day[day]
        print(
            f"{day:4d}   {max(r for r, _ in rows):10.1f}   {rows[-1][0]:11.1f}"
            f"   {max(f for _, f in rows):15d}"
        )
    after = [rss for day, rss, _ in samples if day >= 1.0]
    if after:
        print(
            f"RSS after day 1: {min(after):.1f} .. {max(after):.1f} MB "
            f"(growth {max(after) - after[0]:+.1f} MB from the start of day 1, "
            f"{after[-1] - after[0]:+.1f} MB at the end)"
        )
    fds_all = [f for _, _, f in samples]
    if fds_all:
        print(f"descriptors: {min(fds_all)} .. {max(fds_all)} over {len(samples)} samples")
    tail = [line for line in res["out"].splitlines() if line.strip()][-14:]
    print("\n".join(tail))


def sessions(config: Path, n: int, speed: float, tag: str) -> list[tuple[int, int, float]]:
    """(sessions done, descriptors, RSS MB) of a run serving ``n`` client sessions."""
    from edgectl import connect

    rows: list[tuple[int, int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        db, sock = Path(tmp) / "run.db", Path(tmp) / "run.sock"
        cmd = _run_cmd(config, speed, 24.0 * 365, db, sock)
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 300.0
            while simulated_s(sock) is None:  # the run serves its socket
                if child.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the run did not start: {child.communicate()[1]}")
                time.sleep(0.2)
            time.sleep(2.0)  # a few samples in the historian for the trends
            rows.append((0, open_fds(child.pid), rss_mb(child.pid)))
            for k in range(1, n + 1):
                r = connect(sock)
                try:
                    r.trend(tag, 3600.0)
                    r.info()
                finally:
                    r.close()
                if k % 100 == 0 or k == n:
                    time.sleep(0.2)  # let the server's session thread finish its teardown
                    rows.append((k, open_fds(child.pid), rss_mb(child.pid)))
        finally:
            child.send_signal(signal.SIGINT)
            try:
                child.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                child.kill()
                child.communicate()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "examples" / "cho-fedbatch-2L.toml")
    ap.add_argument("--speed", type=float, default=1e6)
    ap.add_argument("--days", type=float, default=14.0, help="0: skip the long run")
    ap.add_argument("--every-s", type=float, default=2.0, help="wall seconds between samples")
    ap.add_argument("--sessions", type=int, default=1000, help="0: skip the session count")
    ap.add_argument("--sessions-speed", type=float, default=60.0)
    ap.add_argument("--trend-tag", default="temp_c")
    args = ap.parse_args(argv)
    rc = 0
    if args.days > 0:
        res = long_run(args.config, args.speed, args.days, args.every_s)
        print_long_run(args.config, args.speed, res)
        rc = 0 if res["rc"] == 0 else 1
    if args.sessions > 0:
        rows = sessions(args.config, args.sessions, args.sessions_speed, args.trend_tag)
        what = "REPL sessions (connect, trend, info, close)"
        print(f"\n{args.sessions} {what} at {args.sessions_speed:g}x:")
        print(" sessions   descriptors   RSS MB")
        for k, fds, rss in rows:
            print(f"{k:9d}   {fds:11d}   {rss:6.1f}")
        print(
            f"descriptors {rows[0][1]} before, {rows[-1][1]} after {rows[-1][0]} sessions "
            f"(max {max(f for _, f, _ in rows)})"
        )
    return rc


if __name__ == "__main__":
    raise SystemExit(main())

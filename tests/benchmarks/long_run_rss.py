"""Memory and descriptors of a long run: RSS and open files of ``edgectl run`` per simulated day.

Runs a reactor config (default the 14-day CHO example) as a child process at ``--speed``,
samples the child's resident set (``/proc/<pid>/status`` VmRSS) and open descriptors
(``/proc/<pid>/fd``) every ``--every-s`` wall seconds, reads the simulated time over the REPL
socket (one short client session per sample), and prints one row per simulated day with the
largest RSS of that day, then the growth after day 1 (DESIGN: flat within 5 MB). Linux only.
Run after ``make build`` (release)::

    .venv/bin/python tests/benchmarks/long_run_rss.py
    .venv/bin/python tests/benchmarks/long_run_rss.py --days 2 --speed 3600
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

ROOT = Path(__file__).resolve().parents[2]


def rss_mb(pid: int) -> float:
    """Resident set of ``pid`` in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "examples" / "cho-fedbatch-2L.toml")
    ap.add_argument("--speed", type=float, default=3600.0)
    ap.add_argument("--days", type=float, default=14.0)
    ap.add_argument("--every-s", type=float, default=2.0, help="wall seconds between samples")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db, sock = Path(tmp) / "run.db", Path(tmp) / "run.sock"
        cmd = [
            sys.executable,
            "-c",
            "import sys; from edgectl.cli import main; sys.exit(main(sys.argv[1:]))",
            "run",
            str(args.config),
            "--speed",
            str(args.speed),
            "--duration",
            str(args.days * 24.0),
            "--db",
            str(db),
            "--socket",
            str(sock),
        ]
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        samples: list[tuple[float, float, int]] = []  # (simulated day, RSS MB, descriptors)
        t0 = time.monotonic()
        try:
            while child.poll() is None:
                time.sleep(args.every_s)
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
    print(f"{args.config.name} at {args.speed:g}x: {wall_s:.0f} s wall, rc {child.returncode}")
    print(" day   RSS max MB   RSS last MB   descriptors")
    by_day: dict[int, list[tuple[float, int]]] = {}
    for day, rss, fds in samples:
        by_day.setdefault(int(day), []).append((rss, fds))
    for day in sorted(by_day):
        rows = by_day[day]
        print(
            f"{day:4d}   {max(r for r, _ in rows):10.1f}   {rows[-1][0]:11.1f}"
            f"   {max(f for _, f in rows):11d}"
        )
    after = [rss for day, rss, _ in samples if day >= 1.0]
    if after:
        print(
            f"RSS after day 1: {min(after):.1f} .. {max(after):.1f} MB "
            f"(growth {max(after) - after[0]:+.1f} MB from the start of day 1)"
        )
    tail = [line for line in out.splitlines() if line.strip()][-12:]
    print("\n".join(tail))
    return 0 if child.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

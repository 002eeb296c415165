"""`edgectl run` as a child process, for the restart, durability and identity tests.

One place for the set-up those tests share: start a run of a config on its own database and
socket in a temporary directory, wait for its socket or its first saved state, SIGKILL it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from edgectl.historian import HistorianError, HistoryReader

ROOT = Path(__file__).resolve().parents[1]
ECOLI = ROOT / "examples" / "ecoli-fedbatch-2L.toml"
CHO = ROOT / "examples" / "cho-fedbatch-2L.toml"


def start_run(
    tmp_path: Path, *extra: str, config: Path = ECOLI, speed: float = 600.0
) -> subprocess.Popen[str]:
    """``edgectl run CONFIG --speed SPEED --db tmp/run.db --socket tmp/run.sock EXTRA...``."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgectl.cli",
            "run",
            str(config),
            "--speed",
            f"{speed:g}",
            "--db",
            str(tmp_path / "run.db"),
            "--socket",
            str(tmp_path / "run.sock"),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


def connect_run(sock: Path, proc: subprocess.Popen[str], timeout_s: float = 120.0) -> Any:
    """``edgectl.connect(sock)`` once the run serves its socket; the run's stderr if it died."""
    import edgectl

    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"run exited rc {proc.returncode}: {out}{err}")
        try:
            return edgectl.connect(sock)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wait_for_state(db: Path, proc: subprocess.Popen[str], timeout_s: float = 120.0) -> None:
    """Until the run has committed a controller state (a resume has something to start from)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"run exited rc {proc.returncode}: {proc.communicate()[1]}")
        if db.exists():
            with HistoryReader(db) as h:
                if h.load_state("controller") is not None:
                    return
        time.sleep(0.1)
    raise AssertionError(f"{db}: no controller state after {timeout_s} s")


def wait_for_samples(db: Path, tag: str, n: int, timeout_s: float = 120.0) -> None:
    """Until ``db`` holds at least ``n`` samples of ``tag``."""
    deadline = time.monotonic() + timeout_s
    last_error = ""
    while time.monotonic() < deadline:
        if db.exists():
            try:
                with HistoryReader(db) as r:
                    if tag in {t.name for t in r.tags()} and len(r.samples(tag)) >= n:
                        return
            except HistorianError as exc:  # the run has made the file, not yet its schema
                last_error = f" (last read: {exc})"
        time.sleep(0.5)
    raise AssertionError(f"{db}: fewer than {n} samples of {tag} after {timeout_s} s{last_error}")


def kill9(proc: subprocess.Popen[str], sock: Path | None = None) -> None:
    """SIGKILL the run, reap it, and remove the socket file it could not remove itself."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    if sock is not None:
        sock.unlink(missing_ok=True)


def skip_unless_selected_as_slow(request: pytest.FixtureRequest) -> None:
    """Skip a long check unless the run selects slow tests (``pytest -m slow``): the default
    suite keeps its short variant."""
    expr = str(request.config.getoption("markexpr") or "")
    if "slow" not in expr or "not slow" in expr:
        pytest.skip("a long check: select it with -m slow")

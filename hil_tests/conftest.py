"""Hardware-in-the-loop scenarios: emulated devices by default, a real rig by EDGECTL_HIL_* vars.

Every scenario runs the controller as its own process (``python -m edgectl.cli run``) on an
accelerated clock and asserts on the historian it wrote.

Two targets, one set of scenarios:

- **emulated** (default, CI): ``edgectl rig`` runs out of process — the simulated plant, every
  device of ``examples/ecoli-fedbatch-2L.toml`` on its own pty, the GPIO header behind the
  loopback bridge — and the controller's config names those pty paths as ports and
  ``[gpio] pin_factory = "bridge"``, exactly as a config for a bench rig names ``/dev/ttyUSB0``.
- **hardware**: when ``EDGECTL_HIL_<DEVICE>_PORT`` variables name the ports of a bench rig
  (``EDGECTL_HIL_TEMP_PORT=/dev/ttyUSB0``, one per device of the example config; devices left
  unset are dropped from the config), the scenarios marked ``hardware`` run against it, holding
  an exclusive lock on ``EDGECTL_HIL_LOCK`` (default ``/tmp/edgectl-hil.lock``) so two runs
  never share the rig. GPIO then uses the board's own pin factory (lgpio). Scenarios that need
  fault injection into the plant run on the emulated rig only.

The helpers take the config to emulate as ``example`` (default the E. coli example above;
``hil_tests/test_cho_rig.py`` passes ``examples/cho-fedbatch-2L.toml``: the CHO plant, its
Raman spectrometer on a pty, soft-sensor model paths made absolute).

Each scenario prints one verdict line with its figures; the session writes them as a Markdown
table to ``$EDGECTL_HIL_SUMMARY`` (default ``<pytest basetemp>/hil-summary.md``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from edgectl.config import to_toml_text
from edgectl.emulators.rig import RigProcess, start_rig
from edgectl.historian import HistoryReader
from edgectl.remote import connect
from edgectl.runtime.reactor_config import load_reactor_config, read_reactor_toml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ecoli-fedbatch-2L.toml"
LOCK_ENV = "EDGECTL_HIL_LOCK"
SUMMARY_ENV = "EDGECTL_HIL_SUMMARY"
#: Number of CPU-bound processes to run beside every scenario of the session (``make
#: hil-loaded``): the verdicts must not change with the host's load.
LOAD_ENV = "EDGECTL_HIL_LOAD"

_BUSY_LOOP = (
    "import signal, sys\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\nwhile True: pass\n"
)


@contextlib.contextmanager
def machine_load(n: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``n`` CPU-bound processes (Python busy loops) beside whatever runs inside the block,
    started here and stopped when it ends: on the 2-core CI machine four of them leave a
    scenario about a third of a core."""
    procs = [
        subprocess.Popen([sys.executable, "-c", _BUSY_LOOP], stdin=subprocess.DEVNULL)
        for _ in range(n)
    ]
    try:
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5.0)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5.0)


@pytest.fixture(scope="session", autouse=True)
def _session_load() -> Iterator[None]:
    """``EDGECTL_HIL_LOAD=N``: N busy loops beside the whole session."""
    n = int(os.environ.get(LOAD_ENV, "0") or 0)
    if n <= 0:
        yield
        return
    with machine_load(n):
        yield


# Wall-time budgets are guards against a hung run, never pass criteria: on a loaded machine an
# accelerated run slows down instead of failing, so the guards are many times an idle run's time
# (a rig or a controller starts in 1–3 s idle; a scenario takes 30–130 s idle).
SETUP_BUDGET_S = 180.0
SCENARIO_TIMEOUT_S = 1800.0


def wall_budget_s(hours: float, speed: float) -> float:
    """How long to wait for a run of ``hours`` at ``speed``: an accelerated run slows down on
    a loaded machine (its clock waits for whoever is late), so this is a generous timeout
    against a hung run, never a pass criterion."""
    return hours * 3600.0 / speed * 8.0 + 180.0


def hardware_ports() -> dict[str, str]:
    """Device name → port for every ``EDGECTL_HIL_<DEVICE>_PORT`` set in the environment."""
    with EXAMPLE.open("rb") as f:
        devices = tomllib.load(f)["devices"]
    ports = {}
    for name in devices:
        value = os.environ.get(f"EDGECTL_HIL_{name.upper()}_PORT", "")
        if value:
            ports[name] = value
    return ports


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a rig named by EDGECTL_HIL_* the ``hardware`` variants are deselected (not
    skipped): CI runs every emulated scenario and skips none. A scenario without its own
    ``timeout`` mark gets ``SCENARIO_TIMEOUT_S`` (pytest-timeout), not the suite's 300 s."""
    for it in items:
        if it.get_closest_marker("timeout") is None:
            it.add_marker(pytest.mark.timeout(SCENARIO_TIMEOUT_S))
    if hardware_ports():
        return
    keep = [it for it in items if "hardware" not in it.keywords]
    dropped = [it for it in items if "hardware" in it.keywords]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


# -- verdicts --------------------------------------------------------------------------------


@dataclass
class Verdict:
    scenario: str
    target: str
    ok: bool
    figures: dict[str, Any]
    wall_s: float

    def line(self) -> str:
        figs = ", ".join(f"{k} {_fmt(v)}" for k, v in self.figures.items())
        return (
            f"HIL {self.scenario} [{self.target}]: {'PASS' if self.ok else 'FAIL'} — {figs}"
            f" (wall {self.wall_s:.0f} s)"
        )


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


_VERDICTS: list[Verdict] = []


@dataclass
class Recorder:
    """Collects one scenario's figures; :meth:`check` asserts and records them together."""

    scenario: str
    target: str
    t0: float = field(default_factory=time.monotonic)
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def figure(self, name: str, value: Any) -> Any:
        self.figures[name] = value
        return value

    def require(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)

    def finish(self) -> None:
        v = Verdict(
            self.scenario,
            self.target,
            not self.failures,
            dict(self.figures),
            time.monotonic() - self.t0,
        )
        _VERDICTS.append(v)
        print("\n" + v.line(), flush=True)
        assert not self.failures, f"{self.scenario}: " + "; ".join(self.failures)


@pytest.fixture
def verdict(request: pytest.FixtureRequest) -> Recorder:
    target = "hardware" if "hardware" in request.node.keywords else "emulated"
    return Recorder(request.node.originalname or request.node.name, target)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _VERDICTS:
        return
    path_env = os.environ.get(SUMMARY_ENV)
    if path_env:
        path = Path(path_env)
    else:
        basetemp = session.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
        path = Path(basetemp) / "hil-summary.md"
    rows = [
        "| scenario | target | verdict | figures | wall s |",
        "|---|---|---|---|---|",
    ]
    for v in _VERDICTS:
        figs = "; ".join(f"{k} {_fmt(x)}" for k, x in v.figures.items())
        rows.append(
            f"| {v.scenario} | {v.target} | {'PASS' if v.ok else 'FAIL'} | {figs} |"
            f" {v.wall_s:.0f} |"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"\nHIL summary written to {path}")


# -- the rig ---------------------------------------------------------------------------------


@dataclass
class Bench:
    """What a scenario runs on: the emulated rig (``rig`` set) or a real one (``ports``)."""

    target: str
    ports: dict[str, str]
    gpio: dict[str, Any]
    rig: RigProcess | None = None

    def command(self, text: str) -> Any:
        if self.rig is None:
            pytest.skip("needs fault injection: emulated rig only")
        return self.rig.command(text)

    def status(self) -> dict[str, Any]:
        if self.rig is None:
            pytest.skip("needs the plant's true state: emulated rig only")
        return self.rig.status()


def _absolute_models(data: dict[str, Any], base: Path) -> None:
    """Soft-sensor model paths of a config moved out of ``base``: made absolute."""
    for ss in data.get("softsensors", {}).values():
        if not Path(ss["model"]).is_absolute():
            ss["model"] = str(base / ss["model"])


def rig_config(tmp_path: Path, plant: Mapping[str, Any], example: Path = EXAMPLE) -> Path:
    """The example config with its plant overridden (a plant TOML beside it): ``plant`` is
    merged over the example's plant TOML (``[plant] config``) or its ``scenario``."""
    with example.open("rb") as f:
        data = tomllib.load(f)
    base: dict[str, Any] = {"scenario": data["plant"].get("scenario", "")}
    if data["plant"].get("config"):
        with (example.parent / data["plant"]["config"]).open("rb") as f:
            base = tomllib.load(f)
    (tmp_path / "plant.toml").write_text(to_toml_text(_merge(base, plant)), encoding="utf-8")
    data["plant"]["config"] = "plant.toml"
    _absolute_models(data, example.parent)
    path = tmp_path / "rig.toml"
    path.write_text(to_toml_text(data), encoding="utf-8")
    return path


@contextlib.contextmanager
def emulated_bench(
    speed: float,
    *,
    seed: int | None = None,
    schedule: Path | None = None,
    plant: Mapping[str, Any] | None = None,
    log: Path,
    example: Path = EXAMPLE,
) -> Iterator[Bench]:
    config = rig_config(log.parent, plant, example) if plant else example
    with log.open("wb") as err:
        rig = start_rig(
            config,
            speed=speed,
            seed=seed,
            fault_schedule=schedule,
            stderr=err,
            timeout_s=SETUP_BUDGET_S,
        )
    try:
        gpio = {"pin_factory": "bridge", "bridge": rig.info["gpio_bridge"]}
        yield Bench("emulated", rig.devices, gpio, rig)
    finally:
        rig.close()


@contextlib.contextmanager
def hardware_bench() -> Iterator[Bench]:
    ports = hardware_ports()
    if not ports:
        pytest.skip("no EDGECTL_HIL_<DEVICE>_PORT variable names a rig")
    lock_path = Path(os.environ.get(LOCK_ENV, "/tmp/edgectl-hil.lock"))
    with lock_path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pytest.fail(f"the rig is in use: {lock_path} is locked by another HIL run")
        try:
            yield Bench("hardware", ports, {"pin_factory": "lgpio"})
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(params=["emulated", pytest.param("hardware", marks=pytest.mark.hardware)])
def bench_target(request: pytest.FixtureRequest) -> str:
    """Parametrises a scenario over both targets (hardware skips unless its ports are set)."""
    return str(request.param)


# -- configs and the controller process ------------------------------------------------------


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


#: What every HIL controller config changes from the example: reading ages. On an accelerated
#: clock a fixed wall-time stall (a busy 2-core CI machine: 50 ms) is speed × longer in clock
#: time (30 s at 600×); a 60 s max age keeps such stalls from reading as a dead probe, while a
#: real disconnect (minutes) still goes stale.
HIL_OVERRIDES: dict[str, Any] = {
    "devices": {name: {"max_age_s": 60.0} for name in ("temp", "ph", "do")},
}


def controller_config(
    bench: Bench,
    path: Path,
    overrides: Mapping[str, Any] | None = None,
    example: Path = EXAMPLE,
) -> Path:
    """The example config rewired to ``bench``: ports are its tty paths, no ``[plant]``, GPIO
    through the bridge (or the board's factory); ``overrides`` merged on top (None deletes)."""
    data = read_reactor_toml(example)  # with the file it extends, if any
    data.pop("plant", None)
    _absolute_models(data, example.parent)
    devices = {}
    for name, dev in data["devices"].items():
        if name in bench.ports:
            devices[name] = {**dev, "port": bench.ports[name]}
    data["devices"] = devices
    data["gpio"] = {**data["gpio"], **bench.gpio}
    data = _merge(data, overrides or {})
    path.write_text(to_toml_text(data), encoding="utf-8")
    return path


class ControllerProcess:
    """``python -m edgectl.cli run CFG`` as a child process."""

    def __init__(
        self,
        config: Path,
        *,
        speed: float,
        duration_h: float | None,
        db: Path,
        socket_path: Path,
        on_restart: str | None = None,
        log: Path,
        until_end: bool = False,
    ) -> None:
        cmd = [
            sys.executable,
            "-m",
            "edgectl.cli",
            "run",
            str(config),
            "--speed",
            f"{speed:g}",
            "--db",
            str(db),
            "--socket",
            str(socket_path),
        ]
        if duration_h is not None:
            cmd += ["--duration", f"{duration_h:g}"]
        if on_restart:
            cmd += ["--on-restart", on_restart]
        if until_end:
            cmd.append("--until-end")
        self.socket_path = socket_path
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            cmd, stdout=self._out, stderr=subprocess.STDOUT, cwd=config.parent
        )

    def wait(self, timeout_s: float) -> int:
        try:
            return self.proc.wait(timeout_s)
        finally:
            self._out.close()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_socket(self, timeout_s: float = SETUP_BUDGET_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.socket_path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"controller did not start:\n{self.output()}")
            time.sleep(0.05)

    def connect(self) -> Any:
        self.wait_socket()
        return connect(str(self.socket_path))

    def kill(self) -> None:
        """SIGKILL: no safe state, no final flush — as a crash or a pulled plug."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10.0)
        self._out.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5.0)
        self._out.close()


def clock_speed(target: str, speed: float) -> float:
    """The controller's clock speed on ``target``: accelerated against the emulated rig, real
    time (1×) against hardware — a real culture and real devices do not run 300× faster.
    Scenario timeouts are computed from it, so a hardware run takes the scenario's simulated
    hours in wall time (a bench qualification run)."""
    return 1.0 if target == "hardware" else speed


@contextlib.contextmanager
def bench_for(
    target: str,
    tmp_path: Path,
    *,
    speed: float,
    seed: int | None = None,
    schedule: Path | None = None,
    plant: Mapping[str, Any] | None = None,
    example: Path = EXAMPLE,
) -> Iterator[Bench]:
    """The bench of ``target`` (``emulated``: a fresh rig of ``example``; ``hardware``: the
    locked rig)."""
    if target == "hardware":
        with hardware_bench() as bench:
            yield bench
    else:
        with emulated_bench(
            speed,
            seed=seed,
            schedule=schedule,
            plant=plant,
            log=tmp_path / "rig.log",
            example=example,
        ) as b:
            yield b


# -- figures from the historian ---------------------------------------------------------------


def samples_lost(reader: Any, tag: str, period_s: float, start_s: float | None = None) -> int:
    """Sample slots missing from ``tag``'s record: gaps longer than 1.5 sample periods count
    ``round(gap / period) - 1`` missing samples each."""
    t = reader.samples(tag, start_s).times_s
    if len(t) < 2:
        return 0
    gaps = [g for g in (t[1:] - t[:-1]) if g > 1.5 * period_s]
    return int(sum(round(g / period_s) - 1 for g in gaps))


def max_sample_gap(reader: Any, tag: str, start_s: float | None = None) -> float:
    """Longest interval between two recorded samples of ``tag`` (clock seconds). On an
    accelerated clock a scheduling stall of the 2-core CI machine (50 ms of wall time is 30 s
    at 600×) shows up here; data the historian lost would show up as much longer gaps."""
    t = reader.samples(tag, start_s).times_s
    return float((t[1:] - t[:-1]).max()) if len(t) > 1 else 0.0


def alarm_spans(reader: Any, name: str, end_s: float) -> list[tuple[float, float]]:
    """(raise, clear) time pairs of alarm ``name`` (clear = ``end_s`` if still in alarm)."""
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for a in reader.alarms(name=name):
        if a.transition == "raise" and start is None:
            start = a.time_s
        elif a.transition == "clear" and start is not None:
            spans.append((start, a.time_s))
            start = None
    if start is not None:
        spans.append((start, end_s))
    return spans


@dataclass
class Outcome:
    """What a finished scenario run left: config, historian, controller log, plant truth."""

    cfg_path: Path
    db: Path
    rc: int
    output: str
    truth: dict[str, Any] | None


#: Tags whose record every fault scenario checks for lost samples.
KEY_TAGS = ("temp_c", "ph", "do_pct", "heater", "stirrer_rpm")


def record_common(verdict: Recorder, out: Outcome, end_s: float | None = None) -> None:
    """The figures every fault scenario reports: samples lost on the key tags (a slot missing
    from the record; on the accelerated clock a stall of the CI machine makes the controller
    skip a scan, counted as an overrun: each lost slot must be one the run counted), the
    overruns, and the total time in alarm."""
    with HistoryReader(out.db) as r:
        [run, *_] = r.runs()
        t0 = run.started_s
        period = load_reactor_config(out.cfg_path).historian.sample_period_s
        lost = max(samples_lost(r, tag, period, t0 + 60.0) for tag in KEY_TAGS)
        names = {a.name for a in r.alarms()}
        end = end_s if end_s is not None else float(r.samples("temp_c").times_s[-1])
        in_alarm = sum(b - a for n in names for a, b in alarm_spans(r, n, end))
    m = re.search(r"(\d+) overruns", out.output)
    overruns = int(m.group(1)) if m else 0
    verdict.figure("samples lost", lost)
    verdict.figure("overruns", overruns)
    verdict.figure("time in alarm s", in_alarm)
    verdict.require(lost <= overruns, f"{lost} samples lost beyond {overruns} scan overruns")


def write_schedule(tmp_path: Path, faults: list[dict[str, Any]]) -> Path:
    path = tmp_path / "faults.toml"
    body = "\n".join(
        "[[faults]]\n" + "\n".join(f"{k} = {_toml(v)}" for k, v in f.items()) + "\n" for f in faults
    )
    path.write_text(body, encoding="utf-8")
    return path


def _toml(v: Any) -> str:
    return f'"{v}"' if isinstance(v, str) else repr(float(v))


def run_scenario(
    tmp_path: Path,
    *,
    speed: float,
    hours: float,
    faults: list[dict[str, Any]] | None = None,
    overrides: Mapping[str, Any] | None = None,
    plant: Mapping[str, Any] | None = None,
    target: str = "emulated",
) -> Outcome:
    """Rig (with a fault schedule in plant seconds) + controller for ``hours``; returns what
    the run left behind."""
    schedule = write_schedule(tmp_path, faults) if faults else None
    with bench_for(target, tmp_path, speed=speed, schedule=schedule, plant=plant) as bench:
        cfg_path = controller_config(
            bench, tmp_path / "reactor.toml", _merge(HIL_OVERRIDES, overrides or {})
        )
        ctl = ControllerProcess(
            cfg_path,
            speed=speed,
            duration_h=hours,
            db=tmp_path / "run.db",
            socket_path=tmp_path / "run.sock",
            log=tmp_path / "controller.log",
        )
        rc = ctl.wait(wall_budget_s(hours, speed))
        truth = bench.rig.status() if bench.rig is not None else None
    return Outcome(cfg_path, tmp_path / "run.db", rc, ctl.output(), truth)

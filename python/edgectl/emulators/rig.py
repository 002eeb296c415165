"""An emulated bench rig in its own process: one simulated plant, every device of a reactor
config on its own pty, and the GPIO header behind a loopback bridge (``edgectl rig``).

What a controller sees is what it would see on the bench: serial devices at tty paths (the
same firmware-profile emulators as ``sim://``, each line on its own pty; devices that share a
``sim://`` name, like the channels of one Reglo ICC, share one line) and GPIO pins whose
levels reach the plant through :mod:`edgectl.emulators.gpio_bridge` as the ``[plant] gpio``
map of the config wires them (board channel → plant actuator × scale, or plant signal → input
pin). The plant runs on a scaled real-time clock (``speed`` simulated seconds per wall second);
emulator processing delays are scaled by ``1/speed`` as in ``edgectl run``.

GPIO output levels are averaged over each plant step (time-weighted, in wall time), so a
time-proportioned relay (the cooling valve toggles within a 10 s window, 17 ms of wall time at
600×) delivers its duty to the plant rather than whichever level a step happened to sample.
When the controller goes away the pins keep their last levels (a sysfs hardware PWM keeps
running if the process dies, devices.md §5): that is the fail-safe case the over-temperature
ladder and watchdogs exist for.

Control (stdin or the control socket, one command per line, one reply line ``ok {json}`` or
``error <message>``)::

    status                                  plant time, states, readings, actuators, pins, faults
    plant-fault KIND [TARGET] [value=V] [duration_s=D]    Plant.inject_fault (plant seconds)
    plant-clear [ID]                        end one plant fault, or all
    device-fault NAME SPEC                  emulator fault spec (garbage*3, late:0.5, ...;
                                            times in wall seconds, as the emulator API)
    device-clear NAME                       clear a device's faults
    disconnect NAME SECONDS                 the device's line is dead for SECONDS of plant time,
                                            then the device power-cycles
    power NAME off|on                       the device loses power until ``power NAME on``
    start                                   start the plant clock (with ``start_on_connect``)

``NAME`` is a device of the config (``temp``, ``pump_feed``) or a line (``pumps``). A fault
schedule (TOML, ``[[faults]]`` with ``at_s`` in plant seconds and either a plant fault
``kind``/``target``/``value``/``duration_s`` or ``device`` + ``spec`` / ``disconnect_s`` /
``power_off_s``) is applied as plant time passes. A device ``spec`` with ``duration_s`` ends
after that many plant seconds (the kinds it started are removed from the device), e.g. a
spectrometer's ``band:0.05`` for two hours of the culture.

References: devices.md §4 (pty recipe, raw slave, the emulator keeps the slave open) and §5
(GPIO polarity, what a dead process leaves on the pins); plant-models.md §10 (fault list).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import socket
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlparse

import msgspec

from edgectl.config import Struct, load_toml
from edgectl.emulators import Endpoint, create_endpoint
from edgectl.emulators.base import Fault, parse_fault_spec
from edgectl.emulators.gpio_bridge import GpioBridgeServer
from edgectl.emulators.server import PtyServer
from edgectl.errors import ConfigError, EdgectlError
from edgectl.io.profile import load_board
from edgectl.runtime.reactor_config import ReactorConfig, load_reactor_config

__all__ = [
    "Rig",
    "RigFault",
    "RigProcess",
    "RigSchedule",
    "load_fault_schedule",
    "start_rig",
]

NonNeg = Annotated[float, msgspec.Meta(ge=0.0)]


class RigFault(Struct, frozen=True, kw_only=True):
    """One scheduled fault: a plant fault (``kind``) or a device fault (``device`` with
    ``spec``, ``disconnect_s`` or ``power_off_s``), at ``at_s`` plant seconds; ``duration_s``
    bounds a plant fault or a device ``spec`` (plant seconds; default: until cleared)."""

    at_s: NonNeg
    kind: str = ""
    target: str = ""
    value: float | None = None
    duration_s: NonNeg | None = None
    device: str = ""
    spec: str = ""
    disconnect_s: NonNeg | None = None
    power_off_s: NonNeg | None = None

    def __post_init__(self) -> None:
        if bool(self.kind) == bool(self.device):
            raise ValueError("a fault names either a plant fault kind or a device")
        if self.device and not (self.spec or self.disconnect_s or self.power_off_s):
            raise ValueError("a device fault needs spec, disconnect_s or power_off_s")
        if self.device and self.duration_s is not None and not self.spec:
            raise ValueError("duration_s on a device fault bounds its spec: give spec")


class RigSchedule(Struct, frozen=True, kw_only=True):
    faults: list[RigFault] = []


def load_fault_schedule(path: str | Path) -> RigSchedule:
    """Read a fault schedule (TOML ``[[faults]]``); errors name the file and key."""
    return load_toml(path, RigSchedule)


@dataclass
class _OutputPin:
    channel: str
    actuator: str
    scale: float
    active_high: bool
    level: float | None = None
    since: float = 0.0
    acc: float = 0.0  # level × wall seconds since the last plant step


@dataclass
class _InputPin:
    channel: str
    signal: str
    pull_up: bool


@dataclass
class _Line:
    name: str
    endpoint: Endpoint
    server: PtyServer
    devices: list[str] = field(default_factory=list)
    power_off: bool = False
    # raw settings of the slave to restore, on lines whose device uses a parity bit (below)
    raw_attrs: list[Any] | None = None


class Rig:
    """The plant, the device lines and the GPIO bridge of one reactor config.

    Parameters
    ----------
    config_path
        Reactor config whose ports are ``sim://`` URLs and whose ``[plant]`` says which plant
        and how GPIO channels are wired to it (e.g. ``examples/ecoli-fedbatch-2L.toml``).
    speed
        Simulated seconds per wall second.
    seed
        Plant seed (default: the config's).
    start_on_connect
        Hold the plant clock until a controller connects to the GPIO bridge (or ``start``).
    """

    def __init__(
        self,
        config_path: str | Path,
        *,
        speed: float = 1.0,
        seed: int | None = None,
        start_on_connect: bool = False,
        schedule: RigSchedule | None = None,
        dt_s: float = 1.0,
        tick_s: float = 0.005,
    ) -> None:
        from edgectl.runtime.build import _make_plant

        if not (math.isfinite(speed) and speed > 0):
            raise ConfigError(f"rig: speed must be finite and > 0, got {speed}")
        path = Path(config_path)
        cfg: ReactorConfig = load_reactor_config(path)
        if cfg.plant is None:
            raise ConfigError(f"{path}: $.plant: a rig needs the [plant] section")
        self.cfg = cfg
        self.speed = float(speed)
        self.dt_s = dt_s
        self.tick_s = tick_s
        self.plant = _make_plant(cfg, path, seed)
        self.lock = threading.RLock()
        self.lines: dict[str, _Line] = {}
        self.device_line: dict[str, str] = {}
        self._pending: list[RigFault] = []
        self._power_on_at: list[tuple[float, str]] = []
        self._reconnect_at: list[tuple[float, str]] = []
        # lockstep: a controller ticking over the bridge drives the plant clock (its time axis
        # maps to the plant's by this offset, fixed at the connection's first tick)
        self._tick_offset: float | None = None
        self._spec_ends: list[tuple[float, str, list[Fault]]] = []
        self._stop = threading.Event()
        self._started = threading.Event()
        self._await_tick = False  # a lockstep controller said it will tick (bridge)
        self.bridge: GpioBridgeServer | None = None
        self._outputs: dict[str, _OutputPin] = {}
        self._inputs: dict[str, _InputPin] = {}
        try:
            self._open_lines()
            self._open_gpio()
        except BaseException:
            self.close()
            raise
        for f in schedule.faults if schedule else []:
            self.schedule(f)
        self._thread = threading.Thread(target=self._run, name="rig-clock", daemon=True)
        self._thread.start()
        if not start_on_connect:
            self._started.set()

    # -- set-up -----------------------------------------------------------------------------

    def _open_lines(self) -> None:
        for name, dev in self.cfg.devices.items():
            url = urlparse(dev.port)
            if url.scheme != "sim" or not url.netloc:
                raise ConfigError(
                    f"$.devices.{name}.port: the rig emulates sim:// ports, got {dev.port!r}"
                )
            line = self.lines.get(url.netloc)
            if line is None:
                params = dict(parse_qsl(url.query))
                profile = params.pop("profile", dev.profile)
                params.setdefault("delay_scale", f"{1.0 / self.speed:.9g}")
                endpoint = create_endpoint(profile, self.plant, url.netloc, params)
                line = _Line(url.netloc, endpoint, PtyServer(endpoint))
                member: Any = next(iter(getattr(endpoint, "members", {}).values()), endpoint)
                if member.profile.serial.parity != "N":
                    # Linux ptys drop PARENB from what a client sets, and a later client that
                    # asks for parity again gets EINVAL from tcsetattr (pyserial 3.5, 8O1:
                    # the Sartorius SBI after a controller restart). The line settings mean
                    # nothing on a pty, so the rig keeps putting the slave back to raw.
                    line.raw_attrs = termios.tcgetattr(line.server.slave)
                self.lines[url.netloc] = line
            line.devices.append(name)
            self.device_line[name] = url.netloc

    def _open_gpio(self) -> None:
        gpio = self.cfg.gpio
        plant_cfg = self.cfg.plant
        inputs: dict[str, bool] = {}
        bridge_args: dict[str, Any] = {
            "on_output": self._on_output,
            "on_tick": self.tick,
            "on_disconnect": self._on_disconnect,
            "on_lockstep": self._on_lockstep,
        }
        if gpio is None or plant_cfg is None:
            # no header to wire, but a controller still keeps the plant clock in lockstep
            self.bridge = GpioBridgeServer(inputs=inputs, **bridge_args)
            return
        board = load_board(gpio.board)
        for channel, link in plant_cfg.gpio.items():
            if channel in board.outputs:
                out = board.outputs[channel]
                self._outputs[f"GPIO{out.pin}"] = _OutputPin(
                    channel, link.actuator, link.scale, out.active_high
                )
            elif channel in board.inputs:
                inp = board.inputs[channel]
                pin = f"GPIO{inp.pin}"
                self._inputs[pin] = _InputPin(channel, link.actuator, inp.pull_up)
                inputs[pin] = inp.pull_up  # idle level: pulled
            else:
                raise ConfigError(f"$.plant.gpio.{channel}: board has no channel {channel!r}")
        self.bridge = GpioBridgeServer(inputs=inputs, **bridge_args)

    # -- GPIO and the clock -----------------------------------------------------------------

    def _on_output(self, pin: str, level: float | None) -> None:
        if pin not in self._outputs:
            return
        now = time.monotonic()
        with self.lock:
            out = self._outputs[pin]
            if level is None:  # released: the output stage idles (off), whatever its polarity
                level = 0.0 if out.active_high else 1.0
            if out.level is not None:
                out.acc += out.level * (now - out.since)
            out.level = level
            out.since = now
        if self.bridge is not None and not self._started.is_set() and not self._await_tick:
            self._started.set()

    def _on_lockstep(self) -> None:
        # a lockstep controller connected: its first tick starts the plant clock, not its
        # first output level (which comes while it is still setting up)
        self._await_tick = True

    def _apply_outputs(self, start: float, now: float) -> None:
        span = now - start
        for out in self._outputs.values():
            if out.level is None:
                continue
            if span > 0:
                avg = (out.acc + out.level * (now - max(out.since, start))) / span
            else:
                avg = out.level
            out.acc = 0.0
            out.since = now
            duty = min(1.0, max(0.0, avg if out.active_high else 1.0 - avg))
            self.plant.write(out.actuator, duty * out.scale)

    def _update_inputs(self) -> None:
        if self.bridge is None:
            return
        for pin, inp in self._inputs.items():
            try:
                active = self.plant.read(inp.signal) >= 0.5
            except KeyError:
                continue
            # a probe contact closes to ground when active: a pulled-up pin reads low
            self.bridge.set_input(pin, (not active) if inp.pull_up else active)

    def tick(self, t_s: float) -> None:
        """A lockstep controller's scan at its clock time ``t_s``: the plant advances to it,
        with the output levels the controller set in its previous scan."""
        if not self._started.is_set():
            self._started.set()
        with self.lock:
            if self._tick_offset is None:
                self._tick_offset = self.plant.time_s - t_s
            target = t_s + self._tick_offset
            if target > self.plant.time_s:
                self._apply_levels(time.monotonic())
                self.plant.advance(target - self.plant.time_s, self.dt_s)
                self._due_faults()
        self._update_inputs()

    def _on_disconnect(self) -> None:
        """The controller went away: the plant runs on its own clock again (from now)."""
        with self.lock:
            self._tick_offset = None

    def _apply_levels(self, now: float) -> None:
        """Outputs at the levels in force (lockstep: levels change only at scans)."""
        for out in self._outputs.values():
            if out.level is None:
                continue
            out.acc = 0.0
            out.since = now
            duty = min(1.0, max(0.0, out.level if out.active_high else 1.0 - out.level))
            self.plant.write(out.actuator, duty * out.scale)

    def _run(self) -> None:
        while not self._started.wait(0.05):
            if self._stop.is_set():
                return
        last = time.monotonic()
        backlog = 0.0
        next_reset = last
        while not self._stop.wait(self.tick_s):
            now = time.monotonic()
            if now >= next_reset:
                next_reset = now + 0.25
                self._reset_line_settings()
            with self.lock:
                if self._tick_offset is not None:  # a lockstep controller drives the clock
                    last, backlog = now, 0.0
                    continue
            backlog += (now - last) * self.speed
            n = math.floor(backlog / self.dt_s)
            if n <= 0:
                continue
            with self.lock:
                self._apply_outputs(last, now)
                self.plant.advance(n * self.dt_s, self.dt_s)
                backlog -= n * self.dt_s
                self._due_faults()
            last = now
            self._update_inputs()

    def _reset_line_settings(self) -> None:
        for line in self.lines.values():
            if line.raw_attrs is not None:
                with contextlib.suppress(termios.error, OSError):
                    termios.tcsetattr(line.server.slave, termios.TCSANOW, line.raw_attrs)

    def start(self) -> None:
        self._started.set()

    @property
    def time_s(self) -> float:
        return self.plant.time_s

    # -- faults -----------------------------------------------------------------------------

    def _line(self, name: str) -> _Line:
        line = self.lines.get(self.device_line.get(name, name))
        if line is None:
            raise ConfigError(
                f"rig: no device or line {name!r} (devices: {sorted(self.device_line)})"
            )
        return line

    def schedule(self, fault: RigFault) -> None:
        if fault.kind:
            self.plant.inject_fault(
                fault.kind,
                fault.target,
                value=fault.value,
                start_s=fault.at_s,
                duration_s=fault.duration_s,
            )
        else:
            self._line(fault.device)  # fail now on an unknown name
            parse_fault_spec(fault.spec)  # ... and on a bad spec
            with self.lock:
                self._pending.append(fault)
                self._pending.sort(key=lambda f: f.at_s)

    def _due_faults(self) -> None:
        t = self.plant.time_s
        while self._pending and self._pending[0].at_s <= t:
            f = self._pending.pop(0)
            if f.spec:
                started = self.device_fault(f.device, f.spec)
                if f.duration_s is not None:
                    self._spec_ends.append((f.at_s + f.duration_s, f.device, started))
            if f.disconnect_s:
                self.disconnect(f.device, f.disconnect_s)
            if f.power_off_s:
                self.power(f.device, False)
                self._power_on_at.append((f.at_s + f.power_off_s, f.device))
        for when, name in list(self._reconnect_at):
            if when <= t:
                self._reconnect_at.remove((when, name))
                faults = self.lines[name].endpoint.faults
                faults.disconnected_until = min(faults.disconnected_until, time.monotonic())
        for when, name in list(self._power_on_at):
            if when <= t:
                self._power_on_at.remove((when, name))
                self.power(name, True)
        for end in list(self._spec_ends):
            if end[0] <= t:
                self._spec_ends.remove(end)
                line = self._line(end[1])
                for target in self._fault_targets(line, end[1]):
                    target.faults.end(end[2])  # only what this entry started

    def plant_fault(
        self,
        kind: str,
        target: str = "",
        *,
        value: float | None = None,
        duration_s: float | None = None,
    ) -> int:
        with self.lock:
            return int(self.plant.inject_fault(kind, target, value=value, duration_s=duration_s))

    def plant_clear(self, fault_id: int | None = None) -> None:
        with self.lock:
            if fault_id is None:
                self.plant.clear_faults()
            else:
                self.plant.clear_fault(fault_id)

    def device_fault(self, name: str, spec: str) -> list[Fault]:
        """Start ``spec`` on device ``name``; returns the faults started (every emulator on
        its line, for a shared line)."""
        line = self._line(name)
        started: list[Fault] = []
        for target in self._fault_targets(line, name):
            started += target.faults.apply_spec(spec)
        return started

    def device_clear(self, name: str) -> None:
        line = self._line(name)
        for target in self._fault_targets(line, name):
            target.faults.clear()

    def _fault_targets(self, line: _Line, name: str) -> list[Any]:
        ep = line.endpoint
        members = getattr(ep, "members", None)
        if members:
            return [ep, *members.values()]
        return [ep]

    def disconnect(self, name: str, plant_seconds: float) -> None:
        """The line is dead for ``plant_seconds`` of plant time; the device then power-cycles.

        Timed on the plant's clock (not the wall's): a lockstep controller that slows the plant
        down on a loaded machine still sees the whole outage."""
        line = self._line(name)
        with self.lock:
            line.endpoint.faults.inject("disconnect", 1e9)
            self._reconnect_at.append((self.plant.time_s + plant_seconds, line.name))

    def power(self, name: str, on: bool) -> None:
        """Cut or restore a device's power (its line is dead meanwhile; it boots on return)."""
        line = self._line(name)
        faults = line.endpoint.faults
        line.power_off = not on
        if on:
            faults.disconnected_until = 0.0
        else:
            faults.inject("disconnect", 1e9)

    # -- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self.lock:
            plant = self.plant
            pins = {
                pin: {"channel": o.channel, "actuator": o.actuator, "level": o.level}
                for pin, o in self._outputs.items()
            }
            return {
                "time_s": plant.time_s,
                "started": self._started.is_set(),
                "lockstep": self._tick_offset is not None,
                "state": plant.state(),
                "readings": _finite(plant.readings()),
                "actuators": plant.actuators(),
                "balances": plant.balances(),
                "pins": pins,
                "bridge_outputs": dict(self.bridge.outputs) if self.bridge else {},
                "bridge_connections": self.bridge.connections if self.bridge else 0,
                "faults": [f._asdict() for f in plant.active_faults()],
                "lines": {
                    name: {
                        "path": line.server.path,
                        "devices": line.devices,
                        "up": not line.endpoint.faults.is_disconnected,
                        "faults": line.endpoint.faults.active,
                        "power_cycles": sum(
                            getattr(m, "power_cycles", 0)
                            for m in [
                                line.endpoint,
                                *getattr(line.endpoint, "members", {}).values(),
                            ]
                        ),
                    }
                    for name, line in self.lines.items()
                },
            }

    def announcement(self) -> dict[str, Any]:
        """What ``edgectl rig`` prints first: device → pty path, line → pty path, bridge."""
        return {
            "devices": {d: self.lines[ln].server.path for d, ln in self.device_line.items()},
            "lines": {name: line.server.path for name, line in self.lines.items()},
            "gpio_bridge": self.bridge.address if self.bridge else None,
            "speed": self.speed,
            "pid": os.getpid(),
        }

    # -- commands ---------------------------------------------------------------------------

    def command(self, text: str) -> str:
        """Run one control command; returns the reply line (``ok {json}`` / ``error ...``)."""
        parts = text.split()
        if not parts:
            return "error empty command"
        cmd, args = parts[0], parts[1:]
        try:
            result: Any = None
            if cmd == "status":
                result = self.status()
            elif cmd == "plant-fault":
                pos = [a for a in args if "=" not in a]
                kw = dict(a.split("=", 1) for a in args if "=" in a)
                if not pos or len(pos) > 2 or set(kw) - {"value", "duration_s"}:
                    raise ConfigError(
                        "plant-fault KIND [TARGET] [value=V] [duration_s=D], got " + repr(text)
                    )
                result = {
                    "id": self.plant_fault(
                        pos[0],
                        pos[1] if len(pos) > 1 else "",
                        value=float(kw["value"]) if "value" in kw else None,
                        duration_s=float(kw["duration_s"]) if "duration_s" in kw else None,
                    )
                }
            elif cmd == "plant-clear":
                self.plant_clear(int(args[0]) if args else None)
            elif cmd == "device-fault" and len(args) == 2:
                self.device_fault(args[0], args[1])
            elif cmd == "device-clear" and len(args) == 1:
                self.device_clear(args[0])
            elif cmd == "disconnect" and len(args) == 2:
                self.disconnect(args[0], float(args[1]))
            elif cmd == "power" and len(args) == 2 and args[1] in ("on", "off"):
                self.power(args[0], args[1] == "on")
            elif cmd == "start":
                self.start()
            else:
                return f"error unknown or malformed command {text.strip()!r}"
            return "ok " + json.dumps(result)
        except (EdgectlError, KeyError, ValueError) as exc:
            return f"error {type(exc).__name__}: {exc}"

    def serve_control(self) -> int:
        """Serve :meth:`command` on a loopback TCP port (returned); one line in, one line out."""
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        srv.settimeout(0.1)
        self._control = srv

        def serve(conn: socket.socket) -> None:
            with conn, conn.makefile("rwb") as f:
                for raw in f:
                    f.write((self.command(raw.decode(errors="replace")) + "\n").encode())
                    f.flush()

        def accept() -> None:
            while not self._stop.is_set():
                try:
                    conn, _ = srv.accept()
                except (TimeoutError, OSError):
                    continue
                conn.settimeout(None)
                threading.Thread(target=serve, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, name="rig-control", daemon=True).start()
        return int(srv.getsockname()[1])

    def close(self) -> None:
        self._stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(2.0)
        control = getattr(self, "_control", None)
        if control is not None:
            with contextlib.suppress(OSError):
                control.close()
        if self.bridge is not None:
            self.bridge.close()
        for line in self.lines.values():
            line.server.stop()

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _finite(values: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (v if math.isfinite(v) else None) for k, v in values.items()}


class RigProcess:
    """``edgectl rig`` run as a child process (what the HIL fixtures use).

    :attr:`info` is the announcement (device → pty path, ``gpio_bridge``, ``control``);
    :meth:`command` sends a control command and returns the decoded ``ok`` payload
    (EdgectlError on an ``error`` reply).
    """

    def __init__(self, proc: subprocess.Popen[bytes], info: dict[str, Any]) -> None:
        self.proc = proc
        self.info = info
        host, _, port = str(info["control"]).removeprefix("tcp://").rpartition(":")
        self._sock = socket.create_connection((host, int(port)), timeout=10.0)
        self._file = self._sock.makefile("rwb")
        self._lock = threading.Lock()

    @property
    def devices(self) -> dict[str, str]:
        return dict(self.info["devices"])

    def command(self, text: str) -> Any:
        with self._lock:
            self._file.write(text.encode() + b"\n")
            self._file.flush()
            reply = self._file.readline().decode().strip()
        if reply.startswith("ok "):
            return json.loads(reply[3:])
        raise EdgectlError(f"rig: {text!r}: {reply}")

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.command("status")
        return result

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
            self._sock.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5.0)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> RigProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_rig(
    config_path: str | Path,
    *,
    speed: float,
    seed: int | None = None,
    fault_schedule: str | Path | None = None,
    start_on_connect: bool = True,
    timeout_s: float = 30.0,
    stderr: Any = None,
) -> RigProcess:
    """Start ``python -m edgectl.cli rig CONFIG`` and wait for its announcement line."""
    cmd = [sys.executable, "-m", "edgectl.cli", "rig", str(config_path), "--speed", str(speed)]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    if fault_schedule is not None:
        cmd += ["--fault-schedule", str(fault_schedule)]
    if start_on_connect:
        cmd.append("--start-on-connect")
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    line = proc.stdout.readline() if ready else b""
    if not line:
        proc.kill()
        proc.wait()
        raise EdgectlError(f"rig: no announcement within {timeout_s} s (exit {proc.returncode})")
    return RigProcess(proc, json.loads(line))

"""The devices of a reactor behind their I/O workers: readings into tags, outputs to devices.

One :class:`edgectl.io.worker.IoWorker` per serial device polls its readings (``read_<name>``
methods of the driver the profile selects) and runs its writes (``set_<quantity>``), so a slow
or silent device never blocks the scan. GPIO outputs (heater PWM, relays) are set directly: a
pin write is a memory write. Writes are coalesced: an output is sent when its value moves by more
than its write dead band (``[outputs.<name>] write_deadband``, default 0: every change) or
reaches min, max or safe, and every ``refresh_s`` of clock time (a device that power-cycled gets
its setpoint back), and never queued twice. A failed write is counted per output and reported by
:meth:`Hub.faults`.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from edgectl.control import PulseOutput
from edgectl.devices import DRIVERS, Board
from edgectl.errors import ConfigError, EdgectlError
from edgectl.io.profile import DeviceProfile, find_profile, load_profile
from edgectl.io.transport import Port
from edgectl.io.worker import IoWorker
from edgectl.io.worker import Quality as WorkerQuality
from edgectl.quality import Quality
from edgectl.runtime.clock import Clock
from edgectl.runtime.reactor_config import ReactorConfig
from edgectl.runtime.tags import TagStore

__all__ = ["Hub", "OutputFault"]

_QUALITY = {
    WorkerQuality.GOOD: Quality.GOOD,
    WorkerQuality.BAD: Quality.BAD,
    WorkerQuality.STALE: Quality.STALE,
}


@dataclass
class OutputFault:
    """Write failures of one output since the last successful write."""

    output: str
    failures: int
    error: str


@dataclass
class _SerialOutput:
    worker: IoWorker
    setter: Callable[[float], Any]
    device: str
    wanted: float = math.nan
    sent: float = math.nan
    sent_at_s: float = -math.inf
    pending: Future[Any] | None = None
    failures: int = 0
    error: str = ""


class Hub:
    """Every device of a reactor configuration, opened and polled.

    Parameters
    ----------
    cfg
        The reactor configuration (``[devices]``, ``[gpio]``).
    clock
        The controller's clock: readings are timestamped on it, so ages compare with scan times.
    pin_factory
        gpiozero pin factory for the board (None: the board profile's own; tests pass
        ``MockFactory``).
    refresh_s
        Resend unchanged outputs this often (clock seconds).
    """

    def __init__(
        self,
        cfg: ReactorConfig,
        *,
        clock: Clock,
        pin_factory: Any = None,
        refresh_s: float = 60.0,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.refresh_s = refresh_s
        self.drivers: dict[str, Any] = {}
        self.workers: dict[str, IoWorker] = {}
        self._serial_out: dict[str, _SerialOutput] = {}
        self._gpio_out: dict[str, Callable[[float], None]] = {}
        self.board: Board | None = None
        self._lock = threading.Lock()
        try:
            self._open_devices()
            self._open_gpio(pin_factory)
        except BaseException:
            self.close()
            raise
        for worker in self.workers.values():
            worker.start()

    def _timing(self, name: str) -> dict[str, Any]:
        """A worker's clock, speed and (on a lockstep clock) its gate, with a scan period of
        slack: a due poll or a write must start within one scan of simulated time."""
        gate_of = getattr(self.clock, "gate", None)
        # named by the devices on the port (a port URL is long)
        devices = [d for d, dev in self.cfg.devices.items() if dev.port == name] or [name]
        return {
            "clock": self.clock.now,
            "speed": self.clock.speed,
            "gate": gate_of(f"io {'+'.join(devices)}") if gate_of is not None else None,
            "slack_s": self.cfg.reactor.scan_period_s,
            # an in-process emulator answers in microseconds: its transactions hold the clock
            "hold_transactions": name.startswith("sim://") or name == "gpio",
        }

    def _open_devices(self) -> None:
        # Devices on one port (an RS-485 bus, the channels of a multi-channel pump) share one
        # Port object and one I/O worker, as on the wire: one conversation at a time.
        ports: dict[str, Port] = {}
        for name, dev in self.cfg.devices.items():
            where = f"$.devices.{name}"
            try:
                profile = load_profile(dev.profile)
                port = ports.get(dev.port)
                if port is None:
                    port = ports[dev.port] = Port(dev.port, profile.serial, name=dev.port)
                driver = open_device_on(port, dev.profile, profile, device=name, **dev.options)
            except TypeError as exc:
                raise ConfigError(f"{where}.options: {exc}") from exc
            except EdgectlError as exc:
                raise type(exc)(f"{where}: {exc}") from exc
            self.drivers[name] = driver
            worker = self.workers.get(dev.port)
            if worker is None:
                worker = IoWorker(dev.port, max_age_s=dev.max_age_s, **self._timing(dev.port))
                self.workers[dev.port] = worker
            for reading, tag in dev.readings.items():
                fn = getattr(driver, f"read_{reading}", None)
                if not callable(fn):
                    raise ConfigError(
                        f"{where}.readings.{reading}: driver {type(driver).__name__} has no "
                        f"read_{reading}() (has: {_methods(driver, 'read_')})"
                    )
                worker.add_poll(tag, fn, period_s=dev.poll_period_s)
            for output, quantity in dev.outputs.items():
                fn = getattr(driver, f"set_{quantity}", None)
                if not callable(fn):
                    raise ConfigError(
                        f"{where}.outputs.{output}: driver {type(driver).__name__} has no "
                        f"set_{quantity}() (has: {_methods(driver, 'set_')})"
                    )
                self._serial_out[output] = _SerialOutput(worker, fn, name)

    def _open_gpio(self, pin_factory: Any) -> None:
        gpio = self.cfg.gpio
        if gpio is None:
            return
        board = Board(gpio.board, pin_factory=pin_factory)
        self.board = board
        for output, channel in gpio.outputs.items():
            if channel not in board.devices:
                raise ConfigError(
                    f"$.gpio.outputs.{output}: board {gpio.board!r} has no output {channel!r} "
                    f"(has: {sorted(board.devices)})"
                )
            dev = board[channel]
            out_cfg = self.cfg.outputs.get(output)
            scale = out_cfg.scale if out_cfg is not None else 1.0
            window = out_cfg.pwm_window_s if out_cfg is not None else 0.0
            if hasattr(dev, "set_duty"):
                self._gpio_out[output] = _scaled(dev.set_duty, scale)
            elif window > 0.0:
                # a relay driven by a duty: time-proportioning window (control.md §2.3)
                span = out_cfg.max - out_cfg.min if out_cfg is not None else 1.0
                self._gpio_out[output] = _TimeProportioned(
                    dev, PulseOutput(window, quantum_s=0.0), self.clock, span
                )
            else:
                self._gpio_out[output] = _switch(dev)
        if gpio.inputs:
            worker = IoWorker("gpio", **self._timing("gpio"))
            self.workers["gpio"] = worker
            for tag, channel in gpio.inputs.items():
                if channel not in board.devices:
                    raise ConfigError(f"$.gpio.inputs.{tag}: board has no input {channel!r}")
                worker.add_poll(tag, board[channel].read, period_s=gpio.input_period_s)

    # -- scan side --------------------------------------------------------------------------------

    def collect(self, tags: TagStore, now_s: float) -> None:
        """Copy every worker's latest readings into the tag store."""
        for worker in self.workers.values():
            for tag, r in worker.readings().items():
                if r.timestamp_s == -math.inf:
                    continue  # never read: the tag keeps its BAD "never written" state
                tags.write(tag, r.value, r.timestamp_s, _QUALITY[r.quality])

    def write(self, outputs: Mapping[str, float]) -> None:
        """Send outputs to their devices; never blocks on serial I/O."""
        now = self.clock.now()
        for name, value in outputs.items():
            gpio = self._gpio_out.get(name)
            if gpio is not None:
                gpio(value)
                continue
            out = self._serial_out.get(name)
            if out is None:
                continue
            o = self.cfg.outputs.get(name)
            # a move within the dead band is not sent (see OutputConfig.write_deadband); a
            # move to min, max or safe is sent exactly (a pump is stopped, not nearly)
            band = 0.0
            if o is not None:
                if value not in (o.min, o.max, o.safe):
                    band = o.deadband * abs(o.scale)
                if o.scale != 1.0:
                    value = value * o.scale
            with self._lock:
                out.wanted = value
                if out.pending is not None and not out.pending.done():
                    continue  # the queued write will send the latest wanted value
                if out.pending is not None:
                    self._settle(name, out)
                if abs(value - out.sent) <= band and now - out.sent_at_s < self.refresh_s:
                    continue
                out.sent_at_s = now
                out.pending = out.worker.submit(self._send, name)

    def _send(self, name: str) -> None:
        out = self._serial_out[name]
        with self._lock:
            value = out.wanted
        out.setter(value)
        out.sent = value

    def _settle(self, name: str, out: _SerialOutput) -> None:
        fut, out.pending = out.pending, None
        assert fut is not None
        exc = fut.exception() if not fut.cancelled() else None
        if exc is None:
            out.failures, out.error = 0, ""
        else:
            out.failures += 1
            out.error = f"{type(exc).__name__}: {exc}"
            out.sent = math.nan  # resend at the next scan

    def faults(self) -> list[OutputFault]:
        """Outputs whose last write failed."""
        with self._lock:
            for name, out in self._serial_out.items():
                if out.pending is not None and out.pending.done():
                    self._settle(name, out)
            return [
                OutputFault(name, out.failures, out.error)
                for name, out in self._serial_out.items()
                if out.failures
            ]

    # -- shutdown ---------------------------------------------------------------------------------

    def make_safe(self, safe: Mapping[str, float], timeout_s: float = 5.0) -> list[str]:
        """Drive every output to its safe value and wait (bounded) for the writes.

        Returns the outputs whose safe write could not be confirmed.
        """
        unconfirmed = []
        for name, value in safe.items():
            if name in self._gpio_out:
                try:
                    self._gpio_out[name](value)
                except Exception:  # keep making the others safe
                    unconfirmed.append(name)
        futures = {}
        for name, out in self._serial_out.items():
            if name in safe:
                with self._lock:
                    out.wanted = safe[name]
                futures[name] = out.worker.submit(self._send, name)
        for name, fut in futures.items():
            try:
                fut.result(timeout=timeout_s)
            except (FutureTimeout, Exception):  # report, never raise
                unconfirmed.append(name)
        return unconfirmed

    def close(self) -> None:
        """Stop the workers, close every driver (each first makes its outputs safe)."""
        for worker in self.workers.values():
            worker.stop()
        for driver in self.drivers.values():
            with contextlib.suppress(Exception):  # closing must reach every device
                driver.close()
        if self.board is not None:
            self.board.close()
        self.workers.clear()
        self.drivers.clear()


def open_device_on(
    port: Port, profile_name: str, profile: DeviceProfile, *, device: str, **kwargs: Any
) -> Any:
    """The driver of ``profile_name`` (``"vendor/model"`` or a path) on a shared ``port``."""
    path = find_profile(profile_name)
    cls = DRIVERS.get(f"{path.parent.name}/{path.stem}")
    if cls is None:
        raise ConfigError(f"{path}: no driver for this profile (known: {', '.join(DRIVERS)})")
    return cls(port, profile, name=device, **kwargs)


def _scaled(fn: Callable[[float], Any], scale: float) -> Callable[[float], None]:
    def set_value(value: float) -> None:
        fn(min(1.0, max(0.0, value * scale)))

    return set_value


class _TimeProportioned:
    """Duty (0..span) → on/off of a relay in a time-proportioning window, stepped on the
    controller's clock at each write."""

    def __init__(self, dev: Any, pulse: PulseOutput, clock: Clock, span: float) -> None:
        self.dev = dev
        self.pulse = pulse
        self.clock = clock
        self.span = span if span > 0 else 1.0
        self.last_s: float | None = None

    def __call__(self, value: float) -> None:
        now = self.clock.now()
        dt = 0.0 if self.last_s is None else now - self.last_s
        self.last_s = now
        duty = min(1.0, max(0.0, value / self.span))
        on = self.pulse.update(duty, dt) if dt > 0 else duty >= 1.0
        if on:
            self.dev.on()
        else:
            self.dev.off()


def _switch(dev: Any) -> Callable[[float], None]:
    def set_value(value: float) -> None:
        if value >= 0.5:
            dev.on()
        else:
            dev.off()

    return set_value


def _methods(obj: Any, prefix: str) -> str:
    names = sorted(n[len(prefix) :] for n in dir(obj) if n.startswith(prefix))
    return ", ".join(names) or "none"

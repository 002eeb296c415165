"""The GPIO bridge between a controller process and an emulated rig (``edgectl rig``).

On a bench rig the heater SSR, the stirrer driver, the relay valves and the foam probe hang on
the Pi's header; in a HIL run they hang on the simulated plant of another process. The bridge
carries pin levels over a loopback TCP line protocol (UTF-8, one message per ``\\n``-terminated
line, pins named as gpiozero names them, ``GPIO12``):

================================  ==========================================================
``hello edgectl-gpio 1``          controller → rig, first line after connecting
``lockstep``                      controller → rig, after ``hello``: this controller runs
                                  an accelerated clock and will tick; the rig's plant clock
                                  does not start before the first ``tick`` (set-up time does
                                  not run the plant ahead of the controller)
``out GPIO12 0.35``               controller → rig: the level of an output pin (PWM duty or
                                  0/1), sent on every change and for every output pin after
                                  (re)connecting
``release GPIO23``                controller → rig: the pin was released (closed): the output
                                  stage sees no drive and goes to its idle state (relay off,
                                  heater off) whatever its polarity
``in GPIO26 0``                   rig → controller: the level of an input pin (the foam probe
                                  pulls its pin low when foam touches it), sent on change and
                                  for every input pin when a controller connects
``tick 1234.5``                   controller → rig, at the start of every scan of an
                                  accelerated run: the controller's clock reads 1234.5 s; the
                                  rig advances its plant to that time (mapped onto the plant's
                                  axis at the connection's first tick) with the output levels
                                  in force, and stops its own clock while ticks come
``tock 1234.5``                   rig → controller: the plant is there; until it comes, the
                                  controller's clock waits at the next scan (lockstep: a
                                  loaded machine slows the run down instead of letting the
                                  plant and the controller drift apart)
================================  ==========================================================

Anything else is ignored by both ends (forward compatible). Levels are *pin* levels: an
active-low relay is on at ``0``; the rig applies the board profile's polarity, as copper does.

:class:`BridgeFactory` is the controller side: a gpiozero ``MockFactory`` whose pins forward
output levels to the rig and take input levels from it, selected by ``[gpio] pin_factory =
"bridge"`` and the address in ``[gpio] bridge`` or ``EDGECTL_GPIO_BRIDGE``
(``tcp://127.0.0.1:PORT``). :class:`GpioBridgeServer` is the rig side.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from gpiozero.pins.mock import MockFactory

from edgectl.devices.gpio import SimPWMPin
from edgectl.errors import ConfigError

__all__ = [
    "BRIDGE_ENV",
    "BridgeFactory",
    "BridgePin",
    "GpioBridgeServer",
    "RigClockLink",
    "bridge_from_env",
    "parse_bridge_address",
]

#: Environment variable naming the bridge when the config has no ``[gpio] bridge`` key.
BRIDGE_ENV = "EDGECTL_GPIO_BRIDGE"
_HELLO = "hello edgectl-gpio 1"


def parse_bridge_address(address: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` (or ``HOST:PORT``) → (host, port); ConfigError names the value."""
    text = address if "://" in address else f"tcp://{address}"
    parts = urlparse(text)
    if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
        raise ConfigError(f"GPIO bridge address {address!r}: expected tcp://HOST:PORT")
    return parts.hostname, parts.port


def _level(value: Any) -> str:
    return f"{float(value):.6g}"


class BridgePin(SimPWMPin):
    """A mock pin whose output level goes to the rig (see the module protocol).

    Like the pins of simulated runs it keeps only the last :attr:`SimPWMPin.HISTORY` state
    changes: a controller on the rig sets its heater duty every scan, and gpiozero's
    ``MockPin`` would keep every change for the whole culture.
    """

    factory: BridgeFactory
    _released = False

    def _change_state(self, value: Any) -> bool:
        changed = bool(super()._change_state(value))
        if self._function == "output" and not self._released:
            self.factory.send_output(self.info.name, value)
        return changed

    def close(self) -> None:
        # gpiozero's mock drives a PWM pin to 0 on close before making it an input; a real
        # pin just stops driving: tell the rig once, and forward nothing of the teardown.
        if self._function == "output":
            self.factory.release(self.info.name)
        self._released = True
        try:
            super().close()
        finally:
            self._released = False

    def _set_function(self, value: str) -> None:
        super()._set_function(value)
        if value == "output" and not self._released:
            self.factory.send_output(self.info.name, self._state)
        else:
            self.factory.forget_output(self.info.name)
            pending = self.factory.input_level(self.info.name)
            if pending is not None:
                self._change_state(pending)


class BridgeFactory(MockFactory):
    """gpiozero pin factory for a controller wired to an emulated rig over the GPIO bridge.

    Connects to ``address`` (``tcp://127.0.0.1:PORT``) at once (ConnectionError if the rig is
    not there) and reconnects in the background if the line drops, resending every output.

    Parameters
    ----------
    address
        The rig's bridge address.
    revision
        Pi revision the mock board reports (gpiozero ``MockFactory``).
    """

    def __init__(
        self, address: str, *, revision: str | None = None, lockstep: bool = False
    ) -> None:
        super().__init__(revision=revision, pin_class=BridgePin)
        self.address = address
        self.lockstep = lockstep  # say so after hello: the rig's clock waits for our ticks
        self._host, self._port = parse_bridge_address(address)
        self._lock = threading.Lock()
        self._outputs: dict[str, float] = {}
        self._inputs: dict[str, bool] = {}
        self._sock: socket.socket | None = None
        self._closed = threading.Event()
        #: called with the time of every ``tock`` (rig → controller), and when the line drops
        self.on_tock: Callable[[float], None] | None = None
        self.on_disconnect: Callable[[], None] | None = None
        self._connect()
        self._thread = threading.Thread(target=self._receive, name="gpio-bridge", daemon=True)
        self._thread.start()

    # -- controller → rig -------------------------------------------------------------------

    def _connect(self) -> None:
        try:
            sock = socket.create_connection((self._host, self._port), timeout=2.0)
        except OSError as exc:
            raise ConnectionError(f"GPIO bridge {self.address}: {exc}") from exc
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            lines = [_HELLO] + (["lockstep"] if self.lockstep else [])
            lines += [f"out {n} {_level(v)}" for n, v in self._outputs.items()]
            sock.sendall(("\n".join(lines) + "\n").encode())
            self._sock = sock

    def send_output(self, name: str, value: Any) -> None:
        """Forward an output pin level (called by :class:`BridgePin`)."""
        with self._lock:
            self._outputs[name] = float(value)
            sock = self._sock
            if sock is None:
                return  # resent on reconnection
            try:
                sock.sendall(f"out {name} {_level(value)}\n".encode())
            except OSError:
                self._sock = None

    def send_tick(self, t_s: float) -> bool:
        """Tell the rig the controller's clock reads ``t_s``; False when not connected."""
        with self._lock:
            sock = self._sock
            if sock is None:
                return False
            try:
                sock.sendall(f"tick {t_s!r}\n".encode())
            except OSError:
                self._sock = None
                return False
            return True

    def forget_output(self, name: str) -> None:
        with self._lock:
            self._outputs.pop(name, None)

    def release(self, name: str) -> None:
        """Tell the rig that output ``name`` is no longer driven."""
        with self._lock:
            self._outputs.pop(name, None)
            sock = self._sock
            if sock is None:
                return
            try:
                sock.sendall(f"release {name}\n".encode())
            except OSError:
                self._sock = None

    def input_level(self, name: str) -> bool | None:
        """The last level the rig reported for input ``name`` (None: none yet)."""
        with self._lock:
            return self._inputs.get(name)

    # -- rig → controller -------------------------------------------------------------------

    def _apply_input(self, name: str, level: bool) -> None:
        with self._lock:
            self._inputs[name] = level
        pin = self.pins.get(self._pin_key(name))
        if pin is not None and pin.function == "input":
            if level:
                pin.drive_high()
            else:
                pin.drive_low()

    def _pin_key(self, name: str) -> Any:
        for key, pin in list(self.pins.items()):
            if getattr(pin.info, "name", None) == name:
                return key
        return None

    def _receive(self) -> None:
        buf = b""
        while not self._closed.is_set():
            sock = self._sock
            if sock is None:
                try:
                    self._connect()
                except ConnectionError:
                    self._closed.wait(0.2)
                continue
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            if not data:
                with self._lock:
                    if self._sock is sock:
                        self._sock = None
                with contextlib.suppress(OSError):
                    sock.close()
                buf = b""
                if self.on_disconnect is not None:
                    self.on_disconnect()
                continue
            buf += data
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                parts = raw.decode(errors="replace").split()
                if len(parts) == 3 and parts[0] == "in":
                    with contextlib.suppress(ValueError):
                        self._apply_input(parts[1], float(parts[2]) >= 0.5)
                elif len(parts) == 2 and parts[0] == "tock" and self.on_tock is not None:
                    with contextlib.suppress(ValueError):
                        self.on_tock(float(parts[1]))

    def close(self) -> None:
        """Drop the connection (the rig keeps the last levels, like released pins)."""
        self._closed.set()
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        super().close()


class GpioBridgeServer:
    """The rig side: listens on ``127.0.0.1:port`` (0 = any free port), keeps the level of every
    output pin the controller drives, and pushes input levels to every connected controller.

    Parameters
    ----------
    inputs
        Initial input levels (pin name → level).
    on_output
        Called as ``on_output(pin, level)`` for every output message (from the reader thread);
        ``level`` is None when the controller released the pin.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        inputs: dict[str, bool] | None = None,
        on_output: Callable[[str, float | None], None] | None = None,
        on_tick: Callable[[float], None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
        on_lockstep: Callable[[], None] | None = None,
    ) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(4)
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.on_output = on_output
        self.on_tick = on_tick
        self.on_disconnect = on_disconnect
        self.on_lockstep = on_lockstep
        self.ticks = 0
        self._lock = threading.Lock()
        self.outputs: dict[str, float] = {}
        self._inputs: dict[str, bool] = dict(inputs or {})
        self._clients: list[socket.socket] = []
        self.connections = 0
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, name="gpio-accept", daemon=True)]
        self._threads[0].start()

    def set_input(self, name: str, level: bool) -> None:
        """Set an input pin's level; sent to the controllers when it changes."""
        with self._lock:
            if self._inputs.get(name) == level:
                return
            self._inputs[name] = level
            clients = list(self._clients)
        msg = f"in {name} {int(level)}\n".encode()
        for c in clients:
            with contextlib.suppress(OSError):
                c.sendall(msg)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(None)
            with self._lock:
                self._clients.append(conn)
                self.connections += 1
                hello = "".join(f"in {n} {int(v)}\n" for n, v in self._inputs.items())
            with contextlib.suppress(OSError):
                conn.sendall(hello.encode())
            self.connected.set()
            t = threading.Thread(target=self._serve, args=(conn,), name="gpio-rx", daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                buf += data
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    parts = raw.decode(errors="replace").split()
                    level: float | None
                    if len(parts) == 2 and parts[0] == "release":
                        level = None
                        with self._lock:
                            self.outputs.pop(parts[1], None)
                    elif parts == ["lockstep"]:
                        if self.on_lockstep is not None:
                            self.on_lockstep()
                        continue
                    elif len(parts) == 2 and parts[0] == "tick":
                        try:
                            t_s = float(parts[1])
                        except ValueError:
                            continue
                        if self.on_tick is not None:
                            self.on_tick(t_s)
                        self.ticks += 1
                        with contextlib.suppress(OSError):
                            conn.sendall(f"tock {t_s!r}\n".encode())
                        continue
                    elif len(parts) == 3 and parts[0] == "out":
                        try:
                            level = float(parts[2])
                        except ValueError:
                            continue
                        with self._lock:
                            self.outputs[parts[1]] = level
                    else:
                        continue
                    if self.on_output is not None:
                        self.on_output(parts[1], level)
        finally:
            with self._lock:
                if conn in self._clients:
                    self._clients.remove(conn)
            with contextlib.suppress(OSError):
                conn.close()
            if self.on_disconnect is not None:
                self.on_disconnect()

    def wait_connected(self, timeout_s: float) -> bool:
        return self.connected.wait(timeout_s)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            clients, self._clients = list(self._clients), []
        for c in clients:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()
        with contextlib.suppress(OSError):
            self._sock.close()
        deadline = time.monotonic() + 2.0
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))


class RigClockLink:
    """Keeps an out-of-process rig's plant in lockstep with the controller's clock.

    At the start of each scan (``before_scan``) it sends ``tick <now>`` over the bridge and
    holds the controller's :class:`~edgectl.runtime.clock.LockstepClock` at the next scan
    until the rig answers ``tock``: the plant is never more than one scan behind the
    controller, and never runs on while the controller is stalled (the rig's clock stops
    while ticks come). A dropped line releases the hold (the rig runs free again).
    """

    def __init__(self, factory: BridgeFactory, clock: Any, period_s: float) -> None:
        self.factory = factory
        self.period_s = float(period_s)
        self._sent = -math.inf
        self.gate: Any = clock.gate("rig")
        factory.on_tock = self._tock
        factory.on_disconnect = self._released

    def before_scan(self, now_s: float) -> None:
        self._sent = now_s
        self.gate.hold(now_s + self.period_s)
        if not self.factory.send_tick(now_s):
            self.gate.hold(None)

    def _tock(self, t_s: float) -> None:
        if t_s >= self._sent:
            self.gate.hold(None)

    def _released(self) -> None:
        self.gate.hold(None)

    def close(self) -> None:
        self.factory.on_tock = None
        self.factory.on_disconnect = None
        self.gate.close()


def bridge_from_env(configured: str) -> str:
    """The bridge address: the config's ``[gpio] bridge`` or ``$EDGECTL_GPIO_BRIDGE``."""
    address = configured or os.environ.get(BRIDGE_ENV, "")
    if not address:
        raise ConfigError(
            f"$.gpio.bridge: pin_factory 'bridge' needs an address (tcp://127.0.0.1:PORT) "
            f"in [gpio] bridge or ${BRIDGE_ENV}"
        )
    return address

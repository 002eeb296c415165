"""Serve an emulator on a pseudo-terminal or a loopback TCP port.

A pty gives third-party clients a real tty path (``/dev/pts/N``); the slave is put in raw mode
and kept open by the server (on Linux, reads on the master fail with EIO once every slave fd is
closed). Each reply goes out in one ``os.write`` (the ``ismatec`` client reads whatever arrived
55 ms after its command). TCP listens on 127.0.0.1 only, one client at a time.

Faults: ``disconnect`` swallows all traffic on a pty for its duration (the path stays, as
with a device that lost power) and drops the client on TCP.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import tty

from edgectl.emulators.base import Emulator, EmulatorBus

__all__ = ["PtyServer", "TcpServer"]


class _Server:
    def __init__(self, emulator: Emulator | EmulatorBus) -> None:
        self.emulator = emulator
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _spawn(self, target: object, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        t.start()
        self._threads.append(t)

    def _disconnected(self) -> bool:
        return not self.emulator.line_is_up()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2.0)
        self._threads.clear()

    def __enter__(self) -> _Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PtyServer(_Server):
    """The emulator behind a new pty; :attr:`path` is the tty a client opens."""

    def __init__(self, emulator: Emulator | EmulatorBus) -> None:
        super().__init__(emulator)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        # With nobody reading the slave, a full pty buffer must drop output (as a real line
        # does), not block the writer thread: EZO circuits stream readings at power-up.
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self._spawn(self._reader, f"pty-rx-{emulator.name}")
        self._spawn(self._writer, f"pty-tx-{emulator.name}")

    def _reader(self) -> None:
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                continue
            if data and not self._disconnected():
                self.emulator.receive(data)

    def _writer(self) -> None:
        while not self._stop.is_set():
            data = self.emulator.read(4096, 0.05)
            if data and not self._disconnected():
                with contextlib.suppress(OSError):  # BlockingIOError: buffer full, dropped
                    os.write(self.master, data)

    def stop(self) -> None:
        super().stop()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class TcpServer(_Server):
    """The emulator on ``127.0.0.1:port`` (port 0 picks a free one: see :attr:`port`)."""

    def __init__(self, emulator: Emulator | EmulatorBus, port: int = 0) -> None:
        super().__init__(emulator)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(1)
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._client: socket.socket | None = None
        self._spawn(self._accept, f"tcp-{emulator.name}")
        self._spawn(self._writer, f"tcp-tx-{emulator.name}")

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(0.05)
            self._client = conn
            while not self._stop.is_set():
                if self._disconnected():
                    break
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                self.emulator.receive(data)
            self._client = None
            with contextlib.suppress(OSError):
                conn.close()

    def _writer(self) -> None:
        while not self._stop.is_set():
            data = self.emulator.read(4096, 0.05)
            client = self._client
            if data and client is not None:
                with contextlib.suppress(OSError):
                    client.sendall(data)

    def stop(self) -> None:
        super().stop()
        with contextlib.suppress(OSError):
            self._sock.close()

"""Private mosquitto and PostgreSQL 15 instances on loopback, for tests and ``make fleet-demo``.

Each runs from Debian's binaries (``scripts/fleet-deps.sh`` installs them when missing) on a
free port of 127.0.0.1, with all its files in a directory the caller owns (a temporary one in
tests), and is stopped by :meth:`stop`. Nothing of the machine's own services is used. As
root, PostgreSQL runs as the system user ``edgectl-pg`` (``initdb`` refuses root; the script
creates the user; the child's uid is set by :class:`subprocess.Popen`) and mosquitto drops to
``mosquitto`` by itself.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Final

import psycopg

from edgectl.errors import EdgectlError

__all__ = ["LocalMosquitto", "LocalPostgres", "ensure_installed", "free_port"]

PG_BIN: Final = Path("/usr/lib/postgresql/15/bin")
MOSQUITTO: Final = Path("/usr/sbin/mosquitto")
PG_USER: Final = "edgectl-pg"
DEPS_SCRIPT: Final = Path(__file__).resolve().parents[3] / "scripts" / "fleet-deps.sh"


def ensure_installed() -> None:
    """Run ``scripts/fleet-deps.sh`` when mosquitto, PostgreSQL 15 or its user is missing."""
    have_user = True
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        have_user = os.geteuid() != 0  # only root needs the user
    if MOSQUITTO.exists() and (PG_BIN / "initdb").exists() and have_user:
        return
    if not DEPS_SCRIPT.exists():
        raise EdgectlError(f"mosquitto/PostgreSQL 15 missing and no {DEPS_SCRIPT} to install")
    subprocess.run(["bash", str(DEPS_SCRIPT)], check=True)


def free_port() -> int:
    """A TCP port of 127.0.0.1 free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EdgectlError(f"{what} exited ({proc.returncode}): {log.read_text()[-2000:]}")
        with socket.socket() as s, contextlib.suppress(OSError):
            s.settimeout(0.5)
            s.connect(("127.0.0.1", port))
            return
        time.sleep(0.05)
    raise EdgectlError(f"{what} did not listen on 127.0.0.1:{port} in 60 s")


def _owned_by(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam(user)
        for p in (path, *path.rglob("*")):
            os.chown(p, pw.pw_uid, pw.pw_gid)


class LocalMosquitto:
    """A mosquitto broker on 127.0.0.1:``port`` with its files in ``workdir``.

    ``passwords`` ({user: password}) turns anonymous access off; ``acl`` is the text of an ACL
    file; ``tls`` (CA certificate, server certificate, server key: PEM files) makes the
    listener TLS only (``url`` is then ``mqtts://``; the files are copied into ``workdir``).
    Persistence is on and the per-client queue unbounded, so a persistent session's messages
    outlive :meth:`stop` / :meth:`start` (mosquitto saves them on a clean stop).
    """

    def __init__(
        self,
        workdir: str | Path,
        *,
        port: int | None = None,
        passwords: dict[str, str] | None = None,
        acl: str = "",
        tls: tuple[str | Path, str | Path, str | Path] | None = None,
    ) -> None:
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "mosquitto.log"
        conf = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.dir}/",
            "max_queued_messages 0",
            "max_inflight_messages 1000",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        self.tls = tls is not None
        if tls is not None:
            # per-listener settings: they follow the listener line
            at = 1
            for key, src in zip(("cafile", "certfile", "keyfile"), tls, strict=True):
                dst = self.dir / f"tls-{key}.pem"
                shutil.copyfile(src, dst)
                os.chmod(dst, 0o600)
                conf.insert(at, f"{key} {dst}")
                at += 1
        if passwords:
            pw = self.dir / "passwd"
            pw.write_text("".join(f"{u}:{p}\n" for u, p in passwords.items()))
            os.chmod(pw, 0o600)
            subprocess.run(["mosquitto_passwd", "-U", str(pw)], check=True, capture_output=True)
            conf += ["allow_anonymous false", f"password_file {pw}"]
        else:
            conf.append("allow_anonymous true")
        if acl:
            (self.dir / "acl").write_text(acl)
            conf.append(f"acl_file {self.dir / 'acl'}")
        if os.geteuid() == 0:
            conf.append("user mosquitto")
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(conf) + "\n")
        _owned_by(self.dir, "mosquitto")

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self) -> LocalMosquitto:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(MOSQUITTO), "-c", str(self.conf)], stdout=log, stderr=log
            )
        _wait_port(self.port, self.proc, "mosquitto", self.log)
        return self

    def stop(self) -> None:
        """Clean stop (SIGTERM: the persistence file is written)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class LocalPostgres:
    """A PostgreSQL 15 cluster in ``workdir``, listening on 127.0.0.1:``port`` (trust auth:
    loopback only, for tests and the demo). ``durable=False`` turns fsync off (tests); the
    benchmark runs durable."""

    def __init__(
        self, workdir: str | Path, *, port: int | None = None, durable: bool = False
    ) -> None:
        self.durable = durable
        self.dir = Path(workdir)
        self.data = self.dir / "data"
        self.port = port or free_port()
        self.log = self.dir / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _as_pg_user(self) -> dict[str, Any]:
        """Popen arguments that run a child as ``edgectl-pg`` when this process is root."""
        if os.geteuid() != 0:
            return {}
        pw = pwd.getpwnam(PG_USER)
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    @property
    def dsn(self) -> str:
        user = PG_USER if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
        return f"postgresql://{user}@127.0.0.1:{self.port}/postgres"

    def start(self) -> LocalPostgres:
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            _owned_by(self.dir, PG_USER)
        as_user = self._as_pg_user()
        if not (self.data / "PG_VERSION").exists():
            initdb = [str(PG_BIN / "initdb"), "-D", str(self.data), "--auth=trust", "--no-sync"]
            subprocess.run(
                [*initdb, "-E", "UTF8", "--locale=C.UTF-8"],
                check=True,
                capture_output=True,
                cwd=self.dir,
                **as_user,
            )
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.dir),
            "shared_buffers": "64MB",
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off"}
        args = [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        for k, v in settings.items():
            args += ["-c", f"{k}={v}"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, cwd=self.dir, **as_user)
        _wait_port(self.port, self.proc, "postgres", self.log)
        # the port opens before recovery ends ("the database system is starting up")
        deadline = time.monotonic() + 60.0
        while True:
            try:
                psycopg.connect(self.dsn, connect_timeout=5).close()
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise EdgectlError(
                        f"postgres not ready: {self.log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

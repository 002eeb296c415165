"""Helpers of the fleet tests: private mosquitto + PostgreSQL, seeded reactors, checksums."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import math
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edgectl.fleet.localsvc import LocalMosquitto, LocalPostgres, ensure_installed
from edgectl.fleet.sparkplug import Payload, topic
from edgectl.historian import Historian, Quality

ROOT = Path(__file__).resolve().parents[1]


def services() -> Iterator[tuple[LocalMosquitto, LocalPostgres]]:
    """A broker and a database server, installed if missing, stopped and removed after."""
    ensure_installed()
    mq_dir = tempfile.mkdtemp(prefix="edgectl-mqtt-")
    pg_dir = tempfile.mkdtemp(prefix="edgectl-pg-")
    broker = LocalMosquitto(mq_dir).start()
    pg = LocalPostgres(pg_dir).start()
    try:
        yield broker, pg
    finally:
        broker.stop()
        pg.remove()
        subprocess.run(["rm", "-rf", mq_dir], check=False)


def new_database(pg: LocalPostgres, name: str) -> str:
    """A fresh database on ``pg``; its DSN."""
    with psycopg.connect(pg.dsn, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}"')
        con.execute(f'CREATE DATABASE "{name}"')
    return pg.dsn.rsplit("/", 1)[0] + f"/{name}"


def collector_subscribed(dsn: str) -> bool:
    """Whether a collector has made its persistent session (its row in ``fleet_collector``)."""
    try:
        with psycopg.connect(dsn) as con:
            row = con.execute("SELECT COUNT(*) FROM fleet_collector").fetchone()
    except psycopg.Error:
        return False
    return bool(row and row[0])


def command(url: str, group: str, node: str, *, device: str = "", **fields: str) -> dict[str, Any]:
    """Send one ``NCMD`` (``DCMD`` to ``device`` when given; metrics ``Command/<key>`` = value,
    ``id`` required) to ``node`` as a SCADA client would, and return the node's
    ``Command/result`` of that id (JSON decoded)."""
    answers: list[dict[str, Any]] = []
    got, subscribed = threading.Event(), threading.Event()

    def on_message(c: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        for m in Payload.FromString(msg.payload).metrics:
            if m.name == "Command/result" and m.string_value:
                a = json.loads(m.string_value)
                if a.get("id") == fields["id"]:
                    answers.append(a)
                    got.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"scada-{group}-{fields['id']}")
    c.on_message = on_message
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect("127.0.0.1", int(url.rsplit(":", 1)[1]))
    c.subscribe(topic(group, "NDATA", node), qos=1)
    c.loop_start()
    try:
        assert subscribed.wait(60.0), "no SUBACK for the answers' topic"
        p = Payload()
        for k, v in fields.items():
            m = p.metrics.add()
            m.name, m.datatype, m.string_value = f"Command/{k}", 12, v
        to = topic(group, "DCMD", node, device) if device else topic(group, "NCMD", node)
        c.publish(to, p.SerializeToString(), qos=1)
        assert got.wait(60.0), f"no Command/result for {fields['id']} from {node}"
    finally:
        c.loop_stop()
        c.disconnect()
    return answers[0]


def wait_for(what: str, cond: Callable[[], bool], limit_s: float = 180.0) -> None:
    """Poll ``cond`` until true; fail naming ``what`` after ``limit_s`` (a liveness bound, not a
    speed assertion)."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


TAGS = {"temp_c": "degC", "ph": "pH", "do_pct": "%", "feed_ml_min": "mL/min", "od600": "AU"}


class SeededReactor:
    """A reactor's recording side: a real :class:`Historian` written by a scan-like thread on
    an accelerated time axis (1 s of process time per ``period_s`` of wall time), seeded values
    with some UNCERTAIN, BAD (non-finite) and STALE samples."""

    def __init__(self, path: Path, seed: int, *, period_s: float = 0.01) -> None:
        self.path = path
        self.h = Historian(path, commit_interval_s=0.2)
        for tag, unit in TAGS.items():
            self.h.register_tag(tag, unit=unit)
        self.rng = random.Random(seed)
        self.t_s = 1_790_000_000.0 + seed * 0.001  # a wall-like axis, distinct per reactor
        last = _last_time_s(path)
        if last is not None:  # a restart (after a kill -9): the axis goes on from the file
            self.t_s = last
        self.period_s = period_s
        self.scans = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.late_s: list[float] = []

    def prefill(self, n_scans: int) -> int:
        """Record ``n_scans`` scans at once (a backlog); returns the samples written."""
        for i in range(n_scans):
            self.t_s += 1.0
            self.h.record_scan(self.t_s, {tag: 20.0 + self.rng.random() for tag in TAGS})
            if i % 2000 == 1999:
                self.h.flush()  # within the writer's in-memory bound: nothing dropped
        self.h.flush()
        assert self.h.health().n_dropped == 0
        return len(historian_rows(self.path))

    def start(self) -> SeededReactor:
        self._thread.start()
        return self

    def _loop(self) -> None:
        values = {"temp_c": 37.0, "ph": 7.0, "do_pct": 40.0, "feed_ml_min": 0.5, "od600": 0.1}
        next_s = time.monotonic()
        while not self._stop.is_set():
            self.t_s += 1.0
            scan: dict[str, Any] = {}
            for tag in TAGS:
                values[tag] += self.rng.gauss(0.0, 0.01)
                u = self.rng.random()
                if u < 0.01:
                    scan[tag] = (math.nan, Quality.BAD)
                elif u < 0.03:
                    scan[tag] = (values[tag], Quality.UNCERTAIN)
                elif u < 0.04:
                    scan[tag] = (values[tag], Quality.STALE)
                else:
                    scan[tag] = values[tag]
            self.h.record_scan(self.t_s, scan)
            self.scans += 1
            next_s += self.period_s
            delay = next_s - time.monotonic()
            self.late_s.append(max(0.0, -delay))
            if delay > 0:
                self._stop.wait(delay)

    @property
    def is_recording(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.h.close()


def _last_time_s(path: Path) -> float | None:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT MAX(t) FROM sample").fetchone()
    finally:
        con.close()
    return None if row is None or row[0] is None else float(row[0])


def historian_count(path: Path) -> int:
    """The number of samples in a historian file (being written or not)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT COUNT(*) FROM sample").fetchone()
    finally:
        con.close()
    return int(row[0])


def historian_rows(path: Path) -> list[tuple[str, int, float | None, int]]:
    """(tag, t_ms, value, quality) of every sample, as the publisher sends them."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT tag.name, s.t, s.value, s.quality FROM sample s JOIN tag ON tag.id = s.tag_id"
        ).fetchall()
    finally:
        con.close()
    return sorted((n, round(t * 1000.0), v, q) for n, t, v, q in rows)


def collector_rows(dsn: str, reactor: str) -> list[tuple[str, int, float | None, int]]:
    with psycopg.connect(dsn) as con:
        rows = con.execute(
            "SELECT tag, t_ms, value, quality FROM fleet_sample WHERE reactor = %s",
            (reactor,),
        ).fetchall()
    return sorted((str(a), int(b), c, int(d)) for a, b, c, d in rows)


def checksum(rows: list[tuple[str, int, float | None, int]]) -> str:
    h = hashlib.sha256()
    for tag, t_ms, value, q in rows:
        h.update(f"{tag}|{t_ms}|{value!r}|{q}\n".encode())
    return h.hexdigest()


def count_rows(dsn: str, reactor: str) -> int:
    with psycopg.connect(dsn) as con:
        row = con.execute(
            "SELECT COUNT(*) FROM fleet_sample WHERE reactor = %s", (reactor,)
        ).fetchone()
    return int(row[0]) if row else 0


def edgectl(*args: str, log: Path) -> subprocess.Popen[bytes]:
    """``edgectl ARGS`` as a child process, its output appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "edgectl.cli", *args], stdout=out, stderr=out, cwd=ROOT
        )


def edgectl_output(*args: str) -> str:
    """The standard output of ``edgectl ARGS`` (which must succeed)."""
    return subprocess.run(
        [sys.executable, "-m", "edgectl.cli", *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    is_ca: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        b = b.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        b = b.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return b.sign(issuer_key, hashes.SHA256())


def lab_ca(directory: Path, name: str = "edgectl test lab CA") -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 / localhost it signed (PEM files in
    ``directory``), made with ``cryptography``: ``{"ca", "cert", "key"}``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(name, ca_key, None, ca_key, is_ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate("127.0.0.1", key, ca, ca_key, is_ca=False)
    files = {
        "ca": directory / "ca.pem",
        "cert": directory / "server.pem",
        "key": directory / "server.key",
    }
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(_pem_key(key))
    return files

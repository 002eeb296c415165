"""The edge publisher: a reactor's historian, published as a Sparkplug B edge node.

Store and forward: the local historian *is* the queue. The publisher reads committed samples in
the order of their row id, sends them as QoS 1 ``DDATA`` and moves a persisted publish cursor
(``<db>.mqtt-cursor``, replaced atomically) only past samples the broker acknowledged, in order.
While the broker is unreachable nothing happens to the controller (the publisher has its own
thread and its own read connection; the scan never calls it); on reconnect it births again with
the next ``bdSeq`` and replays from the cursor, the samples recorded up to the reconnection
marked ``is_historical``, then carries on live. A kill -9 at any point resends at most the
samples sent after the last cursor write; the collector is idempotent on (reactor, tag, time),
so the receiver's table neither loses nor duplicates a row.

Sparkplug rules followed (Eclipse Sparkplug 3.0): ``NDEATH`` is the MQTT will with the same
``bdSeq`` as the ``NBIRTH`` of that session; ``seq`` is 0 on ``NBIRTH`` and counts every later
message of the node modulo 256; ``DBIRTH`` names every tag with its alias (the historian's tag
id), datatype and unit; ``NCMD`` ``Node Control/Rebirth`` births again.

Commands (``NCMD``/``DCMD``) carry the metrics ``Command/user``, ``Command/password``,
``Command/method`` (``loop_set``, ``loop_manual``, ``phase_request``, ``add_reference``, ``ack``,
or a query), ``Command/params`` (a JSON object), ``Command/reason`` and ``Command/id``. They
run through the operator service as that user (password login: a wrong one is refused and
audited by the service); the answer is an ``NDATA`` metric ``Command/result`` (JSON).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt

from edgectl.errors import EdgectlError
from edgectl.fleet.config import MqttConfig, parse_broker_url
from edgectl.fleet.sparkplug import DATATYPE, Payload, add_property, quality_code, topic
from edgectl.quality import Quality

__all__ = ["EdgePublisher", "PublisherStats", "read_cursor"]

log = logging.getLogger(__name__)

MAX_IN_FLIGHT: Final = 40  # DDATA messages awaiting PUBACK
CURSOR_WRITE_S: Final = 0.5  # the cursor file is replaced at most this often
STATUS_S: Final = 2.0  # node status (phase, alarms) is looked at this often
StatusFn = Callable[[], dict[str, Any]]


def cursor_path_of(db_path: str | Path) -> Path:
    """Where the publish cursor of a historian lives."""
    return Path(f"{db_path}.mqtt-cursor")


def read_cursor(path: str | Path) -> dict[str, int]:
    """The persisted cursor: ``{"sample_id": last acknowledged row id, "bdseq": last used}``."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        return {"sample_id": int(data["sample_id"]), "bdseq": int(data["bdseq"])}
    except FileNotFoundError:
        return {"sample_id": 0, "bdseq": -1}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EdgectlError(f"{p}: unreadable publish cursor ({exc}); delete it to resend") from exc


def _write_cursor(path: Path, sample_id: int, bdseq: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump({"sample_id": sample_id, "bdseq": bdseq}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class PublisherStats:
    """Counters of a publisher (read from any thread; figures are approximate while live)."""

    def __init__(self) -> None:
        self.connects = 0
        self.messages = 0
        self.samples_sent = 0
        self.samples_historical = 0
        self.samples_skipped = 0  # inside their deadband
        self.commands = 0
        self.commands_refused = 0
        self.cursor = 0

    def to_dict(self) -> dict[str, int]:
        return dict(vars(self))


def _historian_status(con: sqlite3.Connection) -> dict[str, Any]:
    """Phase and active-alarm count from the historian (a standalone publisher's status)."""
    row = con.execute(
        "SELECT message FROM event WHERE kind = 'phase' ORDER BY t DESC, id DESC LIMIT 1"
    ).fetchone()
    phase = ""
    if row and "→" in row[0]:
        phase = row[0].split("→", 1)[1].split(":", 1)[0].strip()
    alarms = con.execute(
        "SELECT COUNT(*) FROM (SELECT name, transition FROM alarm a WHERE id = "
        "(SELECT MAX(id) FROM alarm b WHERE b.name = a.name AND b.transition != 'ack')) "
        "WHERE transition = 'raise'"
    ).fetchone()[0]
    return {"phase": phase, "alarms": int(alarms)}


def _service_status(service: Any) -> dict[str, Any]:
    """Annunciated and suppressed alarm counts from the run's operator service: an alarm in
    alarm (``active``/``acked``) counts in ``alarms`` only while it is enabled and not shelved;
    ``alarms_suppressed`` counts the shelved or disabled alarms (in alarm or not)."""
    from edgectl.operator.users import Identity

    rows = service.query(Identity("mqtt", "viewer", "the MQTT fleet publisher"), "alarm_conditions")
    suppressed = [r for r in rows if r.get("shelved") or not r.get("enabled", True)]
    alarms = [r for r in rows if r["state"] in ("active", "acked") and r not in suppressed]
    return {"alarms": len(alarms), "alarms_suppressed": len(suppressed)}


class EdgePublisher:
    """Publish one historian as Sparkplug edge node ``node`` (see the module docstring).

    Parameters
    ----------
    cfg
        The ``[mqtt]`` section.
    db_path
        The reactor's historian (read through its own read-only connection).
    node
        The edge node id when ``cfg.node`` is unset (the reactor's name).
    service
        The run's :class:`~edgectl.operator.OperatorService` (commands are refused without).
    status
        Returns ``{"phase": str, "alarms": int, "alarms_suppressed": int}``; default: the
        alarm counts of ``service``'s ``alarm_conditions`` (a shelved or disabled alarm is not
        counted in ``alarms``), or without a service read from the historian (which does not
        know shelving: every alarm in alarm is counted).
    phase
        Returns the current phase (a run's recipe); overrides the historian's ``phase``
        events, which record transitions only (not the first phase).
    """

    def __init__(
        self,
        cfg: MqttConfig,
        db_path: str | Path,
        *,
        node: str = "",
        service: Any = None,
        status: StatusFn | None = None,
        phase: Callable[[], str] | None = None,
    ) -> None:
        self.cfg = cfg
        self.node = cfg.node or node
        if not self.node:
            raise EdgectlError("$.mqtt.node: no edge node id (and no reactor name)")
        self.db_path = Path(db_path)
        self.address = parse_broker_url(cfg.broker, "$.mqtt.broker")
        self._password = cfg.password()
        self.service = service
        self._status_fn = status
        self._phase_fn = phase
        self.cursor_path = cursor_path_of(self.db_path)
        cur = read_cursor(self.cursor_path)
        self._acked_id = cur["sample_id"]
        self._bdseq = cur["bdseq"]
        self.stats = PublisherStats()
        self.stats.cursor = self._acked_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()  # pending acks: written by paho callbacks and the thread
        self._pending: OrderedDict[int, int] = OrderedDict()  # mid -> last row id it carries
        self._acked_mids: set[int] = set()
        self._connected = threading.Event()
        self._commands: list[tuple[str, Payload]] = []
        self._seq = 0
        self._t_node = topic(cfg.group, "NDATA", self.node)
        self.backlog_done = threading.Event()

    # -- life --------------------------------------------------------------------------------

    def start(self) -> EdgePublisher:
        """Start the publishing thread (returns self)."""
        self._thread = threading.Thread(target=self._main, name=f"mqtt-{self.node}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Publish what is acknowledged-pending, send NDEATH, disconnect (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def __enter__(self) -> EdgePublisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the thread --------------------------------------------------------------------------

    def _main(self) -> None:
        delay_s = 0.2
        while not self._stop.is_set():
            try:
                self._session()
                delay_s = 0.2
            except (OSError, mqtt.WebsocketConnectionError, ssl.SSLError) as exc:
                log.info("%s: broker %s unreachable: %s", self.node, self.cfg.broker, exc)
            except sqlite3.Error as exc:
                log.warning("%s: historian read failed: %s", self.node, exc)
            except Exception:  # keep publishing whatever one message did; never crash the run
                log.exception("%s: publisher session failed", self.node)
            self._stop.wait(delay_s)
            delay_s = min(delay_s * 2, 5.0)

    def _client(self, bdseq: int) -> mqtt.Client:
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"edgectl-{self.cfg.group}-{self.node}",
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        if self.cfg.username:
            c.username_pw_set(self.cfg.username, self._password or None)
        if self.address.tls:
            c.tls_set(ca_certs=self.cfg.ca_file or None)
        c.will_set(*self._death(bdseq), qos=1)
        c.max_inflight_messages_set(MAX_IN_FLIGHT + 8)
        c.max_queued_messages_set(0)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        return c

    def _death(self, bdseq: int) -> tuple[str, bytes]:
        death = Payload()
        death.timestamp = int(time.time() * 1000)
        m = death.metrics.add()
        m.name, m.datatype, m.long_value = "bdSeq", DATATYPE["uint64"], bdseq
        return topic(self.cfg.group, "NDEATH", self.node), death.SerializeToString()

    def _session(self) -> None:
        """One MQTT connection: birth, replay from the cursor, live, until it drops or stops."""
        self._bdseq = (self._bdseq + 1) % 256
        _write_cursor(self.cursor_path, self._acked_id, self._bdseq)
        c = self._client(self._bdseq)
        self._connected.clear()
        with self._lock:
            self._pending.clear()
            self._acked_mids.clear()
        c.connect(self.address.host, self.address.port, keepalive=self.cfg.keepalive_s)
        con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10.0)
        try:
            deadline = time.monotonic() + 10.0
            while not self._connected.is_set():
                c.loop(0.05)
                if time.monotonic() > deadline or self._stop.is_set():
                    raise OSError("no CONNACK")
            self.stats.connects += 1
            c.subscribe(
                [
                    (topic(self.cfg.group, "NCMD", self.node), 1),
                    (topic(self.cfg.group, "DCMD", self.node, self.cfg.device), 1),
                ]
            )
            self._live(c, con)
        finally:
            con.close()
            with contextlib.suppress(Exception):
                if self._connected.is_set():  # a clean end: the will is not sent, say it
                    info = c.publish(*self._death(self._bdseq), qos=1)
                    end = time.monotonic() + 2.0
                    while not info.is_published() and time.monotonic() < end:
                        c.loop(0.05)
                c.disconnect()
                c.loop(0.1)
            self._advance_cursor(force=True)

    def _live(self, c: mqtt.Client, con: sqlite3.Connection) -> None:
        tags = self._birth(c, con)
        read_id = self._acked_id
        backlog_end = int(con.execute("SELECT COALESCE(MAX(id), 0) FROM sample").fetchone()[0])
        if read_id >= backlog_end:
            self.backlog_done.set()
        last: dict[int, tuple[float, int]] = {}
        status: dict[str, Any] = {}
        next_status = 0.0
        next_cursor = time.monotonic() + CURSOR_WRITE_S
        while not self._stop.is_set():
            c.loop(0.0)
            if not self._connected.is_set():
                return
            self._run_commands(c)
            now = time.monotonic()
            if now >= next_status:
                status = self._publish_status(c, con, status)
                next_status = now + STATUS_S
            if now >= next_cursor:
                self._advance_cursor()
                next_cursor = now + CURSOR_WRITE_S
            with self._lock:
                busy = len(self._pending) >= MAX_IN_FLIGHT
            if busy:
                c.loop(0.02)
                continue
            rows = con.execute(
                "SELECT id, tag_id, t, value, quality FROM sample WHERE id > ? ORDER BY id LIMIT ?",
                (read_id, self.cfg.batch),
            ).fetchall()
            if not rows:
                if read_id >= backlog_end:
                    self.backlog_done.set()
                c.loop(self.cfg.poll_s)
                continue
            if any(r[1] not in tags for r in rows):
                tags = self._birth(c, con, device_only=True)
            read_id = rows[-1][0]
            self._publish_rows(c, rows, tags, last, historical_to=backlog_end)
        # stopping: wait a little for the last acknowledgements
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and self._connected.is_set():
            with self._lock:
                if all(mid in self._acked_mids for mid in self._pending):
                    break
            c.loop(0.05)

    def _next_seq(self) -> int:
        s = self._seq
        self._seq = (self._seq + 1) % 256
        return s

    def _birth(
        self, c: mqtt.Client, con: sqlite3.Connection, *, device_only: bool = False
    ) -> dict[int, tuple[str, str]]:
        """NBIRTH (unless ``device_only``) and DBIRTH with every tag of the historian."""
        tags = {
            int(i): (str(n), str(u))
            for i, n, u in con.execute("SELECT id, name, unit FROM tag ORDER BY id")
        }
        now_ms = int(time.time() * 1000)
        g, n = self.cfg.group, self.node
        if not device_only:
            self._seq = 0
            nb = Payload()
            nb.timestamp, nb.seq = now_ms, self._next_seq()
            for name, dtype, value in (
                ("bdSeq", "uint64", self._bdseq),
                ("Node Control/Rebirth", "boolean", False),
                ("Status/phase", "string", ""),
                ("Status/alarms", "int64", 0),
                ("Status/alarms_suppressed", "int64", 0),
                ("Command/result", "string", ""),
            ):
                m = nb.metrics.add()
                m.name, m.datatype, m.timestamp = name, DATATYPE[dtype], now_ms
                _set_value(m, dtype, value)
            # QoS 1 (the spec says 0): a collector's persistent session then gets every birth
            c.publish(topic(g, "NBIRTH", n), nb.SerializeToString(), qos=1)
        else:
            dd = Payload()
            dd.timestamp, dd.seq = now_ms, self._next_seq()
            c.publish(topic(g, "DDEATH", n, self.cfg.device), dd.SerializeToString(), qos=1)
        db = Payload()
        db.timestamp, db.seq = now_ms, self._next_seq()
        for tag_id, (name, unit) in tags.items():
            m = db.metrics.add()
            m.name, m.alias, m.datatype, m.timestamp = name, tag_id, DATATYPE["double"], now_ms
            m.is_null = True
            if unit:
                add_property(m, "engUnit", unit)
        c.publish(topic(g, "DBIRTH", n, self.cfg.device), db.SerializeToString(), qos=1)
        return tags

    def _publish_rows(
        self,
        c: mqtt.Client,
        rows: list[tuple[Any, ...]],
        tags: dict[int, tuple[str, str]],
        last: dict[int, tuple[float, int]],
        *,
        historical_to: int,
    ) -> None:
        p = Payload()
        p.timestamp = int(time.time() * 1000)
        n_hist = 0
        for row_id, tag_id, t, value, q in rows:
            band = self.cfg.deadband.get(tags[tag_id][0], self.cfg.default_deadband)
            prev = last.get(tag_id)
            if (
                band > 0.0
                and prev is not None
                and value is not None
                and prev[1] == q
                and math.isfinite(prev[0])
                and abs(value - prev[0]) < band
            ):
                self.stats.samples_skipped += 1
                continue
            last[tag_id] = (math.nan if value is None else float(value), q)
            m = p.metrics.add()
            m.alias, m.timestamp, m.datatype = tag_id, round(t * 1000.0), DATATYPE["double"]
            if value is None:
                m.is_null = True
            else:
                m.double_value = value
            if q != Quality.GOOD:
                add_property(m, "Quality", quality_code(q))
            if row_id <= historical_to:
                m.is_historical = True
                n_hist += 1
        last_id = int(rows[-1][0])
        if not p.metrics:  # everything inside its deadband: nothing to wait for
            with self._lock:
                if not self._pending:
                    self._acked_id = max(self._acked_id, last_id)
                else:
                    # after the messages in flight: a pseudo-entry acked at once
                    self._pending[-last_id] = last_id
                    self._acked_mids.add(-last_id)
            return
        p.seq = self._next_seq()
        with self._lock:
            info = c.publish(
                topic(self.cfg.group, "DDATA", self.node, self.cfg.device),
                p.SerializeToString(),
                qos=1,
            )
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise OSError(f"publish failed: {mqtt.error_string(info.rc)}")
            self._pending[info.mid] = last_id
        self.stats.messages += 1
        self.stats.samples_sent += len(p.metrics)
        self.stats.samples_historical += n_hist

    def _publish_status(
        self, c: mqtt.Client, con: sqlite3.Connection, old: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            if self._status_fn is not None:
                status = self._status_fn()
            elif self.service is not None:
                status = {**_historian_status(con), **_service_status(self.service)}
            else:
                status = _historian_status(con)
            if self._phase_fn is not None:
                status = {**status, "phase": self._phase_fn()}
        except (EdgectlError, sqlite3.Error) as exc:
            log.debug("%s: status unavailable: %s", self.node, exc)
            return old
        if status == old:
            return old
        p = Payload()
        p.timestamp = now_ms = int(time.time() * 1000)
        p.seq = self._next_seq()
        for name, dtype, key in (
            ("Status/phase", "string", "phase"),
            ("Status/alarms", "int64", "alarms"),
            ("Status/alarms_suppressed", "int64", "alarms_suppressed"),
        ):
            m = p.metrics.add()
            m.name, m.datatype, m.timestamp = name, DATATYPE[dtype], now_ms
            _set_value(m, dtype, status.get(key, "" if dtype == "string" else 0))
        c.publish(self._t_node, p.SerializeToString(), qos=1)
        return status

    # -- acknowledgements and the cursor -------------------------------------------------------

    def _advance_cursor(self, *, force: bool = False) -> None:
        with self._lock:
            moved = False
            while self._pending:
                mid, last_id = next(iter(self._pending.items()))
                if mid not in self._acked_mids:
                    break
                self._pending.popitem(last=False)
                self._acked_mids.discard(mid)
                self._acked_id = max(self._acked_id, last_id)
                moved = True
            acked = self._acked_id
        if moved or force:
            _write_cursor(self.cursor_path, acked, self._bdseq)
            self.stats.cursor = acked

    def _on_connect(self, c: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if not rc.is_failure:
            self._connected.set()
        else:
            log.warning("%s: broker refused the connection: %s", self.node, rc)

    def _on_disconnect(self, c: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self._connected.clear()

    def _on_publish(self, c: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with self._lock:
            if mid in self._pending:
                self._acked_mids.add(mid)

    def _on_message(self, c: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        p = Payload()
        try:
            p.ParseFromString(bytes(msg.payload))
        except Exception:  # a malformed command: logged, not answered (no id to answer)
            log.warning("%s: undecodable command on %s", self.node, msg.topic)
            return
        self._commands.append((msg.topic, p))

    # -- commands ------------------------------------------------------------------------------

    def _run_commands(self, c: mqtt.Client) -> None:
        while self._commands:
            _topic, p = self._commands.pop(0)
            metrics = {m.name: m for m in p.metrics}
            if "Node Control/Rebirth" in metrics and metrics["Node Control/Rebirth"].boolean_value:
                self._connected.clear()  # the session ends; the next one births again
                return
            if "Command/method" not in metrics:
                continue
            self.stats.commands += 1
            answer = self._command({k: _get_value(m) for k, m in metrics.items()})
            if not answer["ok"]:
                self.stats.commands_refused += 1
            r = Payload()
            r.timestamp = now_ms = int(time.time() * 1000)
            r.seq = self._next_seq()
            m = r.metrics.add()
            m.name, m.datatype, m.timestamp = "Command/result", DATATYPE["string"], now_ms
            m.string_value = json.dumps(answer, default=str)
            c.publish(self._t_node, r.SerializeToString(), qos=1)

    def _command(self, fields: dict[str, Any]) -> dict[str, Any]:
        cid = fields.get("Command/id", "")
        method = str(fields.get("Command/method", ""))
        if self.service is None:
            return {"id": cid, "ok": False, "error": "no controller: this publisher is read-only"}
        try:
            params = json.loads(str(fields.get("Command/params") or "{}"))
            if not isinstance(params, dict):
                raise EdgectlError("Command/params must be a JSON object")
            if fields.get("Command/reason"):
                params.setdefault("reason", str(fields["Command/reason"]))
            identity = self.service.login(
                str(fields.get("Command/user", "")), str(fields.get("Command/password", ""))
            )
            session = self.service.session(identity)
            result = session.call(method, params)
        except (EdgectlError, ValueError, TypeError) as exc:
            return {"id": cid, "ok": False, "error": str(exc), "type": type(exc).__name__}
        return {"id": cid, "ok": True, "result": result}


def _set_value(m: Any, dtype: str, value: Any) -> None:
    if dtype == "string":
        m.string_value = str(value)
    elif dtype == "boolean":
        m.boolean_value = bool(value)
    elif dtype == "double":
        m.double_value = float(value)
    else:
        m.long_value = int(value) & 0xFFFFFFFFFFFFFFFF


def _get_value(m: Any) -> Any:
    which = m.WhichOneof("value")
    return None if which is None else getattr(m, which)

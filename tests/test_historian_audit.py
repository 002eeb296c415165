"""Audit trail: append-only triggers, hash chain, tamper detection, ``edgectl audit`` CLI."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edgectl import cli
from edgectl.errors import InvalidInputError
from edgectl.historian import GENESIS_HASH, AuditTrail, Historian, HistorianError, HistoryReader
from edgectl.historian.audit import canonical_record, record_hash

N_RECORDS = 6


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "reactor.db"
    with Historian(path) as h:
        h.start_run(config_hash="sha256:cfg", time_s=1000.0)
        changes = [
            ("alice", "set", "loops.ph.kp", 0.5, 0.8, "pH oscillates"),
            ("alice", "set", "loops.temp.setpoint_c", 37.0, 30.0, "induction at 30 °C"),
            ("bob", "mode", "loops.do", "auto", "manual", ""),
            ("recipe", "phase", "recipe.phase", "batch", "fed-batch", "DO spike"),
            ("bob", "ack", "alarms.temp_high", None, True, "seen, heater checked"),
            (
                "alice",
                "set",
                "loops.ph.tuning",
                {"kp": 0.8, "ti_s": 120.0},
                {"kp": 0.9, "ti_s": 90.0},
                "retune",
            ),
        ]
        for i, (actor, action, target, old, new, reason) in enumerate(changes):
            h.audit.record(
                actor=actor,
                action=action,
                target=target,
                old=old,
                new=new,
                reason=reason,
                time_s=1000.0 + 60.0 * i,
            )
    return path


@pytest.fixture
def raw(db: Path) -> Iterator[sqlite3.Connection]:
    con = sqlite3.connect(db, isolation_level=None)
    yield con
    con.close()


def verify(db: Path, expected_head: str | None = None):  # type: ignore[no-untyped-def]
    with AuditTrail.open(db, readonly=True) as trail:
        return trail.verify(expected_head=expected_head)


def head_hash(db: Path) -> str:
    with AuditTrail.open(db, readonly=True) as trail:
        head = trail.head()
        assert head is not None
        return head.hash


def drop_triggers(con: sqlite3.Connection) -> list[str]:
    sqls = [r[0] for r in con.execute("SELECT sql FROM sqlite_schema WHERE type='trigger'")]
    for (name,) in con.execute("SELECT name FROM sqlite_schema WHERE type='trigger'").fetchall():
        con.execute(f"DROP TRIGGER {name}")
    return sqls


def restore_triggers(con: sqlite3.Connection, sqls: list[str]) -> None:
    for sql in sqls:
        con.execute(sql)


def rehash(con: sqlite3.Connection, from_seq: int, to_seq: int = 1 << 62) -> None:
    """What a forger who knows the scheme does: recompute the hashes of from_seq..to_seq."""
    rows = con.execute(
        "SELECT seq, t, actor, action, target, old_value, new_value, reason, run_uid "
        "FROM audit WHERE seq BETWEEN ? AND ? ORDER BY seq",
        (from_seq, to_seq),
    ).fetchall()
    prev_row = con.execute("SELECT hash FROM audit WHERE seq = ?", (from_seq - 1,)).fetchone()
    prev = prev_row[0] if prev_row else GENESIS_HASH
    for seq, t, actor, action, target, old, new, reason, run_uid in rows:
        h = record_hash(
            canonical_record(
                seq=seq,
                time_s=t,
                actor=actor,
                action=action,
                target=target,
                old_json=old,
                new_json=new,
                reason=reason,
                run_uid=run_uid,
                prev_hash=prev,
            )
        )
        con.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, seq))
        prev = h


# -- the intact trail -----------------------------------------------------------------------------


def test_records_read_back_with_every_field(db: Path) -> None:
    with HistoryReader(db) as r:
        records = r.audit.records()
        (run,) = r.runs()
    assert [rec.seq for rec in records] == list(range(1, N_RECORDS + 1))
    first = records[0]
    assert (first.actor, first.action, first.target, first.old_value, first.new_value) == (
        "alice",
        "set",
        "loops.ph.kp",
        0.5,
        0.8,
    )
    assert (first.reason, first.time_s, first.run_uid) == ("pH oscillates", 1000.0, run.run_uid)
    assert first.prev_hash == GENESIS_HASH
    assert records[5].new_value == {"kp": 0.9, "ti_s": 90.0}
    for prev, rec in itertools.pairwise(records):
        assert rec.prev_hash == prev.hash
    # The run stop anchored the head of the chain.
    assert run.audit_head == records[-1].hash
    assert (
        first.describe()
    ) == "#1 1970-01-01T00:16:40.000Z alice set loops.ph.kp 0.5 → 0.8 (pH oscillates)"


def test_hash_is_sha256_of_the_documented_canonical_form(db: Path) -> None:
    with AuditTrail.open(db, readonly=True) as trail:
        first = trail.records()[0]
    canonical = (
        '{"action":"set","actor":"alice","new":"0.8","old":"0.5","prev":"' + GENESIS_HASH + '",'
        '"reason":"pH oscillates","run":"' + str(first.run_uid) + '","seq":1,'
        '"t":1000.0,"target":"loops.ph.kp","v":1}'
    )
    assert first.hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert hashlib.sha256(b"edgectl audit trail genesis v1").hexdigest() == GENESIS_HASH


def test_intact_trail_verifies(db: Path) -> None:
    result = verify(db)
    assert result.is_intact
    assert (result.n_records, result.first_bad_seq, result.reason) == (N_RECORDS, None, None)
    assert result.head_hash == head_hash(db)
    assert verify(db, expected_head=result.head_hash).is_intact


def test_empty_trail_verifies_with_genesis_head(tmp_path: Path) -> None:
    Historian(tmp_path / "e.db").close()
    result = verify(tmp_path / "e.db")
    assert result.is_intact
    assert (result.n_records, result.head_hash) == (0, GENESIS_HASH)


def test_appends_continue_the_chain_across_reopen_and_processes(db: Path) -> None:
    with AuditTrail.open(db) as trail:
        rec = trail.record(
            actor="carol",
            action="set",
            target="loops.do.setpoint_pct",
            old=30.0,
            new=40.0,
            reason="higher OUR",
            time_s=5000.0,
        )
    assert rec.seq == N_RECORDS + 1
    assert verify(db).is_intact


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actor": ""}, "actor must not be empty"),
        ({"action": " "}, "action must not be empty"),
        ({"target": 3}, "target must be a string"),
        ({"new": math.nan}, "no NaN or infinity"),
        ({"old": object()}, "cannot be recorded in the audit trail"),
        ({"time_s": math.inf}, "time_s is not finite"),
        ({"reason": None}, "reason must be a string"),
    ],
)
def test_bad_audit_input_is_refused_and_nothing_is_appended(db: Path, kwargs, message) -> None:  # type: ignore[no-untyped-def]
    base = {
        "actor": "alice",
        "action": "set",
        "target": "loops.ph.kp",
        "old": 0.9,
        "new": 1.0,
        "reason": "",
        "time_s": 9000.0,
    }
    with AuditTrail.open(db) as trail:
        with pytest.raises(InvalidInputError, match=message):
            trail.record(**{**base, **kwargs})
        assert len(trail.records()) == N_RECORDS
    assert verify(db).is_intact


def test_readonly_trail_refuses_appends(db: Path) -> None:
    with (
        AuditTrail.open(db, readonly=True) as trail,
        pytest.raises(HistorianError, match="readonly"),
    ):
        trail.record(actor="x", action="set", target="t", old=1, new=2)


# -- the triggers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("UPDATE audit SET reason = 'nothing to see' WHERE seq = 2", "UPDATE refused"),
        ("DELETE FROM audit WHERE seq = 2", "DELETE refused"),
        ("DELETE FROM audit", "DELETE refused"),
        (
            "INSERT INTO audit (seq, t, actor, action, target, old_value, new_value, reason, "
            "prev_hash, hash) VALUES (7, 1.0, 'eve', 'set', 'x', '1', '2', '', 'abc', 'def')",
            "does not extend the hash chain",
        ),
        (
            "INSERT INTO audit (seq, t, actor, action, target, old_value, new_value, reason, "
            "prev_hash, hash) VALUES (20, 1.0, 'eve', 'set', 'x', '1', '2', '', "
            "(SELECT hash FROM audit WHERE seq = 6), 'def')",
            "does not extend the hash chain",
        ),
    ],
)
def test_triggers_refuse_edits(raw: sqlite3.Connection, db: Path, sql: str, message: str) -> None:
    with pytest.raises(sqlite3.IntegrityError, match=message):
        raw.execute(sql)
    assert verify(db).is_intact


# -- tampering by someone who drops the triggers --------------------------------------------------


def _edit(field: str, value: object) -> Callable[[sqlite3.Connection], None]:
    def tamper(con: sqlite3.Connection) -> None:
        con.execute(f"UPDATE audit SET {field} = ? WHERE seq = 3", (value,))

    return tamper


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "reason"),
    [
        (_edit("actor", "mallory"), 3, "stored hash does not match"),
        (_edit("reason", "routine"), 3, "stored hash does not match"),
        (_edit("new_value", '"auto"'), 3, "stored hash does not match"),
        (_edit("target", "loops.temp"), 3, "stored hash does not match"),
        (_edit("t", 1120.5), 3, "stored hash does not match"),
        (_edit("run_uid", None), 3, "stored hash does not match"),
        (_edit("hash", "0" * 64), 3, "stored hash does not match"),
        (_edit("prev_hash", GENESIS_HASH), 3, "stored hash does not match"),
        (_edit("t", "noon"), 3, "malformed record"),
        (
            lambda con: con.execute("DELETE FROM audit WHERE seq = 3"),
            4,
            "sequence gap: expected #3, found #4",
        ),
        (
            lambda con: con.execute("DELETE FROM audit WHERE seq = 1"),
            2,
            "sequence gap: expected #1, found #2",
        ),
        (
            # Swap the contents of records 2 and 4 (seq numbers stay).
            lambda con: con.executescript(
                "CREATE TEMP TABLE a AS SELECT * FROM audit WHERE seq IN (2, 4);"
                "UPDATE audit SET (t, actor, action, target, old_value, new_value, reason, "
                "prev_hash, hash) = (SELECT t, actor, action, target, old_value, new_value, "
                "reason, prev_hash, hash FROM a WHERE a.seq = 6 - audit.seq) "
                "WHERE seq IN (2, 4);"
            ),
            2,
            "stored hash does not match",
        ),
        (
            # Swap the sequence numbers of records 2 and 4: rows come back reordered.
            lambda con: con.executescript(
                "UPDATE audit SET seq = -2 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 4;"
                "UPDATE audit SET seq = 4 WHERE seq = -2;"
            ),
            2,
            "stored hash does not match",
        ),
    ],
)
def test_tampering_is_detected_at_the_first_touched_record(
    raw: sqlite3.Connection,
    db: Path,
    tamper,
    bad_seq: int,
    reason: str,  # type: ignore[no-untyped-def]
) -> None:
    triggers = drop_triggers(raw)
    tamper(raw)
    restore_triggers(raw, triggers)  # cover the tracks: the chain alone must tell
    result = verify(db)
    assert not result.is_intact
    assert result.first_bad_seq == bad_seq
    assert reason in str(result.reason)


def test_forger_who_rehashes_is_caught_by_the_chain_links(
    raw: sqlite3.Connection, db: Path
) -> None:
    triggers = drop_triggers(raw)
    raw.execute("UPDATE audit SET new_value = '0.3' WHERE seq = 1")
    rehash(raw, 1, 1)  # recompute only record 1: record 2 still points at the old hash
    restore_triggers(raw, triggers)
    result = verify(db)
    assert (result.is_intact, result.first_bad_seq) == (False, 2)
    assert "prev_hash does not match the hash of record #1" in str(result.reason)


def test_rewritten_tail_is_caught_by_an_external_head(raw: sqlite3.Connection, db: Path) -> None:
    anchor = head_hash(db)
    triggers = drop_triggers(raw)
    raw.execute("UPDATE audit SET new_value = '0.3' WHERE seq = 1")
    rehash(raw, 1)  # the whole chain recomputed: internally consistent
    restore_triggers(raw, triggers)
    # the head stored in the file (meta.audit_head, run.audit_head) no longer matches
    result = verify(db)
    assert not result.is_intact
    assert "stored head hash of record #6" in str(result.reason)
    # a forger who also rewrites every stored head is caught by a head kept outside the file
    forge_stored_heads(raw)
    assert verify(db).is_intact
    result = verify(db, expected_head=anchor)
    assert not result.is_intact
    assert f"expected head hash {anchor} is not in the chain" in str(result.reason)


def forge_stored_heads(con: sqlite3.Connection) -> None:
    """Point every head stored in the file at the current last record."""
    last = con.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    con.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", (f"{last[0]}:{last[1]}",))
    con.execute("UPDATE run SET audit_head = ?", (last[1],))


def test_truncated_tail_is_caught_by_an_external_head(raw: sqlite3.Connection, db: Path) -> None:
    anchor = head_hash(db)
    triggers = drop_triggers(raw)
    raw.execute("DELETE FROM audit WHERE seq >= 5")
    restore_triggers(raw, triggers)
    # main verified this as intact: the head stored in the same file now catches it
    result = verify(db)
    assert not result.is_intact
    assert str(result.reason).startswith("tail truncated: the file's stored head is record #6")
    assert "chain ends at #4: records #5..#6 removed" in str(result.reason)
    forge_stored_heads(raw)
    assert verify(db).is_intact  # a shorter chain with forged heads is a valid chain
    assert not verify(db, expected_head=anchor).is_intact


def test_truncated_tail_is_caught_by_a_run_stop_head(raw: sqlite3.Connection, db: Path) -> None:
    triggers = drop_triggers(raw)
    raw.execute("DELETE FROM audit WHERE seq >= 5")
    restore_triggers(raw, triggers)
    last = raw.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    raw.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", (f"{last[0]}:{last[1]}",))
    result = verify(db)
    assert not result.is_intact
    assert "stopped with audit head" in str(result.reason)
    assert "not in the chain" in str(result.reason)


def test_inserted_record_is_detected(raw: sqlite3.Connection, db: Path) -> None:
    triggers = drop_triggers(raw)
    raw.execute("UPDATE audit SET seq = seq + 100 WHERE seq >= 3")
    raw.execute("UPDATE audit SET seq = seq - 99 WHERE seq >= 103")
    prev = raw.execute("SELECT hash FROM audit WHERE seq = 2").fetchone()[0]
    fields = dict(
        seq=3,
        time_s=1110.0,
        actor="alice",
        action="set",
        target="loops.ph.kp",
        old_json="0.8",
        new_json="5.0",
        reason="",
        run_uid=None,
        prev_hash=prev,
    )
    h = record_hash(canonical_record(**fields))  # type: ignore[arg-type]
    raw.execute(
        "INSERT INTO audit VALUES (3, 1110.0, 'alice', 'set', 'loops.ph.kp', '0.8', '5.0', '', "
        "NULL, ?, ?)",
        (prev, h),
    )
    restore_triggers(raw, triggers)
    result = verify(db)
    assert (result.is_intact, result.first_bad_seq) == (False, 4)


def test_dropped_triggers_alone_fail_verification(raw: sqlite3.Connection, db: Path) -> None:
    drop_triggers(raw)
    result = verify(db)
    assert not result.is_intact
    assert result.first_bad_seq is None
    assert "append-only triggers missing" in str(result.reason)


def test_changed_genesis_fails_verification(raw: sqlite3.Connection, db: Path) -> None:
    raw.execute("UPDATE meta SET value = 'x' WHERE key = 'audit_genesis'")
    result = verify(db)
    assert not result.is_intact
    assert "genesis" in str(result.reason)


# -- CLI ------------------------------------------------------------------------------------------


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    # Only the historian's sub-commands: the others live on other branches.
    monkeypatch.setattr(cli, "COMMANDS", ("audit", "history"))

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_cli_verify_intact_exits_0(run_cli, db: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run_cli("audit", "verify", str(db))
    assert code == 0
    assert f"audit trail intact: {N_RECORDS} records, head {head_hash(db)}" in out


def test_cli_verify_tampered_exits_1_naming_the_record(run_cli, raw, db: Path) -> None:  # type: ignore[no-untyped-def]
    triggers = drop_triggers(raw)
    raw.execute("UPDATE audit SET new_value = '0.2' WHERE seq = 4")
    restore_triggers(raw, triggers)
    code, _, err = run_cli("audit", "verify", str(db))
    assert code == 1
    assert "audit trail NOT intact: record #4: stored hash does not match" in err


def test_cli_verify_with_head(run_cli, raw, db: Path) -> None:  # type: ignore[no-untyped-def]
    anchor = head_hash(db)
    assert run_cli("audit", "verify", str(db), "--head", anchor)[0] == 0
    triggers = drop_triggers(raw)
    raw.execute("DELETE FROM audit WHERE seq = 6")
    restore_triggers(raw, triggers)
    code, _, err = run_cli("audit", "verify", str(db), "--head", anchor)
    assert code == 1
    assert "tail truncated" in err
    assert "record #6 removed" in err
    forge_stored_heads(raw)
    assert run_cli("audit", "verify", str(db))[0] == 0
    code, _, err = run_cli("audit", "verify", str(db), "--head", anchor)
    assert code == 1
    assert "is not in the chain" in err


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "historian database not found"),
        (lambda p: p.write_bytes(b"x" * 4096), "not a SQLite database"),
    ],
)
def test_cli_verify_unreadable_file_exits_2(run_cli, tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.db"
    make(path)
    code, _, err = run_cli("audit", "verify", str(path))
    assert code == 2
    assert err.startswith("edgectl audit: error: ")
    assert message in err


def test_cli_show_prints_records_and_head(run_cli, db: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run_cli("audit", "show", str(db), "--last", "2")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith("#5 ")
    assert "bob ack alarms.temp_high null → true" in lines[0]
    assert lines[1].startswith("#6 ")
    assert lines[2] == f"head: #6 {head_hash(db)}"
    code, out, _ = run_cli("audit", "show", str(db), "--json", "--target", "loops.ph.kp")
    (only,) = [json.loads(line) for line in out.splitlines()]
    assert (only["seq"], only["old_value"], only["new_value"]) == (1, 0.5, 0.8)


def test_cli_history_export_and_tags(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "h.db"
    with Historian(path) as h:
        for i in range(3):
            h.record_scan(float(i), {"temp_c": 37.0 + i, "ph": 7.0})
    out_csv = tmp_path / "out.csv"
    code, _, err = run_cli(
        "history", "export", str(path), "-o", str(out_csv), "--tags", "temp_c", "--layout", "wide"
    )
    assert code == 0
    assert "wrote 3 rows (wide)" in err
    assert out_csv.read_text().splitlines() == [
        "time_s,time_utc,temp_c",
        "0.0,1970-01-01T00:00:00.000Z,37.0",
        "1.0,1970-01-01T00:00:01.000Z,38.0",
        "2.0,1970-01-01T00:00:02.000Z,39.0",
    ]
    code, out, _ = run_cli("history", "tags", str(path))
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["tag", "ph", "temp_c"]
    code, _, err = run_cli("history", "export", str(path), "-o", "-", "--tags", "nope")
    assert code == 2
    assert "unknown tag 'nope'" in err


def test_threads_and_another_process_append_to_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    child = (
        "import sys\n"
        "from edgectl.historian import AuditTrail\n"
        "with AuditTrail.open(sys.argv[1]) as trail:\n"
        "    for i in range(30):\n"
        "        trail.record(actor='other-process', action='set', target='loops.x.kp',"
        " old=i, new=i + 1)\n"
    )
    with Historian(path) as h:
        proc = subprocess.Popen([sys.executable, "-c", child, str(path)])

        def append(name: str) -> None:
            for i in range(25):
                h.audit.record(actor=name, action="set", target="loops.ph.kp", old=i, new=i + 1)
                h.record("ph", 7.0, float(i))

        threads = [threading.Thread(target=append, args=(f"t{k}",)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert proc.wait(timeout=60) == 0
        records = h.audit.records()
    assert [r.seq for r in records] == list(range(1, 131))
    assert sum(r.actor == "other-process" for r in records) == 30
    assert verify(path).is_intact


# -- time labels and the checksummed export (issue 12) -------------------------------------------


def test_show_labels_simulated_times(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "sim.db"
    with Historian(db) as h:
        h.start_run(time_s=2_000_000_000.0, clock="sim")  # an accelerated run's axis
        h.audit.record(
            actor="alice", action="set", target="loops.ph.kp", old=5, new=6, time_s=2_000_003_600.5
        )
    with Historian(db) as h:
        h.start_run(time_s=1_700_000_000.0)  # wall clock
        h.audit.record(
            actor="bob", action="set", target="loops.ph.kp", old=6, new=7, time_s=1_700_000_060.0
        )
    code, out, _ = run_cli("audit", "show", str(db))
    assert code == 0
    first, second = out.splitlines()[:2]
    assert first.startswith("#1 sim t=+3600.500 s alice set loops.ph.kp 5 → 6")
    assert second.startswith("#2 2023-11-14T22:14:20.000Z bob set")  # main printed both as UTC
    code, out, _ = run_cli("audit", "show", str(db), "--json")
    assert [json.loads(line)["clock"] for line in out.splitlines()] == ["sim", "wall"]
    with HistoryReader(db) as r:
        assert [run.clock for run in r.runs()] == ["sim", "wall"]


def test_start_run_refuses_an_unknown_clock_kind(tmp_path: Path) -> None:
    with Historian(tmp_path / "x.db") as h, pytest.raises(InvalidInputError, match="clock"):
        h.start_run(clock="lunar")  # type: ignore[arg-type]


def test_export_is_checksummed_and_verified(run_cli, db: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "audit.jsonl"
    code, _, err = run_cli("audit", "export", str(db), "-o", str(out))
    assert code == 0
    assert f"wrote {N_RECORDS} records" in err
    sums = tmp_path / "audit.jsonl.sha256"
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert sums.read_text() == f"{digest}  audit.jsonl\n"  # sha256sum -c format
    code, text, _ = run_cli("audit", "verify", "--export", str(out))
    assert code == 0
    assert f"export intact: {N_RECORDS} records, head {head_hash(db)}" in text
    assert run_cli("audit", "verify", str(db), "--export", str(out))[0] == 0
    # an edited export fails on its checksum
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:-1]))  # the last record cut off
    code, _, err = run_cli("audit", "verify", "--export", str(out))
    assert code == 1
    assert "the file changed" in err
    # re-checksummed by the forger: the header's count and head still catch it
    sums.write_text(f"{hashlib.sha256(out.read_bytes()).hexdigest()}  audit.jsonl\n")
    code, _, err = run_cli("audit", "verify", "--export", str(out))
    assert code == 1
    assert f"header says {N_RECORDS} records" in err

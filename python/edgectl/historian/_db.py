"""The historian's SQLite schema, connection settings and input validation.

One file per run history (``reactor.db``) holds every table. Times are seconds (float) on the
caller's time base: Unix time for a real run, the simulated epoch for a simulated one. The
schema is versioned with ``PRAGMA user_version`` and tagged with ``PRAGMA application_id`` so a
file that is not an edgectl historian is refused with a clear message instead of being written.

Durability (https://www.sqlite.org/wal.html, https://www.sqlite.org/pragma.html#pragma_synchronous):
in WAL mode a commit appends the changed pages and a commit record to the ``-wal`` file; with
``synchronous=NORMAL`` the WAL is fsynced only at checkpoints. A process that dies (kill -9,
crash, OOM) loses nothing committed, because the written pages are already in the OS page cache;
an OS crash or power cut may roll back the commits since the last checkpoint, but never corrupts
the file (each commit record carries a checksum over its frames; a torn tail is ignored on
recovery). The sample writer uses NORMAL: one fsync per commit on an SD card costs milliseconds
and wears the card, and a power cut already costs the samples of the outage. Audit records use
a connection with ``synchronous=FULL`` (an fsync of the WAL at each commit), so an acknowledged
operator change survives a power cut too.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sqlite3
import stat
from pathlib import Path
from typing import Final

from edgectl.errors import EdgectlError, InvalidInputError
from edgectl.quality import Quality

__all__ = [
    "APPLICATION_ID",
    "ROLLUP_S",
    "ROLLUP_UPSERT",
    "SCHEMA_VERSION",
    "HistorianError",
    "Quality",
    "check_time",
    "check_value",
    "connect",
    "create_private",
]

# "EDGH" in ASCII: marks the file as an edgectl historian (https://www.sqlite.org/fileformat.html).
APPLICATION_ID: Final = 0x45444748
# 2: run.clock (wall or sim) and the audit head kept in meta (trigger audit_head_tracks).
# 3: sample_rollup, the min/max of each tag per minute (a long trend reads it, not every sample).
SCHEMA_VERSION: Final = 3
#: the span of one sample_rollup block (seconds of historian time)
ROLLUP_S: Final = 60.0
# the block of a sample time t: floor(t / ROLLUP_S) (CAST truncates toward zero)
_BLOCK_OF_T: Final = (
    f"(CAST(t / {ROLLUP_S} AS INTEGER)"
    f" - (t < 0 AND t / {ROLLUP_S} != CAST(t / {ROLLUP_S} AS INTEGER)))"
)
#: the upsert that folds the samples with id > ? into their blocks (the writer runs it in the
#: commit that inserts them, so the rollup is never behind the samples)
ROLLUP_UPSERT: Final = (
    "INSERT INTO sample_rollup (tag_id, b, t_first, t_last, vmin, vmax, n) "
    f"SELECT tag_id, {_BLOCK_OF_T} AS blk, MIN(t), MAX(t), MIN(value), MAX(value), COUNT(*) "
    "FROM sample NOT INDEXED WHERE id > ? AND value IS NOT NULL GROUP BY tag_id, blk "
    "ON CONFLICT(tag_id, b) DO UPDATE SET t_first = MIN(t_first, excluded.t_first), "
    "t_last = MAX(t_last, excluded.t_last), vmin = MIN(vmin, excluded.vmin), "
    "vmax = MAX(vmax, excluded.vmax), n = n + excluded.n"
)
# How long a connection waits for another writer (the audit connection, a second process)
# before failing with "database is locked".
BUSY_TIMEOUT_MS: Final = 10_000

_TAG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:/-]{0,127}$")


class HistorianError(EdgectlError, OSError):
    """The historian database cannot be opened, written or read; names the file."""


_QUALITY_BY_NAME: Final = {q.name.lower(): q for q in Quality}
_QUALITY_BY_CODE: Final = {int(q): q for q in Quality}


def check_quality(quality: object, where: str) -> Quality:
    """Map a :class:`Quality`, its integer code or its name ("good") to a :class:`Quality`."""
    if isinstance(quality, Quality):
        return quality
    if isinstance(quality, str):
        q = _QUALITY_BY_NAME.get(quality.lower())
    elif isinstance(quality, int) and not isinstance(quality, bool):
        q = _QUALITY_BY_CODE.get(quality)
    else:
        q = None
    if q is None:
        known = ", ".join(f"{q.value}={q.name.lower()}" for q in Quality)
        raise InvalidInputError(f"{where}: unknown quality code {quality!r} (known: {known})")
    return q


def check_time(time_s: object, where: str) -> float:
    """A finite time in seconds, or :class:`InvalidInputError` naming ``where``."""
    if isinstance(time_s, bool) or not isinstance(time_s, int | float):
        try:
            t = float(time_s)  # type: ignore[arg-type]  # numpy scalars
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"{where}: time_s must be a number of seconds, got {time_s!r}"
            ) from None
    else:
        t = float(time_s)
    if not math.isfinite(t):
        raise InvalidInputError(f"{where}: time_s is not finite (got {t})")
    return t


def check_value(value: object, where: str) -> float:
    """A sample value as float (may be non-finite); refuses strings, None and other objects."""
    if isinstance(value, float):
        return value
    if isinstance(value, str | bytes) or value is None:
        raise InvalidInputError(f"{where}: value must be a number, got {value!r}")
    try:
        return float(value)  # type: ignore[arg-type]  # int, bool, numpy scalars
    except (TypeError, ValueError):
        raise InvalidInputError(f"{where}: value must be a number, got {value!r}") from None


def check_tag_name(name: object) -> str:
    """A tag name: a letter or ``_`` then letters, digits and ``_ . : / -``, up to 128 chars."""
    if not isinstance(name, str) or not _TAG_NAME.match(name):
        raise InvalidInputError(
            f"tag name {name!r} is not valid: use a letter or '_' then letters, digits "
            "or '_ . : / -' (at most 128 characters), e.g. 'temp_c' or 'vessel.ph'"
        )
    return name


def check_text(value: object, name: str, where: str, *, allow_empty: bool = False) -> str:
    """A string field; refuses non-strings and, unless allowed, empty strings."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{where}: {name} must be a string, got {value!r}")
    if not allow_empty and not value.strip():
        raise InvalidInputError(f"{where}: {name} must not be empty")
    return value


# The finite samples of each tag per block of ROLLUP_S seconds (b = floor(t / ROLLUP_S)): first
# and last time, min and max value, count. Written with the samples, in one commit.
_ROLLUP_TABLE: Final = """
CREATE TABLE sample_rollup (
    tag_id  INTEGER NOT NULL,
    b       INTEGER NOT NULL,
    t_first REAL NOT NULL,
    t_last  REAL NOT NULL,
    vmin    REAL NOT NULL,
    vmax    REAL NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (tag_id, b)
) WITHOUT ROWID;
"""

_SCHEMA: Final = (
    """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE run (
    id              INTEGER PRIMARY KEY,
    run_uid         TEXT NOT NULL UNIQUE,
    config_hash     TEXT,
    config_path     TEXT,
    started_s       REAL NOT NULL,
    stopped_s       REAL,
    stop_reason     TEXT,
    resumed_from    TEXT,
    edgectl_version TEXT NOT NULL,
    hostname        TEXT NOT NULL,
    pid             INTEGER NOT NULL,
    audit_head      TEXT,    -- audit chain head hash at stop: an anchor to keep elsewhere too
    clock           TEXT     -- 'wall' (Unix time) or 'sim' (a simulated time axis)
);

CREATE TABLE tag (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    unit        TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT ''
);

-- One row per sample; value NULL when the reading was not finite (quality then BAD or worse).
CREATE TABLE sample (
    id      INTEGER PRIMARY KEY,
    tag_id  INTEGER NOT NULL REFERENCES tag(id),
    t       REAL NOT NULL,
    value   REAL,
    quality INTEGER NOT NULL CHECK (quality BETWEEN 0 AND 3)
);
CREATE INDEX sample_tag_t ON sample(tag_id, t);

"""
    + _ROLLUP_TABLE
    + """
CREATE TABLE event (
    id      INTEGER PRIMARY KEY,
    run_id  INTEGER REFERENCES run(id),
    t       REAL NOT NULL,
    kind    TEXT NOT NULL,
    source  TEXT NOT NULL,
    message TEXT NOT NULL,
    details TEXT            -- JSON object or NULL
);
CREATE INDEX event_t ON event(t);

CREATE TABLE alarm (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER REFERENCES run(id),
    t          REAL NOT NULL,
    name       TEXT NOT NULL,
    transition TEXT NOT NULL CHECK (transition IN ('raise', 'clear', 'ack')),
    severity   TEXT NOT NULL,
    message    TEXT NOT NULL,
    tag        TEXT,
    value      REAL,
    actor      TEXT
);
CREATE INDEX alarm_t ON alarm(t);
CREATE INDEX alarm_name_t ON alarm(name, t);

-- Latest snapshot per name (controller state for restart-resume); replaced atomically.
CREATE TABLE state (
    name    TEXT PRIMARY KEY,
    t       REAL NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('bytes', 'json')),
    data    BLOB NOT NULL,
    version INTEGER NOT NULL
) WITHOUT ROWID;

-- Append-only, hash-chained audit trail (see edgectl.historian.audit).
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    t         REAL NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    old_value TEXT NOT NULL,   -- canonical JSON
    new_value TEXT NOT NULL,   -- canonical JSON
    reason    TEXT NOT NULL,
    run_uid   TEXT,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit trail is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit trail is append-only: DELETE refused');
END;
-- An insert must extend the chain: next sequence number, previous record's hash.
CREATE TRIGGER audit_insert_extends_chain BEFORE INSERT ON audit
WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit)
  OR NEW.prev_hash IS NOT COALESCE(
         (SELECT hash FROM audit ORDER BY seq DESC LIMIT 1),
         (SELECT value FROM meta WHERE key = 'audit_genesis'))
BEGIN
    SELECT RAISE(ABORT, 'audit trail is append-only: insert does not extend the hash chain');
END;
"""
    + """
CREATE TRIGGER audit_head_tracks AFTER INSERT ON audit
BEGIN
    INSERT OR REPLACE INTO meta(key, value) VALUES ('audit_head', NEW.seq || ':' || NEW.hash);
END;
"""
)

# Version 1 to 2, in one transaction: what _SCHEMA adds (the head starts at the current last
# record, or 0 and the genesis value for an empty trail).
_MIGRATE_1_2: Final = """
ALTER TABLE run ADD COLUMN clock TEXT;
CREATE TRIGGER audit_head_tracks AFTER INSERT ON audit
BEGIN
    INSERT OR REPLACE INTO meta(key, value) VALUES ('audit_head', NEW.seq || ':' || NEW.hash);
END;
INSERT OR REPLACE INTO meta(key, value) SELECT 'audit_head', coalesce(
    (SELECT seq || ':' || hash FROM audit ORDER BY seq DESC LIMIT 1),
    '0:' || (SELECT value FROM meta WHERE key = 'audit_genesis'));
"""

# Version 2 to 3: the rollup, built from the samples already there.
_MIGRATE_2_3: Final = _ROLLUP_TABLE + ROLLUP_UPSERT.replace("id > ?", "id > 0") + ";\n"

#: the script that upgrades each version to the next
_MIGRATIONS: Final = {1: _MIGRATE_1_2, 2: _MIGRATE_2_3}

AUDIT_TRIGGERS_V1: Final = ("audit_insert_extends_chain", "audit_no_delete", "audit_no_update")
AUDIT_TRIGGERS: Final = (*AUDIT_TRIGGERS_V1, "audit_head_tracks")


def create_private(path: Path, mode: int = 0o600) -> None:
    """Create ``path`` empty with exactly ``mode`` (whatever the umask) when it is missing; an
    existing file this process owns loses the permission bits beyond ``mode`` (databases of
    earlier versions were created 0644). SQLite gives ``-wal`` and ``-shm`` the database's mode.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except FileExistsError:
        with contextlib.suppress(OSError):
            st = path.stat()
            extra = stat.S_IMODE(st.st_mode) & ~mode
            if st.st_uid == os.getuid() and extra:
                os.chmod(path, stat.S_IMODE(st.st_mode) & mode)
        return
    except OSError as exc:
        raise HistorianError(f"{path}: cannot create: {exc}") from exc
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode was narrowed by the umask; set it exactly
    finally:
        os.close(fd)


def connect(
    path: str | Path,
    *,
    readonly: bool = False,
    synchronous: str = "NORMAL",
    create: bool = False,
    genesis_hash: str | None = None,
    file_mode: int | None = None,
) -> sqlite3.Connection:
    """Open ``path`` as an edgectl historian database and apply the connection settings.

    Parameters
    ----------
    path
        The database file.
    readonly
        Open with ``mode=ro`` (queries, ``audit verify``): nothing can be written.
    synchronous
        ``"NORMAL"`` or ``"FULL"``; see the module docstring for the trade-off.
    create
        Create the file and the schema when missing (never with ``readonly``).
    genesis_hash
        The chain's genesis value written into a new database's ``meta`` table.
    file_mode
        With ``create``: the mode of the database file (see :func:`create_private`).

    Raises
    ------
    HistorianError
        The file is missing (and ``create`` is false), is not SQLite, is not an edgectl
        historian, or has a newer schema version.
    """
    p = Path(path)
    if synchronous not in ("NORMAL", "FULL"):
        raise InvalidInputError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
    if not p.exists() and (readonly or not create):
        raise HistorianError(f"{p}: historian database not found")
    if create and not readonly:
        create_private(p, 0o600 if file_mode is None else file_mode)
    uri = f"{p.resolve().as_uri()}?mode={'ro' if readonly else 'rwc'}"
    try:
        con = sqlite3.connect(
            uri,
            uri=True,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
            isolation_level=None,
        )
    except sqlite3.Error as exc:
        raise HistorianError(f"{p}: cannot open: {exc}") from exc
    try:
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        app_id, version = _identify(con, p)
        if not readonly:
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise HistorianError(f"{p}: cannot switch to WAL journal mode (got {mode!r})")
            con.execute(f"PRAGMA synchronous = {synchronous}")
            # Bound the -wal file after checkpoints (it is reused, not shrunk, otherwise).
            con.execute("PRAGMA journal_size_limit = 67108864")
            con.execute("PRAGMA foreign_keys = ON")
            if app_id == 0 and version == 0:
                _create_schema(con, p, genesis_hash)
            else:
                for v in range(version, SCHEMA_VERSION):
                    _migrate(con, p, v, _MIGRATIONS[v])
        elif app_id == 0 and version == 0:
            raise HistorianError(f"{p}: empty database, not an edgectl historian")
    except BaseException:
        con.close()
        raise
    return con


def _identify(con: sqlite3.Connection, p: Path) -> tuple[int, int]:
    try:
        app_id = int(con.execute("PRAGMA application_id").fetchone()[0])
        version = int(con.execute("PRAGMA user_version").fetchone()[0])
        n_tables = int(con.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise HistorianError(f"{p}: not a SQLite database ({exc})") from exc
    if app_id == 0 and version == 0 and n_tables > 0:
        raise HistorianError(f"{p}: a SQLite database, but not an edgectl historian")
    if app_id not in (0, APPLICATION_ID):
        raise HistorianError(
            f"{p}: not an edgectl historian (application_id {app_id:#x}, "
            f"expected {APPLICATION_ID:#x})"
        )
    if version > SCHEMA_VERSION:
        raise HistorianError(
            f"{p}: historian schema version {version} is newer than this edgectl "
            f"understands ({SCHEMA_VERSION}); upgrade edgectl"
        )
    return app_id, version


def _create_schema(con: sqlite3.Connection, p: Path, genesis_hash: str | None) -> None:
    if genesis_hash is None:
        raise HistorianError(f"{p}: internal error: no genesis hash for a new database")
    try:
        con.execute("BEGIN IMMEDIATE")
        # Another process may have created it between our check and the lock.
        if int(con.execute("PRAGMA user_version").fetchone()[0]) == 0:
            for statement in _split_sql(_SCHEMA):
                con.execute(statement)
            con.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?), ('audit_genesis', ?), "
                "('audit_head', ?)",
                (str(SCHEMA_VERSION), genesis_hash, f"0:{genesis_hash}"),
            )
            con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        con.execute("COMMIT")
    except sqlite3.Error as exc:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise HistorianError(f"{p}: cannot create the historian schema: {exc}") from exc


def _migrate(con: sqlite3.Connection, p: Path, version: int, script: str) -> None:
    """Upgrade the schema from ``version`` to the next in one transaction (a no-op when
    another process did it first)."""
    try:
        con.execute("BEGIN IMMEDIATE")
        if int(con.execute("PRAGMA user_version").fetchone()[0]) == version:
            for statement in _split_sql(script):
                con.execute(statement)
            con.execute(f"PRAGMA user_version = {version + 1}")
        con.execute("COMMIT")
    except sqlite3.Error as exc:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise HistorianError(
            f"{p}: cannot upgrade the historian schema to version {version + 1}: {exc}"
        ) from exc


def _split_sql(script: str) -> list[str]:
    """Split the schema into statements; triggers (BEGIN ... END;) stay whole."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        if line.strip().startswith("--") or not line.strip():
            continue
        current.append(line)
        text = "\n".join(current)
        if sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    return statements

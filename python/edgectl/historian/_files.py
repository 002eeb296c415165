"""Files beside a historian database: the writer's exclusive lock, private file modes.

A running :class:`~edgectl.historian.Historian` holds ``<db>.lock`` locked with
``fcntl.flock(LOCK_EX | LOCK_NB)`` for its whole life, so a second controller (another process,
or a second Historian in this one) on the same database refuses to start instead of resuming
from the live run's state and writing into the same file. The lock file holds the holder's pid,
host and start time, for the error message. The kernel releases the lock when the holder dies
(kill -9 included), so a stale lock file never blocks a restart. Readers (``HistoryReader``,
``edgectl history``, ``edgectl audit verify``) do not take the lock.

Every file the historian creates (the database, whose mode SQLite copies to ``-wal`` and
``-shm``, the lock file, the spill file) is created with mode 0600 (or 0640 when asked),
whatever the process umask: the trail and the samples are readable by the controller's user
only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path
from typing import Final

from edgectl.historian._db import HistorianError

__all__ = ["FILE_MODES", "WriterLock", "check_file_mode", "lock_path"]

# Allowed modes of the files the historian creates: owner only, or owner + group read.
FILE_MODES: Final = (0o600, 0o640)


def check_file_mode(mode: object) -> int:
    """``mode`` if it is one of :data:`FILE_MODES`, else :class:`HistorianError`."""
    if mode not in FILE_MODES:
        raise HistorianError(
            f"historian file_mode must be 0o600 or 0o640, got {mode!r}"
            + (f" ({mode:#o})" if isinstance(mode, int) else "")
        )
    return int(mode)


def lock_path(db: Path) -> Path:
    """The lock file of database ``db`` (``reactor.db.lock``)."""
    return db.with_name(db.name + ".lock")


class WriterLock:
    """The exclusive writer lock of one database, held until :meth:`release`.

    Raises
    ------
    HistorianError
        Another historian holds the lock (the message names the database and the holder's pid
        and host), or the lock file cannot be created.
    """

    def __init__(self, db: Path, *, mode: int = 0o600) -> None:
        self.path = lock_path(db)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
        except OSError as exc:
            raise HistorianError(f"{db}: cannot open the lock file {self.path}: {exc}") from exc
        with contextlib.suppress(OSError):  # a lock file owned by someone else still locks
            os.fchmod(fd, mode)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise HistorianError(
                f"{db}: database is in use by another historian ({holder}); stop that "
                "controller first or use another --db"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise HistorianError(f"{db}: cannot lock {self.path}: {exc}") from exc
        self._fd: int | None = fd
        text = (
            f"pid {os.getpid()} on {socket.gethostname()} since "
            f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
        )
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, text.encode(), 0)

    @property
    def held(self) -> bool:
        """True until :meth:`release`."""
        return self._fd is not None

    def release(self) -> None:
        """Release the lock (idempotent). The file stays: removing it would let a process that
        opened it just before lock an unlinked inode while a third one creates a new file."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 256, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "holder unknown: it has not written its pid yet"

"""The spill file: a bounded second store for queued items the database cannot take.

When commits fail (disk full, read-only file system, database locked, I/O error) the writer
thread moves queued items out of memory into ``<db>.spill`` (or ``spill_path``), so memory stays
bounded and nothing already recorded is lost. When commits succeed again the writer replays the
spill file, oldest first, before anything newer, in chunks; each chunk is committed together with
the spill position in table ``meta`` (key ``spill``), so a replay interrupted by a crash resumes
where it stopped and never inserts an item twice. A Historian opened on a database with a
non-empty spill file (left by a run that stopped on a failing disk) replays it first.

The file is preallocated to its bound when the Historian opens (``posix_fallocate``): on a disk
that fills up later, writes inside the reservation still succeed, which is what makes a spill
file beside the database useful on a full disk.

Format: a 64-byte header line ``EDGH-SPILL 1 <generation>`` (16 hex digits, padded with spaces),
then one line per item ``<generation> <JSON array>``; the rest of the reservation is zeros. A
new generation is written when the file has been replayed completely, so older lines left in the
reservation are recognised and ignored, as is a torn last line.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

__all__ = ["SpillFile", "spill_path_for"]

_MAGIC: Final = b"EDGH-SPILL 1 "
_HEADER_BYTES: Final = 64
_STATE_KIND: Final = 3  # store._STATE: state data are bytes, written as base64


def spill_path_for(db: Path) -> Path:
    """The default spill file of database ``db`` (``reactor.db.spill``)."""
    return db.with_name(db.name + ".spill")


def _encode(item: tuple[Any, ...]) -> bytes:
    if item[0] == _STATE_KIND:
        item = (*item[:4], base64.b64encode(item[4]).decode("ascii"))
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _decode(data: bytes) -> tuple[Any, ...]:
    item = json.loads(data)
    if not isinstance(item, list) or not item or not isinstance(item[0], int):
        raise ValueError("not a queued item")
    if item[0] == _STATE_KIND:
        item[4] = base64.b64decode(item[4])
    return tuple(item)


class SpillFile:
    """Append and replay queued items in one bounded file (writer thread only).

    Parameters
    ----------
    path
        The file; created with ``mode`` when missing.
    max_bytes
        Bound of the file, header included; reserved on disk at open when possible.
    mode
        File mode of a new file (0600 or 0640).

    Raises
    ------
    OSError
        The file cannot be created or read (the caller reports it and works without a spill).
    """

    def __init__(self, path: Path, *, max_bytes: int, mode: int) -> None:
        self.path = path
        self.max_bytes = max(max_bytes, _HEADER_BYTES + 1024)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
        try:
            os.fchmod(fd, mode)
            st = os.fstat(fd)
            self._fd = fd
            self.generation = ""
            self.write_offset = _HEADER_BYTES
            self.read_offset = _HEADER_BYTES
            self.n_items = 0  # items written and not yet replayed
            header = os.pread(fd, _HEADER_BYTES, 0)
            if st.st_size >= _HEADER_BYTES and header.startswith(_MAGIC):
                self.generation = header[len(_MAGIC) : len(_MAGIC) + 16].decode("ascii", "replace")
                self._scan_existing()
            else:
                self._new_generation()
            self.reserved = self._reserve()
        except BaseException:
            os.close(fd)
            raise

    # -- state ---------------------------------------------------------------------------------

    def _reserve(self) -> bool:
        try:
            os.posix_fallocate(self._fd, 0, self.max_bytes)
        except OSError:
            return False
        return True

    def _new_generation(self) -> None:
        self.generation = secrets.token_hex(8)
        header = (_MAGIC + self.generation.encode("ascii")).ljust(_HEADER_BYTES - 1) + b"\n"
        os.pwrite(self._fd, header, 0)
        self.write_offset = self.read_offset = _HEADER_BYTES
        self.n_items = 0

    def _scan_existing(self) -> None:
        """Find the end of the current generation's lines (a left-over file)."""
        prefix = self.generation.encode("ascii") + b" "
        offset = _HEADER_BYTES
        n = 0
        for line in self._lines_from(_HEADER_BYTES):
            if not line.endswith(b"\n") or not line.startswith(prefix):
                break
            try:
                _decode(line[len(prefix) : -1])
            except ValueError:
                break
            offset += len(line)
            n += 1
        self.write_offset = offset
        self.read_offset = _HEADER_BYTES
        self.n_items = n

    def _lines_from(self, offset: int, limit: int | None = None) -> Iterable[bytes]:
        end = self.max_bytes if limit is None else limit
        buf = b""
        pos = offset
        while pos < end:
            chunk = os.pread(self._fd, min(1 << 16, end - pos), pos)
            if not chunk:
                break
            pos += len(chunk)
            buf += chunk
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    break
                yield buf[: nl + 1]
                buf = buf[nl + 1 :]
            if buf.startswith(b"\x00"):
                return
        if buf:
            yield buf

    def resume_from(self, position: str | None) -> None:
        """Skip the items already committed: ``position`` is ``meta.spill`` (``gen:offset``)."""
        if not position or ":" not in position:
            return
        generation, _, offset_text = position.partition(":")
        if generation != self.generation or not offset_text.isdigit():
            return
        offset = min(int(offset_text), self.write_offset)
        skipped = sum(1 for _ in self._lines_from(_HEADER_BYTES, offset))
        self.read_offset = offset
        self.n_items = max(0, self.n_items - skipped)

    @property
    def free_bytes(self) -> int:
        """Bytes left before the bound."""
        return max(0, self.max_bytes - self.write_offset)

    # -- writing and replaying --------------------------------------------------------------

    def append(self, items: list[tuple[Any, ...]]) -> int:
        """Write as many of ``items`` (from the first) as fit; return how many were written.

        Raises
        ------
        OSError
            The write or its fdatasync failed (nothing of this call counts as written).
        """
        prefix = self.generation.encode("ascii") + b" "
        lines: list[bytes] = []
        size = 0
        free = self.free_bytes
        for item in items:
            line = prefix + _encode(item) + b"\n"
            if size + len(line) > free:
                break
            lines.append(line)
            size += len(line)
        if not lines:
            return 0
        data = b"".join(lines)
        written = os.pwrite(self._fd, data, self.write_offset)
        if written != len(data):
            # Short write (the disk filled beyond the reservation): blank it, count nothing.
            with contextlib.suppress(OSError):
                os.pwrite(self._fd, b"\x00" * written, self.write_offset)
            raise OSError(28, f"short write to the spill file ({written} of {len(data)} bytes)")
        os.fdatasync(self._fd)
        self.write_offset += len(data)
        self.n_items += len(lines)
        return len(lines)

    def read_chunk(self, max_items: int) -> tuple[list[tuple[Any, ...]], int]:
        """The next up to ``max_items`` items to replay and the offset after them."""
        prefix_len = len(self.generation) + 1
        items: list[tuple[Any, ...]] = []
        offset = self.read_offset
        for line in self._lines_from(self.read_offset, self.write_offset):
            items.append(_decode(line[prefix_len:-1]))
            offset += len(line)
            if len(items) >= max_items:
                break
        return items, offset

    def position(self, offset: int) -> str:
        """The ``meta.spill`` value recording that everything before ``offset`` is committed."""
        return f"{self.generation}:{offset}"

    def committed(self, offset: int, n_items: int) -> None:
        """Items up to ``offset`` are in the database; start a new generation when all are."""
        self.read_offset = offset
        self.n_items = max(0, self.n_items - n_items)
        if self.read_offset >= self.write_offset:
            self._new_generation()

    def close(self, *, remove_if_empty: bool) -> None:
        """Close; delete the file when nothing is left to replay and ``remove_if_empty``."""
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        os.close(fd)
        if remove_if_empty and self.n_items == 0:
            with contextlib.suppress(OSError):
                self.path.unlink()

"""Export of tag samples to CSV.

Two layouts:

``long`` (default, lossless)
    one row per sample: ``time_s,time_utc,tag,value,quality``; ``value`` empty when the
    reading was not finite; ``quality`` the name (good, uncertain, bad, stale). Rows ordered by
    time, then tag name.
``wide`` (for spreadsheets and ``pandas.read_csv``)
    one row per distinct sample time: ``time_s,time_utc,<tag1>,<tag2>,...``; a cell is empty
    where the tag has no sample at that time or the reading was not finite. Quality is not
    included: use ``long`` when it matters. Tags sampled in the same scan share a row.

``time_s`` is written with Python's shortest round-trip repr, so it reads back bit-exact.
Parquet is not offered: it would need pyarrow (~100 MB) on a Raspberry Pi; ``pandas`` reads
either CSV layout directly.
"""

from __future__ import annotations

import csv
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import IO, Any, Final

from edgectl.errors import InvalidInputError
from edgectl.historian._db import HistorianError, Quality, check_tag_name
from edgectl.historian.audit import format_time
from edgectl.historian.reader import HistoryReader, _range_clause

__all__ = ["LAYOUTS", "export_csv"]

LAYOUTS: Final = ("long", "wide")
_QUALITY_NAMES: Final = {int(q): q.name.lower() for q in Quality}


def export_csv(
    reader: HistoryReader,
    out: str | Path | IO[str],
    *,
    tags: Sequence[str] | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    layout: str = "long",
) -> int:
    """Write samples of ``tags`` (default: every tag) in [start_s, end_s] as CSV.

    Parameters
    ----------
    reader
        A :class:`HistoryReader` or :class:`Historian` (committed samples only).
    out
        A path, ``"-"`` for standard output, or an open text stream.
    layout
        ``"long"`` or ``"wide"`` (see the module docstring).

    Returns
    -------
    int
        Data rows written (excluding the header).

    Raises
    ------
    InvalidInputError
        Unknown layout or tag, non-finite time bounds.
    """
    if layout not in LAYOUTS:
        raise InvalidInputError(
            f"export layout must be one of {', '.join(LAYOUTS)}, got {layout!r}"
        )
    known = {t.name for t in reader.tags()}
    names = sorted(known) if tags is None else list(dict.fromkeys(tags))
    for name in names:
        check_tag_name(name)
        if name not in known:
            listed = ", ".join(sorted(known)[:20]) or "none"
            raise InvalidInputError(f"{reader.path}: unknown tag {name!r} (known: {listed})")
    clause, params = _range_clause("s.t", start_s, end_s)
    placeholders = ", ".join("?" for _ in names)
    where = f"tag.name IN ({placeholders})" + (f" AND {clause}" if clause else "")
    sql = (
        "SELECT s.t, tag.name, s.value, s.quality FROM sample AS s JOIN tag ON tag.id = s.tag_id "
        f"WHERE {where} ORDER BY s.t, tag.name, s.id"
    )
    if isinstance(out, str | Path):
        if str(out) == "-":
            context: Any = nullcontext(sys.stdout)
        else:
            try:
                context = open(out, "w", newline="", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise HistorianError(f"cannot write {out}: {exc}") from exc
    else:
        context = nullcontext(out)
    with reader._connection() as con, context as stream:
        try:
            cursor = con.execute(sql, [*names, *params])
        except sqlite3.Error as exc:
            raise HistorianError(f"{reader.path}: export query failed: {exc}") from exc
        try:
            writer = csv.writer(stream, lineterminator="\n")
            if layout == "long":
                writer.writerow(["time_s", "time_utc", "tag", "value", "quality"])
                return _write_long(writer, cursor)
            writer.writerow(["time_s", "time_utc", *names])
            return _write_wide(writer, cursor, names)
        finally:
            cursor.close()


def _cell(value: float | None) -> str:
    return "" if value is None else repr(value)


def _write_long(writer: Any, rows: Iterable[tuple[float, str, float | None, int]]) -> int:
    n = 0
    for t, name, value, quality in rows:
        writer.writerow([repr(t), format_time(t), name, _cell(value), _QUALITY_NAMES[quality]])
        n += 1
    return n


def _write_wide(
    writer: Any,
    rows: Iterable[tuple[float, str, float | None, int]],
    names: Sequence[str],
) -> int:
    column = {name: i for i, name in enumerate(names)}
    n = 0
    current_t: float | None = None
    cells: list[str] = []
    for t, name, value, _quality in rows:
        if t != current_t:
            if current_t is not None:
                writer.writerow([repr(current_t), format_time(current_t), *cells])
                n += 1
            current_t = t
            cells = [""] * len(names)
        cells[column[name]] = _cell(value)
    if current_t is not None:
        writer.writerow([repr(current_t), format_time(current_t), *cells])
        n += 1
    return n

"""The spill file on its own: bounded, reopened after a stop or a crash, replayed exactly once."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from edgectl.historian.spill import SpillFile

SAMPLE, STATE = 0, 3


def items(n: int, start: int = 0) -> list[tuple[object, ...]]:
    return [(SAMPLE, "temp_c", float(i), 37.0 + i / 1000, 0) for i in range(start, start + n)]


def test_items_round_trip_with_states_as_bytes(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "s", max_bytes=1 << 16, mode=0o600)
    assert spill.reserved
    batch = [*items(3), (STATE, "controller", 3.0, "bytes", b"\x00\xffraw")]
    assert spill.append(batch) == 4
    got, offset = spill.read_chunk(10)
    assert got == batch
    assert offset == spill.write_offset
    spill.close(remove_if_empty=False)
    assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o600


def test_the_bound_holds_and_counts_what_fits(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "s", max_bytes=4096, mode=0o600)
    written = spill.append(items(1000))
    assert 0 < written < 1000
    assert spill.n_items == written
    assert spill.free_bytes < 100
    assert os.path.getsize(tmp_path / "s") == 4096  # preallocated, never beyond
    assert spill.append(items(10)) == 0


def test_a_reopened_file_resumes_after_the_committed_position(tmp_path: Path) -> None:
    path = tmp_path / "s"
    spill = SpillFile(path, max_bytes=1 << 16, mode=0o600)
    spill.append(items(10))
    chunk, offset = spill.read_chunk(4)
    position = spill.position(offset)  # what the writer commits in meta.spill with the chunk
    spill.close(remove_if_empty=False)  # a crash here: 4 committed, 6 not
    again = SpillFile(path, max_bytes=1 << 16, mode=0o600)
    assert again.n_items == 10
    again.resume_from(position)
    assert again.n_items == 6
    rest, _ = again.read_chunk(100)
    assert chunk + rest == items(10)  # each item once, in order


def test_a_new_generation_ignores_old_lines_and_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "s"
    spill = SpillFile(path, max_bytes=1 << 16, mode=0o600)
    spill.append(items(10))
    old_position = spill.position(spill.write_offset)
    chunk, offset = spill.read_chunk(100)
    spill.committed(offset, len(chunk))  # all replayed: a new generation starts
    assert spill.n_items == 0
    spill.append(items(2, start=100))
    end = spill.write_offset
    spill.close(remove_if_empty=False)
    with open(path, "r+b") as f:  # a torn write after the last full line
        f.seek(end)
        f.write(b'deadbeefdeadbeef [0,"temp_c",')
    again = SpillFile(path, max_bytes=1 << 16, mode=0o600)
    again.resume_from(old_position)  # names the old generation: ignored
    assert again.n_items == 2
    got, _ = again.read_chunk(100)
    assert got == items(2, start=100)


def test_close_removes_an_empty_file_only(tmp_path: Path) -> None:
    empty = SpillFile(tmp_path / "a", max_bytes=4096, mode=0o600)
    empty.close(remove_if_empty=True)
    assert not (tmp_path / "a").exists()
    full = SpillFile(tmp_path / "b", max_bytes=4096, mode=0o600)
    full.append(items(1))
    full.close(remove_if_empty=True)
    assert (tmp_path / "b").exists()

"""The ``[historian]`` table of a reactor config, and the config hash stored with each run."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from edgectl.config import Struct
from edgectl.errors import ConfigError

__all__ = ["HistorianSettings", "config_hash"]


class HistorianSettings(Struct, frozen=True, kw_only=True):
    """Historian settings of a reactor config (``[historian]``).

    Attributes
    ----------
    path
        Database file, relative to the working directory (``edgectl run --db`` overrides it).
    commit_interval_s
        Seconds between batched commits: the most a kill -9 can lose.
    synchronous
        ``"NORMAL"`` (default: a power cut may lose the commits since the last checkpoint, the
        file stays valid) or ``"FULL"`` (an fsync per commit).
    max_pending
        Items held in memory when commits fail; beyond a tenth of it they move to the spill
        file, and when that is full too new samples are dropped and counted exactly.
    spill_max_bytes
        Bound of the spill file beside the database (preallocated; 0: none).
    state_every_n_scans
        How often the runtime saves its restart-resume snapshot.
    """

    path: str = "reactor.db"
    commit_interval_s: Annotated[float, msgspec.Meta(gt=0.0, le=60.0)] = 1.0
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    max_pending: Annotated[int, msgspec.Meta(ge=1000, le=10_000_000)] = 100_000
    spill_max_bytes: Annotated[int, msgspec.Meta(ge=0, le=1 << 34)] = 16 << 20
    state_every_n_scans: Annotated[int, msgspec.Meta(ge=1)] = 10


def config_hash(path: str | Path) -> str:
    """``"sha256:<hex>"`` of a config file's bytes, recorded with each run.

    Raises
    ------
    ConfigError
        The file cannot be read.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc}") from exc
    return "sha256:" + hashlib.sha256(data).hexdigest()

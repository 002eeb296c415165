"""The soft-sensor model registry in a historian database.

Four tables beside the historian's own (created if missing, so a run database written before
them gains them on first use; they are not part of the historian's schema version):

``softsensor_model``      one row per model version: calibration-data SHA-256, pipeline (JSON),
                          LVs, RMSECV and in-line CV figure (response unit), counts, parent,
                          fitted/released time (s on the run's time axis), who released it, and
                          the model document itself (so a version can be restored)
``softsensor_reference``  every reference: sampling and known time (s), value, analyser, who
                          entered it, whether it was paired and why not, the prequential error
``softsensor_estimate``   every estimate with the model version that produced it, T²/T²_lim
                          and Q/Q_lim
``softsensor_switch``     every release: time (s), from and to version, who and why

Times are seconds (``time_s``) as in the rest of the historian; the managed estimator works in
hours, :meth:`ModelRegistry.record` converts.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgectl.errors import EdgectlError
from edgectl.managed import Estimate, ManagedEstimator
from edgectl.spectra import SoftSensor

__all__ = ["ModelRegistry", "RegistryError", "StoredEstimate", "StoredReference", "StoredVersion"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS softsensor_model (
    sensor TEXT NOT NULL, version INTEGER NOT NULL, calibration_sha256 TEXT NOT NULL,
    pipeline TEXT NOT NULL, n_components INTEGER NOT NULL, rmsecv REAL NOT NULL,
    inline_rmsecv REAL, n_offline INTEGER NOT NULL, n_inline INTEGER NOT NULL,
    fitted_at_s REAL NOT NULL, parent INTEGER, released_at_s REAL, released_by TEXT,
    model TEXT NOT NULL, PRIMARY KEY (sensor, version));
CREATE TABLE IF NOT EXISTS softsensor_reference (
    sensor TEXT NOT NULL, n INTEGER NOT NULL, taken_at_s REAL NOT NULL, known_at_s REAL NOT NULL,
    value REAL NOT NULL, analyser TEXT NOT NULL, entered_by TEXT NOT NULL,
    paired INTEGER NOT NULL, reason TEXT NOT NULL, error REAL, PRIMARY KEY (sensor, n));
CREATE TABLE IF NOT EXISTS softsensor_estimate (
    sensor TEXT NOT NULL, t REAL NOT NULL, value REAL, valid INTEGER NOT NULL,
    in_model INTEGER NOT NULL, t2_ratio REAL, q_ratio REAL, model_version INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS softsensor_estimate_t ON softsensor_estimate (sensor, t);
CREATE TABLE IF NOT EXISTS softsensor_switch (
    sensor TEXT NOT NULL, n INTEGER NOT NULL, t REAL NOT NULL, from_version INTEGER NOT NULL,
    to_version INTEGER NOT NULL, why TEXT NOT NULL, PRIMARY KEY (sensor, n));
"""


class RegistryError(EdgectlError, ValueError):
    """A registry read or write failed (names the database and the sensor)."""


@dataclass(frozen=True)
class StoredVersion:
    """A registry row of ``softsensor_model`` (the model document in :attr:`model_json`)."""

    sensor: str
    version: int
    calibration_sha256: str
    pipeline: list[dict[str, Any]]
    n_components: int
    rmsecv: float
    inline_rmsecv: float | None
    n_offline: int
    n_inline: int
    fitted_at_s: float
    parent: int | None
    released_at_s: float | None
    released_by: str | None
    model_json: str


@dataclass(frozen=True)
class StoredReference:
    """A registry row of ``softsensor_reference``."""

    taken_at_s: float
    known_at_s: float
    value: float
    analyser: str
    entered_by: str
    paired: bool
    reason: str
    error: float | None


@dataclass(frozen=True)
class StoredEstimate:
    """A registry row of ``softsensor_estimate``."""

    time_s: float
    value: float
    valid: bool
    in_model: bool
    t2_ratio: float
    q_ratio: float
    model_version: int


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


class ModelRegistry:
    """Model versions, references, estimates and switches of soft sensors in ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._con = sqlite3.connect(self.path, timeout=10.0)
            self._con.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise RegistryError(f"{self.path}: soft-sensor registry: {exc}") from exc

    def close(self) -> None:
        """Close the connection."""
        self._con.close()

    def __enter__(self) -> ModelRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes -----------------------------------------------------------------------------

    def record(self, sensor: str, est: ManagedEstimator, *, time_base_s: float = 0.0) -> None:
        """Store what ``est`` holds that is not stored yet: versions (a release updates its
        row), references and switches. ``time_base_s`` is added to the estimator's hours."""

        def s(h: float | None) -> float | None:
            return None if h is None else time_base_s + 3600.0 * float(h)

        with self._con:
            for v in est.versions:
                self._con.execute(
                    "INSERT INTO softsensor_model VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT (sensor, version) DO UPDATE SET "
                    "released_at_s = excluded.released_at_s, released_by = excluded.released_by",
                    (
                        sensor,
                        v.version,
                        v.calibration_sha256,
                        json.dumps(v.sensor.pipeline.steps),
                        v.n_components,
                        v.rmsecv,
                        _num(v.inline_rmsecv),
                        v.n_offline,
                        v.n_inline,
                        s(v.fitted_at_h),
                        v.parent,
                        s(v.released_at_h),
                        v.released_by,
                        v.sensor.to_json(),
                    ),
                )
            for n, o in enumerate(est.references):
                r = o.reference
                self._con.execute(
                    "INSERT OR IGNORE INTO softsensor_reference VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        sensor,
                        n,
                        s(r.taken_at_h),
                        s(r.known_h),
                        r.value,
                        r.analyser,
                        r.entered_by,
                        int(o.paired),
                        o.reason,
                        _num(o.prequential_error),
                    ),
                )
            for n, (t_h, old, new, why) in enumerate(est.switches):
                self._con.execute(
                    "INSERT OR IGNORE INTO softsensor_switch VALUES (?,?,?,?,?,?)",
                    (sensor, n, s(t_h), old, new, why),
                )

    def add_estimates(
        self, sensor: str, estimates: Iterable[Estimate], *, time_base_s: float = 0.0
    ) -> int:
        """Append estimates (each with its model version); returns how many."""
        rows = [
            (
                sensor,
                time_base_s + 3600.0 * e.time_h,
                _num(e.value),
                int(e.valid),
                int(e.in_model),
                _num(e.t2_ratio),
                _num(e.q_ratio),
                e.model_version,
            )
            for e in estimates
        ]
        with self._con:
            self._con.executemany("INSERT INTO softsensor_estimate VALUES (?,?,?,?,?,?,?,?)", rows)
        return len(rows)

    # -- reads ------------------------------------------------------------------------------

    def sensors(self) -> list[str]:
        """Sensors with at least one stored version."""
        rows = self._con.execute("SELECT DISTINCT sensor FROM softsensor_model ORDER BY sensor")
        return [str(r[0]) for r in rows]

    def versions(self, sensor: str) -> list[StoredVersion]:
        """Every stored version of ``sensor``, oldest first."""
        rows = self._con.execute(
            "SELECT * FROM softsensor_model WHERE sensor = ? ORDER BY version", (sensor,)
        ).fetchall()
        return [
            StoredVersion(
                sensor=r[0],
                version=r[1],
                calibration_sha256=r[2],
                pipeline=json.loads(r[3]),
                n_components=r[4],
                rmsecv=r[5],
                inline_rmsecv=r[6],
                n_offline=r[7],
                n_inline=r[8],
                fitted_at_s=r[9],
                parent=r[10],
                released_at_s=r[11],
                released_by=r[12],
                model_json=r[13],
            )
            for r in rows
        ]

    def load_model(self, sensor: str, version: int) -> SoftSensor:
        """The stored model of one version (to restore it)."""
        row = self._con.execute(
            "SELECT model FROM softsensor_model WHERE sensor = ? AND version = ?",
            (sensor, version),
        ).fetchone()
        if row is None:
            have = [v.version for v in self.versions(sensor)]
            raise RegistryError(
                f"{self.path}: soft sensor {sensor!r} has no version {version} (stored: {have})"
            )
        return SoftSensor.from_json(str(row[0]), source=f"{self.path}:{sensor}@{version}")

    def references(self, sensor: str) -> list[StoredReference]:
        """Every stored reference of ``sensor`` in the order it was entered."""
        rows = self._con.execute(
            "SELECT taken_at_s, known_at_s, value, analyser, entered_by, paired, reason, error "
            "FROM softsensor_reference WHERE sensor = ? ORDER BY n",
            (sensor,),
        ).fetchall()
        return [StoredReference(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7]) for r in rows]

    def estimates(self, sensor: str) -> list[StoredEstimate]:
        """Every stored estimate of ``sensor`` in time order (NULL figures read as NaN)."""
        rows = self._con.execute(
            "SELECT t, value, valid, in_model, t2_ratio, q_ratio, model_version "
            "FROM softsensor_estimate WHERE sensor = ? ORDER BY t",
            (sensor,),
        ).fetchall()
        nan = math.nan
        return [
            StoredEstimate(
                r[0],
                nan if r[1] is None else r[1],
                bool(r[2]),
                bool(r[3]),
                nan if r[4] is None else r[4],
                nan if r[5] is None else r[5],
                r[6],
            )
            for r in rows
        ]

    def switches(self, sensor: str) -> list[tuple[float, int, int, str]]:
        """(time_s, from_version, to_version, who: why) of every release."""
        rows = self._con.execute(
            "SELECT t, from_version, to_version, why FROM softsensor_switch WHERE sensor = ? "
            "ORDER BY n",
            (sensor,),
        ).fetchall()
        return [(float(r[0]), int(r[1]), int(r[2]), str(r[3])) for r in rows]

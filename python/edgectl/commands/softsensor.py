"""``edgectl softsensor report RUN.db [--sensor NAME] [--json]``: the managed soft sensor of
a run, from the model registry in its historian database
(:mod:`edgectl.historian.softsensor_registry`).

For each sensor: the model versions (LVs, RMSECV, in-line CV figure, calibration-data hash,
released when and by whom), the switches between them, every reference against the estimate
before it (prequential error; RMSEP over the references with an error) and, per model
version, the estimates with the share beyond the T² and Q limits and the median Q/Q_lim.
Times are hours from the first stored estimate or reference.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

from edgectl.commands._args import not_a_directory, plain_text
from edgectl.errors import InvalidInputError
from edgectl.historian.softsensor_registry import ModelRegistry

__all__ = ["add_parser", "main", "report"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "softsensor",
        help="report on a run's managed soft sensor (models, references, T²/Q)",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    rep = actions.add_parser("report", help="models, switches, references, T²/Q per version")
    rep.add_argument("db", type=not_a_directory, help="historian database (SQLite file)")
    rep.add_argument("--sensor", help="one sensor (default: every sensor in the registry)")
    rep.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=main)


def report(db: str | Path, sensor: str | None = None) -> dict[str, Any]:
    """The report as plain data (what ``--json`` prints)."""
    path = Path(db)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such historian database")
    with ModelRegistry(path) as reg:
        names = reg.sensors()
        if sensor is not None:
            if sensor not in names:
                raise InvalidInputError(
                    f"{path}: no soft sensor {sensor!r} in the registry (have {names})"
                )
            names = [sensor]
        out: dict[str, Any] = {}
        for name in names:
            out[name] = _one(reg, name)
    return out


def _one(reg: ModelRegistry, name: str) -> dict[str, Any]:
    versions = reg.versions(name)
    refs = reg.references(name)
    ests = reg.estimates(name)
    times = [e.time_s for e in ests] + [r.taken_at_s for r in refs]
    t0 = min(times) if times else 0.0
    errors = [r.error for r in refs if r.error is not None]
    per_version: dict[int, dict[str, Any]] = {}
    for v in versions:
        mine = [e for e in ests if e.model_version == v.version]
        valid = [e for e in mine if e.valid]
        q = [e.q_ratio for e in valid if math.isfinite(e.q_ratio)]
        t2 = [e.t2_ratio for e in valid if math.isfinite(e.t2_ratio)]
        per_version[v.version] = {
            "estimates": len(mine),
            "valid": len(valid),
            "beyond_t2": sum(x > 1.0 for x in t2),
            "beyond_q": sum(x > 1.0 for x in q),
            "median_q_ratio": statistics.median(q) if q else None,
        }
    return {
        "versions": [
            {
                "version": v.version,
                "n_components": v.n_components,
                "rmsecv": v.rmsecv,
                "inline_rmsecv": v.inline_rmsecv,
                "n_inline": v.n_inline,
                "calibration_sha256": v.calibration_sha256,
                "released_at_h": None
                if v.released_at_s is None
                else (v.released_at_s - t0) / 3600.0,
                "released_by": v.released_by,
                **per_version[v.version],
            }
            for v in versions
        ],
        "switches": [
            {"at_h": (t - t0) / 3600.0, "from": a, "to": b, "why": why}
            for t, a, b, why in reg.switches(name)
        ],
        "references": [
            {
                "taken_at_h": (r.taken_at_s - t0) / 3600.0,
                "value": r.value,
                "error": r.error,
                "paired": r.paired,
                "reason": r.reason,
                "analyser": r.analyser,
                "entered_by": r.entered_by,
            }
            for r in refs
        ],
        "rmsep": math.sqrt(sum(e * e for e in errors) / len(errors)) if errors else None,
        "n_estimates": len(ests),
    }


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def _print(rep: dict[str, Any]) -> None:
    for name, r in rep.items():
        print(
            f"soft sensor {name}: {len(r['versions'])} model versions, {r['n_estimates']} "
            f"estimates, {len(r['references'])} references, RMSEP {_fmt(r['rmsep'])}"
        )
        print(
            "  version  LV  RMSECV  in-line CV  pairs  estimates  >T²  >Q  med Q/Qlim  "
            "released  by  calibration sha256"
        )
        for v in r["versions"]:
            print(
                f"  {v['version']:>7}  {v['n_components']:>2}  {v['rmsecv']:>6.2f}  "
                f"{_fmt(v['inline_rmsecv']):>10}  {v['n_inline']:>5}  {v['estimates']:>9}  "
                f"{v['beyond_t2']:>3}  {v['beyond_q']:>3}  {_fmt(v['median_q_ratio']):>10}  "
                f"{_fmt(v['released_at_h'], '.2f'):>8}h  {v['released_by'] or '-'}  "
                f"{v['calibration_sha256'][:12]}"
            )
        print("  switches:")
        for s in r["switches"]:
            print(f"    {s['at_h']:8.2f} h  v{s['from']} -> v{s['to']}  {s['why']}")
        print("  references (taken at, value, estimate - value):")
        for ref in r["references"]:
            note = "" if ref["paired"] else f"  [{ref['reason']}]"
            print(
                f"    {ref['taken_at_h']:8.2f} h  {ref['value']:8.3f}  {_fmt(ref['error']):>7}"
                f"  {ref['analyser']} {ref['entered_by']}{note}"
            )


def main(args: argparse.Namespace) -> int:
    rep = report(args.db, args.sensor)
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        _print(rep)
    return 0

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
import tomllib
from pathlib import Path
from typing import Any

from edgectl.commands._args import not_a_directory, plain_text
from edgectl.errors import InvalidInputError
from edgectl.historian import HistorianError, HistoryReader
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
    """The report as plain data (what ``--json`` prints): from the model registry when it
    holds the sensor, else from the run itself (``<tag>.model``/``.status``/``.q`` samples,
    ``reference`` events, ``model_switch`` audit records)."""
    path = Path(db)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such historian database")
    out: dict[str, Any] = {}
    with ModelRegistry(path) as reg:
        for name in reg.sensors():
            out[name] = _one(reg, name)
    for name, tag in _run_sensors(path).items():
        if name not in out:
            out[name] = _from_run(path, name, tag)
    if sensor is not None:
        if sensor not in out:
            raise InvalidInputError(
                f"{path}: no soft sensor {sensor!r} in the registry or the run (have {sorted(out)})"
            )
        out = {sensor: out[sensor]}
    return out


def _run_sensors(path: Path) -> dict[str, str]:
    """Soft sensors of the run: name -> tag. Tags ``<tag>.model`` mark them; the name comes
    from the run's configuration file (``[softsensors.<name>] tag``) when it can be read,
    else the tag stands for it."""
    try:
        with HistoryReader(path) as reader:
            names = {t.name for t in reader.tags()}
            configs = [r.config_path for r in reader.runs() if r.config_path]
    except HistorianError:
        return {}  # a registry written outside a run (ModelRegistry on its own file)
    tags = sorted(n[: -len(".model")] for n in names if n.endswith(".model"))
    tags = [t for t in tags if f"{t}.status" in names]
    by_tag: dict[str, str] = {}
    for cfg in configs:
        try:
            with open(cfg, "rb") as f:
                doc = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError):
            continue
        for name, ss in (doc.get("softsensors") or {}).items():
            if isinstance(ss, dict) and isinstance(ss.get("tag"), str):
                by_tag.setdefault(ss["tag"], str(name))
    return {by_tag.get(t, t): t for t in tags}


def _from_run(path: Path, name: str, tag: str) -> dict[str, Any]:
    with HistoryReader(path) as reader:
        model = reader.samples(f"{tag}.model")
        status = dict(zip(*_series(reader, f"{tag}.status"), strict=True))
        q = dict(zip(*_series(reader, f"{tag}.q"), strict=True))
        events = reader.events(kind="reference", source=f"softsensors.{name}")
        audit = [
            a
            for a in reader.audit.records()
            if a.action == "model_switch" and a.target == f"softsensors.{name}.model"
        ]
        start = min(r.started_s for r in reader.runs()) if reader.runs() else 0.0
    versions: dict[int, dict[str, Any]] = {0: {"version": 0}}
    switches = []
    for a in audit:
        for v in (a.old_value, a.new_value):
            if isinstance(v, dict) and "version" in v:
                versions.setdefault(int(v["version"]), {}).update(v)
        new = a.new_value if isinstance(a.new_value, dict) else {}
        old = a.old_value if isinstance(a.old_value, dict) else {}
        versions[int(new.get("version", 0))].update(
            released_by=a.actor, released_at_h=(a.time_s - start) / 3600.0
        )
        switches.append(
            {
                "at_h": (a.time_s - start) / 3600.0,
                "from": old.get("version"),
                "to": new.get("version"),
                "why": f"{a.actor}: {a.reason}",
            }
        )
    per: dict[int, list[float]] = {v: [] for v in versions}
    for t, v in zip(model.times_s.tolist(), model.values.tolist(), strict=True):
        per.setdefault(int(v), []).append(t)
    rows = []
    for v in sorted(per):
        ts = per[v]
        qs = [q[t] for t in ts if t in q and math.isfinite(q[t])]
        rows.append(
            {
                "version": v,
                **versions.get(v, {}),
                "estimates": len(ts),
                "valid": sum(status.get(t, 2) in (0, 1) for t in ts),
                "out_of_model": sum(status.get(t) == 1 for t in ts),
                "median_q": statistics.median(qs) if qs else None,
            }
        )
    refs = []
    for e in events:
        d = e.details or {}
        refs.append(
            {
                "taken_at_h": (float(d.get("sampled_s", e.time_s)) - start) / 3600.0,
                "value": d.get("value"),
                "error": d.get("error"),
                "paired": True,
                "reason": "" if d.get("accepted", True) else str(d.get("reason", "rejected")),
                "analyser": d.get("analyser", ""),
                "entered_by": d.get("entered_by", ""),
            }
        )
    errors = [float(r["error"]) for r in refs if isinstance(r["error"], int | float)]
    return {
        "source": "run",
        "versions": rows,
        "switches": switches,
        "references": refs,
        "rmsep": math.sqrt(sum(e * e for e in errors) / len(errors)) if errors else None,
        "n_estimates": len(model),
    }


def _series(reader: HistoryReader, tag: str) -> tuple[list[float], list[float]]:
    s = reader.samples(tag)
    return s.times_s.tolist(), s.values.tolist()


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
            f"soft sensor {name} ({r.get('source', 'registry')}): {len(r['versions'])} model "
            f"versions, {r['n_estimates']} estimates, {len(r['references'])} references, "
            f"RMSEP {_fmt(r['rmsep'])}"
        )
        for v in r["versions"]:
            fields = ", ".join(
                f"{k} {_fmt(x, 'g') if isinstance(x, float) else x}"
                for k, x in v.items()
                if k not in ("version", "pipeline") and x is not None
            )
            print(f"  v{v['version']}: {fields}")
        print("  switches:")
        for sw in r["switches"]:
            print(f"    {sw['at_h']:8.2f} h  v{sw['from']} -> v{sw['to']}  {sw['why']}")
        print("  references (taken at h, value, estimate - value, analyser, entered by):")
        for ref in r["references"]:
            note = f"  [{ref['reason']}]" if ref["reason"] and ref["reason"] != "paired" else ""
            print(
                f"    {ref['taken_at_h']:8.2f}  {_fmt(ref['value'], '.3f'):>8}  "
                f"{_fmt(ref['error']):>7}  {ref['analyser']}  {ref['entered_by']}{note}"
            )


def main(args: argparse.Namespace) -> int:
    rep = report(args.db, args.sensor)
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        _print(rep)
    return 0

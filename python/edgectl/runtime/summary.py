"""The run summary: how well each loop held its setpoint, from the historian.

For each loop with an ``acceptance`` block, the GOOD samples of its PV after ``settle_s`` are
compared with the loop's setpoint tag (``<loop>.sp``) sampled at the same scans: the largest
deviation, the fraction of samples inside the band, and a verdict. The same figures are what
the tests and the HIL suite assert.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgectl.runtime.reactor_config import Acceptance, ReactorConfig

__all__ = ["LoopFigures", "format_summary", "loop_figures"]


@dataclass(frozen=True)
class LoopFigures:
    """Deviation figures of one loop after its settling time."""

    loop: str
    pv: str
    band: float
    side: str
    n_samples: int
    max_abs_dev: float  #: max |pv − sp| (both) or max (sp − pv) (below)
    min_dev: float  #: min (pv − sp)
    max_dev: float  #: max (pv − sp)
    mean_abs_dev: float
    fraction_within: float
    ok: bool
    #: False when the run ended before ``settle_s``: nothing to judge (``ok`` is then True and
    #: the summary says "n/a"); a PV that was never GOOD after settling is judged and fails
    judged: bool = True


def _deviation(reader: Any, pv: str, sp_tag: str, start_s: float) -> tuple[np.ndarray, np.ndarray]:
    y = reader.samples(pv, start_s).good()
    r = reader.samples(sp_tag, start_s).good()
    if len(y) == 0 or len(r) == 0:
        return np.empty(0), np.empty(0)
    # setpoint in force at each PV sample time (last setpoint sample at or before it)
    idx = np.searchsorted(r.times_s, y.times_s, side="right") - 1
    keep = idx >= 0
    return y.times_s[keep], y.values[keep] - r.values[idx[keep]]


def loop_figures(reader: Any, cfg: ReactorConfig, run_start_s: float) -> dict[str, LoopFigures]:
    """Figures of every loop with an ``acceptance`` block; times are historian seconds."""
    out: dict[str, LoopFigures] = {}
    for name, loop in cfg.loops.items():
        acc: Acceptance | None = getattr(loop, "acceptance", None)
        pv: str = getattr(loop, "pv", "")
        if acc is None or not pv:
            continue
        _, dev = _deviation(reader, pv, f"{name}.sp", run_start_s + acc.settle_s)
        n = int(dev.size)
        if n == 0:
            nan = math.nan
            recorded = reader.samples(f"{name}.sp", run_start_s + acc.settle_s)
            judged = len(recorded) > 0  # the run went past settle_s, yet no GOOD PV
            out[name] = LoopFigures(
                name, pv, acc.band, acc.side, 0, nan, nan, nan, nan, nan, not judged, judged
            )
            continue
        if acc.side == "both":
            worst = float(np.max(np.abs(dev)))
            inside = np.abs(dev) <= acc.band * (1.0 + 1e-9)
        else:
            worst = float(max(0.0, -np.min(dev)))
            inside = dev >= -acc.band * (1.0 + 1e-9)
        out[name] = LoopFigures(
            loop=name,
            pv=pv,
            band=acc.band,
            side=acc.side,
            n_samples=n,
            max_abs_dev=worst,
            min_dev=float(np.min(dev)),
            max_dev=float(np.max(dev)),
            mean_abs_dev=float(np.mean(np.abs(dev))),
            fraction_within=float(np.count_nonzero(inside) / n),
            # readings are quantised decimals (EZO: 0.01 °C): 37.00 - 36.90 must count as 0.1
            ok=worst <= acc.band * (1.0 + 1e-9),
        )
    return out


def format_summary(
    figures: Mapping[str, LoopFigures], info: Mapping[str, Any], extra: Mapping[str, Any]
) -> str:
    """A readable end-of-run summary."""
    lines = [f"run summary: {info.get('name', '')}"]
    for k, v in extra.items():
        lines.append(f"  {k:<22} {v}")
    lat = info.get("lateness_ms", {})
    if lat:
        lines.append(
            "  scan lateness          "
            f"p50 {lat['p50_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms, max {lat['max_ms']:.3f} ms"
            f" over {info.get('scans', 0)} scans, {info.get('overruns', 0)} overruns"
        )
    if figures:
        lines.append("  loop      pv           band        worst dev   within   verdict")
    for f in figures.values():
        band = f"±{f.band:g}" if f.side == "both" else f"≥ sp−{f.band:g}"
        if not f.judged:
            lines.append(f"  {f.loop:<9} {f.pv:<12} {band:<11} n/a (run shorter than settle_s)")
            continue
        lines.append(
            f"  {f.loop:<9} {f.pv:<12} {band:<11} {f.max_abs_dev:<11.4g} "
            f"{f.fraction_within * 100:5.1f} %  {'PASS' if f.ok else 'FAIL'}"
        )
    return "\n".join(lines)

"""The report's figures (matplotlib, Agg backend, PNG embedded as base64): one per loop with
its setpoint and acceptance band, the feeds, the soft sensor against the at-line references,
and the phase timeline. Every plot reads the run's historian; times are hours of culture."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the report is written by a command or a CI job

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = ["feed_plot", "loop_plot", "phase_plot", "png", "softsensor_plot"]

_PHASE_COLOURS = ("#ddf4ff", "#fff8c5", "#dafbe1", "#ffebe9", "#fbefff", "#eaeef2")


def png(fig: Figure) -> str:
    """``fig`` as a ``data:`` URI (PNG, 110 dpi), and closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _shade_phases(ax: Any, phases: Sequence[Any]) -> None:
    for i, p in enumerate(phases):
        ax.axvspan(
            p.start_s / 3600.0,
            (p.start_s + p.duration_s) / 3600.0,
            color=_PHASE_COLOURS[i % len(_PHASE_COLOURS)],
            alpha=0.6,
            lw=0,
        )


def _decimate(t: np.ndarray, y: np.ndarray, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Min/max per bucket (at most ``2 n`` points), so a 14-day plot stays small and still
    shows every excursion."""
    if t.size <= 2 * n:
        return t, y
    edges = np.linspace(t[0], t[-1], n + 1)
    idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, n - 1)
    out_t: list[float] = []
    out_y: list[float] = []
    for b in np.unique(idx):
        sel = np.flatnonzero(idx == b)
        ys = y[sel]
        if not np.isfinite(ys).any():
            continue
        lo, hi = sel[np.nanargmin(ys)], sel[np.nanargmax(ys)]
        for k in sorted({int(lo), int(hi)}):
            out_t.append(float(t[k]))
            out_y.append(float(y[k]))
    return np.asarray(out_t), np.asarray(out_y)


def loop_plot(
    name: str,
    pv: tuple[np.ndarray, np.ndarray],
    sp: tuple[np.ndarray, np.ndarray],
    *,
    unit: str,
    band: float | None,
    side: str,
    phases: Sequence[Any],
    alarms_h: Sequence[float],
) -> str:
    """PV and setpoint of loop ``name`` against culture hours; the acceptance band around the
    setpoint (``side`` ``both`` or ``below``); alarm raises as red ticks."""
    fig, ax = plt.subplots(figsize=(9.0, 3.0))
    _shade_phases(ax, phases)
    th, y = _decimate(pv[0] / 3600.0, pv[1])
    ax.plot(th, y, lw=0.8, color="#0969da", label=f"PV ({unit})" if unit else "PV")
    if sp[0].size:
        st = np.append(sp[0] / 3600.0, th[-1] if th.size else sp[0][-1] / 3600.0)
        sv = np.append(sp[1], sp[1][-1])
        ax.step(st, sv, where="post", lw=1.0, color="#1a7f37", label="setpoint")
        if band is not None:
            lo = sv - band
            hi = sv + band if side == "both" else sv + 0 * band
            ax.fill_between(
                st,
                lo,
                hi,
                step="post",
                color="#1a7f37",
                alpha=0.15,
                label=f"band ±{band:g}" if side == "both" else f"band −{band:g}",
            )
    for a in alarms_h:
        ax.axvline(a, color="#cf222e", lw=0.8, alpha=0.7)
    ax.set_title(name)
    ax.set_xlabel("culture time (h)")
    ax.set_ylabel(unit or name)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return png(fig)


def feed_plot(series: dict[str, tuple[np.ndarray, np.ndarray]], phases: Sequence[Any]) -> str:
    """Rates (mL/min) and cumulative volumes (mL, trapezoidal integral) of the feeds."""
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9.0, 4.6), sharex=True)
    _shade_phases(ax1, phases)
    _shade_phases(ax2, phases)
    for name, (t_s, rate) in series.items():
        th = t_s / 3600.0
        r = np.nan_to_num(rate)
        cum = np.concatenate([[0.0], np.cumsum(np.diff(t_s) * (r[1:] + r[:-1]) / 2.0 / 60.0)])
        a, b = _decimate(th, r)
        ax1.plot(a, b, lw=0.8, label=name)
        ax2.plot(th, cum, lw=1.0, label=name)
    ax1.set_ylabel("rate (mL/min)")
    ax2.set_ylabel("delivered (mL)")
    ax2.set_xlabel("culture time (h)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    return png(fig)


def softsensor_plot(
    name: str,
    est: tuple[np.ndarray, np.ndarray],
    refs: Sequence[tuple[float, float]],
    unit: str,
) -> str:
    """A soft sensor's estimate and the at-line references entered against it."""
    fig, ax = plt.subplots(figsize=(9.0, 3.0))
    a, b = _decimate(est[0] / 3600.0, est[1])
    ax.plot(a, b, lw=0.8, color="#8250df", label="estimate")
    if refs:
        ax.plot(
            [r[0] / 3600.0 for r in refs],
            [r[1] for r in refs],
            "o",
            color="#bc4c00",
            label="at-line reference",
        )
    ax.set_title(name)
    ax.set_xlabel("culture time (h)")
    ax.set_ylabel(unit or name)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return png(fig)


def phase_plot(phases: Sequence[Any]) -> str:
    """The recipe phases as a Gantt bar against culture hours."""
    fig, ax = plt.subplots(figsize=(9.0, 1.3))
    for i, p in enumerate(phases):
        ax.barh(
            0,
            p.duration_s / 3600.0,
            left=p.start_s / 3600.0,
            color=_PHASE_COLOURS[i % len(_PHASE_COLOURS)],
            edgecolor="#57606a",
        )
        ax.text(
            (p.start_s + p.duration_s / 2) / 3600.0,
            0,
            p.phase,
            ha="center",
            va="center",
            fontsize=8,
        )
    ax.set_yticks([])
    ax.set_xlabel("culture time (h)")
    return png(fig)

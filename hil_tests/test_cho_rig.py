"""CHO fed-batch over ptys: the spectral soft sensor under spectrometer faults (issue 7).

``edgectl rig`` runs the CHO plant and every device of ``examples/cho-fedbatch-2L.toml`` on its
own pty — the Raman spectrometer with its binary frames included — and the GPIO header behind
the loopback bridge; the controller is its own process on a config naming those ptys. The
plant starts with glucose just above the feed threshold (2.6 g/L; the example's day-3 culture
otherwise), so the recipe switches to fed-batch within the first hour and the glucose loop
trims the feed profile from the soft sensor. Then, from the rig's fault schedule (plant time):

1. cosmic-ray spikes on every spectrum for two hours (the spectrometer emulator's ``spike:3``):
   the model's Despike step keeps them out of the estimate — the tag stays GOOD, in model,
   close to the plant's true glucose, and the glucose loop keeps trimming the feed;
2. unusable spectra for two hours — case ``interferent``: an interferent band on every
   spectrum (the emulator's ``band:0.05``, a feature no calibration spectrum had), after the
   spikes; case ``dropout``: the plant's ``spectrometer_dropout`` (a flat baseline with
   noise), without spikes, in a shorter run. The status tag reports out-of-model (or invalid),
   the glucose tag is not GOOD, and the feed falls back to the recipe's profile alone
   (``Engine._feed``: the ``[recipe] feed`` rate without the PID trim, softsensor.md §6); once
   the fault is gone the tag is GOOD again and the glucose loop trims the profile again.

Throughout the run the glucose tag is GOOD exactly when its spectrum was in the model, and
whenever it is not GOOD the feed is the profile alone (the model's own 99 % limits reject a few
per cent of clean spectra too: those scans fall back for one spectrum, as designed).

Temperature and pH stay in their acceptance bands, no alarm is raised, nothing is lost from
the record, and the controller exits cleanly. The plant's true glucose comes from the rig's
status, polled while the run goes on.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import (
    ROOT,
    ControllerProcess,
    Recorder,
    bench_for,
    controller_config,
    max_sample_gap,
    samples_lost,
    wall_budget_s,
    write_schedule,
)
from edgectl.historian import HistoryReader
from edgectl.runtime.reactor_config import load_reactor_config
from edgectl.runtime.softsensor import STATUS_CODES
from edgectl.runtime.summary import loop_figures
from edgectl.spectra import SoftSensor

CHO = ROOT / "examples" / "cho-fedbatch-2L.toml"
#: 600×: a 100 ms stall of a loaded 2-core CI machine is then 60 s of plant time, within the
#: gap allowance below (at 1200× it would be 120 s, at the limit).
SPEED = 600.0
#: 14.4 mM = 2.6 g/L: under the 2.7 g/L fed-batch condition from the first spectrum on.
PLANT = {"cho": {"glc0_mm": 14.4}}
SPIKES = (1.5 * 3600.0, 2.0 * 3600.0)  # start, duration (plant s)
SPECTRUM_PERIOD_S = 300.0  # [softsensors.glucose] period_s and the plant's spectrometer period


@dataclass(frozen=True)
class Case:
    """One run: spikes first or not, then ``fault`` (a rig schedule entry without times) over
    ``window`` (start, duration; plant s); the statuses the soft sensor must report then."""

    fault: dict[str, str]
    seen_as: str  # how the rig's status names the fault
    window: tuple[float, float]
    statuses: frozenset[str]
    spikes: bool
    hours: float


CASES = {
    # an interferent band from the spectrometer emulator, after two hours of cosmic rays
    "interferent": Case(
        {"device": "raman", "spec": "band:0.05"},
        "band",
        (4.5 * 3600.0, 2.0 * 3600.0),
        frozenset({"out_of_model"}),
        spikes=True,
        hours=8.5,
    ),
    # the plant's spectrometer_dropout (laser off, fibre unplugged: a flat baseline with noise)
    "dropout": Case(
        {"kind": "spectrometer_dropout"},
        "spectrometer_dropout",
        (1.5 * 3600.0, 2.0 * 3600.0),
        frozenset({"out_of_model", "invalid"}),
        spikes=False,
        hours=7.5,  # the example judges pH after 5 h (its start-up): > 100 samples after
    ),
}


class TruthPoller:
    """Polls the rig's status while the run goes on: (plant time, true glucose, faults on the
    spectrometer's line and in the plant)."""

    def __init__(self, bench: Any, every_s: float = 0.1) -> None:
        self.bench = bench
        self.every_s = every_s
        self.rows: list[tuple[float, float, tuple[str, ...]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                st = self.bench.status()
            except Exception:  # the rig is going away at the end of the run
                return
            faults = (*st["lines"]["raman"]["faults"], *(f["kind"] for f in st["faults"]))
            self.rows.append((float(st["time_s"]), float(st["state"]["glucose_g_l"]), faults))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def glucose_at(self, t_s: np.ndarray) -> np.ndarray:
        t = np.array([r[0] for r in self.rows])
        g = np.array([r[1] for r in self.rows])
        return np.interp(t_s, t, g, left=math.nan, right=math.nan)

    def fault_seen(self, kind: str) -> tuple[float, float]:
        """First and last plant time the rig reported fault ``kind``."""
        t = [r[0] for r in self.rows if kind in r[2]]
        return (min(t), max(t)) if t else (math.nan, math.nan)


def sensor_q_limit(cfg: Any, cfg_path: Path) -> float:
    """The 99 % Q limit of the glucose model (what the soft sensor rejects above)."""
    model = Path(cfg.softsensors["glucose"].model)
    return float(SoftSensor.load(model if model.is_absolute() else cfg_path.parent / model).q_limit)


@pytest.mark.parametrize("case", list(CASES))
def test_cho_softsensor_spikes_and_out_of_model(
    case: str, tmp_path: Path, verdict: Recorder
) -> None:
    c = CASES[case]
    verdict.scenario += f"[{case}]"
    band = c.window
    hours = c.hours
    faults: list[dict[str, Any]] = [{"at_s": band[0], **c.fault, "duration_s": band[1]}]
    if c.spikes:
        faults.append(
            {"at_s": SPIKES[0], "device": "raman", "spec": "spike:3", "duration_s": SPIKES[1]}
        )
    schedule = write_schedule(tmp_path, faults)
    with bench_for(
        "emulated", tmp_path, speed=SPEED, schedule=schedule, plant=PLANT, example=CHO
    ) as bench:
        cfg_path = controller_config(bench, tmp_path / "reactor.toml", example=CHO)
        ctl = ControllerProcess(
            cfg_path,
            speed=SPEED,
            duration_h=hours,
            db=tmp_path / "run.db",
            socket_path=tmp_path / "run.sock",
            log=tmp_path / "controller.log",
        )
        truth = TruthPoller(bench)
        try:
            rc = ctl.wait(wall_budget_s(hours, SPEED))
        finally:
            truth.stop()
            ctl.stop()  # only if still running (a timed-out wait)
    output = ctl.output()
    assert rc == 0, output
    assert "Traceback" not in output, output

    cfg = load_reactor_config(cfg_path)
    assert cfg.recipe is not None
    feed = cfg.recipe.phase("fed-batch").feed
    assert feed is not None
    with HistoryReader(tmp_path / "run.db") as r:
        [run] = r.runs()
        t0 = run.started_s
        end = t0 + hours * 3600.0
        phases = [e for e in r.events(kind="phase") if "fed-batch" in e.message]
        verdict.require(len(phases) == 1, f"one batch → fed-batch transition, got {phases}")
        t_fb = phases[0].time_s if phases else math.inf
        verdict.figure("fed-batch at h", (t_fb - t0) / 3600.0)
        verdict.require(t_fb - t0 < min(SPIKES[0], band[0]), "fed-batch before the faults")

        glc = r.samples("glucose_g_l", t0)
        status = r.samples("glucose_g_l.status", t0)
        q = r.samples("glucose_g_l.q", t0)
        out = r.samples("feed_ml_min", t_fb)
        profile = np.array([feed.rate_at(t - t_fb) for t in out.times_s])
        trim = out.values - profile
        in_model = status.values == STATUS_CODES["in_model"]
        # the soft sensor's tags are written together: one historian sample time for all
        assert np.array_equal(glc.times_s, status.times_s)
        assert np.array_equal(q.times_s, status.times_s)
        # the tag is GOOD exactly when its spectrum was in the model (softsensor.md §6) ...
        verdict.require(
            bool(np.array_equal(glc.quality == 0, in_model)), "glucose GOOD iff in model"
        )
        # ... and whenever it is not GOOD the feed is the recipe's profile alone (the scan that
        # wrote the sample used that glucose value): no trim from a rejected estimate
        k = np.searchsorted(glc.times_s, out.times_s, side="right") - 1
        not_good = (k >= 0) & (glc.quality[np.maximum(k, 0)] != 0)
        verdict.require(
            bool(np.allclose(out.values[not_good], profile[not_good], rtol=1e-9, atol=1e-12)),
            "feed = the recipe's profile alone whenever the glucose tag is not GOOD",
        )

        if c.spikes:
            # -- 1. spikes: despiked — in model, accurate, the glucose loop trims on ------------
            s_lo, s_hi = t0 + SPIKES[0] + SPECTRUM_PERIOD_S, t0 + sum(SPIKES)
            seen = truth.fault_seen("spike")
            verdict.require(
                abs(seen[0] - SPIKES[0]) < 600.0 and abs(seen[1] - sum(SPIKES)) < 600.0,
                f"the rig raised spikes over the window, seen {seen}",
            )
            sp = (status.times_s >= s_lo) & (status.times_s <= s_hi)
            n_spectra = len(np.unique(q.values[sp]))
            verdict.figure("spectra under spikes", n_spectra)
            verdict.require(n_spectra >= 20, "a spectrum every 5 min under spikes")
            # A spike left in a spectrum puts its Q residual orders of magnitude over the limit
            # (3 spikes/spectrum without the Despike step: Q up to 7000× the 99 % limit, glucose
            # off by up to 5 g/L); clean spectra stay under 1.5× and the model's own 99 % limits
            # reject ~3 % of them (out of model in the healthy CHO job too, ≥ 90 % in model).
            q_ratio = float(np.max(q.values[sp]) / sensor_q_limit(cfg, cfg_path))
            verdict.figure("max Q/limit under spikes", q_ratio)
            verdict.require(q_ratio < 3.0, "no spike reached the model (Q < 3× its limit)")
            verdict.figure("in model under spikes", float(np.mean(in_model[sp])))
            good_sp = sp & in_model
            err = glc.values[good_sp] - truth.glucose_at(glc.times_s[good_sp] - t0)
            err = err[np.isfinite(err)]
            verdict.require(len(err) >= 15, f"the truth covers the spike window ({len(err)})")
            max_err = float(np.max(np.abs(err))) if len(err) else math.nan
            rms_err = float(np.sqrt(np.mean(err**2))) if len(err) else math.nan
            verdict.figure("glucose err under spikes max g/L", max_err)
            verdict.figure("rms g/L", rms_err)
            verdict.require(max_err < 0.25 and rms_err < 0.1, "estimate close to the true glucose")
            in_sp = (out.times_s > s_lo) & (out.times_s < s_hi)
            verdict.require(
                float(np.max(np.abs(trim[in_sp]))) > 1e-4, "the glucose loop trims under spikes"
            )

        # -- 2. unusable spectra: not GOOD, the feed on its profile, then recovery ---------------
        seen = truth.fault_seen(c.seen_as)
        verdict.require(
            abs(seen[0] - band[0]) < 600.0 and abs(seen[1] - sum(band)) < 600.0,
            f"the rig raised {c.seen_as} over the window, seen {seen}",
        )
        b_lo, b_hi = t0 + band[0], t0 + sum(band) + 2 * SPECTRUM_PERIOD_S
        bad = status.times_s[~in_model & (status.times_s >= b_lo) & (status.times_s <= b_hi)]
        verdict.require(len(bad) > 0, "out-of-model spectra were reported")
        first_bad, last_bad = (float(bad[0]), float(bad[-1])) if len(bad) else (end, end)
        verdict.require(
            first_bad <= b_lo + 2 * SPECTRUM_PERIOD_S,
            f"out of model from the band's start, at {first_bad - t0:.0f} s",
        )
        verdict.require(
            last_bad >= t0 + sum(band) - 2 * SPECTRUM_PERIOD_S,
            f"out of model until the band's end, last at {last_bad - t0:.0f} s",
        )
        in_band = (status.times_s >= first_bad) & (status.times_s <= last_bad)
        codes = set(status.values[in_band].astype(int).tolist())
        want = {STATUS_CODES[x] for x in c.statuses}
        verdict.figure("statuses", "/".join(str(x) for x in sorted(codes)))
        verdict.require(bool(codes) and codes <= want, f"statuses {codes}, want {want}")
        verdict.require(not np.any(glc.quality[in_band] == 0), "glucose never GOOD in the band")
        later = glc.times_s[(glc.times_s > last_bad) & (glc.quality == 0)]
        good_again = float(later[0]) if len(later) else end
        verdict.figure("time out of model s", good_again - first_bad)
        verdict.require(
            good_again <= last_bad + 2 * SPECTRUM_PERIOD_S, "GOOD again at the next spectrum"
        )
        # what the fallback kept out of the loop: the estimate through the band, vs the truth
        oom = in_band & (status.values == STATUS_CODES["out_of_model"])
        est = glc.values[oom] - truth.glucose_at(glc.times_s[oom] - t0)
        est = est[np.isfinite(est)]
        verdict.figure("rejected estimate bias g/L", float(np.mean(est)) if len(est) else math.nan)
        fb = (out.times_s > first_bad) & (out.times_s < good_again)
        on_profile = fb & np.isclose(out.values, profile, rtol=1e-9, atol=1e-12)
        t_on = out.times_s[on_profile]
        verdict.figure("feed fallback s", float(t_on[-1] - t_on[0]) if len(t_on) else 0.0)
        verdict.require(
            int(on_profile.sum()) >= int(fb.sum()) - 1 and int(fb.sum()) > 100,
            f"the feed on its profile through the band ({int(on_profile.sum())}/{int(fb.sum())})",
        )
        after = glc.times_s >= good_again
        err = glc.values[after & in_model] - truth.glucose_at(glc.times_s[after & in_model] - t0)
        err = err[np.isfinite(err)]
        verdict.figure("glucose err after max g/L", float(np.max(np.abs(err))) if len(err) else -1)
        verdict.require(
            len(err) > 10 and float(np.max(np.abs(err))) < 0.25, "estimate accurate after"
        )
        resumed = out.times_s > good_again
        verdict.figure(
            "trim after mL/min", float(np.max(np.abs(trim[resumed]))) if resumed.any() else 0.0
        )
        verdict.require(
            bool(resumed.any()) and float(np.max(np.abs(trim[resumed]))) > 1e-4,
            "the glucose loop trims the profile again",
        )

        # -- the rest of the reactor --------------------------------------------------------------
        figs = loop_figures(r, cfg, t0)
        for loop in ("temp", "ph", "do"):
            f = figs[loop]
            verdict.figure(f"{loop} worst dev", f.max_abs_dev)
            verdict.require(f.n_samples > 100 and f.ok, f"{loop} in its band ({f.band:g})")
        # Samples lost: slots missing from the record (gaps over 1.5 sample periods). On the
        # accelerated clock a stall of this 2-core machine makes the controller skip scans (an
        # overrun: 44 ms of wall time is 26 s of plant time at 600×, no catch-up burst,
        # control.md §8.5): a slot missed that way is an artefact of the acceleration, not
        # data the historian lost. So every gap must coincide with an overrun the run counted,
        # and stay within one sample period plus the 60 s stall allowance of the E. coli
        # scenarios (HIL_OVERRIDES); with no overrun, nothing may be missing.
        key = ("temp_c", "ph", "feed_ml_min", "glucose_g_l")
        lost = {tag: samples_lost(r, tag, 60.0, t0 + 600.0) for tag in key}
        gap = max(max_sample_gap(r, tag, t0 + 600.0) for tag in key)
        m = re.search(r"(\d+) overruns", output)
        overruns = int(m.group(1)) if m else 0
        verdict.figure("samples lost", sum(lost.values()))
        verdict.figure("overruns", overruns)
        verdict.figure("max sample gap s", gap)
        verdict.require(
            not any(lost.values()) or (max(lost.values()) <= overruns and gap <= 120.0),
            f"samples lost {lost} beyond the {overruns} scan overruns (max gap {gap:.0f} s)",
        )
        # the soft sensor's drift monitor (Q residuals' CUSUM) must see the unusable spectra and
        # nothing else: no other alarm, and no drift before the fault
        raised = [a for a in r.alarms() if a.transition == "raise"]
        drift = [a for a in raised if a.name == "glucose.drift"]
        others = [a.name for a in raised if a.name != "glucose.drift"]
        verdict.figure("alarms", len(others))
        verdict.require(not others, f"no alarm but the drift alarm: {others}")
        verdict.figure("drift alarm at h", f"{(drift[0].time_s - t0) / 3600:.3f}" if drift else "-")
        verdict.require(
            len(drift) == 1 and t0 + band[0] <= drift[0].time_s <= t0 + sum(band),
            "the drift alarm raised once, during the fault",
        )
    verdict.finish()

"""The E. coli example's whole culture: ``edgectl run examples/ecoli-fedbatch-2L.toml --speed
5000 --until-end`` (``make run-full``; the main job, ``make run``, is the shorter culture of
``examples/ecoli-fedbatch-2L-seed.toml``, which ``test_ecoli_rig.py`` runs over ptys).

The whole E. coli culture (plant-models.md §11 scenario A: X0 0.17 g/L, S0 4.94 g/L, V0 2 L)
against the simulated plant behind ``sim://`` ports (emulated EZO probes, Alicat MFCs, Reglo ICC
pump channels, balances, GPIO on a mock pin factory), the controller its own process: batch,
the DO-spike transition at the real glucose exhaustion, the exponential feed until the vessel's
titrant capacity limits it (the feed capped, an event), and the end of the culture when the
working volume reaches 2.7 L (or after 24 h of fed-batch), where the run stops. Up to the
harvest it must hold T within ±0.1 °C, pH within ±0.05 and DO at or above setpoint − 5 %
saturation after the start-up transient (control.md §4.2); the figures are read back from the
historian, and the summary it printed must report the same verdicts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edgectl.historian import HistoryReader
from edgectl.runtime.reactor_config import load_reactor_config
from edgectl.runtime.summary import culture_end_s, loop_figures

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "ecoli-fedbatch-2L.toml"


def test_ecoli_whole_culture_holds_its_tolerances(tmp_path: Path) -> None:
    db = tmp_path / "ecoli.db"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgectl.cli",
            "run",
            str(CONFIG),
            "--speed",
            "5000",
            "--until-end",
            "--duration",
            "40",  # a bound: the recipe ends the culture by 34 h at the latest
            "--db",
            str(db),
            "--socket",
            str(tmp_path / "ecoli.sock"),
            "--check",
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for loop in ("temp", "ph", "do"):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(loop + " "))
        assert line.rstrip().endswith("PASS"), line
    assert "  phase                  harvest" in out

    cfg = load_reactor_config(CONFIG)
    with HistoryReader(db) as reader:
        [run] = reader.runs()
        t0 = run.started_s
        phases = [e.message for e in reader.events(kind="phase")]
        assert phases[0].startswith("batch → fed-batch: confirmed do_pct spike"), phases
        assert phases[1].startswith("fed-batch → harvest: volume"), phases
        [fb, end] = [e.time_s - t0 for e in reader.events(kind="phase")]
        assert 8 * 3600 <= fb <= 12 * 3600  # the real glucose exhaustion, not the first descent
        assert end - fb >= 8 * 3600
        assert end >= 24 * 3600  # the culture to its end: at least 24 h
        assert culture_end_s(reader, cfg, t0) == end + t0
        # the vessel's capacity limited the feed, and each limitation ended by itself
        limits = reader.events(kind="limit")
        started = [e for e in limits if "limitation:" in e.message]
        cleared = [e for e in limits if "cleared" in e.message]
        assert started, "no feed limitation in the whole culture"
        assert len(cleared) >= len(started) - 1
        figures = loop_figures(reader, cfg, t0)
        assert figures["temp"].n_samples >= 8000  # ~23 h after settling at 10 s sampling
        assert figures["temp"].max_abs_dev <= 0.1
        assert figures["ph"].max_abs_dev <= 0.05
        assert figures["do"].max_abs_dev <= 5.0  # worst shortfall below setpoint
        assert reader.count("alarm") == 0
        # the run stopped at the harvest (--until-end), within one scan of it
        temp = reader.samples("temp_c")
        assert temp.times_s[-1] - (end + t0) <= 30.0
        assert reader.audit.verify().is_intact

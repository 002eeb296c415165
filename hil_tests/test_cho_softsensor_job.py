"""The CHO job: ``edgectl run examples/cho-fedbatch-2L.toml --speed 3600 --duration 72``.

The controller runs as its own process against the simulated CHO plant behind ``sim://`` ports
(EZO probes, Alicat CO2/O2 MFCs, Reglo ICC feed and base channels, the Raman spectrometer with
its binary frames, GPIO heater and stirrer). Glucose is controlled from the spectral soft
sensor; every loop must hold its acceptance band, read back from the historian, and the
summary printed by the run must report the same verdicts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from edgectl.historian import HistoryReader
from edgectl.runtime.reactor_config import load_reactor_config
from edgectl.runtime.summary import loop_figures

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "cho-fedbatch-2L.toml"


def test_cho_fedbatch_holds_its_tolerances(tmp_path: Path) -> None:
    db = tmp_path / "cho.db"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgectl.cli",
            "run",
            str(CONFIG),
            "--speed",
            "3600",
            "--duration",
            "72",
            "--db",
            str(db),
            "--socket",
            str(tmp_path / "cho.sock"),
            "--check",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for loop in ("temp", "ph", "do", "glucose"):
        line = next(ln for ln in proc.stdout.splitlines() if ln.strip().startswith(loop + " "))
        assert line.rstrip().endswith("PASS"), line

    cfg = load_reactor_config(CONFIG)
    with HistoryReader(db) as reader:
        [run] = reader.runs()
        figures = loop_figures(reader, cfg, run.started_s)
        assert figures["temp"].max_abs_dev <= 0.1
        assert figures["ph"].max_abs_dev <= 0.1
        assert figures["do"].max_abs_dev <= 5.0
        assert figures["glucose"].max_abs_dev <= 0.3
        assert figures["glucose"].n_samples > 2000  # 60 h of feeding at 60 s sampling
        status = reader.samples("glucose_g_l.status", run.started_s)
        assert np.mean(status.values == 0) > 0.9  # spectra in model
        assert reader.count("alarm") == 0
        assert any(e.kind == "phase" for e in reader.events())
        assert reader.audit.verify().is_intact

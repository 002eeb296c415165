"""The main job: ``edgectl run examples/ecoli-fedbatch-2L.toml --speed 600 --duration 4``.

The controller runs as its own process against the simulated plant behind ``sim://`` ports
(emulated EZO probes, Alicat MFCs, Reglo ICC pump channels, balances, GPIO on a mock pin
factory). After the start-up transient it must hold T within ±0.1 °C, pH within ±0.05 and DO at
or above setpoint − 5 % saturation (control.md §4.2); the figures are read back from the
historian the run wrote, and the summary it printed must report the same verdicts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edgectl.historian import HistoryReader
from edgectl.runtime.reactor_config import load_reactor_config
from edgectl.runtime.summary import loop_figures

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "ecoli-fedbatch-2L.toml"


def test_ecoli_fedbatch_holds_its_tolerances(tmp_path: Path) -> None:
    db = tmp_path / "ecoli.db"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgectl.cli",
            "run",
            str(CONFIG),
            "--speed",
            "600",
            "--duration",
            "4",
            "--db",
            str(db),
            "--socket",
            str(tmp_path / "ecoli.sock"),
            "--check",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for loop in ("temp", "ph", "do"):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(loop + " "))
        assert line.rstrip().endswith("PASS"), line

    cfg = load_reactor_config(CONFIG)
    with HistoryReader(db) as reader:
        [run] = reader.runs()
        figures = loop_figures(reader, cfg, run.started_s)
        assert figures["temp"].n_samples >= 700  # 3.5 h after settling at 10 s sampling
        assert figures["temp"].max_abs_dev <= 0.1
        assert figures["ph"].max_abs_dev <= 0.05
        assert figures["do"].max_abs_dev <= 5.0  # worst shortfall below setpoint
        assert reader.count("alarm") == 0
        # the scan really ran at 1 s: ~14 400 scans in 4 h of clock time
        temp = reader.samples("temp_c")
        assert temp.times_s[-1] - temp.times_s[0] >= 4 * 3600 - 30
        assert reader.audit.verify().is_intact

"""Serial output writes and their dead band (runtime/hub.py, ``[outputs.<name>] write_deadband``).

A pump's or an MFC's setpoint is one serial transaction per write; the pH loop's output moves a
little every scan with the probe's noise. A move within the output's write dead band (default 0;
the example's pumps 0.1 % of their range, the Reglo's rate resolution) is not sent; min, max and
safe are sent exactly; every ``refresh_s`` the setpoint is sent again regardless.
"""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path
from typing import Any

import pytest

from edgectl.config import to_toml_text
from edgectl.runtime.build import open_run
from edgectl.runtime.reactor_config import OutputConfig

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ecoli-fedbatch-2L.toml"


def _run_counting_sends(tmp_path: Path, data: dict[str, Any], seconds: float) -> Any:
    tmp_path.mkdir()
    config = tmp_path / "reactor.toml"
    config.write_text(to_toml_text(data), encoding="utf-8")
    run = open_run(config, speed=1200.0, db=tmp_path / "r.db", socket_path=tmp_path / "r.sock")
    sent: list[tuple[float, float]] = []
    send = run.hub._send

    def counting(name: str) -> None:
        send(name)
        if name == "base_ml_min":
            sent.append((run.clock.now(), run.hub._serial_out[name].sent))

    run.hub._send = counting  # type: ignore[method-assign]
    try:
        run.run(seconds)
        out = run.hub._serial_out["base_ml_min"]
        if out.pending is not None:
            out.pending.result(timeout=30.0)  # the last scan's write, if one was queued
        wanted = (out.wanted, out.sent)
        scans = run.scheduler.stats.scans
        # a rate change of the running base pump is no output fault (its ``H`` start answers
        # ``#`` while it runs: the driver asks ``E`` instead of failing the write)
        assert run.hub.faults() == []
    finally:
        run.close()
    return sent, wanted, scans


def test_moves_within_the_dead_band_are_not_sent(tmp_path: Path) -> None:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    band = OutputConfig(**data["outputs"]["base_ml_min"]).deadband
    assert band == pytest.approx(0.0005)  # 0.1 % of 0..0.5 mL/min, set in the example
    assert OutputConfig(**data["outputs"]["o2_sccm"]).deadband == 0.0  # MFCs: every change
    sent, wanted, scans = _run_counting_sends(tmp_path / "a", data, 900.0)
    assert len(sent) >= 2
    assert len(sent) < scans  # not every scan: most moves are within the band
    for (t0, v0), (t1, v1) in itertools.pairwise(sent):
        # each write moved the setpoint by more than the band, or refreshed it after 60 s
        assert abs(v1 - v0) > band or t1 - t0 >= 60.0 - 1e-6, (t0, v0, t1, v1)
    # at the end of the run the pump has what the loop wants, within the band
    want, have = wanted
    assert abs(want - have) <= band + 1e-12

    # write_deadband = 0: every change is sent (the old behaviour, for a device that needs it)
    data["outputs"]["base_ml_min"]["write_deadband"] = 0.0
    exact, _, scans0 = _run_counting_sends(tmp_path / "b", data, 900.0)
    assert len(exact) > len(sent)
    assert len(exact) >= 0.25 * scans0, (len(exact), len(sent), scans0)
    assert len(exact) >= 1.3 * len(sent), (len(exact), len(sent))


def test_a_bad_dead_band_is_a_config_error(tmp_path: Path) -> None:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["outputs"]["base_ml_min"]["write_deadband"] = -1.0
    config = tmp_path / "reactor.toml"
    config.write_text(to_toml_text(data), encoding="utf-8")
    with pytest.raises(ValueError, match=r"outputs\.base_ml_min\.write_deadband"):
        open_run(config, speed=1200.0, db=tmp_path / "r.db", socket_path=tmp_path / "r.sock")

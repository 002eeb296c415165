"""``edgectl calibrate`` on the chemotools fermentation CSV files (one spectrum a row, the axis in
the header; HPLC glucose as references)."""

from __future__ import annotations

import argparse
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from edgectl import cli, spectra
from edgectl.commands import calibrate
from edgectl.errors import ConfigError, InvalidInputError, SpectrumShapeError

pytest.importorskip("chemotools")
DATA = files("chemotools.datasets") / "data"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edgectl")
    sub = parser.add_subparsers(dest="command", required=True)
    calibrate.add_parser(sub)
    args = parser.parse_args(["calibrate", *argv])
    return int(args.func(args))


def test_calibrate_is_a_registered_command():
    assert "calibrate" in cli.COMMANDS


def test_calibrate_reference_pipeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    model = tmp_path / "glucose.json"
    code = run(
        [
            str(DATA / "train_spectra.csv"),
            str(DATA / "train_hplc.csv"),
            "-o",
            str(model),
            "--region",
            "950:1550",
            "--savgol",
            "15,2,1",
            "--unit",
            "g/L",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "21 spectra × 1047 points; target glucose g/L" in out
    rows = [ln.split() for ln in out.splitlines()]
    table = {
        int(r[0]): float(r[1]) for r in rows if len(r) >= 2 and r[0].isdigit() and r[1][0].isdigit()
    }
    assert sorted(table) == list(range(1, 11))
    assert table[4] == pytest.approx(1.30, abs=0.005)
    assert "chosen: 4 LV (RMSECV 1.2958 g/L)" in out
    sensor = spectra.SoftSensor.load(model)
    assert sensor.n_components == 4
    assert sensor.units == ["g/L"]
    assert sensor.target_names == ["glucose"]
    doc = sensor.document()
    assert doc["calibration"]["cv"]["scheme"] == "loo"
    assert [s["kind"] for s in doc["pipeline"]] == ["region", "savitzky_golay", "snv"]


def test_calibrate_with_fixed_components_and_msc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    model = tmp_path / "m.json"
    args = [str(DATA / "train_spectra.csv"), str(DATA / "train_hplc.csv"), "-o", str(model)]
    args += ["--region", "950:1550", "--scatter", "msc", "--components", "3", "--cv", "blocks:7"]
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "chosen: 3 LV" in out
    assert "CV blocks:7" in out
    assert spectra.SoftSensor.load(model).n_components == 3


def test_calibrate_reports_mismatched_files(tmp_path: Path):
    refs = tmp_path / "refs.csv"
    refs.write_text("glucose\n1.0\n2.0\n")
    with pytest.raises(ConfigError, match="2 reference rows for 21 spectra"):
        run([str(DATA / "train_spectra.csv"), str(refs), "-o", str(tmp_path / "m.json")])
    bad = tmp_path / "bad.csv"
    bad.write_text("400,401,402\n1,2,3\n1,2\n")
    with pytest.raises(SpectrumShapeError, match=r"bad\.csv: line 3 has 2 values"):
        spectra.read_spectra_csv(bad)
    bad.write_text("400,401,402\n1,2,x\n")
    with pytest.raises(InvalidInputError, match="line 2, column 3: 'x' is not a number"):
        spectra.read_spectra_csv(bad)
    with pytest.raises(InvalidInputError, match="no column 'lactate'"):
        spectra.read_references_csv(DATA / "train_hplc.csv", ["lactate"])
    with pytest.raises(ConfigError, match="--region"):
        run(
            [
                str(DATA / "train_spectra.csv"),
                str(DATA / "train_hplc.csv"),
                "-o",
                "m.json",
                "--region",
                "950-1550",
            ]
        )


def test_read_spectra_csv_round_trip(tmp_path: Path):
    path = tmp_path / "s.csv"
    axis = np.array([400.0, 401.5, 403.0])
    x = np.array([[1.0, 2.0, 3.5], [0.5, 0.25, 0.125]])
    path.write_text(
        ",".join(map(str, axis)) + "\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in x)
    )
    a, s = spectra.read_spectra_csv(path)
    np.testing.assert_array_equal(a, axis)
    np.testing.assert_array_equal(s, x)

"""The wheel as a user gets it: built by maturin, installed into a clean virtualenv, run from a
folder outside the repository, with the firmware profiles found as package data.

(The aarch64 wheel gets the same treatment under qemu in ``scripts/test-aarch64.sh``.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_wheel_installs_into_a_clean_venv_and_runs_the_main_job(tmp_path: Path) -> None:
    maturin, uv = BIN / "maturin", shutil.which("uv", path=f"{ROOT / '.tools' / 'bin'}:{BIN}")
    if not maturin.exists() or uv is None:
        pytest.fail(f"maturin ({maturin}) and uv ({uv}) come with `make install`")
    dist = tmp_path / "dist"
    subprocess.run(
        [str(maturin), "build", "--release", "--locked", "--out", str(dist)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("edgectl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "edgectl/firmware_profiles/boards/raspberry-pi-5.toml" in names
    assert "edgectl/firmware_profiles/alicat/mc-series.toml" in names
    assert not [n for n in names if n.startswith("firmware_profiles/")]  # no top-level folder

    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
    env.pop("EDGECTL_PROFILE_DIR", None)
    env.pop("PYTHONPATH", None)
    subprocess.run([uv, "venv", "--python", sys.executable, str(venv)], check=True, env=env)
    subprocess.run(
        [uv, "pip", "install", "--python", str(venv / "bin" / "python"), str(wheel)],
        check=True,
        env=env,
        capture_output=True,
    )

    work = tmp_path / "bench"  # outside the repository: nothing of the checkout is reachable
    work.mkdir()
    shutil.copy(ROOT / "examples" / "ecoli-fedbatch-2L.toml", work / "reactor.toml")
    where = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import edgectl; from edgectl.io.profile import profile_root, iter_profiles;"
            "print(edgectl.__file__); print(profile_root()); print(len(iter_profiles()))",
        ],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert Path(where[0]).is_relative_to(venv)
    assert Path(where[1]) == Path(where[0]).parent / "firmware_profiles"
    assert int(where[2]) == len(list((ROOT / "firmware_profiles").rglob("*.toml")))

    job = subprocess.run(
        [str(venv / "bin" / "edgectl"), "run", "reactor.toml", "--speed=3600", "--duration=0.1"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert job.returncode == 0, job.stderr
    assert "ecoli-2L" in job.stdout
    assert (work / "runs" / "ecoli-2L.db").stat().st_size > 0

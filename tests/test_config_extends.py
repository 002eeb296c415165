"""``extends``: a reactor file over another (the main job over the E. coli example).

Tables merge key by key, anything else (a value, an array such as ``[[recipe.phases]]``)
replaces the extended file's whole; errors name the file and ``$.extends``; the run's config
hash covers every file of the chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgectl.config import merge_tables, to_builtins
from edgectl.errors import ConfigError
from edgectl.runtime.reactor_config import (
    MAX_EXTENDS,
    config_files,
    config_text,
    load_reactor_config,
    read_reactor_toml,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ecoli-fedbatch-2L.toml"
MAIN_JOB = ROOT / "examples" / "ecoli-fedbatch-2L-seed.toml"


def _phase(cfg: Any, name: str) -> dict[str, Any]:
    return next(p for p in cfg["recipe"]["phases"] if p["name"] == name)


def test_main_job_is_the_example_with_its_three_stated_changes() -> None:
    assert config_files(MAIN_JOB) == [MAIN_JOB, EXAMPLE]
    base = to_builtins(load_reactor_config(EXAMPLE))
    job = to_builtins(load_reactor_config(MAIN_JOB))
    assert job["reactor"]["name"] != base["reactor"]["name"]  # its own runs/ files
    assert job["plant"]["config"] == "ecoli-fedbatch-2L-seed.plant.toml"
    assert base["plant"]["config"] == ""
    assert job["outputs"]["base_ml_min"]["max"] == 0.25 < base["outputs"]["base_ml_min"]["max"]
    # the fed-batch ends after 6 h instead of 24 h; the volume and operator ends stay
    ends = {t["after_s"] for t in _phase(job, "fed-batch")["transitions"] if t.get("after_s")}
    assert ends == {21600.0}
    fb_job, fb_base = _phase(job, "fed-batch"), _phase(base, "fed-batch")
    assert [t for t in fb_job["transitions"] if not t.get("after_s")] == [
        t for t in fb_base["transitions"] if not t.get("after_s")
    ]
    assert {k: v for k, v in fb_job.items() if k != "transitions"} == {
        k: v for k, v in fb_base.items() if k != "transitions"
    }
    assert _phase(job, "batch") == _phase(base, "batch")
    assert _phase(job, "harvest") == _phase(base, "harvest")
    # everything else is the example's
    for key in ("reactor", "plant", "outputs", "recipe"):
        job.pop(key), base.pop(key)
    assert job == base


def test_tables_merge_and_arrays_replace(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text(
        "a = 1\nlist = [1, 2]\n[t]\nx = 1\ny = 2\n[t.u]\nz = 3\n", encoding="utf-8"
    )
    (tmp_path / "top.toml").write_text(
        'extends = "base.toml"\nlist = [9]\n[t]\ny = 20\n[t.u]\nw = 4\n', encoding="utf-8"
    )
    merged = read_reactor_toml(tmp_path / "top.toml")
    assert merged == {"a": 1, "list": [9], "t": {"x": 1, "y": 20, "u": {"z": 3, "w": 4}}}
    assert merge_tables({"k": {"a": 1}}, {"k": 5}) == {"k": 5}


def test_extends_errors_name_the_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("extends = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml: \$\.extends: expected the path"):
        load_reactor_config(bad)
    missing = tmp_path / "missing.toml"
    missing.write_text('extends = "nowhere.toml"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"missing\.toml: \$\.extends: .*nowhere\.toml: file"):
        load_reactor_config(missing)
    (tmp_path / "a.toml").write_text('extends = "b.toml"\n', encoding="utf-8")
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"b\.toml: \$\.extends: 'a\.toml' extends in a circle"):
        load_reactor_config(tmp_path / "a.toml")
    for i in range(MAX_EXTENDS + 2):
        (tmp_path / f"c{i}.toml").write_text(f'extends = "c{i + 1}.toml"\n', encoding="utf-8")
    (tmp_path / f"c{MAX_EXTENDS + 2}.toml").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"more than {MAX_EXTENDS} files extended"):
        load_reactor_config(tmp_path / "c0.toml")


def test_a_bad_key_names_the_run_file_and_the_files_it_extends(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "scan_period_s = 1.0", "scan_period_s = -1.0"
    )
    (tmp_path / "base.toml").write_text(text, encoding="utf-8")
    (tmp_path / "top.toml").write_text('extends = "base.toml"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_reactor_config(tmp_path / "top.toml")
    msg = str(err.value)
    assert "top.toml (extending " in msg
    assert "base.toml)" in msg
    assert "scan_period_s" in msg


def test_the_recorded_config_text_covers_the_extended_file(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    top = tmp_path / "top.toml"
    top.write_text('extends = "base.toml"\n', encoding="utf-8")
    first = config_text(top)
    assert first.startswith('extends = "base.toml"\n')
    assert EXAMPLE.read_text("utf-8") in first
    with (tmp_path / "base.toml").open("a", encoding="utf-8") as f:
        f.write("# changed\n")
    assert config_text(top) != first
    assert config_text(top) == config_text(top)

"""Reactor configs: every kind of bad field gives a message naming the file, key path and rule."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from edgectl.config import to_toml_text
from edgectl.errors import ConfigError
from edgectl.runtime.reactor_config import (
    CascadeLoop,
    PidLoop,
    SplitRangeLoop,
    load_reactor_config,
)

BASE: dict[str, Any] = {
    "reactor": {"name": "r1", "scan_period_s": 1.0},
    "devices": {
        "probe": {
            "profile": "atlas-scientific/ezo-rtd",
            "port": "sim://probe",
            "readings": {"temp_c": "temp_c"},
        },
        "ph": {"profile": "hamilton/arc-ph", "port": "sim://ph", "readings": {"ph": "ph"}},
        "pumps": {
            "profile": "ismatec/reglo-icc",
            "port": "sim://pumps",
            "outputs": {"base_ml_min": "dose_rate_ml_min"},
        },
        "mfc_co2": {
            "profile": "alicat/mc-series",
            "port": "sim://mfc-co2",
            "outputs": {"co2_sccm": "flow_sccm"},
        },
        "mfc_o2": {
            "profile": "alicat/mc-series",
            "port": "sim://mfc-o2",
            "outputs": {"o2_sccm": "flow_sccm"},
        },
    },
    "gpio": {"board": "boards/raspberry-pi-5", "outputs": {"heater": "heater"}},
    "outputs": {
        "heater": {"unit": "duty", "min": 0.0, "max": 1.0, "safe": 0.0, "pwm_window_s": 2.0},
        "base_ml_min": {"unit": "mL/min", "min": 0.0, "max": 5.0},
        "co2_sccm": {"unit": "sccm", "min": 0.0, "max": 100.0},
        "o2_sccm": {"unit": "sccm", "min": 0.0, "max": 100.0},
    },
    "loops": {
        "temp": {
            "type": "pid",
            "pv": "temp_c",
            "setpoint": 37.0,
            "output": "heater",
            "pid": {"kp": 0.5},
        },
        "ph": {
            "type": "split_range",
            "pv": "ph",
            "setpoint": 7.0,
            "raise_output": "base_ml_min",
            "lower_output": "co2_sccm",
            "deadband_pct": 2.0,
            "pid": {"kp": 10.0, "ti_s": 600.0},
        },
    },
    "run": {"on_restart": "resume"},
    "alarms": {"t_high": {"tag": "temp_c", "kind": "high", "limit": 39.0}},
    "interlocks": {"hot": {"alarms": ["t_high"], "action": "force", "outputs": {"heater": 0.0}}},
    "recipe": {
        "phases": [
            {
                "name": "batch",
                "setpoints": {"temp": 37.0},
                "transitions": [{"to": "end", "after_s": 10}],
            },
            {"name": "end", "modes": {"ph": "off"}},
        ]
    },
}


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    p = tmp_path / "reactor.toml"
    p.write_text(to_toml_text(data), encoding="utf-8")
    return p


def test_valid_config_decodes_with_loop_types(tmp_path: Path) -> None:
    cfg = load_reactor_config(write(tmp_path, BASE))
    assert isinstance(cfg.loops["temp"], PidLoop)
    assert isinstance(cfg.loops["ph"], SplitRangeLoop)
    assert cfg.outputs["heater"].pwm_window_s == 2.0
    assert {"temp_c", "ph", "heater", "temp.sp", "ph.sp"} <= cfg.tag_names()
    assert cfg.run.on_restart == "resume"


def test_cascade_loop(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["loops"]["do"] = {
        "type": "do_cascade",
        "pv": "temp_c",
        "setpoint": 30.0,
        "pid": {"kp": 1.0, "ti_s": 300.0},
        "stages": [{"output": "o2_sccm", "min": 0.0, "max": 100.0}],
    }
    cfg = load_reactor_config(write(tmp_path, data))
    assert isinstance(cfg.loops["do"], CascadeLoop)
    assert cfg.loops["do"].hysteresis_s == 60.0


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    node = data
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("reactor.scan_period_s", 0.0, "$.reactor.scan_period_s: Expected `float` > 0.0"),
        ("reactor.name", "has space", "$.reactor.name: Expected `str` matching regex"),
        ("reactor.colour", "red", "$.reactor: Object contains unknown field `colour`"),
        ("devices.probe.port", _DELETE, "$.devices.probe: Object missing required field `port`"),
        (
            "devices.probe.poll_period_s",
            -1.0,
            "$.devices.probe.poll_period_s: Expected `float` > 0.0",
        ),
        ("outputs.heater.safe", 2.0, "$.outputs.heater: safe must be within [min, max], got 2.0"),
        ("outputs.heater.max", -1.0, "$.outputs.heater: max must be > min"),
        (
            "loops.temp.type",
            "fuzzy",
            "$.loops.temp.type: Invalid value 'fuzzy' (allowed: 'pid', 'split_range',"
            " 'do_cascade', 'feed', 'foam')",
        ),
        ("loops.temp.setpoint", "hot", "$.loops.temp.setpoint: Expected `float`, got `str`"),
        (
            "loops.temp.mode",
            "cruise",
            "$.loops.temp.mode: Invalid enum value 'cruise' (allowed: 'auto', 'manual', 'off')",
        ),
        ("loops.ph.deadband_pct", -2.0, "$.loops.ph.deadband_pct: Expected `float` >= 0.0"),
        ("alarms.t_high.kind", "huge", "$.alarms.t_high.kind: Invalid enum value 'huge' (allowed:"),
        ("alarms.t_high.limit", _DELETE, "$.alarms.t_high: a high alarm needs a finite limit"),
        ("interlocks.hot.action", "panic", "$.interlocks.hot.action"),
        ("run.on_restart", "maybe", "$.run.on_restart"),
        ("recipe.phases.0.transitions.0.to", "nowhere", "unknown phase 'nowhere'"),
    ],
)
def test_bad_field_names_file_key_and_rule(
    tmp_path: Path, path: str, value: Any, expected: str
) -> None:
    data = copy.deepcopy(BASE)
    _set(data, path, value)
    p = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_reactor_config(p)
    msg = str(info.value)
    assert msg.startswith(f"{p}: ")
    assert expected in msg


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("loops.temp.pv", "tmep_c", "$.loops.temp.pv: unknown tag 'tmep_c'"),
        ("loops.temp.output", "heatr", "$.loops.temp.output: unknown output 'heatr'"),
        ("loops.ph.lower_output", "acid", "$.loops.ph.lower_output: unknown output 'acid'"),
        ("alarms.t_high.tag", "nope", "$.alarms.t_high.tag: unknown tag 'nope'"),
        ("interlocks.hot.alarms", ["t_low"], "$.interlocks.hot.alarms: unknown alarm 't_low'"),
        ("interlocks.hot.outputs", {"fan": 0.0}, "$.interlocks.hot.outputs: unknown output 'fan'"),
        (
            "recipe.phases.0.setpoints",
            {"tmp": 30.0},
            "$.recipe.phases[0]: unknown loop or output 'tmp'",
        ),
        ("gpio.outputs", {}, "$.outputs.heater: no device or GPIO channel delivers this output"),
    ],
)
def test_dangling_references_are_named(
    tmp_path: Path, path: str, value: Any, expected: str
) -> None:
    data = copy.deepcopy(BASE)
    _set(data, path, value)
    p = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_reactor_config(p)
    assert expected in str(info.value)
    assert str(info.value).startswith(f"{p}: ")

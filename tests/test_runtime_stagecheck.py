"""DO-cascade stage health (edgectl.runtime.stagecheck) and its use by the engine, the config
and the controller: a stage whose read-back does not follow its command is skipped, alarmed,
and restored once it tracks again."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest

from edgectl.config import decode_mapping
from edgectl.errors import ConfigError
from edgectl.quality import Quality
from edgectl.runtime.controller import ScanContext
from edgectl.runtime.loops import Engine
from edgectl.runtime.reactor_config import (
    CascadeLoop,
    ReactorConfig,
    check_references,
    load_reactor_config,
)
from edgectl.runtime.stagecheck import StageMonitor
from edgectl.runtime.tags import Sample

ROOT = Path(__file__).resolve().parents[1]


def _good(v: float, t: float = 0.0) -> Sample:
    return Sample(v, t, Quality.GOOD)


def _monitor() -> StageMonitor:
    return StageMonitor(
        "do", 1, "air", "air_flow", 3000.0, tolerance=0.2, fault_s=60.0, recover_s=120.0
    )


def test_monitor_fails_after_the_delay_and_recovers_only_when_informative() -> None:
    m = _monitor()
    assert m.health_tag == "do.air.health"
    assert m.alarm == "do.air.failed"
    # tracking within 20 % of the 3000 sccm span: healthy
    assert m.update(0.0, 2000.0, _good(1500.0)) is None
    assert not m.failed
    # off by more than 600 sccm: fails after 60 s, not before
    for t in range(1, 60):
        assert m.update(float(t), 2000.0, _good(0.0)) is None
    assert m.update(61.0, 2000.0, _good(0.0)) is False
    assert m.failed
    # a read-back that is not GOOD judges nothing
    assert m.update(62.0, 2000.0, Sample(math.nan, 62.0, Quality.STALE)) is None
    assert m.update(62.0, None, _good(2000.0)) is None
    # commanded (near) nothing, reading nothing: not evidence of a repair
    for t in range(100, 400):
        assert m.update(float(t), 100.0, _good(100.0)) is None
    assert m.failed
    # commanded a real flow and delivering it for 120 s: restored
    for t in range(400, 520):
        assert m.update(float(t), 4000.0, _good(3950.0)) is None
    assert m.update(520.0, 4000.0, _good(3950.0)) is True
    assert not m.failed


def test_stale_read_backs_do_not_count_towards_the_delay() -> None:
    m = _monitor()
    for t in range(0, 30):
        m.update(float(t), 2000.0, _good(0.0))  # 29 s deviating
    for t in range(30, 600):  # ten minutes without a GOOD read-back
        assert m.update(float(t), 2000.0, Sample(math.nan, float(t), Quality.STALE)) is None
    assert m.update(600.0, 2000.0, _good(0.0)) is None  # one more deviating reading: 29 s
    assert not m.failed
    for t in range(601, 631):
        m.update(float(t), 2000.0, _good(0.0))
    assert not m.failed  # 59 s judged
    m.update(631.0, 2000.0, _good(0.0))
    assert m.failed  # 60 s of judged deviation


def test_a_short_deviation_resets_the_timer() -> None:
    m = _monitor()
    for t in range(0, 50):
        m.update(float(t), 2000.0, _good(0.0))
    m.update(50.0, 2000.0, _good(2000.0))  # caught up (an MFC settling after a step)
    for t in range(51, 100):
        assert m.update(float(t), 2000.0, _good(0.0)) is None
    assert not m.failed


CFG: dict[str, Any] = {
    "reactor": {"name": "r"},
    "outputs": {
        "stirrer": {"min": 200.0, "max": 1200.0, "safe": 200.0},
        "air": {"min": 0.0, "max": 4000.0, "safe": 1000.0, "unit": "sccm"},
        "o2": {"min": 0.0, "max": 2000.0, "unit": "sccm"},
    },
    "tags": {"air_flow": {}, "o2_flow": {}},
    "loops": {
        "do": {
            "type": "do_cascade",
            "pv": "do_pct",
            "setpoint": 30.0,
            "pid": {"kp": 2.0, "ti_s": 120.0},
            "stages": [
                {"output": "stirrer", "min": 200.0, "max": 1200.0},
                {"output": "air", "min": 1000.0, "max": 4000.0, "feedback": "air_flow"},
                {
                    "output": "o2",
                    "min": 0.0,
                    "max": 2000.0,
                    "feedback": "o2_flow",
                    "pid": {"kp": 1.0},
                    "pid_degraded": {"kp": 0.05, "ti_s": 300.0},
                },
            ],
            "hysteresis_s": 10.0,
            "stage_fault_s": 30.0,
            "stage_recover_s": 30.0,
        },
    },
}


def _cfg(data: dict[str, Any] = CFG) -> ReactorConfig:
    return decode_mapping(data, ReactorConfig, source="test")


_LAST: dict[int, dict[str, float]] = {}  # last outputs per engine: healthy MFCs deliver them


def _scan(e: Engine, t: float, do: float, air_flow: float | None = None) -> dict[str, float]:
    """One scan; the O2 MFC delivers its last command, the air MFC ``air_flow`` (None: its
    last command too)."""
    ctx = ScanContext(t, 1.0, "", None, False)
    last = _LAST.get(id(e), {"air": 1000.0, "o2": 0.0})
    samples = {
        "do_pct": _good(do, t),
        "air_flow": _good(last["air"] if air_flow is None else air_flow, t),
        "o2_flow": _good(last["o2"], t),
    }
    out = e.step(samples, ctx)
    e.track(out)
    _LAST[id(e)] = out
    return out


def test_engine_skips_a_failed_stage_and_schedules_degraded_gains() -> None:
    e = Engine(_cfg())
    view = e.views["do"]
    assert view.cascade is not None
    assert view.pid is not None
    assert e.health == {"do.air.health": 1.0, "do.o2.health": 1.0}
    assert view.cascade.stage_gains == [None, None, (1.0, 120.0)]
    # the air MFC reads 0 whatever it is told; DO low: stirrer runs up
    t = 0.0
    while not e.stage_events and t < 200:
        _scan(e, t, 10.0, 0.0)
        t += 1.0
    loop, what, details = e.stage_events.pop()
    assert (loop, what) == ("do", "stage_failed")
    assert details["stage"] == "air"
    assert details["read_back"] == 0.0
    assert e.health["do.air.health"] == 0.0
    assert view.cascade.stage_enabled == [True, False, True]
    assert view.cascade.stage_degraded == [False, False, True]  # O2 above a failed stage
    assert view.cascade.stage_degraded_gains[2] == (0.05, 300.0)
    assert view.cascade.stage_use == ["enabled", "failed", "enabled"]
    while view.cascade.active == 0 and t < 400:
        _scan(e, t, 10.0, 0.0)
        t += 1.0
    assert view.cascade.active == 2  # straight from the stirrer to O2
    assert (view.pid.kp, view.pid.ti_s) == (0.05, 300.0)
    # a resumed engine reports the failure on its first scan (health tag, so the alarm holds)
    resumed = Engine(_cfg())
    resumed.views["do"].restore(copy.deepcopy(view.state()))
    _scan(resumed, t, 10.0, 0.0)
    assert resumed.health["do.air.health"] == 0.0
    rcas = resumed.views["do"].cascade
    assert rcas is not None
    assert rcas.stage_enabled == [True, False, True]
    assert rcas.active == 2
    assert rcas.handovers == 0  # restoring the stages' use handed nothing over
    assert (resumed.views["do"].pid.kp, resumed.views["do"].pid.ti_s) == (0.05, 300.0)  # type: ignore[union-attr]
    s = view.settings()
    assert s["active_stage"] == "o2"
    assert s["stages"]["air"]["enabled"] is False
    # the air comes back: the stage, parked at its max below O2, reads 4000 → restored
    while not e.stage_events and t < 600:
        _scan(e, t, 10.0, 4000.0)
        t += 1.0
    assert e.stage_events.pop()[1] == "stage_recovered"
    assert view.cascade.stage_enabled == [True, True, True]
    assert view.cascade.stage_gains[2] == (1.0, 120.0)
    assert view.cascade.stage_degraded == [False, False, False]
    assert view.pid.kp == 1.0  # O2 active: its normal gains, applied bumplessly


def test_operator_re_enable_and_stage_gain_settings_follow_the_set_in_use() -> None:
    e = Engine(_cfg())
    view = e.views["do"]
    cas = view.cascade
    assert cas is not None
    assert view.pid is not None
    t = 0.0
    while cas.active != 2 and t < 600:  # air dead: fails, the cascade goes on to O2
        _scan(e, t, 10.0, 0.0)
        t += 1.0
    assert cas.stage_degraded[2]
    # gains set while O2 runs degraded go to its degraded set, from the live values
    view.set("kp", 0.07)
    assert view.set("stages.o2.ti_s", 250.0) == 300.0
    assert (view.pid.kp, view.pid.ti_s) == (0.07, 250.0)  # the live kp was kept
    assert cas.stage_degraded_gains[2] == (0.07, 250.0)
    assert cas.stage_gains[2] == (1.0, 120.0)
    # the operator clears the failure by re-enabling: normal gains at once
    view.set("stages.air.enabled", True)
    assert cas.stage_use == ["enabled", "enabled", "enabled"]
    assert (view.pid.kp, view.pid.ti_s) == (1.0, 120.0)
    # taking air out of use parks it at its minimum, even below the active stage
    view.set("stages.air.enabled", False)
    out = _scan(e, t, 10.0)
    assert cas.stage_use[1] == "out_of_use"
    assert out["air"] == 1000.0
    assert not cas.stage_degraded[2]  # out of use is not a failure


def test_operator_stage_settings_and_resume_state() -> None:
    e = Engine(_cfg())
    view = e.views["do"]
    assert view.cascade is not None
    assert view.set("stages.air.enabled", False) is True
    # an operator-disabled stage stays out even when its read-back tracks
    for t in range(0, 100):
        _scan(e, float(t), 30.0)
    assert view.cascade.stage_enabled[1] is False
    assert view.set("stages.o2.kp", 0.7) == 1.0
    assert view.cascade.stage_gains[2] == (0.7, 120.0)
    with pytest.raises(ConfigError, match=r"stages.<output>.enabled\|kp\|ti_s"):
        view.set("stages.n2.kp", 1.0)
    state = copy.deepcopy(view.state())
    assert state["cascade"]["operator_disabled"] == [1]
    # a new engine resumes the same stage in use, gains and stages out of use
    for t in range(100, 400):
        _scan(e, float(t), 5.0)
    assert view.cascade.active == 2
    assert not e.stage_events
    state = copy.deepcopy(view.state())
    e2 = Engine(_cfg())
    v2 = e2.views["do"]
    v2.restore(state)
    assert v2.cascade is not None
    assert v2.cascade.active == 2
    assert v2.cascade.stage_enabled == [True, False, True]
    assert v2.cascade.stage_gains[2] == (0.7, 120.0)
    assert e2.health["do.air.health"] == 1.0  # operator-disabled, not failed
    before = list(view.cascade.outputs)
    out = _scan(e2, 400.0, 5.0)
    # the resumed cascade puts every stage where it was (the master held in manual first)
    assert [out["stirrer"], out["air"], out["o2"]] == pytest.approx(before, abs=1e-9)
    assert view.set("stages.air.enabled", True) is False


def test_config_rules_for_stages() -> None:
    bad = copy.deepcopy(CFG)
    bad["loops"]["do"]["stages"][2]["pid"] = {"kp": 1.0, "td_s": 3.0}
    with pytest.raises(ConfigError, match=r"stages\[2\].*kp and ti_s"):
        _cfg(bad)
    for key, gains, rule in (
        ("pid_degraded", {"ti_s": -1.0}, "ti_s must be >= 0"),
        ("pid_degraded", {"kp": 0.0}, "kp must be finite and > 0"),
        ("pid", {"kp": math.inf}, "kp must be finite and > 0"),
    ):
        bad = copy.deepcopy(CFG)
        bad["loops"]["do"]["stages"][2][key] = gains
        with pytest.raises(ConfigError, match=rf"\$\.loops\.do\.stages\[2\].*{key}\.{rule}"):
            _cfg(bad)
    ok = copy.deepcopy(CFG)
    ok["loops"]["do"]["stages"][2]["pid_degraded"] = {"kp": 0.05, "ti_s": 0.0}  # no integral
    Engine(_cfg(ok))
    bad = copy.deepcopy(CFG)
    bad["loops"]["do"]["stages"][1]["feedback"] = "air_flw"
    with pytest.raises(ConfigError, match=r"stages\[1\]\.feedback: unknown tag 'air_flw'"):
        check_references(_cfg(bad), "r.toml")
    bad = copy.deepcopy(CFG)
    bad["alarms"] = {"do.air.failed": {"tag": "do_pct", "kind": "low", "limit": 5.0}}
    with pytest.raises(ConfigError, match=r"\$\.alarms\.do\.air\.failed: the name of an"):
        check_references(_cfg(bad), "r.toml")
    bad = copy.deepcopy(CFG)
    bad["loops"]["do"]["stage_tolerance"] = 0.0
    with pytest.raises(ConfigError, match="stage_tolerance"):
        _cfg(bad)
    loop = _cfg().loops["do"]
    assert isinstance(loop, CascadeLoop)
    assert loop.stage_alarms("do") == ["do.air.failed", "do.o2.failed"]


def test_example_config_watches_its_mfc_stages_and_interlocks_may_name_the_alarm() -> None:
    cfg = load_reactor_config(ROOT / "examples" / "ecoli-fedbatch-2L.toml")
    loop = cfg.loops["do"]
    assert isinstance(loop, CascadeLoop)
    assert loop.stage_alarms("do") == ["do.air_sccm.failed", "do.o2_sccm.failed"]
    assert "do.air_sccm.health" in cfg.tag_names()

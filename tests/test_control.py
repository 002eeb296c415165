"""Behaviour of edgectl.control through the public Python API (bindings, errors, live retune,
dict round-trips, reprs, loop bank)."""

from __future__ import annotations

import doctest
import math
import tomllib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edgectl._core
from edgectl import control
from edgectl.config import to_toml_text
from edgectl.control import (
    DoCascade,
    ExponentialFeed,
    FoamPulser,
    Fopdt,
    LoopBank,
    OverTempLadder,
    Pid,
    PidSettings,
    PulseOutput,
    RelayAutotune,
    SplitRange,
    StatPulser,
    VelocityPid,
    pid_from_dict,
    pid_from_tuning,
    tune,
)
from edgectl.errors import ConfigError, InvalidInputError, NumericalError


class Fopdt1:
    """First-order plus dead time plant, Euler on the controller step."""

    def __init__(self, k: float, tau_s: float, theta_s: float, dt_s: float, y0: float, u0: float):
        self.k, self.tau, self.dt = k, tau_s, dt_s
        self.y0 = y0
        self.y = y0 + k * u0
        self.buf = [u0] * round(theta_s / dt_s)

    def step(self, u: float, disturbance: float = 0.0) -> float:
        self.buf.append(u)
        ud = self.buf.pop(0)
        self.y += self.dt / self.tau * (self.y0 + self.k * ud + disturbance - self.y)
        return self.y


# ---- Pid ------------------------------------------------------------------------------------


def test_pid_defaults_and_update() -> None:
    pid = Pid(2.0, setpoint=37.0)
    assert pid.ti_s == math.inf
    assert pid.output_min == 0.0
    assert pid.output_max == 100.0
    assert pid.update(36.0, 1.0) == pytest.approx(2.0)
    c = pid.components()
    assert (c.p, c.i, c.d, c.ff, c.v, c.u) == (2.0, 0.0, 0.0, 0.0, 2.0, 2.0)
    assert c.saturated is False
    assert c.mode == "auto"


@pytest.mark.parametrize(
    ("dt_s", "measurement"),
    [
        (0.0, 36.0),
        (-1.0, 36.0),
        (math.nan, 36.0),
        (math.inf, 36.0),
        (1.0, math.nan),
        (1.0, math.inf),
    ],
)
def test_bad_input_raises_and_keeps_state(dt_s: float, measurement: float) -> None:
    pid = Pid(3.0, ti_s=20.0, td_s=5.0, setpoint=37.0)
    twin = Pid(3.0, ti_s=20.0, td_s=5.0, setpoint=37.0)
    for y in (30.0, 31.0, 32.0):
        pid.update(y, 1.0)
        twin.update(y, 1.0)
    before = (pid.output, pid.integral, pid.components().d)
    with pytest.raises(InvalidInputError, match=r"dt_s|measurement"):
        pid.update(measurement, dt_s)
    assert (pid.output, pid.integral, pid.components().d) == before
    assert pid.update(33.0, 1.0) == twin.update(33.0, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"kp": -1.0}, InvalidInputError, "kp"),
        ({"kp": 1.0, "output_min": 10.0, "output_max": 5.0}, InvalidInputError, "output_max"),
        ({"kp": 1.0, "n": 0.0}, InvalidInputError, "n must be"),
        ({"kp": 1.0, "td_s": -1.0}, InvalidInputError, "td_s"),
        ({"kp": 1.0, "action": "reverse"}, ConfigError, "heating"),
        ({"kp": 1.0, "anti_windup": "none"}, ConfigError, "back_calculation"),
        ({"kp": 1.0, "setpoint": math.nan}, InvalidInputError, "setpoint"),
    ],
)
def test_pid_rejects_bad_settings(kwargs: dict, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        Pid(**kwargs)


def test_live_retune_is_bumpless() -> None:
    pid = Pid(2.0, ti_s=100.0, setpoint=50.0, output_min=-500.0, output_max=500.0)
    twin = Pid(2.0, ti_s=100.0, setpoint=50.0, output_min=-500.0, output_max=500.0)
    for _ in range(20):
        pid.update(45.0, 1.0)
        twin.update(45.0, 1.0)
    pid.kp = 10.0
    pid.b = 0.5
    assert pid.update(45.0, 1.0) == pytest.approx(twin.update(45.0, 1.0), abs=1e-9)
    assert pid.kp == 10.0
    assert pid.b == 0.5
    with pytest.raises(InvalidInputError):
        pid.kp = math.nan
    assert pid.kp == 10.0


def test_manual_auto_track_transfers() -> None:
    pid = Pid(2.0, ti_s=50.0, td_s=4.0, setpoint=37.0)
    pid.update(30.0, 1.0)
    pid.mode = "manual"
    assert pid.manual_output == pid.output
    pid.manual_output = 42.0
    assert pid.update(30.0, 1.0) == 42.0
    pid.mode = "auto"
    assert pid.update(30.0, 1.0) == pytest.approx(42.0)
    pid.mode = "track"
    pid.track_output = 10.0
    assert pid.update(30.0, 1.0) == 10.0
    pid.mode = "auto"
    assert pid.update(30.0, 1.0) == pytest.approx(10.0)
    with pytest.raises(ConfigError, match="mode"):
        pid.mode = "cascade"


def test_cooling_action_and_feedforward_and_achieved() -> None:
    pid = Pid(2.0, ti_s=10.0, action="cooling", setpoint=20.0)
    assert pid.update(25.0, 1.0) == pytest.approx(10.0)
    ff = Pid(1.0, setpoint=10.0)
    assert ff.update(10.0, 1.0, feedforward=12.5) == 12.5
    stuck = Pid(1.0, ti_s=10.0, setpoint=50.0)
    for _ in range(200):
        stuck.update(40.0, 1.0, achieved=20.0)
    assert stuck.integral < 20.0


def test_p_only_holds_bias_and_reset() -> None:
    pid = Pid(5.0, ti_s=0.0, bias=30.0, setpoint=100.0)
    assert pid.ti_s == math.inf
    for _ in range(100):
        assert pid.update(0.0, 1.0) == 100.0
    assert pid.integral == 30.0
    pid.integral = 12.0
    pid.reset()
    assert pid.integral == 30.0


def test_deadband_outputs_off() -> None:
    pid = Pid(
        10.0, ti_s=100.0, deadband=0.1, deadband_outputs_off=True,
        output_min=-100.0, output_max=100.0, setpoint=7.0,
    )  # fmt: skip
    assert pid.update(6.5, 1.0) > 0
    for _ in range(20):
        assert pid.update(7.05, 1.0) == 0.0
    assert 0.0 < pid.update(6.899, 1.0) < 0.02


def test_pid_repr_shows_settings() -> None:
    pid = Pid(0.8, ti_s=600.0, td_s=30.0, rate_limit_per_s=2.0, setpoint=7.0, bias=5.0)
    r = repr(pid)
    for part in ("kp=0.8", "ti_s=600.0", "td_s=30.0", "rate_limit_per_s=2.0", "setpoint=7.0",
                 "action='heating'", "mode='auto'", "bias=5.0"):  # fmt: skip
        assert part in r
    assert repr(Pid(1.0)).startswith("Pid(kp=1.0, ti_s=inf")
    assert "saturated=False" in repr(pid.components())


def test_pid_dict_round_trip_and_toml() -> None:
    pid = Pid(0.8, ti_s=600.0, td_s=30.0, b=0.7, tt_s=100.0, action="cooling",
              anti_windup="conditional", deadband=0.05, setpoint=7.0)  # fmt: skip
    d = pid.to_dict()
    again = Pid(**d)
    assert again.to_dict() == d
    settings_ = PidSettings.from_pid(pid)
    assert settings_.build().to_dict() == d
    text = to_toml_text({"loops": {"ph": settings_.to_dict()}})
    back = tomllib.loads(text)["loops"]["ph"]
    assert pid_from_dict(back, source="reactor.toml").to_dict() == d
    # inf survives TOML too.
    plain = PidSettings(kp=1.0).to_dict()
    assert "tt_s" not in plain
    assert tomllib.loads(to_toml_text(plain))["ti_s"] == math.inf


def test_pid_from_dict_errors_name_source_and_key() -> None:
    with pytest.raises(ConfigError, match=r"reactor.toml: \$.kp"):
        pid_from_dict({"kp": "fast"}, source="reactor.toml")
    with pytest.raises(ConfigError, match="ki"):
        pid_from_dict({"kp": 1.0, "ki": 0.1})
    with pytest.raises(ConfigError, match=r"\$.action"):
        pid_from_dict({"kp": 1.0, "action": "direct"})


@settings(max_examples=60, deadline=None)
@given(
    kp=st.floats(0.0, 50.0),
    ti_s=st.one_of(st.just(math.inf), st.floats(0.5, 1e4)),
    lo=st.floats(-100.0, 50.0),
    span=st.floats(1.0, 200.0),
    ys=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=50),
    dts=st.lists(st.floats(1e-3, 60.0), min_size=1, max_size=50),
)
def test_output_within_limits_for_any_trace(
    kp: float, ti_s: float, lo: float, span: float, ys: list[float], dts: list[float]
) -> None:
    pid = Pid(kp, ti_s=ti_s, td_s=1.0, output_min=lo, output_max=lo + span, setpoint=5.0)
    for y, dt in zip(ys, dts, strict=False):
        u = pid.update(y, dt)
        assert lo <= u <= lo + span


# ---- other blocks ---------------------------------------------------------------------------


def test_velocity_pid() -> None:
    v = VelocityPid(1.0, ti_s=50.0, initial_output=30.0, setpoint=37.0)
    plant = Fopdt1(0.5, 100.0, 5.0, 1.0, 20.0, 30.0)
    y = plant.y
    for _ in range(4000):
        y = plant.step(v.update(y, 1.0))
    assert y == pytest.approx(37.0, abs=0.05)
    assert "VelocityPid(kp=1.0" in repr(v)
    with pytest.raises(InvalidInputError):
        v.update(30.0, 0.0)


def test_split_range_block() -> None:
    s = SplitRange(deadband=5.0, changeover_s=0.0)
    assert s.update(52.5, 1.0) == (0.0, 50.0)
    assert s.update(-52.5, 1.0) == (50.0, 0.0)
    assert s.update(2.0, 1.0) == (0.0, 0.0)
    assert s.map(100.0) == (0.0, 100.0)
    with pytest.raises(InvalidInputError):
        s.update(math.nan, 1.0)
    assert s.outputs == (0.0, 0.0)
    assert SplitRange(**s.to_dict()).to_dict() == s.to_dict()
    assert "deadband=5.0" in repr(s)
    with pytest.raises(InvalidInputError, match="input_max"):
        SplitRange(input_max=-1.0)


def test_do_cascade_block() -> None:
    master = Pid(5.0, ti_s=30.0, setpoint=40.0)
    cas = DoCascade(master, [(200.0, 800.0), (0.5, 2.0)], hysteresis_s=30.0)
    assert cas.master is master
    for _ in range(30):
        pos = cas.update(10.0, 1.0)
    assert cas.active == 1
    assert cas.handovers == 1
    assert list(pos) == [800.0, 0.5]
    master.kp = 2.0  # live tuning of the master through the same object
    assert cas.master.kp == 2.0
    assert "DoCascade(master=Pid(kp=2.0" in repr(cas)
    with pytest.raises(ConfigError, match="stage"):
        DoCascade(master, [(1.0, 0.0)])


def test_do_cascade_stage_health_and_gain_schedule() -> None:
    master = Pid(2.0, ti_s=60.0, setpoint=40.0)
    cas = DoCascade(
        master,
        [(200.0, 800.0), (0.5, 2.0), (0.0, 60.0)],
        hysteresis_s=5.0,
        gains=[None, None, (0.25, 300.0)],
    )
    assert cas.stage_gains == [None, None, (0.25, 300.0)]
    cas.set_stage_enabled(1, False)
    assert cas.stage_enabled == [True, False, True]
    for _ in range(100):
        cas.update(10.0, 1.0)
    assert cas.active == 2  # the disabled air stage was skipped
    assert (master.kp, master.ti_s) == (0.25, 300.0)  # the O2 stage's gains
    cas.set_stage_gains(2, None)
    assert master.kp == 2.0  # back to the base gains at once, the stage being active
    cas.set_stage_enabled(2, False)
    assert cas.active == 0  # no enabled stage above: handed down
    with pytest.raises(ConfigError, match="no stage 5"):
        cas.set_stage_enabled(5, True)
    with pytest.raises(ConfigError, match="2 entries for 3 stages"):
        DoCascade(master, [(200.0, 800.0), (0.5, 2.0), (0.0, 60.0)], gains=[None, None])
    with pytest.raises(ConfigError, match="cascade stage 1 gains: kp must be finite and > 0"):
        cas.set_stage_gains(1, (-1.0, 10.0))
    with pytest.raises(ConfigError, match="stage use must be"):
        cas.set_stage_use(1, "broken")


def test_pulse_output_dose_and_prime() -> None:
    p = PulseOutput(10.0, quantum_s=1.0, ml_per_min=6.0)
    on = sum(p.update(0.33, 1.0) for _ in range(100))
    assert on == 33
    assert p.dose_ml == pytest.approx(3.3)
    p.prime()
    assert p.dose_ml == 0.0
    assert p.pulses == 0
    with pytest.raises(ConfigError, match="either"):
        PulseOutput(10.0, ml_per_min=1.0, ml_per_pulse=0.1)
    with pytest.raises(InvalidInputError, match="window_s"):
        PulseOutput(0.0)
    assert "ml_per_min=6.0" in repr(p)


def test_foam_pulser() -> None:
    f = FoamPulser(pulse_s=2.0, pause_s=10.0, delay_s=5.0, ml_per_min=3.0)
    pattern = [f.update(True, 1.0) for _ in range(19)]
    assert pattern.index(True) == 5
    assert f.pulses == 2
    assert f.dose_ml == pytest.approx(0.2)
    assert f.state == "pulse"


def test_over_temp_ladder() -> None:
    lad = OverTempLadder()
    assert lad.update(60.0, 50.0) == 50.0
    assert lad.update(63.5, 50.0) == pytest.approx(45.0)
    assert lad.update(65.5, 50.0) == 0.0
    assert lad.update(66.5, 50.0) == 0.0
    assert lad.level == "tripped"
    with pytest.raises(InvalidInputError):
        lad.reset(63.0)
    lad.reset(30.0)
    assert lad.level == "normal"
    with pytest.raises(ConfigError):
        OverTempLadder(reduce_c=70.0)


def test_feed_profiles() -> None:
    f = ExponentialFeed(mu_per_h=0.15, yield_xs=0.5, maintenance_per_h=0.04, x0_g_l=10.0,
                        v0_l=1.0, feed_conc_g_l=500.0)  # fmt: skip
    assert f.update(3600.0) == pytest.approx(6.8 / 60.0)
    assert f.rate_at(2.0) == pytest.approx(6.8 / 60.0 * math.exp(0.3))
    s = StatPulser(threshold=90.0, rearm=88.0, pulse_s=5.0, ml_per_min=12.0)
    on = [s.update(x, 1.0) for x in [85, 91, 91, 91, 91, 91, 91, 87, 92]]
    assert on == [False, True, True, True, True, True, False, False, True]
    assert s.pulses == 2


# ---- autotune and tuning --------------------------------------------------------------------


def run_relay(k: float, tau: float, theta: float, **kw: float | str) -> RelayAutotune:
    at = RelayAutotune(**kw)  # type: ignore[arg-type]
    dt = 0.5
    plant = Fopdt1(k, tau, theta, dt, 22.0, 20.0)
    y = plant.y
    while at.is_running:
        y = plant.step(at.update(y, dt))
    return at


def test_relay_autotune_then_simc_matches_true_plant() -> None:
    at = run_relay(0.4, 600.0, 60.0, setpoint=37.0, bias=50.0, amplitude=35.0,
                   hysteresis=0.05, max_time_s=30000.0)  # fmt: skip
    assert at.state == "done"
    res = at.result()
    model = res.fopdt()
    assert model.gain == pytest.approx(0.4, rel=0.1)
    assert model.tau_s == pytest.approx(600.0, rel=0.1)
    assert model.dead_time_s == pytest.approx(60.0, rel=0.15)
    t = tune(res, "simc")
    truth = tune(Fopdt(0.4, 600.0, 60.0), "simc")
    assert t.kp == pytest.approx(truth.kp, rel=0.2)
    assert t.ti_s == pytest.approx(truth.ti_s, rel=0.2)
    pid = pid_from_tuning(t, setpoint=37.0)
    assert pid.kp == t.kp
    assert "RelayResult(ku=" in repr(res)
    zn = tune(res, "ziegler_nichols_pid")
    assert zn.td_s == pytest.approx(res.pu_s / 8.0)


def test_relay_abort_and_errors() -> None:
    at = RelayAutotune(setpoint=50.0, bias=50.0, amplitude=20.0, pv_max=60.0)
    at.update(40.0, 1.0)
    assert at.update(61.0, 1.0) == 50.0
    assert at.state == "aborted"
    assert "left" in (at.abort_reason or "")
    with pytest.raises(ConfigError, match="aborted"):
        at.result()
    assert RelayAutotune(setpoint=0.0, bias=90.0, amplitude=30.0).amplitude == 10.0


def test_symmetric_relay_needs_gain() -> None:
    # Relay started at the equilibrium: the cycle is symmetric and carries no gain.
    at = RelayAutotune(setpoint=30.0, bias=20.0, amplitude=10.0, max_time_s=50000.0)
    plant = Fopdt1(0.4, 600.0, 60.0, 0.5, 22.0, 20.0)
    y = plant.y
    while at.is_running:
        y = plant.step(at.update(y, 0.5))
    res = at.result()
    with pytest.raises(NumericalError, match="symmetric"):
        res.fopdt()
    m = res.fopdt(gain=0.4)
    assert m.tau_s == pytest.approx(600.0, rel=0.1)


@pytest.mark.parametrize(
    ("rule", "kp", "ti_s", "td_s"),
    [
        ("simc", 100.0 / (2.0 * 20.0), 80.0, 0.0),
        ("simc_smooth", 100.0 / (2.0 * 40.0), 100.0, 0.0),
        ("imc_pid", 105.0 / (2.0 * 30.0), 105.0, 1000.0 / 210.0),
    ],
)
def test_tuning_rules(rule: str, kp: float, ti_s: float, td_s: float) -> None:
    t = tune(Fopdt(2.0, 100.0, 10.0), rule)  # type: ignore[arg-type]
    assert (t.kp, t.ti_s, t.td_s) == pytest.approx((kp, ti_s, td_s))
    assert t.rule in rule


def test_tuning_errors_and_conversions() -> None:
    with pytest.raises(ConfigError, match="relay"):
        tune(Fopdt(2.0, 100.0, 10.0), "ziegler_nichols_pi")
    with pytest.raises(ConfigError, match="unknown"):
        tune(Fopdt(2.0, 100.0, 10.0), "bogus")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="gain"):
        Fopdt(0.0, 100.0, 10.0)
    assert control.parallel_to_isa(2.0, 0.1, 4.0) == (2.0, 20.0, 2.0)
    assert control.series_to_isa(2.0, 10.0, 10.0) == (4.0, 20.0, 5.0)
    assert control.proportional_band_to_gain(50.0) == 2.0
    cooling = tune(Fopdt(-0.3, 300.0, 30.0), "amigo_pi")
    assert cooling.action == "cooling"
    assert cooling.kp > 0


# ---- loop bank ------------------------------------------------------------------------------


def make_bank() -> tuple[LoopBank, Pid, Pid, Pid]:
    temp = Pid(5.0, ti_s=300.0, setpoint=37.0)
    ph = Pid(50.0, ti_s=600.0, output_min=-100.0, output_max=100.0, setpoint=7.0)
    do = Pid(2.0, ti_s=60.0, setpoint=40.0)
    bank = LoopBank()
    bank.add_pid("temp", temp)
    bank.add_split_range("ph", ph, SplitRange(deadband=2.0))
    bank.add_cascade("do", DoCascade(do, [(200.0, 800.0), (0.5, 2.0)]), ["rpm", "air"])
    return bank, temp, ph, do


def test_loop_bank_steps_like_the_blocks() -> None:
    bank, temp, ph, do = make_bank()
    assert bank.names == ["temp", "ph", "do"]
    assert bank.output_names == ["temp", "ph.low", "ph.high", "do.rpm", "do.air"]
    assert len(bank) == 3
    assert bank.n_outputs == 5
    assert "ph" in bank
    assert bank["ph"] is ph
    assert bank["do"] is do
    assert bank[0] is temp
    assert bank[-1] is do
    assert isinstance(bank.block("ph"), SplitRange)
    # Reference: the same blocks stepped one by one.
    r_temp = Pid(**temp.to_dict())
    r_ph = Pid(**ph.to_dict())
    r_split = SplitRange(deadband=2.0)
    r_do = DoCascade(Pid(**do.to_dict()), [(200.0, 800.0), (0.5, 2.0)])
    rng = np.random.default_rng(7)
    for _ in range(50):
        y = np.array([rng.normal(36.5, 0.3), rng.normal(7.0, 0.1), rng.normal(35.0, 5.0)])
        out = bank.step(y, 1.0)
        expect = [
            r_temp.update(y[0], 1.0),
            *r_split.update(r_ph.update(y[1], 1.0), 1.0),
            *r_do.update(y[2], 1.0),
        ]
        np.testing.assert_array_equal(out, expect)
    out2 = np.empty(5)
    bank.step_into(y, 1.0, out2)
    assert out2.dtype == np.float64


def test_loop_bank_live_tuning_and_validation() -> None:
    bank, temp, _, _ = make_bank()
    bank["temp"].kp = 0.8
    assert temp.kp == 0.8
    before = bank.step(np.array([36.0, 7.0, 40.0]), 1.0)
    snapshot = [bank[n].integral for n in bank.names]
    with pytest.raises(InvalidInputError, match='"ph"'):
        bank.step(np.array([36.0, math.nan, 40.0]), 1.0)
    with pytest.raises(InvalidInputError, match="dt_s"):
        bank.step(np.array([36.0, 7.0, 40.0]), 0.0)
    with pytest.raises(edgectl.errors.SpectrumShapeError, match="measurements"):
        bank.step(np.array([36.0, 7.0]), 1.0)
    assert [bank[n].integral for n in bank.names] == snapshot
    assert before.shape == (5,)
    with pytest.raises(KeyError):
        bank["nope"]
    with pytest.raises(IndexError):
        bank[5]
    with pytest.raises(ConfigError, match="already"):
        bank.add_pid("temp", Pid(1.0))
    assert repr(bank) == "LoopBank({temp: pid, ph: split_range, do: cascade}, n_outputs=5)"
    # Non-contiguous input works too.
    wide = np.array([[36.0, 0.0], [7.0, 0.0], [40.0, 0.0]])
    assert bank.step(wide[:, 0], 1.0).shape == (5,)


# ---- docs -----------------------------------------------------------------------------------


def test_docstring_examples_run() -> None:
    failures, tried = doctest.testmod(control, optionflags=doctest.NORMALIZE_WHITESPACE)[:2]
    assert tried > 5
    assert failures == 0
    globs = {name: getattr(control, name) for name in control.__all__}
    for name in ("Pid", "VelocityPid", "SplitRange", "PulseOutput", "RelayAutotune", "LoopBank"):
        obj = getattr(edgectl._core, name)
        assert obj.__doc__, name
        assert "Examples" in obj.__doc__, name
        parser = doctest.DocTestParser()
        test = parser.get_doctest(obj.__doc__, dict(globs), name, None, 0)
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        runner.run(test)
        assert runner.failures == 0, name
        assert runner.tries > 0, name


def test_autotuner_applies_tuning_bumplessly() -> None:
    pid = Pid(1.0, ti_s=1000.0, setpoint=37.0, output_max=100.0)
    at = control.Autotuner(pid, amplitude=35.0, bias=50.0, hysteresis=0.05, max_time_s=30000.0)
    plant = Fopdt1(0.4, 600.0, 60.0, 0.5, 22.0, 20.0)
    y = plant.y
    last = 0.0
    while at.state == "running":
        last = at.update(y, 0.5)
        y = plant.step(last)
    assert at.state == "applied"
    assert at.error is None
    truth = tune(Fopdt(0.4, 600.0, 60.0), "simc")
    assert pid.kp == pytest.approx(truth.kp, rel=0.2)
    assert pid.ti_s == pytest.approx(truth.ti_s, rel=0.2)
    assert pid.mode == "auto"
    # The hand-over continues from the relay bias without a jump.
    assert last == 50.0
    assert at.update(y, 0.5) == pytest.approx(50.0)
    for _ in range(4000):
        y = plant.step(at.update(y, 0.5))
    assert y == pytest.approx(37.0, abs=0.1)


def test_autotuner_failure_leaves_gains() -> None:
    pid = Pid(1.5, ti_s=100.0, setpoint=50.0)
    at = control.Autotuner(pid, amplitude=20.0, bias=50.0, pv_max=60.0)
    at.update(40.0, 1.0)
    at.update(61.0, 1.0)
    assert at.state == "failed"
    assert "aborted" in (at.error or "")
    assert (pid.kp, pid.ti_s, pid.mode) == (1.5, 100.0, "auto")


@settings(max_examples=40, deadline=None)
@given(
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.int32]),
    n=st.integers(0, 5),
)
def test_loop_bank_boundary_dtypes_and_shapes(dtype: type, n: int) -> None:
    bank, *_ = make_bank()
    y = np.array([36.0, 7.0, 40.0], dtype=dtype)
    out = bank.step(y, 1.0)
    assert out.dtype == np.float64
    assert out.shape == (5,)
    assert bank.step([36.0, 7.0, 40.0], 1.0).shape == (5,)
    if n != 3:
        with pytest.raises(
            edgectl.errors.SpectrumShapeError, match=f"measurements has {n} points, expected 3"
        ):
            bank.step(np.zeros(n, dtype=dtype), 1.0)
    with pytest.raises(edgectl.errors.SpectrumShapeError, match="outputs"):
        bank.step_into(y, 1.0, np.empty(4))


def test_pid_accessors_and_track_to() -> None:
    pid = Pid(2.0, ti_s=100.0, td_s=25.0, setpoint=10.0, output_min=-50.0, output_max=50.0)
    assert pid.tracking_time_s == 50.0
    pid.tt_s = 5.0
    assert pid.tracking_time_s == 5.0
    pid.tt_s = None
    assert pid.tt_s is None
    pid.update(8.0, 1.0)
    pid.track_to(20.0)
    assert pid.output == 20.0
    c = pid.components()
    assert c.p + c.i + c.d + c.ff == pytest.approx(20.0)
    assert pid.update(8.0, 1.0) == pytest.approx(20.0, abs=1e-9)
    assert pid.update(8.0, 1.0) == pytest.approx(20.0 + 2.0 * 2.0 / 100.0, abs=1e-9)
    pid.set_limits(-10.0, 10.0)
    assert (pid.output_min, pid.output_max) == (-10.0, 10.0)
    assert pid.update(8.0, 1.0) == 10.0
    with pytest.raises(InvalidInputError):
        pid.output_min = 20.0
    pid.anti_windup = "conditional"
    pid.action = "cooling"
    pid.rate_limit_per_s = 1.0
    pid.n = 8.0
    pid.c = 0.5
    pid.td_s = 0.0
    pid.bias = 3.0
    pid.deadband = 0.2
    pid.deadband_outputs_off = True
    pid.output_off = 1.0
    d = pid.to_dict()
    assert d["anti_windup"] == "conditional"
    assert d["action"] == "cooling"
    assert (d["rate_limit_per_s"], d["n"], d["c"], d["td_s"], d["bias"]) == (
        1.0,
        8.0,
        0.5,
        0.0,
        3.0,
    )
    assert (d["deadband"], d["deadband_outputs_off"], d["output_off"]) == (0.2, True, 1.0)


def test_velocity_pid_modes_components_and_dict() -> None:
    v = VelocityPid(2.0, ti_s=10.0, td_s=1.0, initial_output=50.0, setpoint=5.0)
    v.update(4.0, 1.0)
    c = v.components()
    assert c.i == pytest.approx(2.0 * 1.0 / 10.0 * 1.0)
    v.mode = "manual"
    assert v.manual_output == v.output
    v.manual_output = 20.0
    assert v.update(4.0, 1.0) == 20.0
    v.mode = "auto"
    assert v.update(4.0, 1.0) == pytest.approx(20.0 + 0.2)
    v.kp = 4.0
    v.ti_s = 0.0
    assert v.ti_s == math.inf
    assert VelocityPid(**v.to_dict()).to_dict() == v.to_dict()


@pytest.mark.parametrize(
    "block",
    [
        PulseOutput(10.0, quantum_s=0.01, min_on_s=0.5, ml_per_pulse=0.05),
        PulseOutput(5.0, ml_per_min=2.5),
        PulseOutput(5.0),
        FoamPulser(pulse_s=3.0, pause_s=20.0, delay_s=4.0, ml_per_min=0.5),
        OverTempLadder(reduce_c=40.0, disable_c=42.0, trip_c=45.0, reduce_factor=0.5),
        SplitRange(deadband=3.0, changeover_s=5.0),
    ],
    ids=repr,
)
def test_block_settings_dict_round_trip(block: object) -> None:
    d = block.to_dict()  # type: ignore[attr-defined]
    again = type(block)(**d)
    assert again.to_dict() == d  # type: ignore[attr-defined]
    assert tomllib.loads(to_toml_text(d)) == d

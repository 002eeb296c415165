"""The simulated plant: a fed-batch bench bioreactor digital twin (Rust core, ``edgectl._core``).

:class:`Plant` implements :class:`edgectl.plant.PlantIO` (``read``/``write``/``spectrum``) for the
device emulators and the HIL suite, and adds what tests and notebooks need: true states, mass
balances, at-line samples, fault injection, snapshots. :class:`PlantConfig` is the TOML-decoded
configuration (defaults: the reference's scenario A, "E. coli fed-batch, 2 L";
:meth:`PlantConfig.cho_2l` is scenario B). :class:`PlantRunner` advances a plant on a scaled
real-time clock in a background thread.

Models and sources: ``shared/reference/plant-models.md`` and the README section "Plant simulator".

Examples
--------
>>> from edgectl.sim import Plant
>>> plant = Plant.ecoli_2l(seed=1)
>>> plant.write("feed_rate_ml_min", 0.1)
>>> plant.advance(600.0, dt_s=1.0)
>>> round(plant.time_s)
600
>>> 6.5 < plant.read("ph") < 7.5
True
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
import numpy as np
from numpy.typing import NDArray

from edgectl import _core
from edgectl.config import Struct, decode_mapping, merge_tables, read_toml, to_builtins

__all__ = [
    "ACTUATORS",
    "FAULT_KINDS",
    "SCENARIOS",
    "SIGNALS",
    "ActuatorsConfig",
    "AnaneParams",
    "BufferConfig",
    "CardinalPh",
    "CardinalTemps",
    "ChoConfig",
    "EcoliConfig",
    "Fault",
    "FaultSpec",
    "FoamConfig",
    "GasConfig",
    "InitialActuators",
    "MfcConfig",
    "PhConfig",
    "Plant",
    "PlantConfig",
    "PlantRunner",
    "PumpConfig",
    "SensorConfig",
    "SensorsConfig",
    "SpectrometerConfig",
    "ThermalConfig",
    "VesselConfig",
    "XingParams",
    "XuParams",
    "load_plant_config",
]

NonNeg = Annotated[float, msgspec.Meta(ge=0.0)]
Pos = Annotated[float, msgspec.Meta(gt=0.0)]
Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]

SIGNALS: tuple[str, ...] = tuple(_core.Plant.SIGNALS)
"""Sensor signals :meth:`Plant.read` accepts (plus every actuator name)."""
ACTUATORS: tuple[str, ...] = tuple(_core.Plant.ACTUATORS)
"""Actuators :meth:`Plant.write` accepts."""
FAULT_KINDS: tuple[str, ...] = tuple(_core.Plant.FAULT_KINDS)
"""Fault kinds :meth:`Plant.inject_fault` and ``[[faults]]`` accept."""


class AnaneParams(Struct, frozen=True, kw_only=True):
    """Anane et al. 2017 (Biochem. Eng. J. 125:23) E. coli parameters; g, L, h; ko in % DOT."""

    qs_max: Pos = 0.6356
    ks: Pos = 0.0370
    kia: Pos = 1.2399
    kis: Pos = 2.1231
    ksa: Pos = 0.0134
    ko: Pos = 0.0001
    pa_max: NonNeg = 0.2268
    kap: Pos = 0.5052
    qa_max: NonNeg = 0.1148
    qm: NonNeg = 0.0129
    yas: NonNeg = 0.9097
    yoa: NonNeg = 0.5440
    yxa: NonNeg = 0.5718
    yem: NonNeg = 0.5333
    yos: NonNeg = 1.5620
    yxsof: NonNeg = 0.2268
    cs: Pos = 0.391
    cx: NonNeg = 0.488


class XuParams(Struct, frozen=True, kw_only=True):
    """Xu, Jahic & Enfors 1999 (Biotechnol. Prog. 15:81) parameters as re-implemented by Hebing."""

    qs_max: Pos = 1.30
    qo_max_mmol: Pos = 15.6
    qac_max: NonNeg = 0.06
    qm: NonNeg = 0.04
    ks: Pos = 0.05
    ka: Pos = 0.05
    kis: Pos = 5.0
    kio: Pos = 4.0
    yxs_ox: NonNeg = 0.51
    yxs_of: NonNeg = 0.15
    yas: NonNeg = 0.667
    yxa: NonNeg = 0.4
    yos: Pos = 1.067
    yoa: Pos = 1.067
    cs: Pos = 1.0 / 30.0
    ca: Pos = 1.0 / 30.0
    cx: NonNeg = 0.04
    ko_mm: Pos = 0.002


class CardinalTemps(Struct, frozen=True, kw_only=True):
    """Rosso et al. 1993 cardinal temperature model, normalised to 1 at 37 °C."""

    enabled: bool = True
    t_min_c: float = 5.0
    t_opt_c: float = 39.0
    t_max_c: float = 47.0


class CardinalPh(Struct, frozen=True, kw_only=True):
    """Rosso et al. 1995 cardinal pH model, 1 at ph_opt, 0 outside (ph_min, ph_max)."""

    enabled: bool = True
    ph_min: float = 4.0
    ph_opt: float = 7.0
    ph_max: float = 9.5


def _cho_ph() -> CardinalPh:
    return CardinalPh(ph_min=5.5, ph_opt=7.0, ph_max=8.5)


class EcoliConfig(Struct, frozen=True, kw_only=True):
    """E. coli culture: model, parameters, initial state (Anane 2017) and feed."""

    model: Literal["anane2017", "xu1999"] = "anane2017"
    anane: AnaneParams = msgspec.field(default_factory=AnaneParams)
    xu: XuParams = msgspec.field(default_factory=XuParams)
    x0_g_l: NonNeg = 0.17
    s0_g_l: NonNeg = 4.94
    a0_g_l: NonNeg = 0.0129
    feed_glucose_g_l: NonNeg = 300.0
    nitrogen_mmol_per_g: NonNeg = 9.0
    temperature: CardinalTemps = msgspec.field(default_factory=CardinalTemps)
    ph_response: CardinalPh = msgspec.field(default_factory=CardinalPh)


class XingParams(Struct, frozen=True, kw_only=True):
    """Xing et al. 2010 (Biotechnol. Prog. 26:208) CHO parameters; cells/L, mM, h."""

    mu_max_h: NonNeg = 0.029
    kd_h: NonNeg = 0.016
    kglc_mm: Pos = 0.084
    kgln_mm: Pos = 0.047
    kilac_mm: Pos = 43.0
    kiamm_mm: Pos = 6.51
    kdlac_mm: Pos = 45.8
    kdamm_mm: Pos = 6.51
    yx_glc: Pos = 1.69e8
    yx_gln: Pos = 9.74e8
    ylac_glc: NonNeg = 1.23
    yamm_gln: NonNeg = 0.67
    mglc: NonNeg = 69.2e-12
    a1: NonNeg = 3.2e-12
    a2: Pos = 2.1
    dgln_h: NonNeg = 7.2e-3
    ramm: NonNeg = 6.3e-12
    qmab_g_cell_h: NonNeg = 1.51e-12
    qo2_mmol_cell_h: NonNeg = 3e-10
    rq: NonNeg = 1.0
    ko_mm: Pos = 0.001


def _cho_temps() -> CardinalTemps:
    return CardinalTemps(t_min_c=20.0, t_opt_c=37.5, t_max_c=41.0)


class ChoConfig(Struct, frozen=True, kw_only=True):
    """CHO culture: parameters, initial state and feed (scenario B)."""

    params: XingParams = msgspec.field(default_factory=XingParams)
    xv0_cells_l: NonNeg = 3e8
    xd0_cells_l: NonNeg = 0.0
    glc0_mm: NonNeg = 30.0
    gln0_mm: NonNeg = 4.0
    lac0_mm: NonNeg = 0.0
    amm0_mm: NonNeg = 0.0
    titer0_g_l: NonNeg = 0.0
    feed_glc_mm: NonNeg = 500.0
    feed_gln_mm: NonNeg = 50.0
    cell_dry_mass_pg: NonNeg = 350.0
    temperature: CardinalTemps = msgspec.field(default_factory=_cho_temps)
    ph_response: CardinalPh = msgspec.field(default_factory=_cho_ph)


class VesselConfig(Struct, frozen=True, kw_only=True):
    """Vessel geometry (2 L, D_T 0.13 m, one Rushton Di 0.043 m) and liquid."""

    volume0_l: Pos = 2.0
    max_volume_l: Pos = 3.0
    diameter_m: Pos = 0.13
    impeller_diameter_m: Pos = 0.043
    impellers: Annotated[int, msgspec.Meta(ge=0)] = 1
    power_number: Pos = 5.0
    gassed_power_ratio: Fraction = 0.6
    density_kg_l: Pos = 1.0
    tare_g: NonNeg = 0.0
    pressure_bar_g: Annotated[float, msgspec.Meta(ge=-0.5, le=5.0)] = 0.0


class GasConfig(Struct, frozen=True, kw_only=True):
    """kLa = factor·C·(Pg/V)^α·vs^β (van't Riet 1979) plus surface aeration; solubilities."""

    kla_c: NonNeg = 0.002
    kla_alpha: NonNeg = 0.7
    kla_beta: NonNeg = 0.2
    kla_factor: NonNeg = 0.855
    kla_surface_h: NonNeg = 1.0
    kla_co2_ratio: NonNeg = 0.9
    o2_sat_air_mm: Pos = 0.21
    henry_co2_mm_per_mmhg: Pos = 0.0307
    initial_do_pct: Annotated[float, msgspec.Meta(ge=0.0, le=500.0)] | None = None
    initial_ct_mm: NonNeg | None = None


class BufferConfig(Struct, frozen=True, kw_only=True):
    """A weak buffer, monoprotic around its pKa."""

    total_mm: NonNeg = 50.0
    pka: Annotated[float, msgspec.Meta(ge=0.0, le=14.0)] = 6.8


def _phosphate() -> list[BufferConfig]:
    return [BufferConfig()]


class PhConfig(Struct, frozen=True, kw_only=True):
    """Charge balance constants, buffers, initial SID or pH, titrants."""

    pk1: Annotated[float, msgspec.Meta(ge=0.0, le=14.0)] = 6.1
    pk2: Annotated[float, msgspec.Meta(ge=0.0, le=14.0)] = 10.1
    pkw: Annotated[float, msgspec.Meta(ge=10.0, le=16.0)] = 13.6
    pka_acetate: Annotated[float, msgspec.Meta(ge=0.0, le=14.0)] = 4.76
    pka_lactate: Annotated[float, msgspec.Meta(ge=0.0, le=14.0)] = 3.86
    buffers: list[BufferConfig] = msgspec.field(default_factory=_phosphate)
    sid_mm: float = 0.0
    initial_ph: Annotated[float, msgspec.Meta(ge=2.0, le=12.0)] | None = 7.0
    base_kind: Literal["naoh", "nh4oh", "nahco3", "na2co3"] = "nh4oh"
    base_conc_m: NonNeg = 3.0
    acid_conc_m: NonNeg = 1.0
    mixing_tau_s: Pos = 5.0


class ThermalConfig(Struct, frozen=True, kw_only=True):
    """Two-node thermal model: liquid + glass, heater blanket (or jacket), cooling finger."""

    mode: Literal["blanket", "jacket"] = "blanket"
    initial_temp_c: Annotated[float, msgspec.Meta(ge=-10.0, le=100.0)] = 37.0
    ambient_c: Annotated[float, msgspec.Meta(ge=-20.0, le=60.0)] = 20.0
    cp_liquid_j_g_k: Pos = 4.18
    glass_heat_capacity_j_k: NonNeg = 830.0
    heater_heat_capacity_j_k: Pos = 400.0
    ua_heater_liquid_w_k: Pos = 5.0
    ua_ambient_w_k: NonNeg = 0.7
    ua_heater_ambient_w_k: NonNeg = 0.3
    heater_power_w: NonNeg = 150.0
    ua_cooling_w_k: NonNeg = 10.0
    cooling_water_c: float = 15.0
    jacket_tau_s: Pos = 120.0
    met_heat_kj_per_mmol_o2: NonNeg = 0.47
    condenser_efficiency: Fraction = 0.8
    latent_heat_j_g: NonNeg = 2410.0
    feed_temp_c: float = 20.0


class FoamConfig(Struct, frozen=True, kw_only=True):
    """Foam growth with gas × biomass, collapse, antifoam knock-down (all estimates)."""

    k_f_mm_h: NonNeg = 16.0
    collapse_tau_s: Pos = 600.0
    k_af_per_ppm_h: NonNeg = 12.0
    antifoam_tau_s: Pos = 7200.0
    antifoam_conc_ppm: NonNeg = 100_000.0
    probe_height_mm: NonNeg = 30.0


class PumpConfig(Struct, frozen=True, kw_only=True):
    """A peristaltic pump and its bottle on a balance."""

    max_rate_ml_min: NonNeg = 10.0
    calibration_error: Annotated[float, msgspec.Meta(ge=-0.9, le=1.0)] = 0.0
    wear_per_h: Fraction = 0.0
    bottle_g: NonNeg = 500.0
    density_g_ml: Pos = 1.0


class MfcConfig(Struct, frozen=True, kw_only=True):
    """A mass-flow controller: full scale, lag, resolution."""

    max_sccm: NonNeg = 5000.0
    tau_s: Pos = 0.7
    resolution_sccm: NonNeg = 5.0


class InitialActuators(Struct, frozen=True, kw_only=True):
    """Actuator values at t = 0."""

    stirrer_rpm: NonNeg = 800.0
    air_sccm: NonNeg = 2000.0
    o2_sccm: NonNeg = 0.0
    co2_sccm: NonNeg = 0.0
    n2_sccm: NonNeg = 0.0
    heater_duty: Fraction = 0.0
    cooling_duty: Fraction = 0.0
    jacket_temp_sp_c: float = 37.0


def _pump(max_rate: float, bottle_g: float, density: float) -> Callable[[], PumpConfig]:
    return lambda: PumpConfig(max_rate_ml_min=max_rate, bottle_g=bottle_g, density_g_ml=density)


def _mfc(max_sccm: float) -> Callable[[], MfcConfig]:
    return lambda: MfcConfig(max_sccm=max_sccm, resolution_sccm=max_sccm / 1000.0)


class ActuatorsConfig(Struct, frozen=True, kw_only=True):
    """Stirrer, pumps, MFCs and their initial values."""

    stirrer_tau_s: Pos = 1.5
    stirrer_max_rpm: Pos = 1500.0
    feed: PumpConfig = msgspec.field(default_factory=_pump(10.0, 1000.0, 1.1))
    base: PumpConfig = msgspec.field(default_factory=_pump(10.0, 500.0, 0.96))
    acid: PumpConfig = msgspec.field(default_factory=_pump(10.0, 500.0, 1.02))
    antifoam: PumpConfig = msgspec.field(default_factory=_pump(2.0, 100.0, 1.0))
    air: MfcConfig = msgspec.field(default_factory=_mfc(5000.0))
    o2: MfcConfig = msgspec.field(default_factory=_mfc(2000.0))
    co2: MfcConfig = msgspec.field(default_factory=_mfc(500.0))
    n2: MfcConfig = msgspec.field(default_factory=_mfc(2000.0))
    initial: InitialActuators = msgspec.field(default_factory=InitialActuators)


class SensorConfig(Struct, frozen=True, kw_only=True):
    """One sensor channel: transport delay, lag, white noise, drift per day, quantisation,
    dropout probability."""

    tau_s: NonNeg = 0.0
    noise_sd: NonNeg = 0.0
    drift_per_day: float = 0.0
    resolution: NonNeg = 0.0
    dropout_prob: Fraction = 0.0
    delay_s: Annotated[float, msgspec.Meta(ge=0.0, le=3600.0)] = 0.0


def _sensor(
    tau_s: float, noise_sd: float, drift: float, res: float, delay_s: float = 0.0
) -> Callable[[], SensorConfig]:
    return lambda: SensorConfig(
        tau_s=tau_s, noise_sd=noise_sd, drift_per_day=drift, resolution=res, delay_s=delay_s
    )


class SensorsConfig(Struct, frozen=True, kw_only=True):
    """Sensor channels (DO τ 35 s from Anane 2017; its 2 s delay and the rest estimates)."""

    temp_c: SensorConfig = msgspec.field(default_factory=_sensor(20.0, 0.01, 0.0, 0.01))
    jacket_temp_c: SensorConfig = msgspec.field(default_factory=_sensor(5.0, 0.02, 0.0, 0.01))
    ph: SensorConfig = msgspec.field(default_factory=_sensor(5.0, 0.005, 0.0, 0.001))
    do_pct: SensorConfig = msgspec.field(default_factory=_sensor(35.0, 0.3, 1.0, 0.1, 2.0))
    stirrer_rpm: SensorConfig = msgspec.field(default_factory=_sensor(0.0, 0.0, 0.0, 1.0))
    gas_flow_sccm: SensorConfig = msgspec.field(default_factory=SensorConfig)
    reactor_mass_g: SensorConfig = msgspec.field(default_factory=_sensor(2.0, 0.1, 0.0, 0.1))
    bottle_mass_g: SensorConfig = msgspec.field(default_factory=_sensor(2.0, 0.05, 0.0, 0.01))
    pressure_bar: SensorConfig = msgspec.field(default_factory=_sensor(1.0, 0.001, 0.0, 0.001))
    offgas_pct: SensorConfig = msgspec.field(default_factory=_sensor(30.0, 0.01, 0.0, 0.001))


class SpectrometerConfig(Struct, frozen=True, kw_only=True):
    """Synthetic Raman-type spectrometer: axis, period, noise, baseline drift, spikes."""

    enabled: bool = True
    start_cm1: float = 400.0
    stop_cm1: float = 1800.0
    n_points: Annotated[int, msgspec.Meta(ge=2, le=100_000)] = 1047
    period_s: Pos = 60.0
    noise_sd: NonNeg = 0.0005
    baseline_drift_sd: NonNeg = 0.0005
    spike_rate: Annotated[float, msgspec.Meta(ge=0.0, le=100.0)] = 0.05
    spike_height: NonNeg = 0.2
    library_seed: Annotated[int, msgspec.Meta(ge=0)] = 1


class FaultSpec(Struct, frozen=True, kw_only=True):
    """A fault scheduled at ``at_s`` (see :data:`FAULT_KINDS`)."""

    kind: str
    at_s: NonNeg
    target: str = ""
    value: float | None = None
    duration_s: NonNeg | None = None


class PlantConfig(Struct, frozen=True, kw_only=True):
    """Whole plant configuration; the defaults are scenario A, "E. coli fed-batch, 2 L".

    Decode a TOML file with :func:`load_plant_config` (a ``scenario = "cho_2l"`` key picks the
    CHO defaults underneath the file's values).
    """

    seed: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] = 0
    organism: Literal["ecoli", "cho", "none"] = "ecoli"
    max_substep_s: Pos = 1.0
    ecoli: EcoliConfig = msgspec.field(default_factory=EcoliConfig)
    cho: ChoConfig = msgspec.field(default_factory=ChoConfig)
    vessel: VesselConfig = msgspec.field(default_factory=VesselConfig)
    gas: GasConfig = msgspec.field(default_factory=GasConfig)
    ph: PhConfig = msgspec.field(default_factory=PhConfig)
    thermal: ThermalConfig = msgspec.field(default_factory=ThermalConfig)
    foam: FoamConfig = msgspec.field(default_factory=FoamConfig)
    actuators: ActuatorsConfig = msgspec.field(default_factory=ActuatorsConfig)
    sensors: SensorsConfig = msgspec.field(default_factory=SensorsConfig)
    spectrometer: SpectrometerConfig = msgspec.field(default_factory=SpectrometerConfig)
    faults: list[FaultSpec] = msgspec.field(default_factory=list)

    @classmethod
    def ecoli_2l(cls, **overrides: Any) -> PlantConfig:
        """Scenario A, "E. coli fed-batch, 2 L", with top-level ``overrides`` (e.g. seed)."""
        return _scenario("ecoli_2l", overrides)

    @classmethod
    def cho_2l(cls, **overrides: Any) -> PlantConfig:
        """Scenario B, "CHO fed-batch, 2 L", with top-level ``overrides`` (e.g. seed)."""
        return _scenario("cho_2l", overrides)

    def to_json(self) -> str:
        """JSON text for the Rust core."""
        return msgspec.json.encode(self).decode()


SCENARIOS: tuple[str, ...] = ("ecoli_2l", "cho_2l")


def _scenario_dict(name: str) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.json.decode(_core.Plant.scenario_json(name))
    return data


def _scenario(name: str, overrides: Mapping[str, Any]) -> PlantConfig:
    data = _scenario_dict(name)
    data.update(to_builtins(dict(overrides)))
    return decode_mapping(data, PlantConfig, source=f"<scenario {name}>")


def load_plant_config(path: str | Path) -> PlantConfig:
    """Read a plant TOML file; errors name the file and the key path.

    A top-level ``scenario = "ecoli_2l" | "cho_2l"`` (default ``"ecoli_2l"``) supplies the
    defaults under the file's own tables, so a CHO file only lists what differs from scenario B.
    """
    data = read_toml(path)
    scenario = data.pop("scenario", "ecoli_2l")
    if scenario not in SCENARIOS:
        from edgectl.errors import ConfigError

        raise ConfigError(f"{path}: $.scenario: expected one of {', '.join(SCENARIOS)}")
    return decode_mapping(
        merge_tables(_scenario_dict(scenario), data), PlantConfig, source=str(path)
    )


class Fault(NamedTuple):
    """A fault known to the plant (past, active or scheduled)."""

    fault_id: int
    kind: str
    target: str
    value: float
    start_s: float
    end_s: float

    def is_active_at(self, t_s: float) -> bool:
        """Whether the fault acts at simulated time ``t_s``."""
        return self.start_s <= t_s < self.end_s


class Plant:
    """The simulated bioreactor, thread-safe, implementing :class:`edgectl.plant.PlantIO`.

    Parameters
    ----------
    config
        Plant configuration; default :class:`PlantConfig` (scenario A, E. coli 2 L).
    seed
        Overrides ``config.seed``: runs with the same configuration and seed are identical bit
        for bit.

    Notes
    -----
    Every call takes one lock, so emulator threads may ``read`` while another thread runs
    :meth:`advance` (which releases the GIL while the Rust core integrates).
    """

    SIGNALS = SIGNALS
    ACTUATORS = ACTUATORS
    FAULT_KINDS = FAULT_KINDS

    def __init__(self, config: PlantConfig | None = None, *, seed: int | None = None) -> None:
        cfg = config if config is not None else PlantConfig()
        if seed is not None:
            cfg = msgspec.structs.replace(cfg, seed=seed)
        self._lock = threading.RLock()
        self._config = cfg
        self._core = _core.Plant(cfg.to_json())

    @classmethod
    def ecoli_2l(cls, seed: int = 0) -> Plant:
        """Scenario A plant."""
        return cls(PlantConfig.ecoli_2l(seed=seed))

    @classmethod
    def cho_2l(cls, seed: int = 0) -> Plant:
        """Scenario B plant."""
        return cls(PlantConfig.cho_2l(seed=seed))

    @classmethod
    def from_toml(cls, path: str | Path, *, seed: int | None = None) -> Plant:
        """Plant from a TOML file (see :func:`load_plant_config`)."""
        return cls(load_plant_config(path), seed=seed)

    @classmethod
    def from_snapshot(cls, data: bytes) -> Plant:
        """Plant rebuilt from :meth:`snapshot` bytes (``ModelFileError`` if not a snapshot)."""
        core = _core.Plant.from_snapshot(data)
        plant = cls.__new__(cls)
        plant._lock = threading.RLock()
        plant._core = core
        plant._config = decode_mapping(
            msgspec.json.decode(core.config_json()), PlantConfig, source="<snapshot>"
        )
        return plant

    def __repr__(self) -> str:
        return (
            f"<Plant organism={self._config.organism} seed={self._config.seed} "
            f"t={self.time_s:.0f} s>"
        )

    # -- PlantIO -------------------------------------------------------------------------

    def read(self, signal: str) -> float:
        """Latest sensor reading (lag, noise, drift, faults included; NaN on dropout), or the
        last value written to an actuator. KeyError if unknown."""
        with self._lock:
            return self._core.read(signal)

    def write(self, actuator: str, value: float) -> None:
        """Set an actuator (clamped to its range); KeyError if unknown, InvalidInputError if
        not finite."""
        with self._lock:
            self._core.write(actuator, float(value))

    def spectrum(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Latest spectrum as (wavenumber_cm1 axis, intensities), new every
        ``spectrometer.period_s`` of simulated time."""
        with self._lock:
            return self._core.spectrum()

    # -- stepping ------------------------------------------------------------------------

    def advance(self, seconds: float, dt_s: float = 1.0) -> None:
        """Advance ``seconds`` of simulated time in outer steps of ``dt_s`` (the last one is
        shortened to fit). Sensors sample once per step."""
        with self._lock:
            self._core.advance(float(seconds), float(dt_s))

    def step(self, dt_s: float = 1.0) -> None:
        """One outer step of ``dt_s`` seconds."""
        with self._lock:
            self._core.step(float(dt_s))

    @property
    def time_s(self) -> float:
        """Simulated time, s."""
        with self._lock:
            return self._core.time_s

    @property
    def config(self) -> PlantConfig:
        """The configuration the plant runs with."""
        return self._config

    @property
    def spectrum_time_s(self) -> float:
        """Simulated time of the latest spectrum, s."""
        with self._lock:
            return self._core.spectrum_time_s

    # -- richer accessors ----------------------------------------------------------------

    def state(self) -> dict[str, float]:
        """True process states (no sensor effects): volume_l, temp_c, ph, do_pct, biomass_g_l,
        glucose_g_l, acetate_g_l (E. coli), xv_cells_l, lactate_mm, titer_g_l (CHO), kla_h,
        our_mm_h, ..."""
        with self._lock:
            return dict(self._core.state())

    def readings(self) -> dict[str, float]:
        """Latest reading of every sensor signal."""
        with self._lock:
            return dict(self._core.readings())

    def actuators(self) -> dict[str, float]:
        """Last value written to each actuator."""
        with self._lock:
            return {name: self._core.read(name) for name in ACTUATORS}

    def balances(self) -> dict[str, float]:
        """Cumulative boundary flows (pumped, evaporated, sampled, overflow mL; carbon in, to
        the gas, removed mmol C) and the carbon now in the vessel."""
        with self._lock:
            return dict(self._core.balances())

    def take_sample(self, volume_ml: float) -> dict[str, float]:
        """Remove ``volume_ml`` of broth for at-line analysis; returns the true states."""
        with self._lock:
            return dict(self._core.take_sample(float(volume_ml)))

    def inject_fault(
        self,
        kind: str,
        target: str = "",
        *,
        value: float | None = None,
        start_s: float | None = None,
        duration_s: float | None = None,
    ) -> int:
        """Inject a fault (kinds in :data:`FAULT_KINDS`) from now (or ``start_s``) for
        ``duration_s`` (None: until cleared); returns its id. ConfigError on a bad kind or
        target."""
        with self._lock:
            return self._core.inject_fault(kind, target, value, start_s, duration_s)

    def clear_fault(self, fault_id: int) -> bool:
        """End a fault now; False if the id is unknown."""
        with self._lock:
            return self._core.clear_fault(fault_id)

    def clear_faults(self) -> None:
        """End every fault now."""
        with self._lock:
            self._core.clear_faults()

    def faults(self) -> list[Fault]:
        """Every fault, past, active and scheduled."""
        with self._lock:
            return [Fault(*row) for row in self._core.faults()]

    def active_faults(self) -> list[Fault]:
        """Faults acting now."""
        t = self.time_s
        return [f for f in self.faults() if f.is_active_at(t)]

    def snapshot(self) -> bytes:
        """The whole plant state (configuration, states, RNG, faults) as bytes."""
        with self._lock:
            return self._core.snapshot()

    def restore(self, data: bytes) -> None:
        """Replace the whole state by :meth:`snapshot` bytes."""
        with self._lock:
            self._core.restore(data)
            self._config = decode_mapping(
                msgspec.json.decode(self._core.config_json()), PlantConfig, source="<snapshot>"
            )


class PlantRunner:
    """Advance a plant on a scaled real-time clock in a background thread.

    Every ``tick_s`` of wall time the runner advances the plant by the elapsed wall time times
    ``speed``, in whole steps of ``dt_s`` (the remainder carries over), so simulated time tracks
    ``speed`` × wall time without drifting.

    Parameters
    ----------
    plant
        The plant to run.
    speed
        Simulated seconds per wall second.
    dt_s
        Outer step of the plant, s.
    tick_s
        Wall-time period of the runner, s.
    clock
        Monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        plant: Plant,
        *,
        speed: float = 1.0,
        dt_s: float = 1.0,
        tick_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from edgectl.errors import InvalidInputError

        for name, v in (("speed", speed), ("dt_s", dt_s), ("tick_s", tick_s)):
            if not (math.isfinite(v) and v > 0):
                raise InvalidInputError(f"PlantRunner: {name} must be finite and > 0, got {v}")
        self.plant = plant
        self.speed = float(speed)
        self.dt_s = float(dt_s)
        self.tick_s = float(tick_s)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backlog_s = 0.0
        self.error: BaseException | None = None
        """Exception that stopped the runner thread, if any."""

    @property
    def is_running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def backlog_s(self) -> float:
        """Simulated seconds owed but not yet simulated (less than one step when keeping up)."""
        return self._backlog_s

    def start(self) -> PlantRunner:
        """Start the thread (idempotent)."""
        if self.is_running:
            return self
        self._stop.clear()
        self.error = None
        self._thread = threading.Thread(target=self._run, name="edgectl-plant", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and wait for it (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def __enter__(self) -> PlantRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        last = self._clock()
        try:
            while not self._stop.wait(self.tick_s):
                now = self._clock()
                self._backlog_s += (now - last) * self.speed
                last = now
                n = math.floor(self._backlog_s / self.dt_s)
                if n > 0:
                    self.plant.advance(n * self.dt_s, self.dt_s)
                    self._backlog_s -= n * self.dt_s
        except BaseException as exc:
            self.error = exc

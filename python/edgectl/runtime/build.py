"""Assemble a controller from a reactor configuration: plant (for ``sim://`` ports), devices,
engine, historian, restart policy and the REPL socket.

:func:`open_run` returns a :class:`Run`; ``run.run(duration_s)`` scans until the duration is
over, ``stop()`` is called (signal, REPL) or the process dies; ``close()`` makes every output
safe, persists the state and flushes the historian, in that order.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec

from edgectl import timebase
from edgectl.errors import ConfigError
from edgectl.historian import Historian
from edgectl.operator.service import OperatorService
from edgectl.runtime.clock import LockstepClock, ScaledClock, VirtualClock
from edgectl.runtime.controller import Controller
from edgectl.runtime.hub import Hub
from edgectl.runtime.loops import Engine
from edgectl.runtime.reactor_config import ReactorConfig, config_text, load_reactor_config
from edgectl.runtime.rpc import RpcServer
from edgectl.runtime.scheduler import ScanScheduler
from edgectl.runtime.summary import LoopFigures, format_summary, loop_figures

__all__ = ["Run", "SimBridge", "open_run"]


class SimBridge:
    """Glue between the simulated plant and what a real rig wires physically: GPIO outputs
    drive plant actuators, the foam probe drives a GPIO input pin, and the plant advances to the
    controller's clock before each scan (deterministic for a seed)."""

    def __init__(self, plant: Any, cfg: ReactorConfig, hub: Hub, pin_factory: Any) -> None:
        self.plant = plant
        self.hub = hub
        self.factory = pin_factory
        self.dt_s = min(1.0, cfg.reactor.scan_period_s)
        plant_cfg = cfg.plant
        assert plant_cfg is not None
        self.gpio_map = dict(plant_cfg.gpio)
        self.t0_s = plant.time_s
        board = hub.board
        self._outputs: list[tuple[Any, str, float]] = []
        self._inputs: list[tuple[int, str]] = []
        if board is not None:
            for channel, link in self.gpio_map.items():
                if channel in board.profile.outputs:
                    self._outputs.append((board[channel], link.actuator, link.scale))
                elif channel in board.profile.inputs:
                    self._inputs.append((board.profile.inputs[channel].pin, link.actuator))
                else:
                    raise ConfigError(f"$.plant.gpio.{channel}: board has no channel {channel!r}")

    def before_scan(self, now_s: float) -> None:
        for dev, actuator, scale in self._outputs:
            value = dev.duty if hasattr(dev, "duty") else (1.0 if dev.is_on else 0.0)
            self.plant.write(actuator, value * scale)
        target = self.t0_s + now_s
        if target > self.plant.time_s:
            self.plant.advance(target - self.plant.time_s, self.dt_s)
        for pin, signal in self._inputs:
            p = self.factory.pin(pin)
            # the foam probe shorts the pulled-up input to ground when foam touches it
            if self.plant.read(signal) >= 0.5:
                p.drive_low()
            else:
                p.drive_high()


@dataclass
class Run:
    """A controller with everything it runs on."""

    cfg: ReactorConfig
    config_path: Path
    controller: Controller
    hub: Hub
    historian: Historian
    scheduler: ScanScheduler
    clock: Any
    rpc: RpcServer | None
    plant: Any = None
    resumed: bool = False
    start_s: float = 0.0
    publisher: Any = None  # edgectl.fleet.publisher.EdgePublisher with [mqtt]
    faces: list[Any] = field(default_factory=list)  # servers of the lab faces (OPC UA)
    _closed: bool = field(default=False, repr=False)

    def run(self, duration_s: float | None = None, *, until_end: bool = False) -> None:
        """Scan until ``duration_s`` of clock time has passed (None: until stopped), or with
        ``until_end`` until the recipe enters its end phase (a run resumed in it stops at once).

        Under systemd (``$NOTIFY_SOCKET``) the service is reported ready after the first scan
        and its watchdog is fed only while scans complete (:mod:`edgectl.service.notify`).
        """
        from edgectl.service.notify import scan_watchdog

        # a resumed lockstep run's clock starts a little before its saved time, so that its
        # devices are read before the first scan (bumpless): the scans start at start_s
        first = max(self.clock.now(), self.start_s) if self.resumed else self.clock.now()
        until = None if duration_s is None else first + duration_s
        recipe = self.controller.recipe
        if until_end:
            if recipe is None or not recipe.recipe.end:
                raise ConfigError(
                    f"{self.config_path}: $.recipe.end: not set; --until-end needs the phase"
                    ' that ends the culture (e.g. end = "harvest")'
                )
            self.controller.stop_at_end = True
            if recipe.phase_name == recipe.recipe.end:
                self.controller.request_stop(f"culture ended ({recipe.phase_name})")
                return
        with scan_watchdog(lambda: self.scheduler.stats.scans):
            self.scheduler.run(self.controller.scan, until_s=until, start_at_s=first)

    def stop(self) -> None:
        self.scheduler.stop()

    def timing(self) -> dict[str, Any]:
        """Honest timing of the run so far: scan lateness against the wall deadlines the scan
        really had (ms), scans and overruns, and for a lockstep clock the wall time it was held
        (in all and per participant), the requested and the achieved speed."""
        sched = self.scheduler
        out: dict[str, Any] = {
            "lateness_ms": sched.lateness.summary_ms(),
            "scans": sched.stats.scans,
            "overruns": sched.stats.overruns,
            "wall_overruns": sched.stats.wall_overruns,
            "speed": getattr(self.clock, "speed", 1.0),
            "paced": hasattr(self.clock, "timing"),
        }
        if hasattr(self.clock, "timing"):
            out.update(self.clock.timing())
        return out

    def figures(self) -> dict[str, LoopFigures]:
        self.historian.flush(check=False)  # a failing disk: figures of what is committed
        return loop_figures(self.historian, self.cfg, self.controller.time_base_s + self.start_s)

    def summary(self, timing: Mapping[str, Any] | None = None) -> str:
        """The end-of-run summary, read back from the historian: doses, final volume, phase
        timeline, alarms by name with their times, loop verdicts; ``timing`` as in
        :func:`format_summary` (None: the scheduler's lateness line)."""
        from edgectl.runtime.summary import (
            Volume,
            alarm_spans,
            culture_run_uids,
            limitation_summary,
            phase_timeline,
            sampled_volume_ml,
        )

        if timing is None:
            timing = self.timing()
        info = self.controller.info()
        figures = self.figures()  # flushes the historian first
        base = self.controller.time_base_s
        uids = culture_run_uids(self.historian.runs())
        events = [e for e in self.historian.events(base) if e.run_uid in uids]
        alarms = [a for a in self.historian.alarms(base) if a.run_uid in uids]
        plant_l = None
        if self.plant is not None and hasattr(self.plant, "state"):
            v = self.plant.state().get("volume_l")
            plant_l = None if v is None else float(v)
        volume = Volume(
            initial_l=self.cfg.reactor.volume_l,
            dosed_ml=float(sum(info["totals_ml"].values())),
            sampled_ml=sampled_volume_ml(events),
            plant_l=plant_l,
        )
        extra = {
            "config": str(self.config_path),
            "historian": str(self.historian.path),
            "phase": info["phase"],
            "simulated time": f"{info['time_s'] / 3600.0:.2f} h",
            "doses": ", ".join(f"{k} {v:.1f} mL" for k, v in info["totals_ml"].items()) or "-",
        }
        if any(
            p.feed is not None and p.feed.limits for p in getattr(self.cfg.recipe, "phases", [])
        ):
            extra["feed limitation"] = limitation_summary(events, base, info["time_s"])
        return format_summary(
            figures,
            info,
            extra,
            timing,
            phases=phase_timeline(events, base, info["time_s"], info["phase"]),
            alarms=alarm_spans(alarms, base),
            volume=volume,
        )

    def close(self, reason: str = "normal") -> None:
        """Outputs safe, state persisted, historian flushed; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            unconfirmed = self.hub.make_safe(self.controller.safe)
            if unconfirmed:
                self.controller._event(
                    self.controller.now_s,
                    "shutdown",
                    "hub",
                    f"safe state not confirmed for {', '.join(unconfirmed)}",
                )
            self.controller.persist()
        finally:
            for face in self.faces:
                face.close()
            if self.rpc is not None:
                self.rpc.close()
            if self.publisher is not None:
                self.publisher.stop()
            self.hub.close()
            # the run stops on its own time axis (an accelerated run is not wall time)
            ctl = self.controller
            self.historian.close(reason, time_s=ctl.time_base_s + ctl.now_s)
            if timebase.clock() is self.clock:
                timebase.use(None)


def _default_path(cfg: ReactorConfig, given: str, suffix: str) -> Path:
    return Path(given) if given else Path("runs") / f"{cfg.reactor.name}{suffix}"


def open_run(
    config_path: str | Path,
    *,
    speed: float = 1.0,
    db: str | Path | None = None,
    socket_path: str | Path | None = None,
    on_restart: Literal["resume", "hold"] | None = None,
    virtual_clock: bool = False,
    serve_rpc: bool = True,
    seed: int | None = None,
    plant_factory: Callable[[ReactorConfig, Path], Any] | None = None,
) -> Run:
    """Build a controller from ``config_path``.

    Parameters
    ----------
    speed
        Clock speed: simulated seconds per wall second (1 = real time).
    db
        Historian file (default: the config's ``[historian] path`` or ``runs/<name>.db``).
    on_restart
        Override the config's restart policy when the historian holds a saved state.
    virtual_clock
        Run as fast as possible on a virtual clock (tests; needs ``sim://`` ports only).
    """
    # The scan shares the GIL with I/O workers and REPL threads: hand it over every 0.2 ms
    # instead of CPython's default 5 ms, so a busy REPL delays a scan by < 1 ms, not 5.
    sys.setswitchinterval(min(sys.getswitchinterval(), 0.0002))
    path = Path(config_path)
    cfg = load_reactor_config(path)
    text = config_text(path)  # the file and every file it extends: hashed with the run
    period = cfg.reactor.scan_period_s
    bridged = cfg.gpio is not None and cfg.gpio.pin_factory == "bridge"
    # Accelerated runs on a simulated plant (in process, or an emulated rig behind the GPIO
    # bridge) keep controller, plant and emulators on one time base: simulated time waits for
    # whoever is late. Real-time runs (speed 1) keep the wall clock.
    lockstep = (
        not virtual_clock
        and speed != 1.0
        and ((cfg.plant is not None and cfg.plant.paced) or (bridged and cfg.plant is None))
    )
    # In process, the emulators' delays and the drivers' time-outs are then simulated seconds
    # (edgectl.timebase); otherwise emulated processing delays are scaled to the wall clock.
    sim_timebase = lockstep and cfg.plant is not None
    if not sim_timebase:
        cfg = _scale_sim_delays(cfg, 0.0 if virtual_clock else speed)

    def make_clock(start_s: float = 0.0) -> Any:
        if virtual_clock:
            return VirtualClock(start_s)
        if lockstep:
            return LockstepClock(speed, start_s, hold_until_start=True)
        return ScaledClock(speed, start_s=start_s)

    db_path = Path(db) if db else _default_path(cfg, cfg.historian.path, ".db")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    historian = Historian(db_path, commit_interval_s=cfg.historian.commit_interval_s)
    saved = historian.load_state("controller")
    policy = on_restart or cfg.run.on_restart
    start_s = 0.0
    if saved is not None and policy == "resume":
        # a resumed run continues on its saved time axis from its first I/O on: the clock
        # every device and worker is set up on is the run's own (no gap, no repeated times)
        start_s = float(saved.get("now_s", 0.0))
        if cfg.plant is None:
            # The process (a real rig, or a HIL plant in another process) went on while the
            # controller was down: resume at the time it is now, not when state was saved.
            downtime_s = max(0.0, time.time() - float(saved.get("wall_time_s", time.time())))
            start_s += downtime_s * (1.0 if virtual_clock else speed)
    # resumed on a lockstep clock: the devices' first readings come in before the first scan
    warmup_s = 10.0 * period if (lockstep and start_s > 0.0) else 0.0
    clock: Any = make_clock(start_s - warmup_s)
    if sim_timebase:
        timebase.use(clock)
    plant = None
    pin_factory = None
    hub: Hub | None = None
    faces: list[Any] = []
    try:
        if cfg.plant is not None:
            from gpiozero.pins.mock import MockFactory

            from edgectl.devices.gpio import SimPWMPin
            from edgectl.emulators import reset_emulators, set_plant

            plant = (plant_factory or _make_plant)(cfg, path)
            if seed is not None and plant_factory is None:
                plant = _make_plant(cfg, path, seed)
            reset_emulators()
            set_plant(plant)
            pin_factory = MockFactory(pin_class=SimPWMPin)  # bounded pin history
        if cfg.gpio is not None and cfg.gpio.pin_factory == "bridge":
            from edgectl.emulators.gpio_bridge import BridgeFactory, bridge_from_env

            pin_factory = BridgeFactory(bridge_from_env(cfg.gpio.bridge), lockstep=lockstep)
        hub = Hub(cfg, clock=clock, pin_factory=pin_factory)
        scheduler = ScanScheduler(cfg.reactor.scan_period_s, clock)
        engine = Engine(cfg)
        softsensors = None
        if cfg.softsensors:
            from edgectl.runtime.softsensor import SoftSensorSet

            softsensors = SoftSensorSet.from_config(cfg, path.parent, hub)
        controller = Controller(
            cfg,
            engine=engine,
            hub=hub,
            historian=historian,
            scheduler=scheduler,
            config_text=text,
            softsensors=softsensors,
        )
        bridge = SimBridge(plant, cfg, hub, pin_factory) if plant is not None else None
        if plant is not None and hasattr(plant, "take_sample"):
            from edgectl.runtime.atline import AtLineAnalyser

            controller.atline = AtLineAnalyser(plant.take_sample)
        resumed = False
        if saved is not None:
            if saved.get("config_hash") != controller.config_hash:
                historian.record_event(
                    "restart", "configuration changed since the saved state", source="run"
                )
            if policy == "resume":
                controller.restore(saved)
                resumed = True
            else:
                controller.hold_safe()
            if plant is not None and "plant" in saved:
                plant.restore(bytes.fromhex(saved["plant"]))
        if saved and resumed:
            # until the first scan, "now" is where the run resumes (a run closed before its
            # first scan stops there, and persists that time)
            controller.now_s = start_s
            # Never record a sample twice: the last commit may be newer than the saved state.
            latest = [s.time_s for s in historian.latest().values()]
            if latest:
                controller.skip_samples_until(max(latest) - controller.time_base_s)
        if not resumed:
            # A simulated run's time axis (time base + clock seconds) runs ahead of the wall
            # clock: a fresh run on the same historian starts after everything recorded.
            latest = [s.time_s for s in historian.latest().values()]
            if latest and max(latest) >= controller.time_base_s:
                controller.time_base_s = max(latest) + 1.0
        if lockstep and bridged and plant is None:
            from edgectl.emulators.gpio_bridge import RigClockLink

            assert pin_factory is not None  # a bridged GPIO board made one
            link = RigClockLink(pin_factory, clock, period)
            controller.before_scan = link.before_scan
        if bridge is not None:
            sim = bridge.plant
            bridge.t0_s = sim.time_s - start_s
            controller.before_scan = bridge.before_scan
            controller.extra_state = lambda: {"plant": sim.snapshot().hex()}
        historian.start_run(
            config_hash=controller.config_hash,
            config_path=str(path),
            resumed_from="controller" if resumed else None,
            time_s=controller.time_base_s + start_s,
            clock="wall" if speed == 1.0 and not (virtual_clock or lockstep) else "sim",
        )
        historian.record_event(
            "start",
            f"{cfg.reactor.name}: {'resumed' if resumed else 'started'}"
            f" ({policy if saved else 'fresh'})",
            source="run",
            time_s=controller.time_base_s + start_s,
        )
        # the one door into the controller: every face (the REPL socket here) calls it
        service = OperatorService.for_run(controller, cfg, path)
        rpc = None
        if serve_rpc:
            given = str(socket_path) if socket_path else cfg.run.socket
            sock = _default_path(cfg, given, ".sock")
            rpc = RpcServer(sock, service).start()
        if cfg.opcua.enabled:  # the OPC UA LADS face (edgectl.lab), a client of the service
            from edgectl.lab.config import cache_path, pki_path
            from edgectl.lab.opcua_server import OpcUaServer

            pki = pki_path(path.parent, cfg.opcua.pki_dir, historian.path)
            cache = cache_path(path.parent, cfg.opcua.cache_dir, historian.path)
            faces.append(OpcUaServer(service, cfg.opcua, pki, cache).start())
        if cfg.sila.enabled:  # the SiLA 2 face (edgectl.lab), a client of the service
            from edgectl.lab.config import pki_path
            from edgectl.lab.sila_server import SilaLabServer

            pki = pki_path(path.parent, cfg.sila.pki_dir, historian.path.with_suffix(".sila.db"))
            faces.append(SilaLabServer(service, cfg.sila, pki).start())
        run = Run(
            cfg,
            path,
            controller,
            hub,
            historian,
            scheduler,
            clock,
            rpc,
            plant,
            resumed,
            start_s,
            faces=faces,
        )
        if cfg.mqtt is not None:  # its own thread and read connection: the scan never waits
            from edgectl.fleet.publisher import EdgePublisher

            ctl = run.controller

            def phase() -> str:  # a plain attribute read: never the scan's lock
                return ctl.recipe.phase_name if ctl.recipe is not None else ""

            run.publisher = EdgePublisher(
                cfg.mqtt, historian.path, node=cfg.reactor.name, service=service, phase=phase
            ).start()
        return run
    except BaseException:
        for face in faces:
            face.close()
        if hub is not None:
            hub.close()
        historian.close("failed to start")
        if sim_timebase:
            timebase.use(None)
        raise


def _scale_sim_delays(cfg: ReactorConfig, speed: float) -> ReactorConfig:
    """Emulated devices take their processing time (an EZO reading: 0.6 s) in plant time: at
    ``speed`` × real time that is 1/speed of the wall time (0 on a virtual clock)."""
    if speed == 1.0:
        return cfg
    scale = 0.0 if speed == 0.0 else 1.0 / speed
    devices = {}
    for name, dev in cfg.devices.items():
        port = dev.port
        if port.startswith("sim://") and "delay_scale=" not in port:
            port += ("&" if "?" in port else "?") + f"delay_scale={scale:.9g}"
        devices[name] = msgspec.structs.replace(dev, port=port)
    return msgspec.structs.replace(cfg, devices=devices)


def _make_plant(cfg: ReactorConfig, config_path: Path, seed: int | None = None) -> Any:
    from edgectl.sim import Plant, PlantConfig, load_plant_config

    assert cfg.plant is not None
    if cfg.plant.config:
        pc = load_plant_config(config_path.parent / cfg.plant.config)
    elif cfg.plant.scenario in ("ecoli_2l", "ecoli-2L"):
        pc = PlantConfig.ecoli_2l()
    elif cfg.plant.scenario in ("cho_2l", "cho-2L"):
        pc = PlantConfig.cho_2l()
    else:
        raise ConfigError(
            f"{config_path}: $.plant.scenario: unknown scenario {cfg.plant.scenario!r}"
            " (ecoli_2l, cho_2l)"
        )
    s = cfg.plant.seed if seed is None else seed
    return Plant(pc, seed=s)

"""Emulators of line-based ASCII devices, answering the requests their profiles describe.

:class:`LineEmulator` matches each incoming line against the ``request`` regex of every
profile command (in profile order) and calls ``on_<command>(groups)``; the handler returns the
values for the command's ``reply`` template (``\\n`` in a template separates reply lines), a
ready reply (``bytes``), or None for no reply. Unknown lines get the profile's
``emulator.error_reply``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from edgectl import timebase
from edgectl.emulators.base import Emulator

__all__ = [
    "AlicatEmulator",
    "EzoEmulator",
    "LineEmulator",
    "MtSicsEmulator",
    "RegloIccEmulator",
    "SbiEmulator",
    "WatsonMarlowEmulator",
    "do_saturation_mg_l",
]

Reply = dict[str, Any] | bytes | None


class LineEmulator(Emulator):
    """Profile-driven emulator of a device that reads lines and answers lines."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        enc = self.profile.serial.encoding
        self._enc = enc
        self._term = self.profile.serial.terminator_in.encode(enc)
        self._requests = [
            (name, re.compile(cmd.request), cmd)
            for name, cmd in self.profile.commands.items()
            if cmd.request
        ]
        self._last_delay = 0.0
        self.delay_scale = float(self.params.get("delay_scale", "1.0"))

    def split(self, buf: bytes) -> tuple[list[bytes], bytes]:
        # Accept CR, LF or CR LF whatever the profile's terminator: hosts differ.
        frames: list[bytes] = []
        while True:
            idx = [i for i in (buf.find(b"\r"), buf.find(b"\n")) if i >= 0]
            if not idx:
                return frames, buf
            i = min(idx)
            frame, buf = buf[:i], buf[i + 1 :]
            if frame:
                frames.append(frame)

    def handle(self, frame: bytes) -> bytes | None:
        text = frame.decode(self._enc, errors="replace").strip()
        self._last_delay = 0.0
        for name, pattern, cmd in self._requests:
            m = pattern.match(text)
            if m is None:
                continue
            handler = getattr(self, f"on_{name}", None)
            groups = m.groupdict()
            result: Reply = handler(groups) if handler is not None else {}
            self._last_delay = cmd.delay_s * self.delay_scale
            if result is None:
                return None
            if isinstance(result, bytes):
                return result
            if not cmd.reply:
                return None
            return self.render(cmd.reply, {**groups, **result})
        return self.error_reply(frame)

    def render(self, template: str, values: dict[str, Any]) -> bytes:
        lines = template.format(**values).split("\n")
        return b"".join(line.encode(self._enc) + self._term for line in lines)

    def error_reply(self, frame: bytes) -> bytes | None:
        err = super().error_reply(frame)
        return None if err is None else err + self._term

    def reply_delay(self, frame: bytes) -> float:
        return self._last_delay


class AlicatEmulator(LineEmulator):
    """Alicat MC-series: data frames, setpoint, registers, valve hold (devices.md §1.1).

    Plant signals: ``mass_flow_sccm`` (reading), ``setpoint_sccm`` (actuator), ``temp_c``,
    ``pressure_bar`` (gauge; reported as psia).
    """

    def power_on(self) -> None:
        self.unit = self.params.get("address", "A")
        self.setpoint_sccm = 0.0
        self.gas = str(self.profile.emulator.get("gas", "N2"))
        self.registers = {122: 37, 46: 8}
        self.hold = False

    def _mine(self, groups: dict[str, Any]) -> bool:
        return str(groups.get("unit", "")).upper() == self.unit

    def _frame(self) -> dict[str, Any]:
        psia = 14.696 + 14.5038 * self.read_signal("pressure_bar", 0.0)
        flow = self.read_signal("mass_flow_sccm", self.setpoint_sccm)
        return {
            "unit": self.unit,
            "pressure_psia": psia,
            "temp_c": self.read_signal("temp_c", 25.0),
            "vol_flow_sccm": flow,
            "mass_flow_sccm": flow,
            "setpoint_sccm": self.setpoint_sccm,
            "gas": self.gas,
            "status": " HLD" if self.hold else "",
        }

    def on_poll(self, g: dict[str, Any]) -> Reply:
        return self._frame() if self._mine(g) else None

    def on_set_setpoint(self, g: dict[str, Any]) -> Reply:
        if not self._mine(g):
            return None
        self.setpoint_sccm = float(g["setpoint_sccm"])
        self.write_signal("setpoint_sccm", self.setpoint_sccm)
        return self._frame()

    def on_read_register(self, g: dict[str, Any]) -> Reply:
        if not self._mine(g):
            return None
        reg = int(g["register"])
        return {"unit": self.unit, "register": reg, "value": self.registers.get(reg, 0)}

    def on_write_register(self, g: dict[str, Any]) -> Reply:
        if not self._mine(g):
            return None
        reg = int(g["register"])
        self.registers[reg] = int(g["value"])
        return {"unit": self.unit, "register": reg, "value": self.registers[reg]}

    def on_hold(self, g: dict[str, Any]) -> Reply:
        if not self._mine(g):
            return None
        self.hold = True
        return self._frame()

    def on_cancel_hold(self, g: dict[str, Any]) -> Reply:
        if not self._mine(g):
            return None
        self.hold = False
        return self._frame()

    def on_firmware(self, g: dict[str, Any]) -> Reply:
        if not self._mine(g):
            return None
        return {"unit": self.unit, "firmware": self.profile.emulator.get("firmware", "10v05")}


def do_saturation_mg_l(temp_c: float) -> float:
    """O2 solubility in fresh water at 1 atm, mg/L.

    Polynomial fit of the Benson-Krause table as given in APHA Standard Methods 4500-O
    (14.652 - 0.41022 T + 0.007991 T^2 - 0.000077774 T^3), valid 0-50 °C.
    """
    t = min(max(temp_c, 0.0), 50.0)
    return 14.652 - 0.41022 * t + 0.007991 * t**2 - 0.000077774 * t**3


class EzoEmulator(LineEmulator):
    """Atlas Scientific EZO pH / DO / RTD in UART mode (devices.md §1.4).

    Starts in continuous mode (a reading every ``startup.continuous_period_s``) until ``C,0``;
    ``*OK`` response codes on. The circuit type comes from ``emulator.circuit``.
    """

    def power_on(self) -> None:
        self.circuit = str(self.profile.emulator.get("circuit", "pH"))
        self.continuous = self.profile.startup.continuous_period_s > 0
        self.period_s = self.profile.startup.continuous_period_s * float(
            self.params.get("delay_scale", "1.0")
        )
        self._next_emit = timebase.monotonic() + self.period_s
        self.response_codes = True
        self.temp_comp_c = 25.0
        self.cal_points = {"pH": 3, "DO": 2}.get(self.circuit, 1)
        self.outputs = {"mg": True, "%": True}
        self.scale = "c"

    def _ok(self, values: dict[str, Any] | None = None) -> Reply:
        if self.response_codes:
            return values if values is not None else {}
        return None if values is None else values

    def reading_text(self) -> str:
        if self.circuit == "pH":
            return f"{self.read_signal('ph', 7.0):.3f}"
        if self.circuit == "RTD":
            return f"{self.read_signal('temp_c', 25.0):.3f}"
        # the circuit reports nothing below zero (EZO DO range 0-100+ mg/L): probe noise around
        # an anoxic broth reads 0.00, never "-0.01" (which no client parses)
        pct = max(0.0, self.read_signal("do_pct", 100.0))
        mg = pct / 100.0 * do_saturation_mg_l(self.temp_comp_c)
        parts = []
        if self.outputs["mg"]:
            parts.append(f"{mg:.2f}")
        if self.outputs["%"]:
            parts.append(f"{pct:.1f}")
        return ",".join(parts) or "no output"

    def next_tick_s(self) -> float:
        return self._next_emit if self.continuous and self.period_s > 0 else math.inf

    def tick(self, now: float) -> None:
        if self.continuous and self.period_s > 0 and now >= self._next_emit:
            self._next_emit = now + self.period_s
            self._out.append((now, self.reading_text().encode() + self._term))

    def render(self, template: str, values: dict[str, Any]) -> bytes:
        if not self.response_codes:
            template = "\n".join(t for t in template.split("\n") if t != "*OK")
            if not template:
                return b""
        return super().render(template, values)

    def on_read(self, g: dict[str, Any]) -> Reply:
        return {"reading": self.reading_text()}

    def on_stop_continuous(self, g: dict[str, Any]) -> Reply:
        self.continuous = False
        return self._ok()

    def on_set_continuous(self, g: dict[str, Any]) -> Reply:
        self.continuous = g["enable"] != "0"
        self._next_emit = timebase.monotonic() + self.period_s
        return self._ok()

    def on_query_continuous(self, g: dict[str, Any]) -> Reply:
        return {"enable": int(self.continuous)}

    def on_response_codes(self, g: dict[str, Any]) -> Reply:
        self.response_codes = g["enable"] == "1"
        return {} if self.response_codes else None

    def on_query_response_codes(self, g: dict[str, Any]) -> Reply:
        return {"enable": int(self.response_codes)}

    def on_info(self, g: dict[str, Any]) -> Reply:
        return {"circuit": self.circuit, "firmware": self.profile.emulator.get("firmware", "2.16")}

    def on_set_temp_compensation(self, g: dict[str, Any]) -> Reply:
        self.temp_comp_c = float(g["temp_c"])
        return self._ok()

    def on_query_temp_compensation(self, g: dict[str, Any]) -> Reply:
        return {"temp_c": self.temp_comp_c}

    def on_calibrate(self, g: dict[str, Any]) -> Reply:
        return self._ok()

    def on_query_calibration(self, g: dict[str, Any]) -> Reply:
        return {"points": self.cal_points}

    def on_query_slope(self, g: dict[str, Any]) -> Reply:
        return {}

    def on_query_outputs(self, g: dict[str, Any]) -> Reply:
        names = [k for k, on in self.outputs.items() if on]
        return {"outputs": ",".join(names) if names else "none"}

    def on_set_output(self, g: dict[str, Any]) -> Reply:
        key = "%" if g["param"] == "%" else "mg"
        self.outputs[key] = g["enable"] == "1"
        return self._ok()

    on_output_mg_on = on_set_output
    on_output_pct_on = on_set_output

    def on_query_scale(self, g: dict[str, Any]) -> Reply:
        return {"scale": self.scale}

    def on_status(self, g: dict[str, Any]) -> Reply:
        return {}


class MtSicsEmulator(LineEmulator):
    """Mettler Toledo MT-SICS level 0/1 balance (devices.md §1.5).

    Plant signal ``mass_g`` (default ``reactor_mass_g``); weights are reported as gross minus
    zero offset minus tare, in g. Weights beyond ``emulator.capacity_g`` answer ``S +``/``S -``.
    """

    def power_on(self) -> None:
        self.zero_g = 0.0
        self.tare_g = 0.0

    def _net(self) -> float:
        return self.read_signal("mass_g", 0.0) - self.zero_g - self.tare_g

    def _weight(self) -> dict[str, Any]:
        net = self._net()
        cap = float(self.profile.emulator.get("capacity_g", 6200.0))
        status = "+" if net > cap else "-" if net < -cap else "S"
        return {"status": status, "mass_g": net, "unit": "g"}

    def on_reset(self, g: dict[str, Any]) -> Reply:
        self.tare_g = 0.0
        return {"serial": self.profile.emulator.get("serial", "B123456789")}

    def on_serial_number(self, g: dict[str, Any]) -> Reply:
        return {"serial": self.profile.emulator.get("serial", "B123456789")}

    def on_model(self, g: dict[str, Any]) -> Reply:
        return {"model": self.profile.emulator.get("model", "XS6002S 6200 g")}

    def on_software(self, g: dict[str, Any]) -> Reply:
        return {"software": self.profile.emulator.get("software", "1.10")}

    def on_read_stable(self, g: dict[str, Any]) -> Reply:
        w = self._weight()
        if w["status"] in "+-":
            return f"S {w['status']}".encode() + self._term
        return w

    def on_read_immediate(self, g: dict[str, Any]) -> Reply:
        return self.on_read_stable(g)

    def on_zero(self, g: dict[str, Any]) -> Reply:
        self.zero_g = self.read_signal("mass_g", 0.0) - self.tare_g
        return {}

    def on_zero_immediate(self, g: dict[str, Any]) -> Reply:
        return self.on_zero(g)

    def on_tare(self, g: dict[str, Any]) -> Reply:
        self.tare_g = self.read_signal("mass_g", 0.0) - self.zero_g
        return {"tare_g": self.tare_g}

    def on_tare_clear(self, g: dict[str, Any]) -> Reply:
        self.tare_g = 0.0
        return {}


class SbiEmulator(LineEmulator):
    """Sartorius SBI balance: ``ESC`` commands without terminator (devices.md §1.5).

    Replies are 22 characters: 6-character ID, sign, space, 8-character value, space,
    3-character unit (blank while unstable), CR LF.
    """

    _ESC = 0x1B

    def power_on(self) -> None:
        self.zero_g = 0.0

    def split(self, buf: bytes) -> tuple[list[bytes], bytes]:
        frames: list[bytes] = []
        i = 0
        n = len(buf)
        while i < n:
            b = buf[i]
            if b in (0x0D, 0x0A, 0x20):
                i += 1
                continue
            if b != self._ESC:
                j = i
                while j < n and buf[j] not in (self._ESC, 0x0D, 0x0A):
                    j += 1
                if j == n:
                    return frames, buf[i:]
                frames.append(buf[i:j])  # not a command: answered with an error line
                i = j
                continue
            if i + 1 >= n:
                break
            letter = buf[i + 1 : i + 2]
            # Format 2: ESC letter digit '_' (x1_, x2_, ...).
            if i + 3 < n and chr(buf[i + 2]).isdigit() and buf[i + 3] == ord("_"):
                frames.append(buf[i : i + 4])
                i += 4
                continue
            format2 = letter == b"x" or (i + 2 < n and chr(buf[i + 2]).isdigit())
            if format2 and i + 3 >= n:
                break  # wait for the rest of a format-2 command
            frames.append(buf[i : i + 2])
            i += 2
        return frames, buf[i:]

    def handle(self, frame: bytes) -> bytes | None:
        return super().handle(frame.replace(b"\x1b", b"ESC"))

    def on_print(self, g: dict[str, Any]) -> Reply:
        net = self.read_signal("mass_g", 0.0) - self.zero_g
        stable = self.params.get("unstable", "0") != "1"
        return {
            "id": "N",
            "sign": "-" if net < 0 else "+",
            "mass_g": f"{abs(net):.2f}"[:8],
            "unit": "g" if stable else "",
        }

    def on_tare(self, g: dict[str, Any]) -> Reply:
        self.zero_g = self.read_signal("mass_g", 0.0)
        return None

    def on_model(self, g: dict[str, Any]) -> Reply:
        return {"model": self.profile.emulator.get("model", "LA230S")}

    def on_serial_number(self, g: dict[str, Any]) -> Reply:
        return {"serial": self.profile.emulator.get("serial", "37454321")}

    def on_software(self, g: dict[str, Any]) -> Reply:
        return {"software": self.profile.emulator.get("software", "00-37-09")}


def _mmmm_e(value: float) -> str:
    """``mmmmE±e`` as the Reglo ICC answers flow rates (1.2 mL/min -> ``1200E+0``)."""
    if value <= 0 or not math.isfinite(value):
        return "0000E+0"
    e = math.floor(math.log10(value))
    m = round(value / 10**e * 1000)
    if m >= 10000:
        m //= 10
        e += 1
    return f"{m:04d}E{'+' if e >= 0 else '-'}{abs(e)}"


class RegloIccEmulator(LineEmulator):
    """Ismatec Reglo ICC, four channels, channel addressing (devices.md §1.6).

    Set commands answer ``*`` (``#`` when refused) without terminator; data answers end CR LF.
    Channel ``n`` drives the plant actuator ``rate_ml_min_ch<n>`` (bound by default to feed,
    base, acid and antifoam). A channel whose flow is 0 answers ``-`` to start.
    """

    CHANNELS = (1, 2, 3, 4)

    def power_on(self) -> None:
        self.address = int(self.params.get("address", "1"))
        self.running = dict.fromkeys(self.CHANNELS, False)
        self.mode = dict.fromkeys(self.CHANNELS, "L")
        self.rpm = dict.fromkeys(self.CHANNELS, 0.0)
        self.flow_ml_min = dict.fromkeys(self.CHANNELS, 0.0)
        self.clockwise = dict.fromkeys(self.CHANNELS, True)
        self.ml_per_rev = float(self.profile.emulator.get("ml_per_rev", 0.08))
        self.channel_addressing = True
        self.events = True
        for ch in self.CHANNELS:
            self._push(ch)

    def _channels(self, g: dict[str, Any]) -> tuple[int, ...]:
        ch = int(g.get("channel") or 0)
        if ch == 0:
            return self.CHANNELS
        if ch not in self.CHANNELS:
            raise ValueError(f"no channel {ch}")
        return (ch,)

    def _rate(self, ch: int) -> float:
        if not self.running[ch]:
            return 0.0
        if self.mode[ch] == "L":
            return self.rpm[ch] * self.ml_per_rev
        return self.flow_ml_min[ch]

    def _push(self, ch: int) -> None:
        self.write_signal(f"rate_ml_min_ch{ch}", self._rate(ch))

    def _star(self) -> bytes:
        return b"*"

    def on_set_address(self, g: dict[str, Any]) -> Reply:
        self.address = int(g["address"])
        return self._star()

    def on_channel_addressing(self, g: dict[str, Any]) -> Reply:
        self.channel_addressing = g["enable"] == "1"
        return self._star()

    def on_query_channel_addressing(self, g: dict[str, Any]) -> Reply:
        return {"enable": int(self.channel_addressing)}

    def on_events(self, g: dict[str, Any]) -> Reply:
        self.events = g["enable"] == "1"
        return self._star()

    def on_query_events(self, g: dict[str, Any]) -> Reply:
        return {"enable": int(self.events)}

    def on_protocol_version(self, g: dict[str, Any]) -> Reply:
        return {"version": 8}

    def on_start(self, g: dict[str, Any]) -> Reply:
        chans = self._channels(g)
        if any(self.running[c] for c in chans) and len(chans) == 1:
            return b"#"
        if any((self.rpm[c] if self.mode[c] == "L" else self.flow_ml_min[c]) <= 0 for c in chans):
            return b"-"
        for c in chans:
            self.running[c] = True
            self._push(c)
        return self._star()

    def on_stop(self, g: dict[str, Any]) -> Reply:
        for c in self._channels(g):
            self.running[c] = False
            self._push(c)
        return self._star()

    def on_is_running(self, g: dict[str, Any]) -> Reply:
        return b"+" if any(self.running[c] for c in self._channels(g)) else b"-"

    def on_mode_rpm(self, g: dict[str, Any]) -> Reply:
        for c in self._channels(g):
            self.mode[c] = "L"
            self._push(c)
        return self._star()

    def on_mode_flow(self, g: dict[str, Any]) -> Reply:
        for c in self._channels(g):
            self.mode[c] = "M"
            self._push(c)
        return self._star()

    def on_query_mode(self, g: dict[str, Any]) -> Reply:
        return {"mode": self.mode[self._channels(g)[0]]}

    def on_set_rpm(self, g: dict[str, Any]) -> Reply:
        for c in self._channels(g):
            self.rpm[c] = int(g["rpm_x100"]) / 100.0
            self._push(c)
        return self._star()

    def on_read_rpm(self, g: dict[str, Any]) -> Reply:
        return {"rpm": self.rpm[self._channels(g)[0]]}

    def on_set_flow(self, g: dict[str, Any]) -> Reply:
        value = int(g["mantissa"]) / 1000.0 * 10 ** int(g["exponent"])
        for c in self._channels(g):
            self.flow_ml_min[c] = value
            self._push(c)
        return self._star()

    def on_read_flow(self, g: dict[str, Any]) -> Reply:
        # m.mmm x 10^e mL/min, so a plain float parse gives µL/min ("1200E+0" = 1.2 mL/min).
        return {"flow": _mmmm_e(self.flow_ml_min[self._channels(g)[0]])}

    def on_clockwise(self, g: dict[str, Any]) -> Reply:
        for c in self._channels(g):
            self.clockwise[c] = True
        return self._star()

    def on_counter_clockwise(self, g: dict[str, Any]) -> Reply:
        for c in self._channels(g):
            self.clockwise[c] = False
        return self._star()

    def on_query_direction(self, g: dict[str, Any]) -> Reply:
        return {"direction": "J" if self.clockwise[self._channels(g)[0]] else "K"}


class WatsonMarlowEmulator(LineEmulator):
    """Watson-Marlow 520Du/620Du RS232 (devices.md §1.6): echo on, CR, pump number ``n``.

    Each frame's echo and its reply go out as one unit (faults act on both); unknown commands
    are echoed and ignored (no error reply is defined). Writes ``rate_ml_min`` =
    rpm x ml/rev while running.
    """

    def power_on(self) -> None:
        self.pump = int(self.params.get("address", "1"))
        self.rpm = 0.0
        self.running = False
        self.clockwise = True
        self.tacho = 0
        self.ml_per_rev = float(self.profile.emulator.get("ml_per_rev", 15.84))
        self.max_rpm = float(self.profile.emulator.get("max_rpm", 220.0))
        self._push()

    def _push(self) -> None:
        self.write_signal("rate_ml_min", self.rpm * self.ml_per_rev if self.running else 0.0)

    def handle(self, frame: bytes) -> bytes | None:
        text = frame.decode(self._enc, errors="replace").strip()
        m = re.match(r"^([0-9]+|#)", text)
        if m is None or (m.group(1) != "#" and int(m.group(1)) != self.pump):
            return None  # another pump's command on the line (its own drive echoes it)
        echo = frame + self._term
        reply = super().handle(frame)
        return echo + (reply or b"")

    def error_reply(self, frame: bytes) -> bytes | None:
        return None

    def _mine(self, g: dict[str, Any]) -> bool:
        return str(g.get("pump")) in ("#", str(self.pump))

    def on_set_rpm(self, g: dict[str, Any]) -> Reply:
        self.rpm = min(max(float(g["rpm"]), 0.0), self.max_rpm)
        self._push()
        return None

    def on_start(self, g: dict[str, Any]) -> Reply:
        self.running = True
        self._push()
        return None

    def on_stop(self, g: dict[str, Any]) -> Reply:
        self.running = False
        self._push()
        return None

    def on_clockwise(self, g: dict[str, Any]) -> Reply:
        self.clockwise = True
        return None

    def on_counter_clockwise(self, g: dict[str, Any]) -> Reply:
        self.clockwise = False
        return None

    def on_status(self, g: dict[str, Any]) -> Reply:
        emu = self.profile.emulator
        return {
            "model": emu.get("model", "520Du"),
            "ml_per_rev": self.ml_per_rev,
            "pumphead": emu.get("pumphead", "520R"),
            "tube": emu.get("tube", "9.6MM"),
            "rpm": self.rpm,
            "direction": "CW" if self.clockwise else "CCW",
            "pump": self.pump,
            "tacho": self.tacho,
            "running": int(self.running),
        }

"""Bronkhorst ProPar emulator: binary (DLE framing) and ASCII frames, autodetected per frame.

Serves the DDE parameters of the profile's ``[propar.parameters]`` (devices.md §1.2): measure
and fMeasure from the plant signal ``flow_sccm``, setpoint/fSetpoint written to the plant
actuator ``setpoint_sccm``; capacity, fluid name and capacity unit from the profile. Answers
node addresses ``[propar].node`` and 0x80 (the local instrument the vendor client addresses).
"""

from __future__ import annotations

from typing import Any

from edgectl.emulators.base import Emulator
from edgectl.errors import ProtocolError
from edgectl.io import propar as pp

__all__ = ["ProparEmulator"]


class ProparEmulator(Emulator):
    def power_on(self) -> None:
        assert self.profile.propar is not None
        self.cfg = self.profile.propar
        self.node = int(self.params.get("address", str(self.cfg.node)))
        self.setpoint_sccm = 0.0
        self.fluid_index = 0
        self._mode = "binary"
        self._by_index = {(p.process, p.parameter): (k, p) for k, p in self.cfg.parameters.items()}

    def split(self, buf: bytes) -> tuple[list[bytes], bytes]:
        frames: list[bytes] = []
        while buf:
            colon = buf.find(b":")
            dle = buf.find(bytes([pp.DLE, pp.STX]))
            if colon >= 0 and (dle < 0 or colon < dle):
                end = buf.find(b"\n", colon)
                if end < 0:
                    return frames, buf[colon:]
                frames.append(b"A" + buf[colon:end].strip())
                buf = buf[end + 1 :]
                continue
            if dle >= 0:
                found, rest = pp.split_binary(buf[dle:])
                if not found:
                    return frames, buf[dle:]
                frames.extend(b"B" + bytes([s, n]) + d for s, n, d in found)
                buf = rest
                continue
            return frames, b""
        return frames, b""

    def _flow(self) -> float:
        return self.read_signal("flow_sccm", self.setpoint_sccm)

    def _value(self, key: str) -> Any:
        cap = self.cfg.capacity
        full = self.cfg.full_scale_raw
        if key == "measure":
            return max(0, min(65535, round(self._flow() / cap * full)))
        if key == "setpoint":
            return round(self.setpoint_sccm / cap * full)
        if key == "fmeasure":
            return self._flow()
        if key == "fsetpoint":
            return self.setpoint_sccm
        if key == "capacity":
            return cap
        if key == "capacity_unit":
            return self.cfg.capacity_unit
        if key == "fluid_name":
            return str(self.profile.emulator.get("fluid", "AIR"))
        if key == "fluidset_index":
            return self.fluid_index
        if key == "identification":
            return str(self.profile.emulator.get("identification", "EL-FLOW F-201CV"))
        return int(self.profile.emulator.get(key, 0))

    def _store(self, key: str, raw: bytes, type_name: str) -> None:
        value = pp.decode_value(type_name, raw)
        cap = self.cfg.capacity
        if key == "fsetpoint":
            self.setpoint_sccm = max(0.0, min(cap, float(value)))
        elif key == "setpoint":
            self.setpoint_sccm = int(value) / self.cfg.full_scale_raw * cap
        elif key == "fluidset_index":
            self.fluid_index = int(value)
        else:
            raise ValueError(key)
        self.write_signal("setpoint_sccm", self.setpoint_sccm)

    def _answer(self, node: int, data: bytes) -> bytes:
        try:
            cmd, items = pp.parse_items(data)
        except ProtocolError:
            return bytes([4])  # error message: protocol error
        if cmd == pp.CMD_REQUEST:
            out = bytearray([pp.CMD_SEND])
            for i, item in enumerate(items):
                entry = self._by_index.get((item.req_process, item.req_parameter))
                if entry is None:
                    return bytes([pp.CMD_STATUS, 4, 5 + i])  # parameter error
                key, p = entry
                value = pp.encode_value(p.type, self._value(key))
                if p.type == "string" and item.string_size:
                    text = value[1:][: item.string_size].ljust(item.string_size, b" ")
                    value = bytes([item.string_size]) + text
                last = i == len(items) - 1
                out += bytes(
                    [item.process | (0 if last else 0x80), item.parameter | item.type_bits]
                )
                out += value
            return bytes(out)
        if cmd in (pp.CMD_SEND_ACK, pp.CMD_SEND):
            for item in items:
                entry = self._by_index.get((item.process, item.parameter))
                if entry is None or not entry[1].writable:
                    return bytes([pp.CMD_STATUS, 4, 3])
                key, p = entry
                try:
                    self._store(key, item.value, p.type)
                except (ValueError, ProtocolError):
                    return bytes([pp.CMD_STATUS, 6, 3])
            return bytes([pp.CMD_STATUS, 0, 0])
        return bytes([3])

    def handle(self, frame: bytes) -> bytes | None:
        kind, body = frame[:1], frame[1:]
        if kind == b"A":
            self._mode = "ascii"
            try:
                node, data = pp.decode_ascii(body)
            except ProtocolError:
                return pp.encode_ascii(self.node, bytes([4]))
            if node not in (self.node, 0x80):
                return None
            return pp.encode_ascii(node, self._answer(node, data))
        self._mode = "binary"
        seq, node, data = body[0], body[1], body[2:]
        if node not in (self.node, 0x80):
            return None
        return pp.encode_binary(seq, node, self._answer(node, data))

    def error_reply(self, frame: bytes) -> bytes | None:
        # A status message "parameter value error"; in the frame kind the host speaks.
        if frame[:1] == b"A":
            try:
                node, _ = pp.decode_ascii(frame[1:])
            except ProtocolError:
                node = self.node
            return pp.encode_ascii(node, bytes([pp.CMD_STATUS, 6, 3]))
        seq, node = (frame[1], frame[2]) if len(frame) > 2 else (0, self.node)
        return pp.encode_binary(seq, node, bytes([pp.CMD_STATUS, 6, 3]))

    def garbage_terminator(self) -> bytes:
        return b"\r\n" if self._mode == "ascii" else b""

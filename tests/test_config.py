"""The one configuration decoding path: errors name the file, the key path and the rule."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

import msgspec
import pytest

from edgectl.config import Struct, decode_mapping, load_toml, read_toml, to_builtins, to_toml_text
from edgectl.errors import ConfigError


class Pid(Struct, frozen=True, kw_only=True):
    kp: float
    ti_s: Annotated[float, msgspec.Meta(gt=0.0)] = 60.0


class Loop(Struct, frozen=True, kw_only=True):
    sensor: str
    setpoint_c: Annotated[float, msgspec.Meta(ge=4.0, le=60.0)] = 37.0
    pid: Pid


class Reactor(Struct, frozen=True, kw_only=True):
    name: str
    loops: dict[str, Loop]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "reactor.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_valid_file_decodes_to_frozen_structs(tmp_path: Path) -> None:
    p = write(tmp_path, 'name = "r1"\n[loops.temp]\nsensor = "pt100"\npid = { kp = 2.0 }\n')
    cfg = load_toml(p, Reactor)
    assert cfg.loops["temp"].pid.kp == 2.0
    assert cfg.loops["temp"].setpoint_c == 37.0
    with pytest.raises(AttributeError):
        cfg.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            'name = "r"\n[loops.temp]\nsensor = "s"\nsetpoint_c = 99.0\npid = { kp = 1.0 }\n',
            ["$.loops.temp.setpoint_c", "<= 60.0"],
        ),
        (
            'name = "r"\n[loops.temp]\nsensor = "s"\npid = { kp = "fast" }\n',
            ["$.loops.temp.pid.kp", "Expected `float`, got `str`"],
        ),
        (
            'name = "r"\n[loops.temp]\nsensor = "s"\npid = { kp = 1.0, ti_s = 0.0 }\n',
            ["$.loops.temp.pid.ti_s", "> 0.0"],
        ),
        (
            'name = "r"\n[loops.temp]\nsensor = "s"\nsetpont_c = 30.0\npid = { kp = 1.0 }\n',
            ["$.loops.temp", "unknown field `setpont_c`"],
        ),
        ('name = "r"\n[loops.temp]\npid = { kp = 1.0 }\n', ["$.loops.temp", "`sensor`"]),
    ],
)
def test_errors_name_file_key_and_rule(tmp_path: Path, text: str, fragments: list[str]) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_toml(p, Reactor)
    msg = str(info.value)
    assert msg.startswith(f"{p}: ")
    for fragment in fragments:
        assert fragment in msg


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    p = write(tmp_path, 'name = "r"\nloops = {\n')
    with pytest.raises(ConfigError, match=r"reactor\.toml: TOML syntax error: .*line 2"):
        read_toml(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        read_toml(tmp_path / "nope.toml")


def test_settings_round_trip_through_toml_text() -> None:
    cfg = decode_mapping(
        {"name": "r", "loops": {"t": {"sensor": "s", "pid": {"kp": 0.5, "ti_s": 120.0}}}},
        Reactor,
    )
    text = to_toml_text(to_builtins(cfg))
    again = decode_mapping(tomllib.loads(text), Reactor, source="round-trip")
    assert again == cfg

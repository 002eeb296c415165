"""Firmware and board profiles: every shipped file decodes; errors name the file and the key."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from edgectl.commands import profiles as profiles_cmd
from edgectl.devices import DRIVERS
from edgectl.emulators import EMULATORS
from edgectl.errors import ProfileError
from edgectl.io.profile import (
    BoardProfile,
    DeviceProfile,
    iter_profiles,
    load_any_profile,
    load_board,
    load_profile,
    profile_root,
)

SHIPPED = iter_profiles()
REQUIRED = [
    "alicat/mc-series",
    "bronkhorst/el-flow-propar",
    "hamilton/arc-ph",
    "hamilton/arc-do",
    "atlas-scientific/ezo-ph",
    "atlas-scientific/ezo-do",
    "atlas-scientific/ezo-rtd",
    "mettler-toledo/mt-sics",
    "sartorius/sbi",
    "ismatec/reglo-icc",
    "generic/modbus-circulator",
]


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(profile_root())) for p in SHIPPED])
def test_every_shipped_profile_decodes(path: Path) -> None:
    profile = load_any_profile(path)
    if isinstance(profile, DeviceProfile):
        key = f"{path.parent.name}/{path.stem}"
        assert profile.name == key  # vendor/model match the file's place
        assert key in DRIVERS
        assert profile.emulator["type"] in EMULATORS
        assert profile.device.manual
        assert profile.device.client
    else:
        assert isinstance(profile, BoardProfile)
        assert {"heater", "foam"} <= set(profile.outputs) | set(profile.inputs)


def test_required_profiles_are_shipped() -> None:
    shipped = {f"{p.parent.name}/{p.stem}" for p in SHIPPED}
    assert set(REQUIRED) <= shipped
    assert {"boards/raspberry-pi-4", "boards/raspberry-pi-5"} <= shipped


def _write(tmp_path: Path, text: str, name: str = "acme/p1.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


GOOD = """
[device]
kind = "pump"
vendor = "acme"
model = "p1"
[serial]
baudrate = 9600
[commands.read_rate]
send = "RATE?"
expect = '^RATE (?P<rate_ml_min>[0-9.]+)$'
"""


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (GOOD.replace('kind = "pump"', 'kind = "toaster"'), "$.device.kind"),
        (GOOD.replace("baudrate = 9600", "baudrate = 9601"), "$.serial.baudrate"),
        (GOOD.replace("baudrate = 9600", "baudrate = 9600\ncolour = 1"), "$.serial"),
        (GOOD.replace("[0-9.]+)$", "[0-9.+)$"), "$.commands.read_rate.expect"),
        (GOOD + "\n[startup]\ncommands = ['nope']\n", "$.startup.commands"),
        (GOOD + "\n[serial2]\n", "serial2"),
        (GOOD.replace("baudrate = 9600", "stopbits = 3"), "$.serial.stopbits"),
        (GOOD.replace('kind = "pump"', 'kind = "pump"\nprotocol = "modbus-rtu"'), "$.modbus"),
        (GOOD + '\n[modbus.registers.x]\naddress = 1\ntype = "f32"\n', "$.modbus.registers.x"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(path) in str(info.value)
    assert key in str(info.value)


def test_toml_syntax_error_names_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[device\n")
    with pytest.raises(ProfileError, match="TOML syntax error"):
        load_profile(path)


def test_board_pin_clash_is_named(tmp_path: Path) -> None:
    text = (profile_root() / "boards/raspberry-pi-5.toml").read_text()
    path = _write(tmp_path, text.replace("pin = 26", "pin = 12"), "boards/bad.toml")
    with pytest.raises(ProfileError, match=r"\$\.inputs\.foam\.pin: GPIO12 already used by heater"):
        load_board(path)


def test_unknown_profile_name() -> None:
    with pytest.raises(ProfileError, match="no such firmware profile"):
        load_profile("acme/nothing")


def _run_check(path: str | None) -> int:
    parser = argparse.ArgumentParser()
    profiles_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["profiles", "check", *([path] if path else [])])
    return int(args.func(args))


def test_profiles_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_check(None) == 0
    out = capsys.readouterr().out
    assert f"{len(SHIPPED)} profile(s) valid, 0 invalid" in out
    shutil.copytree(profile_root(), tmp_path / "profiles")
    bad = tmp_path / "profiles/alicat/mc-series.toml"
    bad.write_text(bad.read_text().replace("baudrate = 19200", "baudrate = 12"))
    assert _run_check(str(tmp_path / "profiles")) == 1
    captured = capsys.readouterr()
    assert f"{bad}: $.serial.baudrate" in captured.err
    assert f"{len(SHIPPED) - 1} profile(s) valid, 1 invalid" in captured.out


def test_profile_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, GOOD)
    monkeypatch.setenv("EDGECTL_PROFILE_DIR", str(tmp_path))
    assert load_profile("acme/p1").device.model == "p1"
    with pytest.raises(ProfileError, match="no such firmware profile"):
        load_profile("alicat/mc-series")

"""``edgectl service install``: the systemd unit (checked by ``systemd-analyze verify``) and
the udev rules naming each serial device by its USB adapter."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgectl.cli import main
from edgectl.config import to_toml_text
from edgectl.errors import ConfigError
from edgectl.runtime.reactor_config import load_reactor_config
from edgectl.service.units import (
    identities_from_ports,
    parse_usb,
    render_udev_rules,
    render_unit,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ecoli-fedbatch-2L.toml"
EDGECTL = Path(sys.executable).parent / "edgectl"


def rig_config(tmp_path: Path) -> Path:
    """The E. coli example wired to a bench: probes and pumps on USB serial adapters."""
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    devices = data["devices"]
    devices["temp"]["port"] = "/dev/edgectl/temp"
    devices["ph"]["port"] = "spy:///dev/edgectl/ph"
    devices["pump_feed"]["port"] = "/dev/edgectl/pumps"
    devices["pump_base"]["port"] = "/dev/edgectl/pumps"
    path = tmp_path / "rig.toml"
    path.write_text(to_toml_text(data), encoding="utf-8")
    return path


def unit_keys(text: str) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            keys.setdefault(key, []).append(value)
    return keys


def test_unit_of_the_example_has_watchdog_restart_policy_and_groups(tmp_path: Path) -> None:
    cfg = load_reactor_config(EXAMPLE)
    keys = unit_keys(render_unit(cfg, EXAMPLE, executable=EDGECTL, user="bench"))
    assert keys["Type"] == ["notify"]
    assert keys["WatchdogSec"] == ["30"]
    assert keys["Restart"] == ["on-failure"]
    assert keys["User"] == ["bench"]
    assert keys["SupplementaryGroups"] == ["dialout gpio"]
    assert keys["ExecStart"] == [f"{EDGECTL} run {EXAMPLE} --on-restart resume"]
    assert keys["WorkingDirectory"] == ["/var/lib/edgectl/ecoli-2L"]


def test_systemd_analyze_verify_accepts_the_generated_unit(tmp_path: Path) -> None:
    # installed by the project's script when missing (a clean CI machine); skipped only where
    # it cannot be installed (no root, no apt)
    got = subprocess.run(
        [str(ROOT / "scripts" / "ensure-systemd-analyze")], capture_output=True, text=True
    )
    analyze = got.stdout.strip() if got.returncode == 0 else shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip(f"systemd-analyze could not be installed: {got.stderr.strip()[-300:]}")
    out = tmp_path / "units"
    assert main(["service", "install", str(EXAMPLE), "--output", str(out)]) == 0
    unit = out / "edgectl-ecoli-2L.service"
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    # verify exits 0 on unknown keys or values, so its warnings about the file count too
    assert done.returncode == 0, done.stderr
    assert unit.name not in done.stderr, done.stderr

    # and it does catch a broken unit: the check can fail
    broken = tmp_path / "broken.service"
    broken.write_text(unit.read_text().replace(str(EDGECTL), "/nonexistent/edgectl"))
    bad = subprocess.run([analyze, "verify", str(broken)], capture_output=True, text=True)
    assert bad.returncode != 0


def test_udev_rules_name_each_serial_device_by_its_usb_identity(tmp_path: Path) -> None:
    path = rig_config(tmp_path)
    cfg = load_reactor_config(path)
    ids = dict([parse_usb("temp=0403:6001:A10K1234"), parse_usb("pumps=067B:2303")])
    rules, missing = render_udev_rules(cfg, path, ids)
    lines = [x for x in rules.splitlines() if x and not x.startswith("#")]
    assert (
        'SUBSYSTEM=="tty", ATTRS{idVendor}=="0403", ATTRS{idProduct}=="6001", '
        'ATTRS{serial}=="A10K1234", SYMLINK+="edgectl/temp", GROUP="dialout", MODE="0660"'
    ) in lines
    # the two pump channels share one adapter, and one link: the port the config names
    assert [x for x in lines if '"067b"' in x] == [
        'SUBSYSTEM=="tty", ATTRS{idVendor}=="067b", ATTRS{idProduct}=="2303", '
        'SYMLINK+="edgectl/pumps", GROUP="dialout", MODE="0660"'
    ]
    assert "# pump_feed, pump_base: port /dev/edgectl/pumps" in rules
    assert len(lines) == 2  # sim:// devices get no rule
    assert missing == ["ph"]  # no identity: a commented template saying how to find it
    assert "udevadm info -a -n /dev/edgectl/ph" in rules


def test_identity_is_read_from_the_adapter_plugged_into_the_configured_port(
    tmp_path: Path,
) -> None:
    path = rig_config(tmp_path)
    cfg = load_reactor_config(path)
    ports = [
        SimpleNamespace(device="/dev/edgectl/temp", vid=0x0403, pid=0x6015, serial_number="DN0"),
        SimpleNamespace(device="/dev/ttyAMA0", vid=None, pid=None, serial_number=None),
    ]
    ids = identities_from_ports(cfg, ports)
    assert {k: (v.vendor_id, v.product_id, v.serial) for k, v in ids.items()} == {
        "temp": ("0403", "6015", "DN0")
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("temp", "expected DEVICE=VID:PID"),
        ("temp=0403", "expected DEVICE=VID:PID"),
        ("temp=04x3:6001", "vendor id '04x3'"),
        ("temp=0403:6001:bad serial", "USB serial 'bad serial'"),
    ],
)
def test_bad_usb_identities_are_refused_naming_the_value(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_usb(spec)


def test_bad_install_arguments_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "o")
    assert main(["service", "install", str(EXAMPLE), "--output", out, "--usb", "nope=0403:6001"])
    assert "--usb: no device 'nope'" in capsys.readouterr().err
    assert main(["service", "install", str(EXAMPLE), "--output", out, "--user", "a b"]) == 2
    assert "--user 'a b'" in capsys.readouterr().err
    cfg = load_reactor_config(EXAMPLE)
    with pytest.raises(ConfigError, match="at least 4 scan periods"):
        render_unit(cfg, EXAMPLE, executable=EDGECTL, watchdog_s=2)
    assert not (tmp_path / "o").exists()  # nothing written when refused

"""The systemd unit and udev rules of a reactor configuration.

The unit (``systemd.service(5)``, ``systemd.exec(5)``) runs ``edgectl run CONFIG`` as
``Type=notify``: the controller reports ``READY=1`` after its first scan and pets the watchdog
while scans complete (:mod:`edgectl.service.notify`). A stalled scan stops the pets, systemd
kills the process after ``WatchdogSec`` (SIGABRT; ``PYTHONFAULTHANDLER`` prints every thread's
stack to the journal first) and ``Restart=on-failure`` starts it again with the configuration's
restart policy (``[run] on_restart``: ``resume`` takes over without a bump, ``hold`` keeps
every output safe).

The udev rules (``udev(7)``) give each configured serial device a stable name,
``/dev/edgectl/<device>``, matched on the USB adapter's vendor id, product id and serial
number, so a replugged adapter, or one enumerated in another order, keeps its name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgectl.errors import ConfigError
from edgectl.runtime.reactor_config import ReactorConfig

__all__ = [
    "UsbIdentity",
    "default_watchdog_s",
    "parse_usb",
    "render_udev_rules",
    "render_unit",
    "serial_device_path",
    "unit_name",
]

_HEX4 = re.compile(r"^[0-9a-fA-F]{4}$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# udev matches ATTRS{serial} as a glob; keep it to characters that need no escaping
_SAFE_SERIAL = re.compile(r"^[A-Za-z0-9_.:-]+$")


@dataclass(frozen=True)
class UsbIdentity:
    """What a USB serial adapter says it is (``udevadm info -a -n /dev/ttyUSB0``)."""

    vendor_id: str  # idVendor, 4 hex digits
    product_id: str  # idProduct, 4 hex digits
    serial: str = ""  # iSerial; empty matches any adapter of that vendor and product

    def __post_init__(self) -> None:
        for key, value in (("vendor id", self.vendor_id), ("product id", self.product_id)):
            if not _HEX4.match(value):
                raise ConfigError(f"USB {key} {value!r}: must be 4 hexadecimal digits")
        if self.serial and not _SAFE_SERIAL.match(self.serial):
            raise ConfigError(
                f"USB serial {self.serial!r}: only letters, digits and _ . : - are allowed"
            )


def parse_usb(spec: str) -> tuple[str, UsbIdentity]:
    """Parse ``DEVICE=VID:PID[:SERIAL]`` (``pumps=0403:6001:A10K1234``)."""
    device, sep, ident = spec.partition("=")
    parts = ident.split(":", 2)
    if not sep or not device or len(parts) < 2:
        raise ConfigError(f"--usb {spec!r}: expected DEVICE=VID:PID[:SERIAL]")
    vid, pid = parts[0], parts[1]
    serial = parts[2] if len(parts) > 2 else ""
    try:
        return device, UsbIdentity(vid.lower(), pid.lower(), serial)
    except ConfigError as exc:
        raise ConfigError(f"--usb {spec!r}: {exc}") from exc


def serial_device_path(port: str) -> str | None:
    """The ``/dev`` node behind a pyserial port URL, or None (``sim://``, ``socket://``)."""
    if port.startswith("spy://"):
        port = port[len("spy://") :].split("?", 1)[0]
    return port if port.startswith("/dev/") else None


def unit_name(cfg: ReactorConfig) -> str:
    """``edgectl-<reactor name>.service``."""
    return f"edgectl-{cfg.reactor.name}.service"


def default_watchdog_s(cfg: ReactorConfig) -> int:
    """Watchdog timeout: 30 s, or 10 scan periods for slow scans.

    The feeder pets every quarter of it and stops after half of it without a completed scan,
    so the timeout must leave room for several scans.
    """
    return max(30, math.ceil(10 * cfg.reactor.scan_period_s))


def _quote(arg: str) -> str:
    """One ExecStart argument, quoted for systemd (``$`` and ``%`` are specifiers there)."""
    text = arg.replace("%", "%%").replace("$", "$$")
    if re.fullmatch(r"[A-Za-z0-9_./:=@+-]+", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_unit(
    cfg: ReactorConfig,
    config_path: Path,
    *,
    executable: Path,
    user: str = "edgectl",
    working_directory: Path | None = None,
    watchdog_s: int | None = None,
) -> str:
    """The text of the reactor's ``.service`` unit.

    Parameters
    ----------
    config_path
        The reactor configuration, made absolute.
    executable
        The ``edgectl`` entry point of the environment the controller runs from.
    user
        The account the controller runs as; it gets ``dialout`` (serial ports) and ``gpio``
        (``/dev/gpiochip*`` on Raspberry Pi OS) as supplementary groups.
    working_directory
        Where ``runs/<name>.db`` and the REPL socket live; default
        ``/var/lib/edgectl/<name>`` (systemd creates it, owned by ``user``).
    """
    if not _SAFE_NAME.match(user):
        raise ConfigError(f"--user {user!r}: not a valid user name")
    if not executable.is_absolute():
        raise ConfigError(f"{executable}: the edgectl executable must be an absolute path")
    name = cfg.reactor.name
    wd_s = watchdog_s if watchdog_s is not None else default_watchdog_s(cfg)
    if wd_s < 4 * cfg.reactor.scan_period_s:
        raise ConfigError(
            f"watchdog {wd_s} s: must be at least 4 scan periods "
            f"({4 * cfg.reactor.scan_period_s:g} s for [reactor] scan_period_s)"
        )
    cmd = [
        str(executable),
        "run",
        str(config_path.resolve()),
        "--on-restart",
        cfg.run.on_restart,
    ]
    exec_start = " ".join(_quote(a) for a in cmd)
    if working_directory is None:
        state = f"StateDirectory=edgectl/{name}\nWorkingDirectory=/var/lib/edgectl/{name}"
    else:
        state = f"WorkingDirectory={_quote(str(working_directory))}"
    description = cfg.reactor.description.splitlines()[0] if cfg.reactor.description else ""
    return f"""\
# Generated by `edgectl service install {config_path.name}`; regenerate rather than edit.
[Unit]
Description=edgectl controller {name}{f": {description}" if description else ""}
Documentation=man:systemd.service(5)
After=local-fs.target time-sync.target
# give up after 5 failed starts in 10 minutes: the outputs stay in their safe state
StartLimitIntervalSec=600
StartLimitBurst=5

[Service]
Type=notify
NotifyAccess=main
ExecStart={exec_start}
{state}
User={user}
SupplementaryGroups=dialout gpio
# restart policy of the run: {cfg.run.on_restart} (edgectl run --on-restart)
Restart=on-failure
RestartSec=5
# READY=1 comes after the first scan; WATCHDOG=1 only while scans complete
TimeoutStartSec=120
WatchdogSec={wd_s}
# SIGTERM: the run stops after the current scan and makes every output safe
TimeoutStopSec=30
Environment=PYTHONUNBUFFERED=1 PYTHONFAULTHANDLER=1
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=full
ProtectHome=read-only

[Install]
WantedBy=multi-user.target
"""


@dataclass(frozen=True)
class _SerialDevice:
    device: str
    port: str
    path: str
    link: str  # the name under /dev/edgectl/: the port's, if it names one, else the device's


def _serial_devices(cfg: ReactorConfig) -> list[_SerialDevice]:
    found = []
    for name, dev in cfg.devices.items():
        path = serial_device_path(dev.port)
        if path is None:
            continue
        if not _SAFE_NAME.match(name):
            raise ConfigError(f"$.devices.{name}: the name cannot be a /dev/edgectl/ link")
        link = path[len("/dev/edgectl/") :] if path.startswith("/dev/edgectl/") else name
        if not _SAFE_NAME.match(link):
            raise ConfigError(f"$.devices.{name}.port: {path!r} is not a valid link name")
        found.append(_SerialDevice(name, dev.port, path, link))
    return found


def _rule(device: str, vendor_id: str, product_id: str, serial: str) -> str:
    match = [
        'SUBSYSTEM=="tty"',
        f'ATTRS{{idVendor}}=="{vendor_id}"',
        f'ATTRS{{idProduct}}=="{product_id}"',
    ]
    if serial:
        match.append(f'ATTRS{{serial}}=="{serial}"')
    actions = [f'SYMLINK+="edgectl/{device}"', 'GROUP="dialout"', 'MODE="0660"']
    return ", ".join(match + actions)


def render_udev_rules(
    cfg: ReactorConfig,
    config_path: Path,
    identities: Mapping[str, UsbIdentity],
) -> tuple[str, list[str]]:
    """udev rules linking ``/dev/edgectl/<device>`` to each serial device's adapter.

    ``identities`` maps link names (a device's name, or the ``X`` of a port
    ``/dev/edgectl/X`` that several devices share) to their adapter. Returns the rules text
    and the links without an identity (their rule is left as a commented template).
    """
    serial = _serial_devices(cfg)
    unknown_names = set(identities) - set(cfg.devices) - {d.link for d in serial}
    if unknown_names:
        raise ConfigError(f"--usb: no device {sorted(unknown_names)[0]!r} in {config_path}")
    lines = [
        f"# Generated by `edgectl service install {config_path.name}` for reactor "
        f"{cfg.reactor.name}.",
        "# One rule per serial device: /dev/edgectl/<device> follows the USB adapter wherever",
        "# it is plugged. Ports in the configuration should name these links.",
        "# Reload with: udevadm control --reload && udevadm trigger --subsystem-match=tty",
    ]
    missing: list[str] = []
    if not serial:
        lines.append("# (no serial devices in this configuration)")
    done: set[str] = set()
    for dev in serial:
        if dev.link in done:  # devices sharing one line (a multichannel pump) share one link
            continue
        done.add(dev.link)
        ident = identities.get(dev.link) or identities.get(dev.device)
        sharing = [d.device for d in serial if d.link == dev.link]
        lines.append("")
        lines.append(f"# {', '.join(sharing)}: port {dev.port}")
        if ident is None:
            missing.append(dev.link)
            lines.append(
                "# USB identity unknown: plug the adapter in and read idVendor, idProduct and"
            )
            lines.append(
                f"# serial from `udevadm info -a -n {dev.path}`, then rerun"
                f" `edgectl service install ... --usb {dev.link}=VID:PID:SERIAL`."
            )
            lines.append("# " + _rule(dev.link, "VID", "PID", "SERIAL"))
            continue
        lines.append(_rule(dev.link, ident.vendor_id, ident.product_id, ident.serial))
    return "\n".join(lines) + "\n", missing


def identities_from_ports(cfg: ReactorConfig, ports: Iterable[Any]) -> dict[str, UsbIdentity]:
    """Identities of configured serial devices that are plugged in now.

    ``ports`` are ``serial.tools.list_ports`` entries (``device``, ``vid``, ``pid``,
    ``serial_number``); a configured path is matched after resolving its symlinks.
    """
    by_path: dict[str, Any] = {}
    for info in ports:
        if getattr(info, "vid", None) is None or getattr(info, "pid", None) is None:
            continue
        by_path[str(Path(info.device).resolve())] = info
    found: dict[str, UsbIdentity] = {}
    for dev in _serial_devices(cfg):
        info = by_path.get(str(Path(dev.path).resolve()))
        if info is None:
            continue
        serial = info.serial_number or ""
        found[dev.link] = UsbIdentity(
            f"{info.vid:04x}",
            f"{info.pid:04x}",
            serial if _SAFE_SERIAL.match(serial or "-") else "",
        )
    return found

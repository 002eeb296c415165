"""The ``[mqtt]`` section of a reactor config: where and how the reactor publishes.

Example::

    [mqtt]
    broker = "mqtts://broker.lab.example:8883"   # mqtt:// (1883) or mqtts:// (TLS, 8883)
    group = "process-dev"                        # Sparkplug group id
    node = "r01"                                 # edge node id (default: [reactor] name)
    username = "r01"
    password_file = "/etc/edgectl/r01.mqtt"      # first line is the password
    ca_file = "/etc/edgectl/lab-ca.pem"
    deadband = { "temp_c" = 0.05 }               # report by exception, per historian tag (its unit)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import msgspec

from edgectl.config import Struct
from edgectl.errors import ConfigError

__all__ = ["BrokerAddress", "MqttConfig", "parse_broker_url"]

_ID_RULE = r"^[A-Za-z0-9_.:-]{1,64}$"  # Sparkplug ids: no '/', '+', '#' (spec 3.0 §4.1.1)


class MqttConfig(Struct, frozen=True, kw_only=True):
    """Broker, Sparkplug identity and publishing rules of one reactor."""

    broker: str
    group: Annotated[str, msgspec.Meta(pattern=_ID_RULE)] = "edgectl"
    node: Annotated[str, msgspec.Meta(pattern=_ID_RULE)] | None = None
    device: Annotated[str, msgspec.Meta(pattern=_ID_RULE)] = "vessel"
    username: str = ""
    password_file: str = ""
    ca_file: str = ""
    # per-tag report-by-exception deadbands (tag units); a sample is published when it moved
    # by at least this much from the last published one, or its quality changed. 0: every one.
    deadband: dict[str, Annotated[float, msgspec.Meta(ge=0.0)]] = {}
    default_deadband: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    # samples per DDATA message (a backlog is replayed in messages of this size)
    batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
    # how often the historian is read for new samples (seconds, wall time)
    poll_s: Annotated[float, msgspec.Meta(gt=0.0, le=60.0)] = 0.2
    keepalive_s: Annotated[int, msgspec.Meta(ge=5, le=3600)] = 30

    def __post_init__(self) -> None:
        parse_broker_url(self.broker, "broker")  # msgspec names the key path: $.mqtt.broker

    def password(self, where: str = "$.mqtt.password_file") -> str:
        """The broker password (first line of ``password_file``; empty without one)."""
        if not self.password_file:
            return ""
        try:
            return Path(self.password_file).read_text().splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise ConfigError(
                f"{where}: cannot read a password from {self.password_file}: {exc}"
            ) from exc


class BrokerAddress(msgspec.Struct, frozen=True):
    """A broker URL split into what paho needs."""

    host: str
    port: int
    tls: bool


def parse_broker_url(url: str, where: str = "broker") -> BrokerAddress:
    """``mqtt://host[:port]`` or ``mqtts://host[:port]`` (TLS); errors name ``where``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
        raise ConfigError(f"{where}: {url!r} is not mqtt://host[:port] or mqtts://host[:port]")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ConfigError(f"{where}: {url!r}: {exc}") from None
    return BrokerAddress(parts.hostname, port, tls)

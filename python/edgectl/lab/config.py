"""The ``[opcua]`` section of a reactor configuration (off by default).

::

    [opcua]
    enabled = true
    host = "127.0.0.1"                    # listen address (loopback unless you mean otherwise)
    port = 4840
    pki_dir = ""                          # server certificate, key, trusted client certificates;
                                          # default beside the run's database: runs/<name>.pki/
    security = ["Basic256Sha256_SignAndEncrypt", "Basic256Sha256_Sign"]
    anonymous_read = false                # anonymous sessions as viewers (read only)
    publish_period_s = 0.2                # how often tag values are copied into the address space
    address_space_cache = true            # keep asyncua's standard address space in a file
    cache_dir = ""                        # where; default beside the run's database:
                                          # runs/<name>.opcua-cache/ (see edgectl.lab.opcua_cache)
    manufacturer = "edgectl"
    model = "edgectl bench bioreactor controller"
    serial_number = ""                    # default: the reactor's name

Users are the operator service's users (``edgectl users add``): an OPC UA username/password
session runs as that user, in that user's role. A client certificate must be in
``<pki_dir>/trusted/`` (DER or PEM) or the secure channel is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec

from edgectl.config import Struct

__all__ = ["SECURITY_MODES", "OpcUaConfig", "SilaConfig", "cache_path", "pki_path"]

SecurityMode = Literal["Basic256Sha256_SignAndEncrypt", "Basic256Sha256_Sign"]
#: the security modes the server offers (no unsecured endpoint: every session is signed)
SECURITY_MODES: Final = ("Basic256Sha256_SignAndEncrypt", "Basic256Sha256_Sign")


class OpcUaConfig(Struct, frozen=True, kw_only=True):
    """The OPC UA LADS server of one reactor (module docstring)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 4840
    pki_dir: str = ""
    security: list[SecurityMode] = msgspec.field(default_factory=lambda: list(SECURITY_MODES))
    anonymous_read: bool = False
    publish_period_s: Annotated[float, msgspec.Meta(ge=0.01, le=60.0)] = 0.2
    address_space_cache: bool = True
    cache_dir: str = ""
    manufacturer: str = "edgectl"
    model: str = "edgectl bench bioreactor controller"
    serial_number: str = ""

    def __post_init__(self) -> None:
        if not self.security:
            raise ValueError("security must name at least one mode: " + ", ".join(SECURITY_MODES))


def pki_path(config_dir: Path, pki_dir: str, db_path: Path) -> Path:
    """Where the server keeps its certificate: ``pki_dir`` relative to the config's directory,
    or beside the run's database (``runs/ecoli-2L.db`` → ``runs/ecoli-2L.pki``)."""
    if pki_dir:
        p = Path(pki_dir)
        return p if p.is_absolute() else config_dir / p
    return Path(db_path).with_suffix(".pki")


def cache_path(config_dir: Path, cache_dir: str, db_path: Path) -> Path:
    """Where the server keeps its address-space cache: ``cache_dir`` relative to the config's
    directory, or beside the run's database (``runs/ecoli-2L.db`` →
    ``runs/ecoli-2L.opcua-cache``)."""
    if cache_dir:
        p = Path(cache_dir)
        return p if p.is_absolute() else config_dir / p
    return Path(db_path).with_suffix(".opcua-cache")


class SilaConfig(Struct, frozen=True, kw_only=True):
    """The SiLA 2 server of one reactor (``[sila]``, off by default)::

        [sila]
        enabled = true
        host = "127.0.0.1"
        port = 50052
        pki_dir = ""                 # TLS certificate + key; default runs/<name>.sila/
        token_lifetime_s = 3600      # AuthenticationService access tokens
        publish_period_s = 0.5       # how often observable properties are read for changes
        loops = { TemperatureController = "temp", PhController = "ph",
                  DissolvedOxygenController = "do", PumpController = "feed" }
        tags = { stirrer = "stirrer_rpm", feed = "feed_ml_min", base = "base_ml_min" }

    Clients log in with the AuthenticationService (an edgectl user and password) and send the
    access token as AuthorizationService metadata with every call.
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 50052
    pki_dir: str = ""
    token_lifetime_s: Annotated[int, msgspec.Meta(ge=60, le=86_400)] = 3600
    publish_period_s: Annotated[float, msgspec.Meta(ge=0.05, le=60.0)] = 0.5
    loops: dict[str, str] = msgspec.field(
        default_factory=lambda: {
            "TemperatureController": "temp",
            "PhController": "ph",
            "DissolvedOxygenController": "do",
            "PumpController": "feed",
        }
    )
    tags: dict[str, str] = msgspec.field(
        default_factory=lambda: {
            "stirrer": "stirrer_rpm",
            "feed": "feed_ml_min",
            "base": "base_ml_min",
        }
    )

"""The ``[operator]`` section of a reactor configuration: rights, critical commands, identity
mapping and the limits every operator change is validated against.

::

    [operator]
    users_file = "ecoli-2L.users"          # relative to the config file; default beside the db
    critical = ["stop", "reset_trip"]      # need an e-signature (default: also model_switch)
    os_users = { lab = "alice" }            # OS user (SO_PEERCRED) → edgectl user
    rights.operator = ["read", "setpoint", "mode", "output", "ack", "phase_request"]

    [operator.loops.temp]                  # limits of one loop, in its own units
    setpoint = [20.0, 40.0]
    sp_ramp_per_min = 0.5                  # setpoint ramp (PV units per minute)
    kp = [10.0, 500.0]

Without ``rights`` the defaults of :data:`DEFAULT_RIGHTS` apply; a role given in ``rights``
replaces that role's default list.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Final, Literal, get_args

import msgspec

from edgectl.config import Struct

__all__ = [
    "COMMANDS",
    "DEFAULT_CRITICAL",
    "DEFAULT_RIGHTS",
    "ROLES",
    "LoopLimits",
    "OperatorConfig",
    "users_path",
]

Role = Literal["viewer", "operator", "engineer", "admin"]
ROLES: Final[tuple[str, ...]] = get_args(Role)

Command = Literal[
    "read",
    "setpoint",
    "mode",
    "output",
    "tune",
    "stage",
    "autotune",
    "ack",
    "comment",
    "confirm",
    "shelve",
    "enable",
    "reset_trip",
    "phase_request",
    "add_reference",
    "model_switch",
    "stop",
]

# Every right a role can hold. "read" covers every query (tags, trends, loops, alarms, status).
COMMANDS: Final[tuple[str, ...]] = get_args(Command)
#: the controller's read-only calls a face may make (with the "read" right)
QUERIES: Final = frozenset(
    {
        "info",
        "read_tags",
        "trend",
        "loop_names",
        "loop_get",
        "autotune_status",
        "alarms",
        "alarm_conditions",
        "softsensor_status",
        # history (edgectl.runtime.history): the dashboard's trends, logs and audit verdict
        "history",
        "events_log",
        "alarm_log",
        "audit_log",
        "audit_verify",
        "recipe_status",
    }
)

_OPERATOR: Final = (
    "read",
    "setpoint",
    "mode",
    "output",
    "ack",
    "comment",
    "confirm",
    "shelve",
    "reset_trip",
    "phase_request",
    "add_reference",
    "stop",
)
DEFAULT_RIGHTS: Final[dict[str, tuple[str, ...]]] = {
    "viewer": ("read",),
    "operator": _OPERATOR,
    # taking an alarm out of service (disable) is an engineer's: shelving is the operator's
    "engineer": (*_OPERATOR, "tune", "stage", "autotune", "model_switch", "enable"),
    "admin": COMMANDS,
}
DEFAULT_CRITICAL: Final[tuple[str, ...]] = ("stop", "reset_trip", "model_switch")

Positive = Annotated[float, msgspec.Meta(gt=0.0)]
Span = tuple[float, float]


class LoopLimits(Struct, frozen=True, kw_only=True):
    """Limits of operator changes to one loop, in the loop's own units.

    ``setpoint``, ``kp``, ``ti_s``, ``td_s``: ``[low, high]`` (inclusive). Gains without a
    range may move within ``gain_span`` of their configured value (÷ and ×). The manual output
    is always bounded by the loop's output limits. ``sp_ramp_per_min``: setpoint changes (from
    the operator and the recipe) ramp at this rate instead of stepping.
    """

    setpoint: Span | None = None
    kp: Span | None = None
    ti_s: Span | None = None
    td_s: Span | None = None
    sp_ramp_per_min: Positive | None = None

    def __post_init__(self) -> None:
        for name in ("setpoint", "kp", "ti_s", "td_s"):
            span = getattr(self, name)
            if span is None:
                continue
            lo, hi = span
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"{name} must be [low, high] with finite low < high, got {span}")
            if name != "setpoint" and lo < 0:
                raise ValueError(f"{name} must not go below 0, got {span}")


class OperatorConfig(Struct, frozen=True, kw_only=True):
    """Rights, e-signatures, identity mapping and limits of the operator service."""

    users_file: str = ""
    rights: dict[Role, list[Command]] = {}
    critical: list[Command] = msgspec.field(default_factory=lambda: list(DEFAULT_CRITICAL))  # type: ignore[arg-type]
    os_users: dict[str, str] = {}
    loops: dict[str, LoopLimits] = {}
    # a gain without a configured range may move to [configured / span, configured × span]
    gain_span: Annotated[float, msgspec.Meta(ge=1.0, le=1000.0)] = 10.0
    # the longest reason and e-signature meaning accepted (characters)
    max_text_chars: Annotated[int, msgspec.Meta(ge=16, le=10_000)] = 500
    # wrong passwords in a row (login or e-signature) that lock a user name, and the first
    # lock-out in seconds of wall time (doubling at each further one, up to an hour or this)
    login_max_failures: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    login_lockout_s: Annotated[float, msgspec.Meta(ge=1.0, le=86_400.0)] = 60.0
    # the longest an alarm may be shelved (TimedShelve; OPC UA MaxTimeShelved), clock seconds
    max_shelve_s: Annotated[float, msgspec.Meta(gt=0.0, le=7 * 86_400.0)] = 8 * 3600.0

    def rights_of(self, role: str) -> frozenset[str]:
        """The commands ``role`` may run."""
        if role in self.rights:
            return frozenset(self.rights[role])
        return frozenset(DEFAULT_RIGHTS.get(role, ()))


def users_path(config_dir: Path, users_file: str, db_path: Path) -> Path:
    """Where the users file of a reactor lives: ``users_file`` relative to the config's
    directory, or beside the run's database (``runs/ecoli-2L.db`` → ``runs/ecoli-2L.users``)."""
    if users_file:
        p = Path(users_file)
        return p if p.is_absolute() else config_dir / p
    return Path(db_path).with_suffix(".users")

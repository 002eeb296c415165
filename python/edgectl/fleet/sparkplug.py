"""Sparkplug B topics and payloads (Eclipse Sparkplug 3.0), on the official protobuf schema.

The payload classes come from Eclipse Tahu's ``sparkplug_b.proto`` (EPL-2.0, shipped unmodified
in ``proto/`` with its licence), compiled by ``make build`` with grpcio-tools into
``sparkplug_b_pb2.py``; nothing here encodes bytes by hand.

Topics (spec §4.1): ``spBv1.0/<group>/<NBIRTH|NDEATH|NDATA|NCMD>/<node>`` and
``spBv1.0/<group>/<DBIRTH|DDEATH|DDATA|DCMD>/<node>/<device>``.

Quality travels as the metric property ``Quality`` (Int32; spec §6.4.x well-known property:
0 BAD, 192 GOOD, 500 STALE; edgectl's UNCERTAIN is OPC DA's 64); the unit as ``engUnit``
(String, the convention of Cirrus Link's MQTT Engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from edgectl.errors import EdgectlError
from edgectl.quality import Quality

try:
    from edgectl.fleet import sparkplug_b_pb2 as pb
except ImportError as exc:  # pragma: no cover - a checkout without `make build`
    raise ImportError(
        "edgectl.fleet.sparkplug_b_pb2 is missing: it is generated from "
        "python/edgectl/fleet/proto/sparkplug_b.proto by `make build` (or `make proto`)"
    ) from exc

__all__ = [
    "DATATYPE",
    "NAMESPACE",
    "Payload",
    "Topic",
    "metric_quality",
    "parse_topic",
    "quality_code",
    "topic",
]

NAMESPACE: Final = "spBv1.0"
Payload = pb.Payload
DATATYPE: Final = {
    "int64": pb.Int64,
    "uint64": pb.UInt64,
    "double": pb.Double,
    "boolean": pb.Boolean,
    "string": pb.String,
}
_KINDS: Final = frozenset(
    {"NBIRTH", "NDEATH", "NDATA", "NCMD", "DBIRTH", "DDEATH", "DDATA", "DCMD", "STATE"}
)
# edgectl Quality -> Sparkplug Quality property value, and back
_QUALITY_CODE: Final = {
    Quality.GOOD: 192,
    Quality.UNCERTAIN: 64,
    Quality.BAD: 0,
    Quality.STALE: 500,
}
_QUALITY_OF: Final = {v: k for k, v in _QUALITY_CODE.items()}


class SparkplugError(EdgectlError, ValueError):
    """A topic or payload that is not valid Sparkplug B as edgectl uses it."""


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed Sparkplug topic (``device`` empty for node-level messages)."""

    group: str
    kind: str
    node: str
    device: str = ""


def topic(group: str, kind: str, node: str, device: str = "") -> str:
    """The topic of a ``kind`` message (``NBIRTH``, ``DDATA`` …) of ``node`` [/ ``device``]."""
    if kind not in _KINDS:
        raise SparkplugError(f"unknown Sparkplug message type {kind!r}")
    tail = f"/{device}" if device else ""
    return f"{NAMESPACE}/{group}/{kind}/{node}{tail}"


def parse_topic(text: str) -> Topic:
    """Split ``spBv1.0/group/KIND/node[/device]``; raises :class:`SparkplugError`."""
    parts = text.split("/")
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE or parts[2] not in _KINDS:
        raise SparkplugError(f"not a Sparkplug B topic: {text!r}")
    return Topic(parts[1], parts[2], parts[3], parts[4] if len(parts) == 5 else "")


def quality_code(q: Quality | int) -> int:
    """Sparkplug ``Quality`` property value of an edgectl quality."""
    return _QUALITY_CODE[Quality(q)]


def metric_quality(metric: pb.Payload.Metric) -> Quality:
    """The edgectl quality a metric carries (GOOD when it has no ``Quality`` property)."""
    props = metric.properties
    for key, value in zip(props.keys, props.values, strict=False):
        if key == "Quality":
            code = value.int_value
            if code not in _QUALITY_OF:
                raise SparkplugError(f"metric {metric.name or metric.alias}: quality {code}")
            return _QUALITY_OF[code]
    return Quality.GOOD


def add_property(metric: pb.Payload.Metric, key: str, value: int | str) -> None:
    """Append one property (Int32 for ints, String for text) to ``metric``."""
    metric.properties.keys.append(key)
    pv = metric.properties.values.add()
    if isinstance(value, int):
        pv.type = pb.Int32
        pv.int_value = value
    else:
        pv.type = pb.String
        pv.string_value = value

"""Operation counters of the LADS device and results of finished recipe phases.

Counters (OPC 10000-100 IOperationCounterType, by way of Machinery's
``MachineryBuildingBlocks/OperationCounters``, the LADSOperationCountersType the LADS device
declares)::

    <reactor>/MachineryBuildingBlocks/OperationCounters     LADSOperationCountersType
        PowerOnDuration        Duration (ms): wall time the OPC UA server has served
        OperationDuration      Duration (ms): the runs' elapsed clock time (``info().time_s``)
        OperationCycleCounter  UInt32: recipe phases entered in the runs

The counters are kept over restarts in the historian's state table (``opcua_counters``, the
reactor's database): what earlier servers counted plus this one. A run is known by its time
base (``info().time_base_s``, kept by a resumed run): a resumed run's clock time and phases
continue from their saved values, a new run's add to those of the runs before it. They are
saved every few seconds and when the server stops, so a crash loses the last seconds at most.

Results (LADS ResultType in ``ProgramManager/ResultSet``): one per finished phase of the run's
phase timeline, named ``<n>_<phase>`` (n from 1): Started / Stopped (clock time of the run),
TotalRuntime, DeviceProgramRunId ``<reactor>/<n>``, Description (why it ended),
ProgramTemplate.DeviceTemplateId (the phase), ApplicationUri (the server's). The nodes of a
result are added one by one (asyncua has no atomic add): DeviceProgramRunId comes last, so a
client that sees it reads a complete result.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["COUNTERS_STATE", "Counters", "RunRecord", "add_operation_counters", "add_result"]

#: the historian state the counters are kept in
COUNTERS_STATE: Final = "opcua_counters"

_MACHINERY_URI: Final = "http://opcfoundation.org/UA/Machinery/"
_DI_URI: Final = "http://opcfoundation.org/UA/DI/"
_LADS_OPERATION_COUNTERS: Final = 1034  # LADSOperationCountersType (LADS namespace)
_RESULT: Final = 1021  # ResultType (LADS namespace)


@dataclass(slots=True)
class Counters:
    """The counter variables of the device."""

    power_on: Any
    operation: Any
    cycles: Any


async def _add_or_get(node: Any, ns: int, name: str, value: Any, vtype: Any, nid: Any) -> Any:
    from asyncua import ua

    try:
        child = await node.get_child(f"{ns}:{name}")
    except ua.UaError:
        return await node.add_property(nid, ua.QualifiedName(name, ns), ua.Variant(value, vtype))
    await child.write_value(ua.Variant(value, vtype))
    return child


async def add_operation_counters(server: Any, device: Any, ns: int, lads: int) -> Counters:
    """``MachineryBuildingBlocks/OperationCounters`` of ``device`` with the three counters."""
    from asyncua import ua
    from asyncua.common.instantiate_util import instantiate

    machinery = await server.get_namespace_index(_MACHINERY_URI)
    di = await server.get_namespace_index(_DI_URI)
    base = device.nodeid.Identifier
    try:
        blocks = await device.get_child(f"{machinery}:MachineryBuildingBlocks")
    except ua.UaError:
        blocks = await device.add_folder(
            ua.NodeId(f"{base}.MachineryBuildingBlocks", ns),
            ua.QualifiedName("MachineryBuildingBlocks", machinery),
        )
    counters = (
        await instantiate(
            blocks,
            server.get_node(ua.NodeId(_LADS_OPERATION_COUNTERS, lads)),
            nodeid=ua.NodeId(f"{base}.MachineryBuildingBlocks.OperationCounters", ns),
            bname=ua.QualifiedName("OperationCounters", di),
            dname=ua.LocalizedText("OperationCounters"),
            instantiate_optional=False,
        )
    )[0]
    # the device declares its OperationCounters as an add-in (HasAddIn), beside the folder
    await device.add_reference(counters.nodeid, ua.NodeId(ua.ObjectIds.HasAddIn), forward=True)
    path = f"{base}.MachineryBuildingBlocks.OperationCounters"
    v = ua.VariantType
    out = []
    for name, value, vtype in (
        ("PowerOnDuration", 0.0, v.Double),
        ("OperationDuration", 0.0, v.Double),
        ("OperationCycleCounter", 0, v.UInt32),
    ):
        node = await _add_or_get(counters, di, name, value, vtype, ua.NodeId(f"{path}.{name}", ns))
        if vtype is v.Double:  # Duration (i=290): a Double in milliseconds
            await node.write_attribute(
                ua.AttributeIds.DataType, ua.DataValue(ua.Variant(ua.NodeId(ua.ObjectIds.Duration)))
            )
        out.append(node)
    return Counters(*out)


async def add_result(
    server: Any,
    result_set: Any,
    ns: int,
    lads: int,
    *,
    reactor: str,
    index: int,
    phase: str,
    started: dt.datetime,
    stopped: dt.datetime,
    reason: str,
    application_uri: str,
) -> Any:
    """One ResultType object in ``result_set`` for a finished phase (module docstring)."""
    from asyncua import ua
    from asyncua.common.instantiate_util import instantiate

    name = f"{index}_{phase}"
    base = f"{result_set.nodeid.Identifier}.{name}"
    result = (
        await instantiate(
            result_set,
            server.get_node(ua.NodeId(_RESULT, lads)),
            nodeid=ua.NodeId(base, ns),
            bname=ua.QualifiedName(name, ns),
            dname=ua.LocalizedText(name),
            instantiate_optional=False,
        )
    )[0]
    v = ua.VariantType
    # the copy of the phase's program template (LADS declares it without children: added)
    template = await result.get_child(f"{lads}:ProgramTemplate")
    for prop, text in (("DeviceTemplateId", phase), ("Author", "edgectl recipe")):
        nid = ua.NodeId(f"{base}.ProgramTemplate.{prop}", ns)
        await _add_or_get(template, lads, prop, text, v.String, nid)
    runtime_ms = max(0.0, (stopped - started).total_seconds() * 1000.0)
    fields: tuple[tuple[str, Any, Any], ...] = (
        ("Started", started, v.DateTime),
        ("Stopped", stopped, v.DateTime),
        ("Description", ua.LocalizedText(f"recipe phase {phase!r}: {reason}"), v.LocalizedText),
        ("ApplicationUri", application_uri, v.String),
        ("User", "", v.String),
        ("SupervisoryJobId", "", v.String),
        ("SupervisoryTaskId", "", v.String),
        ("TotalRuntime", runtime_ms, v.Double),
        ("DeviceProgramRunId", f"{reactor}/{index}", v.String),  # last: the result is complete
    )
    for prop, value, vtype in fields:
        await _add_or_get(result, lads, prop, value, vtype, ua.NodeId(f"{base}.{prop}", ns))
    return result


class RunRecord:
    """Keeps the counters and the ResultSet of one server current (the publisher calls
    :meth:`publish` every period; the phase timeline is read only when the phase changed)."""

    def __init__(self, reactor: str, application_uri: str) -> None:
        self.reactor = reactor
        self.application_uri = application_uri
        self._started = time.monotonic()
        self._phase: str | None = None  # the phase the timeline was read at
        self._results: set[int] = set()  # timeline indexes with a Result node
        self._cycles = 0
        # what was counted before this server (resume) and this run's latest values
        self._saved: Mapping[str, Any] = {}
        self._power_base_ms = 0.0
        self._run: str | None = None  # the run's key (its time base), once known
        self._op_base_ms = 0.0
        self._cycle_base = 0
        self._run_ms = 0.0

    def resume(self, saved: Any) -> None:
        """Continue from a :meth:`snapshot` saved by an earlier server (None: from 0)."""
        self._saved = saved if isinstance(saved, Mapping) else {}
        self._power_base_ms = _number(self._saved.get("power_on_ms"))

    def _start_run(self, key: str) -> None:
        s = self._saved
        self._run = key
        self._op_base_ms = _number(s.get("operation_ms"))
        self._cycle_base = int(_number(s.get("cycles")))
        if s.get("run") != key:  # a new run: the one saved is finished
            self._op_base_ms += _number(s.get("run_operation_ms"))
            self._cycle_base += int(_number(s.get("run_cycles")))

    def values(self) -> tuple[float, float, int]:
        """(PowerOnDuration ms, OperationDuration ms, OperationCycleCounter) now."""
        wall_ms = (time.monotonic() - self._started) * 1000.0
        return (
            self._power_base_ms + wall_ms,
            self._op_base_ms + self._run_ms,
            self._cycle_base + self._cycles,
        )

    def snapshot(self) -> dict[str, Any] | None:
        """What a later server resumes from (None before the run is known)."""
        if self._run is None:
            return None
        power_ms, _, _ = self.values()
        return {
            "power_on_ms": power_ms,
            "operation_ms": self._op_base_ms,
            "cycles": self._cycle_base,
            "run": self._run,
            "run_operation_ms": self._run_ms,
            "run_cycles": self._cycles,
        }

    def stale(self, phase: str) -> bool:
        """Whether the timeline must be read again (the phase changed since)."""
        return phase != self._phase

    async def publish(
        self,
        server: Any,
        nodes: Any,
        info: Mapping[str, Any],
        recipe: Mapping[str, Any] | None,
    ) -> None:
        """Write the counters (``info``: the controller's ``info()``); with ``recipe`` (its
        ``recipe_status()``), add a Result per finished phase not shown yet."""
        from asyncua import ua

        self.count(info, recipe)
        if recipe is not None:
            await self._add_results(server, nodes, recipe, float(info.get("time_base_s", 0.0)))
        c = nodes.counters
        if c is None:
            return
        v = ua.VariantType
        power_ms, operation_ms, cycles = self.values()
        for node, value in (
            (c.power_on, ua.Variant(power_ms, v.Double)),
            (c.operation, ua.Variant(operation_ms, v.Double)),
            (c.cycles, ua.Variant(cycles, v.UInt32)),
        ):
            await server.write_attribute_value(node.nodeid, ua.DataValue(value))

    def count(self, info: Mapping[str, Any], recipe: Mapping[str, Any] | None) -> None:
        """Take the run's clock time and (with ``recipe``) its phases entered into the counters
        (the first call knows the run by its time base)."""
        if self._run is None:
            self._start_run(f"{float(info.get('time_base_s', 0.0)):.6f}")
        self._run_ms = float(info.get("time_s", 0.0)) * 1000.0
        if recipe is not None:
            self._phase = str(info.get("phase", ""))
            self._cycles = len(list(recipe.get("timeline", [])))

    async def _add_results(
        self, server: Any, nodes: Any, recipe: Mapping[str, Any], base_s: float
    ) -> None:
        timeline = list(recipe.get("timeline", []))
        if nodes.result_set is None:
            return
        for i, span in enumerate(timeline, start=1):
            if span.get("running") or i in self._results:
                continue
            start_s = base_s + float(span["start_s"])
            await add_result(
                server,
                nodes.result_set,
                nodes.ns,
                nodes.lads_ns,
                reactor=self.reactor,
                index=i,
                phase=str(span["phase"]),
                started=dt.datetime.fromtimestamp(start_s, dt.UTC),
                stopped=dt.datetime.fromtimestamp(start_s + float(span["duration_s"]), dt.UTC),
                reason=str(span.get("reason", "")),
                application_uri=self.application_uri,
            )
            self._results.add(i)


def _number(value: Any) -> float:
    """A saved counter (0 when missing or not a finite number >= 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    v = float(value)
    return v if math.isfinite(v) and v >= 0.0 else 0.0

"""Operation counters of the LADS device and results of finished recipe phases.

Counters (OPC 10000-100 IOperationCounterType, by way of Machinery's
``MachineryBuildingBlocks/OperationCounters``, the LADSOperationCountersType the LADS device
declares)::

    <reactor>/MachineryBuildingBlocks/OperationCounters     LADSOperationCountersType
        PowerOnDuration        Duration (ms): wall time since this controller started serving
        OperationDuration      Duration (ms): the run's elapsed clock time (``info().time_s``)
        OperationCycleCounter  UInt32: recipe phases entered in this run

Results (LADS ResultType in ``ProgramManager/ResultSet``): one per finished phase of the run's
phase timeline, named ``<n>_<phase>`` (n from 1): Started / Stopped (clock time of the run),
TotalRuntime, DeviceProgramRunId ``<reactor>/<n>``, Description (why it ended),
ProgramTemplate.DeviceTemplateId (the phase), ApplicationUri (the server's). The nodes of a
result are added one by one (asyncua has no atomic add): DeviceProgramRunId comes last, so a
client that sees it reads a complete result.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Counters", "RunRecord", "add_operation_counters", "add_result"]

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

        if recipe is not None:
            self._phase = str(info.get("phase", ""))
            await self._add_results(server, nodes, recipe, float(info.get("time_base_s", 0.0)))
        c = nodes.counters
        if c is None:
            return
        v = ua.VariantType
        wall_ms = (time.monotonic() - self._started) * 1000.0
        run_ms = float(info.get("time_s", 0.0)) * 1000.0
        for node, value in (
            (c.power_on, ua.Variant(wall_ms, v.Double)),
            (c.operation, ua.Variant(run_ms, v.Double)),
            (c.cycles, ua.Variant(self._cycles, v.UInt32)),
        ):
            await server.write_attribute_value(node.nodeid, ua.DataValue(value))

    async def _add_results(
        self, server: Any, nodes: Any, recipe: Mapping[str, Any], base_s: float
    ) -> None:
        timeline = list(recipe.get("timeline", []))
        self._cycles = len(timeline)
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

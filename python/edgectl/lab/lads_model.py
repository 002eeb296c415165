"""The LADS address space of one reactor (OPC 30500-1, LADS v1.00), built with asyncua.

The official nodesets (DI, AMB, Machinery, LADS; shipped unmodified in ``nodesets/``) are loaded
in that order, then the reactor is instantiated from the LADS types::

    Objects/DeviceSet/<reactor>                     LADSDeviceType (identification, DeviceState)
      MachineryBuildingBlocks/OperationCounters     PowerOnDuration, OperationDuration,
                                                    OperationCycleCounter (.lads_counters)
      FunctionalUnitSet/Vessel                      FunctionalUnitType, one per vessel
        FunctionalUnitState                         FunctionalUnitStateMachineType: Start, Stop,
                                                    Abort, StartProgram(phase)
        FunctionSet/<loop>_control                  AnalogControlFunctionType: CurrentValue,
                                                    TargetValue, ControlFunctionState: Start,
                                                    Stop, StartWithTargetValue
        FunctionSet/<tag>                           AnalogScalarSensorFunctionType: SensorValue
                                                    (+ Valid, ModelVersion for soft sensors)
          <tag>/<alarm>                             an alarm condition (.lads_alarms)
        ProgramManager                              ProgramTemplateSet (recipe phases),
                                                    ActiveProgram (CurrentStepName = phase),
                                                    ResultSet (finished phases)

Node ids are strings in the reactor's namespace (``urn:edgectl:<reactor>``), from the browse
path: ``ecoli-2L.Vessel.FunctionSet.temp_control.TargetValue``. Edgectl engineering units map to the
UNECE Recommendation 20 common codes as OPC 10000-8 §5.6.3 asks (``UnitId`` = the code's ASCII
bytes packed into an Int32).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

from edgectl.lab.lads_alarms import add_conditions
from edgectl.lab.lads_counters import add_operation_counters

__all__ = [
    "LADS_URI",
    "NODESETS",
    "ControlSpec",
    "LadsNodes",
    "ReactorSpec",
    "SensorSpec",
    "build_address_space",
    "eu_information",
    "unit_of",
]

LADS_URI: Final = "http://opcfoundation.org/UA/LADS/"
DI_URI: Final = "http://opcfoundation.org/UA/DI/"
MACHINERY_URI: Final = "http://opcfoundation.org/UA/Machinery/"
#: load order (each file requires the ones before it)
NODESETS: Final = (
    "Opc.Ua.Di.NodeSet2.xml",
    "Opc.Ua.AMB.NodeSet2.xml",
    "Opc.Ua.Machinery.NodeSet2.xml",
    "Opc.Ua.LADS.NodeSet2.xml",
)
# LADS type ids (numeric, in the LADS namespace; Opc.Ua.LADS.NodeSet2.xml)
_LADS_DEVICE: Final = 1002
_FUNCTIONAL_UNIT: Final = 1003
_FUNCTION_SET: Final = 1026
_ANALOG_CONTROL: Final = 1009
_ANALOG_SENSOR: Final = 1016
_PROGRAM_MANAGER: Final = 1006
_PROGRAM_TEMPLATE: Final = 1018

# edgectl unit → (UNECE Rec. 20 common code, display name)
_UNECE: Final[dict[str, tuple[str, str]]] = {
    "degC": ("CEL", "°C"),
    "°C": ("CEL", "°C"),
    "C": ("CEL", "°C"),
    "%": ("P1", "%"),
    "pct": ("P1", "%"),
    "rpm": ("RPM", "r/min"),
    "sccm": ("", "sccm"),  # standard cm³/min has no Rec. 20 code: UnitId -1
    "mL/min": ("41", "mL/min"),
    "mL": ("MLT", "mL"),
    "g": ("GRM", "g"),
    "g/L": ("GL", "g/L"),
    "L": ("LTR", "L"),
    "pH": ("", "pH"),
    "duty": ("", "duty"),
}


# a tag without a configured unit: edgectl's names carry it (temp_c, do_pct, feed_ml_min)
_SUFFIX_UNITS: Final = (
    ("_ml_min", "mL/min"),
    ("_c", "degC"),
    ("_pct", "%"),
    ("_rpm", "rpm"),
    ("_sccm", "sccm"),
    ("_ml", "mL"),
    ("_g_l", "g/L"),
    ("_g", "g"),
    ("_l", "L"),
)


def unit_of(tag: str, unit: str) -> str:
    """The engineering unit of a tag: the configured one, else from its name (``ph`` → pH)."""
    if unit:
        return unit
    if tag == "ph" or tag.startswith("ph_"):
        return "pH"
    for suffix, u in _SUFFIX_UNITS:
        if tag.endswith(suffix):
            return u
    return ""


def nodeset_dir() -> Path:
    """Where the shipped nodesets are (package data)."""
    return Path(str(resources.files("edgectl.lab") / "nodesets"))


def _unit_id(code: str) -> int:
    # OPC 10000-8 §5.6.3: UnitId = sum of the code's ASCII bytes shifted into an Int32
    # (left to right, 8 bits each); -1 when there is no code
    if not code:
        return -1
    value = 0
    for ch in code:
        value = (value << 8) | ord(ch)
    return value


def eu_information(unit: str) -> Any:
    """The ``EUInformation`` of an edgectl unit string."""
    from asyncua import ua

    code, shown = _UNECE.get(unit, ("", unit))
    return ua.EUInformation(
        NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact",
        UnitId=_unit_id(code),
        DisplayName=ua.LocalizedText(shown),
        Description=ua.LocalizedText(unit),
    )


@dataclass(frozen=True, slots=True)
class ControlSpec:
    """A loop shown as an AnalogControlFunction: ``value_tag`` is its CurrentValue (the PV, or
    the output for loops without one); ``target`` says whether TargetValue is its setpoint."""

    loop: str
    value_tag: str
    unit: str
    target: bool
    target_range: tuple[float, float] | None
    value_range: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """A tag shown as an AnalogScalarSensorFunction (``softsensor``: its soft sensor)."""

    tag: str
    unit: str
    softsensor: str = ""
    model: str = ""


@dataclass(frozen=True, slots=True)
class ReactorSpec:
    """What the address space shows of one reactor."""

    name: str
    manufacturer: str
    model: str
    serial_number: str
    software_revision: str
    phases: tuple[str, ...]
    controls: tuple[ControlSpec, ...]
    sensors: tuple[SensorSpec, ...]
    #: (name, AlarmSpec) of every alarm of the controller: one condition each
    alarms: tuple[tuple[str, Any], ...] = ()
    #: the longest TimedShelve (``[operator] max_shelve_s``): each alarm's MaxTimeShelved
    max_shelve_s: float = 8 * 3600.0


@dataclass(slots=True)
class LadsNodes:
    """The nodes the server updates, writes through and calls (by purpose)."""

    ns: int
    lads_ns: int
    device: Any = None
    unit: Any = None
    unit_state: Any = None
    device_state: Any = None
    active_step: Any = None
    # tag → value nodes (a tag may feed a control's CurrentValue and a sensor's SensorValue)
    tag_nodes: dict[str, list[Any]] = field(default_factory=dict)
    # loop → TargetValue node
    targets: dict[str, Any] = field(default_factory=dict)
    # loop → its ControlFunctionState.CurrentState (Running: auto or manual; Stopped: off)
    loop_states: dict[str, Any] = field(default_factory=dict)
    # soft sensor tag → (Valid node, ModelVersion node)
    soft: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    # method node id → (what, name): ("unit", "Start"), ("loop:temp", "Stop"), ...
    methods: dict[Any, tuple[str, str]] = field(default_factory=dict)
    # tag → its sensor function and the function's SensorValue
    functions: dict[str, Any] = field(default_factory=dict)
    sensor_values: dict[str, Any] = field(default_factory=dict)
    # alarm name → its condition (edgectl.lab.lads_alarms.Condition)
    conditions: dict[str, Any] = field(default_factory=dict)
    counters: Any = None  # edgectl.lab.lads_counters.Counters
    result_set: Any = None  # ProgramManager/ResultSet


async def load_nodesets(server: Any) -> None:
    """Import DI, AMB, Machinery and LADS, in that order."""
    base = nodeset_dir()
    for name in NODESETS:
        # not strict: LADS 1.0.0 has two encoding objects without a parent ("Default JSON",
        # ns=LADS;i=5044 and i=5057, referenced only by their data types' HasEncoding), which
        # asyncua cannot place; they are skipped with a warning (binary encoding is what is used)
        await server.import_xml(str(base / name), strict_mode=False)


async def _new(parent: Any, node_type: Any, **kw: Any) -> Any:
    """The root node of a new instance of ``node_type`` (asyncua returns it with its children)."""
    from asyncua.common.instantiate_util import instantiate

    return (await instantiate(parent, node_type, **kw))[0]


async def _current_state(server: Any, machine: Any, nodeid: Any) -> Any:
    """The CurrentState of a state machine instance; added (FiniteStateVariableType, i=2760)
    when asyncua did not copy it: it copies the children of an instance declaration, and the
    LADS declarations of FunctionalUnitState and ControlFunctionState list none (their types
    declare CurrentState Mandatory)."""
    from asyncua import ua

    try:
        return await machine.get_child("0:CurrentState")
    except ua.UaError:
        node = await _new(
            machine,
            server.get_node(ua.NodeId(ua.ObjectIds.FiniteStateVariableType)),
            nodeid=nodeid,
            bname=ua.QualifiedName("CurrentState", 0),
            instantiate_optional=False,
        )
        await node.write_value(ua.LocalizedText(""))
        return node


async def _set(node: Any, value: Any, vtype: Any = None) -> None:
    from asyncua import ua

    await node.write_value(ua.Variant(value, vtype) if vtype is not None else value)


async def _child(node: Any, ns: int, name: str) -> Any:
    return await node.get_child(f"{ns}:{name}")


async def build_address_space(server: Any, spec: ReactorSpec) -> LadsNodes:
    """Instantiate the reactor's LADS device (module docstring); returns the live nodes."""
    from asyncua import ua

    lads = await server.get_namespace_index(LADS_URI)
    di = await server.get_namespace_index(DI_URI)
    ns = await server.register_namespace(f"urn:edgectl:{spec.name}")
    nodes = LadsNodes(ns=ns, lads_ns=lads)
    objects = server.nodes.objects
    try:
        parent = await objects.get_child(f"{di}:DeviceSet")
    except ua.UaError:
        parent = objects

    def t(i: int) -> Any:
        return server.get_node(ua.NodeId(i, lads))

    def sid(path: str) -> Any:
        return ua.NodeId(path, ns)

    device = await _new(
        parent,
        t(_LADS_DEVICE),
        nodeid=sid(spec.name),
        bname=ua.QualifiedName(spec.name, ns),
        dname=ua.LocalizedText(spec.name),
        instantiate_optional=False,
    )
    nodes.device = device
    ident = {
        "Manufacturer": ua.LocalizedText(spec.manufacturer),
        "Model": ua.LocalizedText(spec.model),
        "SerialNumber": spec.serial_number,
        "SoftwareRevision": spec.software_revision,
        "DeviceRevision": spec.software_revision,
        "HardwareRevision": "",
        "ComponentName": ua.LocalizedText(spec.name),
        "AssetId": spec.name,
        "ProductInstanceUri": f"urn:edgectl:{spec.name}",
    }
    for name, value in ident.items():
        for idx in (di, lads):
            try:
                node = await device.get_child(f"{idx}:{name}")
            except ua.UaError:
                continue
            await node.write_value(value)
            break
    nodes.device_state = await (await _child(device, lads, "DeviceState")).get_child(
        "0:CurrentState"
    )
    await nodes.device_state.write_value(ua.LocalizedText("Operate"))

    fu_set = await _child(device, lads, "FunctionalUnitSet")
    base = f"{spec.name}.Vessel"
    unit = await _new(
        fu_set,
        t(_FUNCTIONAL_UNIT),
        nodeid=sid(base),
        bname=ua.QualifiedName("Vessel", ns),
        dname=ua.LocalizedText("Vessel"),
        instantiate_optional=False,
    )
    nodes.unit = unit
    state = await _child(unit, lads, "FunctionalUnitState")
    nodes.unit_state = await _current_state(
        server, state, sid(f"{base}.FunctionalUnitState.CurrentState")
    )
    await nodes.unit_state.write_value(ua.LocalizedText("Running"))
    phase_arg = ua.Argument(
        Name="ProgramTemplateId",
        DataType=ua.NodeId(ua.ObjectIds.String),
        ValueRank=-1,
        Description=ua.LocalizedText("the recipe phase to request"),
    )
    for mname, args in (("Start", []), ("Stop", []), ("Abort", []), ("StartProgram", [phase_arg])):
        m = await state.add_method(
            sid(f"{base}.FunctionalUnitState.{mname}"),
            ua.QualifiedName(mname, lads),
            _unlinked,
            args,
            [],
        )
        nodes.methods[m.nodeid] = ("unit", mname)
    # Stop with an e-signature (edgectl namespace: LADS has no signed method)
    signed_args = [
        ua.Argument(
            Name=name,
            DataType=ua.NodeId(ua.ObjectIds.String),
            ValueRank=-1,
            Description=ua.LocalizedText(text),
        )
        for name, text in (
            ("Password", "the calling user's password, re-entered"),
            ("Meaning", "the meaning of the signature, e.g. 'approved'"),
            ("Reason", "why the run stops"),
        )
    ]
    m = await state.add_method(
        sid(f"{base}.FunctionalUnitState.SignedStop"),
        ua.QualifiedName("SignedStop", ns),
        _unlinked,
        signed_args,
        [],
    )
    nodes.methods[m.nodeid] = ("unit", "SignedStop")

    fset = await _new(
        unit,
        t(_FUNCTION_SET),
        nodeid=sid(f"{base}.FunctionSet"),
        bname=ua.QualifiedName("FunctionSet", lads),
        instantiate_optional=False,
    )
    for c in spec.controls:
        await _add_control(server, nodes, fset, t(_ANALOG_CONTROL), f"{base}.FunctionSet", c)
    for s in spec.sensors:
        await _add_sensor(server, nodes, fset, t(_ANALOG_SENSOR), f"{base}.FunctionSet", s)
    await _add_program_manager(server, nodes, unit, t, base, spec)
    nodes.counters = await add_operation_counters(server, device, ns, lads)
    nodes.conditions = await add_conditions(
        server,
        ns,
        unit,
        nodes.functions,
        nodes.sensor_values,
        nodes.targets,
        dict(spec.alarms),
        max_shelve_s=spec.max_shelve_s,
    )
    return nodes


async def _unlinked(parent: Any, *args: Any) -> Any:
    from asyncua import ua

    return ua.StatusCode(ua.StatusCodes.BadNotImplemented)  # replaced by the server's handler


async def _property(node: Any, name: str, value: Any, datatype: int) -> None:
    """Write property ``name`` of ``node``, adding it when asyncua did not copy it (the LADS
    instance declarations of CurrentValue, TargetValue, SensorValue list no children; their
    type, AnalogUnitRangeType, declares EngineeringUnits and EURange Mandatory)."""
    from asyncua import ua

    try:
        child = await node.get_child(f"0:{name}")
    except ua.UaError:
        nid = node.nodeid
        await node.add_property(
            ua.NodeId(f"{nid.Identifier}.{name}", nid.NamespaceIndex),
            ua.QualifiedName(name, 0),
            value,
            datatype=ua.NodeId(datatype),
        )
        return
    await child.write_value(value)


async def _set_range(node: Any, unit: str, span: tuple[float, float] | None) -> None:
    from asyncua import ua

    await _property(node, "EngineeringUnits", eu_information(unit), ua.ObjectIds.EUInformation)
    lo, hi = span if span is not None else (float("-inf"), float("inf"))
    await _property(node, "EURange", ua.Range(Low=float(lo), High=float(hi)), ua.ObjectIds.Range)


async def _add_control(
    server: Any, nodes: LadsNodes, fset: Any, ctype: Any, prefix: str, c: ControlSpec
) -> None:
    from asyncua import ua

    ns, lads = nodes.ns, nodes.lads_ns
    name = f"{c.loop}_control"  # a loop and its PV tag may share a name (ph)
    base = f"{prefix}.{name}"
    fn = await _new(
        fset,
        ctype,
        nodeid=ua.NodeId(base, ns),
        bname=ua.QualifiedName(name, ns),
        dname=ua.LocalizedText(name),
        instantiate_optional=False,
    )
    current = await _child(fn, lads, "CurrentValue")
    target = await _child(fn, lads, "TargetValue")
    await current.write_value(ua.Variant(float("nan"), ua.VariantType.Double))
    await target.write_value(ua.Variant(float("nan"), ua.VariantType.Double))
    await _set_range(current, c.unit, c.value_range)
    await _set_range(target, c.unit, c.target_range)
    if c.target:
        await target.set_writable(True)
        nodes.targets[c.loop] = target
    nodes.tag_nodes.setdefault(c.value_tag, []).append(current)
    state = await _child(fn, lads, "ControlFunctionState")
    nodes.loop_states[c.loop] = await _current_state(
        server, state, ua.NodeId(f"{base}.ControlFunctionState.CurrentState", ns)
    )
    value_arg = ua.Argument(
        Name="TargetValue",
        DataType=ua.NodeId(ua.ObjectIds.Double),
        ValueRank=-1,
        Description=ua.LocalizedText(f"setpoint in {c.unit}"),
    )
    methods: list[tuple[str, list[Any]]] = [("Start", []), ("Stop", [])]
    if c.target:
        methods.append(("StartWithTargetValue", [value_arg]))
    for mname, args in methods:
        m = await state.add_method(
            ua.NodeId(f"{base}.ControlFunctionState.{mname}", ns),
            ua.QualifiedName(mname, lads),
            _unlinked,
            args,
            [],
        )
        nodes.methods[m.nodeid] = (f"loop:{c.loop}", mname)


async def _add_sensor(
    server: Any, nodes: LadsNodes, fset: Any, stype: Any, prefix: str, s: SensorSpec
) -> None:
    from asyncua import ua

    ns, lads = nodes.ns, nodes.lads_ns
    base = f"{prefix}.{s.tag}"
    fn = await _new(
        fset,
        stype,
        nodeid=ua.NodeId(base, ns),
        bname=ua.QualifiedName(s.tag, ns),
        dname=ua.LocalizedText(s.tag),
        instantiate_optional=False,
    )
    value = await _child(fn, lads, "SensorValue")
    await value.write_value(ua.Variant(float("nan"), ua.VariantType.Double))
    await _set_range(value, s.unit, None)
    raw = await _child(fn, lads, "RawValue")
    await raw.write_value(ua.Variant(float("nan"), ua.VariantType.Double))
    await _set_range(raw, s.unit, None)
    nodes.tag_nodes.setdefault(s.tag, []).append(value)
    nodes.functions[s.tag] = fn
    nodes.sensor_values[s.tag] = value
    if s.softsensor:
        valid = await fn.add_property(
            ua.NodeId(f"{base}.Valid", ns), ua.QualifiedName("Valid", ns), False
        )
        version = await fn.add_property(
            ua.NodeId(f"{base}.ModelVersion", ns),
            ua.QualifiedName("ModelVersion", ns),
            s.model,
        )
        nodes.soft[s.tag] = (valid, version)


async def _add_program_manager(
    server: Any, nodes: LadsNodes, unit: Any, t: Any, base: str, spec: ReactorSpec
) -> None:
    from asyncua import ua

    ns, lads = nodes.ns, nodes.lads_ns
    pm = await _new(
        unit,
        t(_PROGRAM_MANAGER),
        nodeid=ua.NodeId(f"{base}.ProgramManager", ns),
        bname=ua.QualifiedName("ProgramManager", lads),
        instantiate_optional=False,
    )
    templates = await _child(pm, lads, "ProgramTemplateSet")
    for phase in spec.phases:
        tpl = await _new(
            templates,
            t(_PROGRAM_TEMPLATE),
            nodeid=ua.NodeId(f"{base}.ProgramManager.ProgramTemplateSet.{phase}", ns),
            bname=ua.QualifiedName(phase, ns),
            dname=ua.LocalizedText(phase),
            instantiate_optional=False,
        )
        await (await _child(tpl, lads, "Description")).write_value(
            ua.LocalizedText(f"recipe phase {phase!r} of {spec.name}")
        )
        await (await _child(tpl, lads, "Author")).write_value("edgectl recipe")
        await (await _child(tpl, lads, "DeviceTemplateId")).write_value(phase)
        await (await _child(tpl, lads, "Version")).write_value(spec.software_revision)
    nodes.result_set = await _child(pm, lads, "ResultSet")
    active = await _child(pm, lads, "ActiveProgram")
    nodes.active_step = await active.add_variable(
        ua.NodeId(f"{base}.ProgramManager.ActiveProgram.CurrentStepName", ns),
        ua.QualifiedName("CurrentStepName", lads),
        ua.LocalizedText(""),
    )

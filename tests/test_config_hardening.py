"""Configs that cannot hurt (issue 12): what used to start is refused, with file and key path,
and no generated document gets anything but a ConfigError out of the loader."""

from __future__ import annotations

import copy
import os
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgectl.config import to_toml_text
from edgectl.errors import ConfigError
from edgectl.runtime.config_checks import _loop_outputs
from edgectl.runtime.loops import Engine
from edgectl.runtime.reactor_config import ReactorConfig, load_reactor_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["cho-fedbatch-2L.toml", "ecoli-fedbatch-2L.toml"]
CASES = int(os.environ.get("EDGECTL_FUZZ_CASES", "150"))


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of examples/ (configs refer to plant files and models beside them)."""
    dest = tmp_path_factory.mktemp("examples")
    shutil.copytree(ROOT / "examples", dest, dirs_exist_ok=True)
    return dest


def _doc(name: str) -> dict[str, Any]:
    return tomllib.loads((ROOT / "examples" / name).read_text(encoding="utf-8"))


def _write(folder: Path, data: dict[str, Any], name: str = "mutated.toml") -> Path:
    path = folder / name
    path.write_text(to_toml_text(data), encoding="utf-8")
    return path


def _refused(folder: Path, data: dict[str, Any], *fragments: str) -> str:
    path = _write(folder, data)
    with pytest.raises(ConfigError) as info:
        load_reactor_config(path)
    text = str(info.value)
    assert str(path) in text, text
    for fragment in fragments:
        assert fragment in text, text
    return text


def test_examples_load(examples: Path) -> None:
    for name in EXAMPLES:
        assert isinstance(load_reactor_config(examples / name), ReactorConfig)


# -- the defects of the issue, one by one ---------------------------------------------------------


def test_two_loops_driving_one_output_are_refused(examples: Path) -> None:
    doc = _doc("cho-fedbatch-2L.toml")
    doc["loops"]["temp2"] = copy.deepcopy(doc["loops"]["temp"])
    _refused(examples, doc, "$.loops.temp2.output", "'heater' is already driven by $.loops.temp")


def test_split_range_on_one_output_twice_is_refused(examples: Path) -> None:
    doc = _doc("cho-fedbatch-2L.toml")
    doc["loops"]["ph"]["lower_output"] = doc["loops"]["ph"]["raise_output"]
    _refused(examples, doc, "$.loops.ph.lower_output")


def test_interlock_limit_outside_the_output_range_is_refused(examples: Path) -> None:
    doc = _doc("cho-fedbatch-2L.toml")
    name = next(iter(doc["interlocks"]))
    doc["interlocks"][name]["outputs"] = {"heater": 7.0}
    _refused(examples, doc, f"$.interlocks.{name}.outputs.heater", "outside output 'heater'")


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("run", "persist_every_scans", 10**20),
        ("run", "persist_every_scans", 100_000_000_000),
        ("historian", "commit_interval_s", 1e30),
        ("historian", "commit_interval_s", float("inf")),
        ("historian", "sample_period_s", float("nan")),
        ("reactor", "scan_period_s", 1e9),
    ],
)
def test_unbounded_numbers_are_refused(
    examples: Path, section: str, key: str, value: float
) -> None:
    doc = _doc("cho-fedbatch-2L.toml")
    doc.setdefault(section, {})[key] = value
    _refused(examples, doc, f"$.{section}.{key}")


def test_two_devices_publishing_one_tag_are_refused(examples: Path) -> None:
    doc = _doc("cho-fedbatch-2L.toml")
    doc["devices"]["temp2"] = copy.deepcopy(doc["devices"]["temp"])
    doc["devices"]["temp2"]["port"] = "sim://temp2"
    _refused(examples, doc, "$.devices.temp2.readings.temp_c", "already published by")


def test_a_device_reading_named_like_an_output_is_refused(examples: Path) -> None:
    doc = _doc("cho-fedbatch-2L.toml")
    doc["devices"]["mfc_o2"]["readings"] = {"flow_sccm": "o2_sccm"}
    _refused(examples, doc, "tag 'o2_sccm' is already published by")


def test_deep_nesting_is_a_config_error(examples: Path) -> None:
    path = examples / "deep.toml"
    path.write_text(
        (ROOT / "examples" / EXAMPLES[0]).read_text() + "\n[extra]\nx = " + "[" * 3000 + "]" * 3000,
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="deep"):
        load_reactor_config(path)
    doc = _doc(EXAMPLES[0])
    nested: Any = 1.0
    for _ in range(40):
        nested = {"a": nested}
    doc["devices"]["temp"]["options"] = {"deep": nested}
    _refused(examples, doc, "nested deeper than")


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        # errors that used to surface while the run was built, without the file name
        (lambda d: d["devices"]["temp"].update(profile="acme/none"), ["$.devices.temp.profile"]),
        (
            lambda d: d["devices"]["temp"]["readings"].update(ph="ph2"),
            ["$.devices.temp.readings.ph", "no read_ph()"],
        ),
        (
            lambda d: d["devices"]["mfc_o2"].update(outputs={"o2_sccm": "rpm"}),
            ["$.devices.mfc_o2.outputs.o2_sccm", "no set_rpm()"],
        ),
        (
            lambda d: d["devices"]["temp"].update(options={"colour": "red"}),
            ["$.devices.temp.options.colour", "takes no option"],
        ),
        (
            lambda d: d["gpio"]["outputs"].update(heater="no_such_pin"),
            ["$.gpio.outputs.heater", "no output 'no_such_pin'"],
        ),
        (
            lambda d: d["softsensors"][next(iter(d["softsensors"]))].update(model="none.json"),
            [".model", "no model file"],
        ),
        (
            lambda d: d["loops"]["temp"]["pid"].update(output_min=5.0, output_max=1.0),
            ["$.loops.temp.pid"],
        ),
        (lambda d: d["loops"]["temp"]["pid"].update(kp="fast"), ["$.loops.temp.pid.kp"]),
        (lambda d: d["loops"]["temp"]["pid"].update(kp=float("inf")), ["$.loops.temp.pid.kp"]),
        (lambda d: d["loops"]["temp"]["pid"].update(kq=1.0), ["$.loops.temp.pid", "kq"]),
        (lambda d: d["loops"]["ph"].pop("pid"), ["$.loops.ph.pid", "kp"]),
        (lambda d: d.setdefault("run", {}).update(socket="/tmp/" + "s" * 200), ["$.run.socket"]),
        (lambda d: d["reactor"].update(name="n" * 300), ["$.reactor.name"]),
        (
            lambda d: d["devices"]["pump_feed"].update(options={"channel": 7}),
            ["$.devices.pump_feed.options", "channel must be 1-4"],
        ),
        (
            lambda d: d["devices"]["mfc_o2"].update(options={"safe_flow_sccm": -5.0}),
            ["$.devices.mfc_o2.options", "safe_flow_sccm must be >= 0"],
        ),
        (
            lambda d: d["devices"]["mfc_o2"].update(options={"unit": 3}),
            ["$.devices.mfc_o2.options.unit", "Expected `str`"],
        ),
    ],
)
def test_build_time_problems_are_refused_at_load(
    examples: Path, edit: Any, fragments: list[str]
) -> None:
    doc = _doc("cho-fedbatch-2L.toml")
    edit(doc)
    _refused(examples, doc, *fragments)


def test_inf_means_none_where_it_is_allowed(examples: Path) -> None:
    doc = _doc("cho-fedbatch-2L.toml")
    doc["loops"]["temp"]["pid"]["ti_s"] = float("inf")
    doc["tags"] = {"offline_od": {"unit": "OD600", "max_age_s": float("inf")}}
    cfg = load_reactor_config(_write(examples, doc))
    assert cfg.tags["offline_od"].max_age_s == float("inf")


# -- property: no generated document gets anything but a ConfigError out ------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


_SCALARS = st.one_of(
    st.sampled_from(
        [
            float("nan"),
            float("inf"),
            float("-inf"),
            1e300,
            -1e300,
            1e20,
            10**20,
            -(10**18),
            2**63 - 1,
            -1,
            -1e-9,
            0,
            0.0,
            1,
            True,
            "",
            "x" * 300,
            "sim://nowhere",
            "heater",
            "temp_c",
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**63), 2**63 - 1),
    st.text(alphabet="abcxyz_.-/0123456789 ", max_size=12),
    st.booleans(),
)


def _nested(depth: int) -> Any:
    value: Any = 1.0
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


_VALUES = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.dictionaries(
        st.sampled_from(["kp", "min", "max", "type", "output", "x"]), _SCALARS, max_size=3
    ),
    st.integers(1, 60).map(_nested),
)


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(EXAMPLES))
    doc = _doc(name)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _get(doc, path[:-1])
        action = draw(st.sampled_from(["delete", "replace", "replace", "copy", "rename"]))
        if action == "delete":
            if isinstance(parent, dict):
                del parent[path[-1]]
            elif parent:
                parent.pop(path[-1])
        elif action == "replace":
            parent[path[-1]] = draw(_VALUES)
        elif action == "copy" and isinstance(parent, dict):
            parent[f"{path[-1]}_copy"] = copy.deepcopy(parent[path[-1]])
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["x", "kp", "type", "output", "min"]))] = parent.pop(
                path[-1]
            )
    return name, doc


@settings(
    max_examples=CASES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=_mutated())
def test_no_document_gets_anything_but_a_config_error_out(
    examples: Path, case: tuple[str, dict[str, Any]]
) -> None:
    _, doc = case
    try:
        text = to_toml_text(doc)
    except ConfigError:
        return  # not representable as TOML (e.g. a list mixing tables and numbers)
    path = examples / "fuzzed.toml"
    path.write_text(text, encoding="utf-8")
    try:
        cfg = load_reactor_config(path)
    except ConfigError as exc:
        message = str(exc)
    else:
        _assert_safe(cfg)
        return
    assert str(path) in message, message


def _assert_safe(cfg: ReactorConfig) -> None:
    """What loads builds its loops and gives each output one loop and each tag one producer."""
    Engine(cfg)
    driven = [o for name, loop in cfg.loops.items() for _, o in _loop_outputs(name, loop)]
    assert len(driven) == len(set(driven)), driven
    published = [t for dev in cfg.devices.values() for t in dev.readings.values()]
    published += list(cfg.outputs)
    assert len(published) == len(set(published)), published

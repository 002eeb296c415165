"""Decoding of TOML configuration into frozen, validated structures.

Every configuration file of edgectl (reactor configs, plant scenarios, firmware profiles) is
decoded once, at start-up, into frozen :mod:`msgspec` structs and passed down explicitly. This
module holds the one decoding path, so every error reads the same way: the file, the key path
and the rule that was broken, e.g.::

    ConfigError: examples/ecoli.toml: $.loops.temp.setpoint_c: Expected `float` >= 4.0

Structs declare units in field names and limits in their types::

    class TemperatureLoop(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
        setpoint_c: Annotated[float, msgspec.Meta(ge=4.0, le=60.0)] = 37.0
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import (
    Annotated,
    Any,
    Literal,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

import msgspec

from edgectl.errors import ConfigError

__all__ = [
    "Struct",
    "decode_mapping",
    "load_toml",
    "merge_tables",
    "read_toml",
    "to_builtins",
    "to_toml_text",
]

T = TypeVar("T")


class Struct(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every configuration struct: frozen, unknown keys refused.

    msgspec does not inherit ``kw_only``: subclasses that mix defaulted and required fields in
    any order declare ``class X(Struct, frozen=True, kw_only=True)``.
    """


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file into plain dicts; syntax errors name the file, line and column."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{p}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read: {exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: TOML syntax error: {exc}") from exc
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively
        raise ConfigError(f"{p}: TOML nested too deeply") from None


def merge_tables(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``: tables merge key by key (recursively), anything else in ``top``
    (a value, an array such as ``[[recipe.phases]]``) replaces ``base``'s whole."""
    out = dict(base)
    for k, v in top.items():
        old = out.get(k)
        if isinstance(v, Mapping) and isinstance(old, Mapping):
            out[k] = merge_tables(old, v)
        else:
            out[k] = v
    return out


def decode_mapping(data: Mapping[str, Any], type_: type[T], *, source: str = "<config>") -> T:
    """Validate plain data (from TOML or a dict) against ``type_``.

    Raises
    ------
    ConfigError
        Naming ``source`` and msgspec's key path (``$.loops.ph.kp``) with the rule broken.
    """
    try:
        return msgspec.convert(data, type_, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_explain(data, type_, str(exc))}") from exc
    except RecursionError:
        raise ConfigError(f"{source}: $: nested too deeply") from None


def load_toml(path: str | Path, type_: type[T]) -> T:
    """Read and validate a TOML file as ``type_``; errors name the file and the key path."""
    return decode_mapping(read_toml(path), type_, source=str(path))


def to_builtins(obj: Any) -> Any:
    """Settings to plain dicts/lists/floats (the inverse of :func:`decode_mapping`)."""
    return msgspec.to_builtins(obj)


def to_toml_text(data: Mapping[str, Any]) -> str:
    """Render plain settings (nested dicts of scalars and lists) as TOML text."""
    lines: list[str] = []
    _emit_table(lines, [], data)
    return "\n".join(lines).strip() + "\n"


def _split(msg: str) -> tuple[str, str]:
    # msgspec says "Expected `float`, got `str` - at `$.loops[...].kp`".
    head, sep, where = msg.rpartition(" - at `")
    if sep and where.endswith("`"):
        return head, where[:-1]
    return msg, "$"


def _explain(data: Any, type_: Any, msg: str) -> str:
    """Lead with the key path, and replace msgspec's ``[...]`` (a dict key) by the real key."""
    head, path = _split(msg)
    cut = path.find("[...]")
    if cut < 0:
        return f"{path}: {head}{_allowed(data, type_, path, head)}"
    prefix = path[:cut]
    sub_data, sub_type = _navigate(data, type_, prefix)
    value_type = _dict_value_type(sub_type)
    if isinstance(sub_data, Mapping) and value_type is not None:
        for key, value in sub_data.items():
            try:
                msgspec.convert(value, value_type, strict=True)
            except msgspec.ValidationError as exc:
                inner = _explain(value, value_type, str(exc))
                return f"{prefix}.{key}{inner[1:]}"
    return f"{path}: {head}"


def _allowed(data: Any, type_: Any, path: str, head: str) -> str:
    """For an invalid choice, list the allowed values (msgspec only says the value is wrong)."""
    if not head.startswith(("Invalid enum value", "Invalid value")):
        return ""
    _, tp = _navigate(data, type_, path)
    tp = _unwrap(tp)
    if get_origin(tp) is Literal:
        return " (allowed: " + ", ".join(repr(a) for a in get_args(tp)) + ")"
    if path.endswith(".type"):
        parent_path = path[: -len(".type")]
        _, parent = _navigate(data, type_, parent_path)
        tags = [
            getattr(getattr(a, "__struct_config__", None), "tag", None)
            for a in get_args(_unwrap(parent))
        ]
        tags = [t for t in tags if t is not None]
        if tags:
            return " (allowed: " + ", ".join(repr(t) for t in tags) + ")"
    return ""


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _pick_tagged(tp: Any, data: Any) -> Any:
    """The member of a tagged union of structs that ``data`` selects by its tag field."""
    if get_origin(tp) not in (Union, UnionType) or not isinstance(data, Mapping):
        return tp
    for member in get_args(tp):
        config = getattr(member, "__struct_config__", None)
        if (
            config is not None
            and config.tag is not None
            and data.get(config.tag_field) == config.tag
        ):
            return member
    return tp


def _dict_value_type(tp: Any) -> Any:
    tp = _unwrap(tp)
    if get_origin(tp) is dict or get_origin(tp) is Mapping:
        return get_args(tp)[1]
    return None


_SEGMENT = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]")


def _navigate(data: Any, tp: Any, prefix: str) -> tuple[Any, Any]:
    for m in _SEGMENT.finditer(prefix[1:]):
        tp = _unwrap(tp)
        if m.group(1) is not None:
            name = m.group(1)
            tp = _pick_tagged(tp, data)
            data = data.get(name) if isinstance(data, Mapping) else None
            if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
                tp = get_type_hints(tp, include_extras=True).get(name, Any)
            else:
                tp = _dict_value_type(tp) or Any
        else:
            index = int(m.group(2))
            data = data[index] if isinstance(data, list) and index < len(data) else None
            args = get_args(tp)
            tp = args[0] if args else Any
    return data, tp


def _toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and value != value:
            return "nan"
        if isinstance(value, float) and value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_scalar(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_scalar(v)}" for k, v in value.items()) + " }"
    raise ConfigError(f"cannot write {type(value).__name__} value {value!r} as TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_scalar(k)


def _emit_table(lines: list[str], path: list[str], data: Mapping[str, Any]) -> None:
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    for k, v in data.items():
        if k not in tables and v is not None:
            lines.append(f"{_key(k)} = {_toml_scalar(v)}")
    for k, v in tables.items():
        sub = [*path, _key(k)]
        lines.append("")
        lines.append(f"[{'.'.join(sub)}]")
        _emit_table(lines, sub, v)

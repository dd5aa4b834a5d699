"""Build validated frozen dataclasses from TOML tables.

Every error names the key (as a dotted path), the value received and what is allowed,
like MNE's validators:
"frontend.kind: got 'cyto', allowed: 'ads1299', 'cyton', ... Did you mean 'cyton'?"

Field constraints go in dataclass field metadata (every number has min and max; a test walks
the settings dataclasses and fails on a numeric field without them):
    min / max      numeric bounds (inclusive); of the items for lists and tables of numbers
    special        values allowed outside [min, max] with their meaning, e.g. {0: "default"}
    integer        a table of numbers whose item must be whole (e.g. confirm_updates)
    keys           a table's allowed keys, each with its own metadata (min, max, integer, help)
    min_items / max_items   list length bounds
    choices        allowed values
    help           one line shown in errors and docs
NaN and +-inf (TOML allows them) are never a valid number.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from appliance.errors import ConfigError

T = TypeVar("T")


def _suggest(value: object, allowed: typing.Iterable[object]) -> str:
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _fail(path: str, value: object, allowed: str, extra: str = "") -> typing.NoReturn:
    raise ConfigError(f"{path}: got {value!r}, allowed: {allowed}.{extra}")


def _convert(tp: Any, value: Any, path: str, meta: Mapping[str, Any]) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(non_none[0], value, path, meta)
        _fail(path, value, " or ".join(getattr(a, "__name__", str(a)) for a in non_none))
    if origin is typing.Literal:
        if value not in args:
            _fail(path, value, ", ".join(repr(a) for a in args), _suggest(value, args))
        return value
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            _fail(path, value, "a list")
        lo_n, hi_n = meta.get("min_items", 0), meta.get("max_items")
        if len(value) < lo_n or (hi_n is not None and len(value) > hi_n):
            many = f"{lo_n} to {hi_n} items" if hi_n is not None else f"at least {lo_n} item"
            _fail(path, list(value), f"a list of {many}" + ("s" if hi_n or lo_n > 1 else ""))
        item_tp = args[0] if args else Any
        items = [_convert(item_tp, v, f"{path}[{i}]", meta) for i, v in enumerate(value)]
        return tuple(items)
    if origin is dict:
        if not isinstance(value, Mapping):
            _fail(path, value, "a table")
        vt = args[1] if len(args) == 2 else Any
        keys = meta.get("keys")
        out = {}
        for k, v in value.items():
            if keys is not None and k not in keys:
                raise ConfigError(f"{path}.{k}: unknown key; allowed keys: {', '.join(keys)}."
                                  + _suggest(k, keys))
            out[str(k)] = _convert(vt, v, f"{path}.{k}", keys[k] if keys is not None else meta)
        return out
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            _fail(path, value, "true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(path, value, "an integer")
        _check_range(value, path, meta)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            _fail(path, value, "a number")
        if not math.isfinite(value):
            _fail(path, value, f"a finite number ({_range_text(meta)})")
        if meta.get("integer") and value != int(value):
            _fail(path, value, f"a whole number ({_range_text(meta)})")
        _check_range(float(value), path, meta)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            _fail(path, value, "a string")
        return value
    raise TypeError(f"validate: unsupported field type {tp!r} at {path}")


def _range_text(meta: Mapping[str, Any]) -> str:
    lo, hi = meta.get("min"), meta.get("max")
    text = f"a value from {'-inf' if lo is None else lo} to {'inf' if hi is None else hi}"
    special = meta.get("special") or {}
    return text + "".join(f", or {k!r} ({v})" for k, v in special.items())


def _check_range(value: float, path: str, meta: Mapping[str, Any]) -> None:
    if value in (meta.get("special") or {}):
        return
    lo, hi = meta.get("min"), meta.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        _fail(path, value, _range_text(meta))


def build(cls: type[T], data: Any, path: str) -> T:
    """Return `cls(**data)` after checking every key, type, range and choice."""
    if not isinstance(data, Mapping):
        _fail(path, data, "a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = unknown[0]
        where = f"{path}.{key}" if path else key
        raise ConfigError(
            f"{where}: unknown key; allowed keys: {', '.join(sorted(fields))}."
            + _suggest(key, fields)
        )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        sub = f"{path}.{name}" if path else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{sub}: missing; {f.metadata.get('help', 'required')}.")
            continue
        value = data[name]
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            _fail(sub, value, ", ".join(repr(c) for c in choices), _suggest(value, choices))
        kwargs[name] = _convert(hints[name], value, sub, f.metadata)
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if callable(check):
        check(path)  # cross-field rules; raise ConfigError naming the key
    return obj


def field(default: Any = dataclasses.MISSING, *, help: str = "", **meta: Any) -> Any:  # noqa: A002
    """A dataclass field with validation metadata (min, max, choices) and a help line."""
    md = {"help": help, **meta}
    if isinstance(default, list):
        default = tuple(default)  # frozen sections hold tuples
    if isinstance(default, dict):
        init = dict(default)
        return dataclasses.field(default_factory=lambda: dict(init), metadata=md)
    return dataclasses.field(default=default, metadata=md)


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """The table in a TOML file; a ConfigError names the file (`what`: "config", "scenario")."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{what} file {str(p)!r}: cannot read it ({e.strerror}).") from e
    try:
        text = raw.decode("utf-8-sig")  # a UTF-8 byte-order mark (Windows editors) is accepted
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"{what} file {str(p)!r}: not UTF-8 text (byte 0x{raw[e.start]:02x} on line {line}); "
            "save it as UTF-8 (e.g. a Latin-1 'é' in a comment)."
        ) from e
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{what} file {str(p)!r}: not valid TOML ({e}).") from e

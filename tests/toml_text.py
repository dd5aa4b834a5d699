"""The little TOML writer the tests' configs need: tables, arrays of tables, inline tables,
scalars and lists (tests/ is on sys.path through its conftest.py)."""

from __future__ import annotations

import json
from typing import Any


def value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + " }"
    return repr(v)  # int, or float (nan and inf are TOML too)


def to_toml(d: dict[str, Any]) -> str:
    out = []
    for section, table in d.items():
        out.append(f"[{section}]")
        arrays = {k: v for k, v in table.items() if isinstance(v, list) and v
                  and isinstance(v[0], dict)}
        out += [f"{k} = {value(v)}" for k, v in table.items() if k not in arrays]
        for k, items in arrays.items():
            for item in items:
                out.append(f"[[{section}.{k}]]")
                out += [f"{kk} = {value(vv)}" for kk, vv in item.items()]
    return "\n".join(out) + "\n"

"""A minimal shape checker for raw manifest data: code that reads a field checks its shape first,
so malformed input is a list of Problems (path + what it should be), never a traceback.

A shape is a type (dict, list, str, int, float), a (type, {key: shape}) pair for a mapping whose
listed keys have shapes ("*" = any key), or a one-element list [shape] for "a list of".
"""
from __future__ import annotations

from typing import Any

from ..errors import Problem

_WORDS = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number",
          bool: "true or false"}


def shape_problems(value: Any, shape: Any, path: str) -> list[Problem]:
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [Problem(path, f"must be a list, not {type(value).__name__}", "see the CRD for this field")]
        return [p for i, v in enumerate(value) for p in shape_problems(v, shape[0], f"{path}[{i}]")]
    kind, children = shape if isinstance(shape, tuple) else (shape, {})
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        return [Problem(path, f"must be {_WORDS[kind]}, not {type(value).__name__} {value!r:.40}",
                        "see the CRD for this field")]
    out: list[Problem] = []
    for k, v in value.items() if children else ():
        sub = children.get(k, children.get("*"))
        if sub is not None:
            out += shape_problems(v, sub, f"{path}.{k}")
    return out

"""The CRD's list semantics, which JSON Schema cannot say: `x-kubernetes-list-type: map` lists are
keyed by `x-kubernetes-list-map-keys` (env by name, ports by containerPort+protocol …) and
`set` lists hold unique items. The API server rejects a duplicate; so do we, from the schema.

A key the item leaves out takes the key property's schema default (ports: protocol TCP), as the
API server defaults it before comparing.
"""
from __future__ import annotations

import json
from typing import Any

from ...errors import Problem


def list_type_problems(obj: Any, schema: dict, path: str = "") -> list[Problem]:
    out: list[Problem] = []
    _walk(obj, schema, path, out)
    return out


def _walk(obj: Any, schema: Any, path: str, out: list[Problem]) -> None:
    if not isinstance(schema, dict):
        return
    if isinstance(obj, dict):
        props = schema.get("properties") or {}
        more = schema.get("additionalProperties")
        for k, v in obj.items():
            sub = props.get(k, more if isinstance(more, dict) else None)
            if sub is not None:
                _walk(v, sub, f"{path}.{k}" if path else str(k), out)
    elif isinstance(obj, list):
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        kind = schema.get("x-kubernetes-list-type")
        if kind == "map":
            _unique(obj, path, out, _map_key(schema.get("x-kubernetes-list-map-keys") or [], items))
        elif kind == "set":
            _unique(obj, path, out, lambda item: ("value", json.dumps(item, sort_keys=True)))
        for i, item in enumerate(obj):
            _walk(item, items, f"{path}[{i}]", out)


def _map_key(keys: list[str], items: dict):
    props = items.get("properties") or {}

    def key(item: Any) -> tuple | None:
        if not isinstance(item, dict):
            return None
        return tuple((k, item.get(k, (props.get(k) or {}).get("default"))) for k in keys)
    return key


def _unique(obj: list, path: str, out: list[Problem], key) -> None:
    seen: dict[Any, int] = {}
    for i, item in enumerate(obj):
        k = key(item)
        if k is None:
            continue
        if k in seen:
            if k[0] == "value":
                what, fix = f"duplicate of item [{seen[k]}] (the list is a set)", "remove the duplicate"
            else:
                shown = ", ".join(f"{name}={value!r}" for name, value in k)
                what = f"duplicate key {shown}, already at [{seen[k]}] (a list keyed by {', '.join(n for n, _ in k)})"
                fix = "give each entry a unique key, or merge the two entries"
            out.append(Problem(f"{path}[{i}]", what, fix))
        else:
            seen[k] = i

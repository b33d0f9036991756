"""Kubernetes-style merging of rendered objects with raw layers, and null pruning.

Lists of named things (env, containers, volumes, volumeMounts, ports, components) merge by name,
keeping the base order; other lists are replaced by the overlay, except capability lists,
which are unions. This is what lets a raw layer (an import, or a user's escape hatch) and the
typed model be rendered together without losing either.
"""
from __future__ import annotations

import copy
from typing import Any

_UNION_KEYS = {"add", "drop"}


def _identity(item: Any) -> Any:
    if not isinstance(item, dict):
        return None
    if "name" in item and isinstance(item["name"], str):
        return ("name", item["name"])
    for ref in ("secretRef", "configMapRef"):
        if isinstance(item.get(ref), dict) and "name" in item[ref]:
            return (ref, item[ref]["name"], item.get("prefix"))
    return None


def merge(base: Any, overlay: Any, key: str | None = None) -> Any:
    """Deep-merge overlay onto base (overlay wins on scalars). Inputs are not modified."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = {k: copy.deepcopy(v) for k, v in base.items()}
        for k, v in overlay.items():
            out[k] = merge(out[k], v, k) if k in out else copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(overlay, list):
        if key in _UNION_KEYS:
            return list(base) + [x for x in overlay if x not in base]
        ids_b = [_identity(x) for x in base]
        ids_o = [_identity(x) for x in overlay]
        if base and overlay and all(ids_b) and all(ids_o):
            out = [copy.deepcopy(x) for x in base]
            index = {i: n for n, i in enumerate(ids_b)}
            for ident, item in zip(ids_o, overlay):
                if ident in index:
                    out[index[ident]] = merge(out[index[ident]], item)
                else:
                    index[ident] = len(out)
                    out.append(copy.deepcopy(item))
            return out
        if key == "tolerations" and all(isinstance(x, dict) for x in base + overlay):
            return list(base) + [x for x in overlay if x not in base]
        return copy.deepcopy(overlay)
    return copy.deepcopy(overlay)


def prune_nulls(obj: Any) -> Any:
    """Drop null values (and the empty maps they leave), as the API server does."""
    if isinstance(obj, dict):
        return {k: prune_nulls(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [prune_nulls(v) for v in obj]
    return obj


def normalize(obj: Any) -> Any:
    """Canonical form for semantic comparison: nulls dropped, lists of named items as maps
    (Kubernetes list-maps: env, containers, volumes, components …), numbers as strings where
    Kubernetes quantities allow either."""
    obj = prune_nulls(obj)
    if isinstance(obj, dict):
        return {k: normalize(v) for k, v in obj.items()}
    if isinstance(obj, list):
        ids = [_identity(x) for x in obj]
        if obj and all(ids) and len(set(ids)) == len(ids):
            return {"__map__": {repr(i): normalize(x) for i, x in zip(ids, obj)}}
        return [normalize(x) for x in obj]
    return obj

"""The instance catalog: dynamo_iac/data/catalog.yaml (+ user files that add or override entries).

    cat = load()                      # package data + $DYNAMO_IAC_CATALOG (os.pathsep-separated)
    cat.get("p5.48xlarge")            # → InstanceType; ConfigError with close matches when unknown
    cat.select(cloud="aws", gpu="h100")

Override files use the same schema. An entry whose name is already known is deep-merged onto it:
mappings merge key by key, `prices` merge by (option, region) (a price of a new option/region is
added, one of a known option/region replaces it), any other value replaces. A name new to the
catalog must be a complete entry. Every bad file is a ConfigError naming the file and YAML path.
"""
from __future__ import annotations

import difflib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import ValidationError

from .. import yamlio
from ..errors import ConfigError, Problem
from .fabric import pod_request
from .model import InstanceType, builtin_doc

TOP_KEYS = ("sources", "fabrics", "instances")   # sources/fabrics hold YAML anchors only
BUILTIN_KEYS = TOP_KEYS + ("fabric_defaults",)   # per-kind fabric facts (model.fabric_defaults), package file only
SCHEMA_FIX = "see the schema in dynamo_iac/hardware/model.py and the entries in dynamo_iac/data/catalog.yaml"


class Catalog:
    def __init__(self, entries: dict[str, InstanceType]):
        self._entries = dict(sorted(entries.items()))

    def __iter__(self):
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> InstanceType:
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3)
            raise ConfigError(f"instance type {name!r} is not in the catalog", "instance_type",
                              (f"did you mean {', '.join(close)}? " if close else "") +
                              "list them with `dynamo-iac catalog`, or add it with your own catalog file "
                              "(DYNAMO_IAC_CATALOG)") from None

    def gpu_models(self, cloud: str | None = None) -> list[str]:
        """The GPU models (lower-case, sorted) of `cloud`'s GPU entries: what `select(gpu=…)` accepts."""
        return sorted({it.gpu_model.lower() for it in self.select(cloud=cloud, gpus_only=True)})

    def select(self, cloud: str | None = None, gpu: str | None = None, gpus_only: bool = False) -> list[InstanceType]:
        """Entries of `cloud` whose GPU model is `gpu` (case-insensitive; "a100" also matches the
        A100-40GB / A100-80GB variants, "b200" does not match GB200)."""
        out = []
        for it in self._entries.values():
            if cloud and it.cloud != cloud:
                continue
            if gpu and not gpu_matches(it.gpu_model, gpu):
                continue
            if gpus_only and it.gpus == 0:
                continue
            out.append(it)
        return out


def gpu_matches(model: str, wanted: str) -> bool:
    m, w = model.lower(), wanted.lower()
    return m == w or m.split("-")[0] == w


def _merge(base: dict[str, Any], over: dict[str, Any]) -> tuple[dict[str, Any], dict[int, int]]:
    """`over` deep-merged onto `base`, and merged price index → index in `over`'s prices (for
    error paths that name the user's entry, not the merged list)."""
    out = dict(base)
    origin: dict[int, int] = {}
    for k, v in over.items():
        if k == "prices" and isinstance(v, list) and isinstance(base.get(k), (list, tuple)):
            keyed: dict[Any, Any] = {(p.get("option"), p.get("region")): p for p in base[k]}
            mine: dict[Any, int] = {}
            for j, p in enumerate(v):
                key = (p.get("option"), p.get("region")) if isinstance(p, dict) else ("#", j)
                keyed[key] = _merge(keyed[key], p)[0] if key in keyed and isinstance(p, dict) else p
                mine[key] = j
            out[k] = list(keyed.values())
            origin = {i: mine[key] for i, key in enumerate(keyed) if key in mine}
        elif k == "fabric" and isinstance(v, dict) and isinstance(base.get(k), dict) \
                and v.get("kind", base[k].get("kind")) != base[k].get("kind"):
            out[k] = v                    # another fabric kind: its own defaults, none of the old kind's facts
        elif isinstance(v, dict) and isinstance(base.get(k), dict):
            out[k] = _merge(base[k], v)[0]
        else:
            out[k] = v
    return out, origin


def _loc(loc: tuple[Any, ...], origin: dict[int, int]) -> str:
    """A pydantic error location as a YAML path: prices[0].region (the user's index when merged)."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{origin.get(part, part) if i == 1 and loc[0] == 'prices' else part}]"
        else:
            out += f".{part}"
    return out


def _parse(text: str | None, source: str, known: dict[str, InstanceType] | None = None,
           doc: Any = None, top_keys: tuple[str, ...] = TOP_KEYS) -> dict[str, InstanceType]:
    """Entries of one catalog file (or its parsed `doc`); `known` entries are what a same-named
    entry is merged onto."""
    known = known or {}
    if text is not None:
        try:
            doc = yamlio.load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{source}: not valid YAML ({e})", source, "fix the YAML syntax") from None
    doc = {} if doc is None else doc
    if not isinstance(doc, dict):
        raise ConfigError(f"the file is a {type(doc).__name__}, not a mapping", f"{source}: (top level)",
                          "write `instances: [ {cloud: …, name: …, …} ]` at the top level")
    problems = [Problem(f"{source}: {k}", f"unknown top-level key {k!r}"
                        + (" (the per-kind fabric facts are the package catalog's)" if k == "fabric_defaults" else ""),
                        f"use {', '.join(top_keys)}" + (f" (did you mean {close[0]!r}?)" if close else ""))
                for k in doc if k not in top_keys
                for close in [difflib.get_close_matches(str(k), top_keys, n=1)]]
    raw_list = doc.get("instances") or []
    if not isinstance(raw_list, list):
        problems.append(Problem(f"{source}: instances", f"is a {type(raw_list).__name__}, not a list",
                                "write instances as a YAML list of entries"))
        raw_list = []
    out: dict[str, InstanceType] = {}
    first_at: dict[str, int] = {}
    for i, raw in enumerate(raw_list):
        where = f"{source}: instances[{i}]"
        if not isinstance(raw, dict):
            problems.append(Problem(where, f"is a {type(raw).__name__}, not a mapping", SCHEMA_FIX))
            continue
        name = raw.get("name")
        if name in first_at:
            problems.append(Problem(f"{where}.name", f"{name!r} is already defined at instances[{first_at[name]}] "
                                    "of this file", "keep one entry per name in a file"))
            continue
        if isinstance(name, str):
            first_at[name] = i
        merged, origin = _merge(known[name].model_dump(mode="python"), raw) if name in known else (raw, {})
        try:
            it = InstanceType.model_validate(merged)
        except ValidationError as e:
            for err in e.errors():
                problems.append(Problem(f"{where}{_loc(err['loc'], origin)}", err["msg"], SCHEMA_FIX))
            continue
        out[it.name] = it
    if problems:
        raise ConfigError(problems)
    return out


@lru_cache(maxsize=1)
def _builtin() -> dict[str, InstanceType]:
    return _parse(None, "catalog.yaml", doc=builtin_doc(), top_keys=BUILTIN_KEYS)


def load(extra_files: Iterable[str | Path] = ()) -> Catalog:
    entries = dict(_builtin())
    files = list(extra_files)
    env = os.environ.get("DYNAMO_IAC_CATALOG")
    if env:
        files += [p for p in env.split(os.pathsep) if p]
    for f in files:
        path = Path(f).expanduser()
        if path.is_dir():
            raise ConfigError(f"catalog file {str(path)!r} is a directory", "DYNAMO_IAC_CATALOG",
                              "give the path of a YAML file in it (instances: [...])")
        if not path.is_file():
            raise ConfigError(f"catalog file {str(path)!r} does not exist", "DYNAMO_IAC_CATALOG", "check the path")
        entries.update(_parse(path.read_text(), str(path), entries))
    return Catalog(entries)


def fabric_share(instance: InstanceType, gpus: int) -> int:
    """Fabric units a pod of `gpus` GPUs requests on `instance` (kept for callers; the rule lives
    in hardware.fabric.pod_request, which the planner packs against)."""
    return pod_request(instance, gpus)

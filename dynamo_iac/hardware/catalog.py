"""The instance catalog: dynamo_iac/data/catalog.yaml (+ user files that add or override entries).

    cat = load()                      # package data + $DYNAMO_IAC_CATALOG (os.pathsep-separated)
    cat.get("p5.48xlarge")            # → InstanceType; ConfigError with close matches when unknown
    cat.select(cloud="aws", gpu="h100")
"""
from __future__ import annotations

import difflib
import math
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterable

import yaml
from pydantic import ValidationError

from ..errors import ConfigError, Problem
from .model import InstanceType


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

    def select(self, cloud: str | None = None, gpu: str | None = None, gpus_only: bool = False) -> list[InstanceType]:
        out = []
        for it in self._entries.values():
            if cloud and it.cloud != cloud:
                continue
            if gpu and gpu.lower() not in it.gpu_model.lower():
                continue
            if gpus_only and it.gpus == 0:
                continue
            out.append(it)
        return out


def _parse(text: str, source: str) -> dict[str, InstanceType]:
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML ({e})", source, "fix the YAML syntax") from None
    out: dict[str, InstanceType] = {}
    problems = []
    for i, raw in enumerate(doc.get("instances") or []):
        try:
            it = InstanceType.model_validate(raw)
        except ValidationError as e:
            for err in e.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(Problem(f"{source}: instances[{i}].{loc}", err["msg"], "see dynamo_iac/data/catalog.yaml"))
            continue
        out[it.name] = it
    if problems:
        raise ConfigError(problems)
    return out


@lru_cache(maxsize=1)
def _builtin() -> dict[str, InstanceType]:
    text = resources.files("dynamo_iac.data").joinpath("catalog.yaml").read_text()
    return _parse(text, "catalog.yaml")


def load(extra_files: Iterable[str | Path] = ()) -> Catalog:
    entries = dict(_builtin())
    files = list(extra_files)
    env = os.environ.get("DYNAMO_IAC_CATALOG")
    if env:
        files += [p for p in env.split(os.pathsep) if p]
    for f in files:
        path = Path(f).expanduser()
        if not path.is_file():
            raise ConfigError(f"catalog file {str(path)!r} does not exist", "DYNAMO_IAC_CATALOG", "check the path")
        entries.update(_parse(path.read_text(), str(path)))
    return Catalog(entries)


def fabric_share(instance: InstanceType, gpus: int) -> int:
    """Fabric devices a pod of `gpus` GPUs requests on `instance`: its GPU share of the node's
    devices (p5.48xlarge: 32 EFA / 8 GPUs → 16 for a TP4 pod, as the upstream AWS recipe does)."""
    devices = instance.fabric.devices or 0
    if not devices or not instance.gpus:
        return 0
    return max(1, math.floor(devices * min(gpus, instance.gpus) / instance.gpus))

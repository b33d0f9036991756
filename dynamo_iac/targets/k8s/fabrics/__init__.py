"""Fabric overlays, one module per fabric kind (not per cloud-and-graph): the registry maps the
catalog's fabric kind to the module that turns an instance type into a FabricOverlay and, where
the fabric constrains where KV-transfer workers may sit, checks their placement."""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Sequence

from ....errors import Problem
from ....hardware.model import InstanceType
from ....hardware.pool import GpuPool
from ..overlay import FabricOverlay

MODULES = {"efa": "efa", "infiniband": "infiniband", "roce": "roce",
           "gpudirect-tcpx": "tcpx", "gpudirect-tcpxo": "tcpx"}


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def overlay_for(instance: InstanceType, worker_gpus: int) -> FabricOverlay:
    """The overlay of a GPU worker pod of `worker_gpus` GPUs on `instance` (none without a fabric)."""
    name = MODULES.get(instance.fabric.kind)
    if name is None or worker_gpus < 1:
        return FabricOverlay()
    return _module(name).overlay(instance, worker_gpus)


def placement_problems(placed: Sequence[tuple[str, str, GpuPool, InstanceType]]) -> list[Problem]:
    """Every fabric module's verdict on (worker, role, pool, instance) placements, in module order."""
    out: list[Problem] = []
    for name in sorted(set(MODULES.values())):
        check = getattr(_module(name), "placement_problems", None)
        if check is not None:
            out += check(placed)
    return out

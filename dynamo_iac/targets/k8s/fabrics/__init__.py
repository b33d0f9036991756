"""Fabric overlays, one module per fabric kind (not per cloud-and-graph): the registry maps the
catalog's fabric kind to the module that turns an instance type into a FabricOverlay."""
from __future__ import annotations

import importlib

from ....hardware.model import InstanceType
from ..overlay import FabricOverlay

MODULES = {"efa": "efa", "infiniband": "infiniband", "roce": "roce"}


def overlay_for(instance: InstanceType, worker_gpus: int) -> FabricOverlay:
    """The overlay of a GPU worker pod of `worker_gpus` GPUs on `instance` (none without a fabric)."""
    name = MODULES.get(instance.fabric.kind)
    if name is None or worker_gpus < 1:
        return FabricOverlay()
    return importlib.import_module(f"{__name__}.{name}").overlay(instance, worker_gpus)

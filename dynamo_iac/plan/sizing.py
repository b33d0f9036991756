"""Auto sizing: the cheapest feasible instance type and node count for a graph on a cloud."""
from __future__ import annotations

import math
from typing import Any

from ..errors import PlanError, Problem
from ..hardware.model import InstanceType
from ..hardware.pool import GpuPool

GPU_MEMORY_UTILISATION = 0.9    # vLLM's default --gpu-memory-utilization


def memory_problems(graph: Any, inst: InstanceType, utilisation: float = GPU_MEMORY_UTILISATION) -> list[Problem]:
    """Weights per GPU = bytes/param × params ÷ (tp × pp) must fit GPU memory × utilisation."""
    model = graph.model
    if model is None or model.weight_bytes() is None or not inst.gpu_memory_gb:
        return []
    out = []
    budget = inst.gpu_memory_gb * 1e9 * utilisation
    for i, w in enumerate(graph.workers):
        par = w.parallelism
        shards = (par.tp * par.pp) if par else max(w.gpu_count, 1)
        need = model.weight_bytes() / shards
        if need > budget:
            min_shards = math.ceil(model.weight_bytes() / budget)
            tp = 1 << (min_shards - 1).bit_length()
            out.append(Problem(f"workers[{i}].parallelism", f"{model.id} ({model.params_b:g}B, {model.dtype}) needs "
                               f"{need / 1e9:.0f} GB of weights per GPU at tp×pp={shards}, more than "
                               f"{inst.gpu_memory_gb:g} GB × {utilisation:.0%} on {inst.name} ({inst.gpu_model})",
                               f"use tp >= {tp} (or pp), a smaller dtype, or a GPU with more memory"))
    return out


def auto_pools(graph: Any, cloud: str, gpu: str | None = None, min_memory_gb: float | None = None,
               purchase_option: str = "on-demand", zone: str | None = None, catalog: Any = None) -> list[GpuPool]:
    """One GpuPool of the cheapest feasible instance type (fewest nodes when prices are unknown)."""
    from ..hardware.catalog import load
    from .capacity import plan

    cat = catalog or load()
    best: tuple | None = None
    reasons: list[Problem] = []
    for inst in cat.select(cloud=cloud, gpu=gpu, gpus_only=True):
        if min_memory_gb and (inst.gpu_memory_gb or 0) < min_memory_gb:
            continue
        mem = memory_problems(graph, inst)
        if mem:
            reasons += mem[:1]
            continue
        pool = GpuPool(name="gpu", instance_type=inst.name, nodes=0, max_nodes=512, purchase_option=purchase_option,
                       zones=[zone] if zone else [])
        try:
            p = plan(graph, [pool], catalog=cat)
        except PlanError as e:
            reasons += e.problems[:1]
            continue
        nodes = p.total_nodes()
        price = inst.price(purchase_option)
        cost = price * nodes if price is not None else math.inf
        key = (cost, nodes, inst.name)
        if best is None or key < best[0]:
            best = (key, inst, nodes)
    if best is None:
        raise PlanError([Problem("auto_pools", f"no {cloud} instance type{' with ' + gpu if gpu else ''} fits "
                                 f"{graph.name}", "relax the GPU/memory constraint or change the parallelism")]
                        + reasons)
    _, inst, nodes = best
    return [GpuPool(name="gpu", instance_type=inst.name, nodes=nodes, purchase_option=purchase_option,
                    zones=[zone] if zone else [])]

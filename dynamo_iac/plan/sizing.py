"""Auto sizing: the cheapest feasible instance type and node count for a graph on a cloud."""
from __future__ import annotations

import math
from typing import Any, Iterable

from ..errors import PlanError, Problem
from ..hardware.model import CLOUDS, InstanceType
from ..hardware.pool import GpuPool

GPU_MEMORY_UTILISATION = 0.9    # vLLM's default --gpu-memory-utilization


def memory_problems(graph: Any, inst: InstanceType, utilisation: float = GPU_MEMORY_UTILISATION,
                    only: Iterable[int] | None = None) -> list[Problem]:
    """Weights per GPU = bytes/param × params ÷ (tp × pp) must fit GPU memory × utilisation
    (for every worker, or the workers indexed `only`)."""
    model = graph.model
    if model is None or model.weight_bytes() is None or not inst.gpu_memory_gb:
        return []
    out = []
    keep = None if only is None else set(only)
    budget = inst.gpu_memory_gb * 1e9 * utilisation
    for i, w in enumerate(graph.workers):
        if keep is not None and i not in keep:
            continue
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


def _span_without_fabric(graph: Any, inst: InstanceType) -> Problem | None:
    """A replica split across nodes runs its TP/PP collectives between nodes: without an RDMA fabric
    that is plain TCP, so such a type is no candidate (a cheaper price would buy a much slower engine)."""
    if inst.fabric.kind != "none":
        return None
    for i, w in enumerate(graph.workers):
        if (n := w.nodes_for(inst.gpus)) > 1:
            return Problem(f"workers[{i}]", f"{w.gpu_count} GPUs per replica would span {n} {inst.name} nodes "
                           f"({inst.gpus} GPUs each), which have no RDMA fabric",
                           "pick a type with more GPUs per node or an RDMA fabric (EFA / InfiniBand / RoCE)")
    return None


def auto_pools(graph: Any, cloud: str, gpu: str | None = None, min_memory_gb: float | None = None,
               purchase_option: str = "on-demand", zone: str | None = None, catalog: Any = None,
               allow_unknown_memory: bool = False, allow_unknown_fabric: bool = False) -> list[GpuPool]:
    """One GpuPool of the cheapest feasible instance type. Types with a known price rank before
    types without one; among those, fewest nodes, then x86_64 before arm64 (arm64 needs arm images), fewest GPUs, name.
    A type whose GPU memory is unknown is no candidate for a graph with known weights unless
    `allow_unknown_memory`; one whose fabric count the overlays and node templates need is
    unknown (hardware.fabric.unknown_count) is none unless `allow_unknown_fabric`. Zonal fabrics
    (EFA, GCP RDMA) need `zone`."""
    from ..errors import ConfigError
    from ..hardware.catalog import load
    from ..hardware.fabric import unknown_count, zone_problems
    from ..hardware.model import PURCHASE_OPTIONS
    from .capacity import plan

    problems = []
    cloud = cloud.lower() if isinstance(cloud, str) else cloud
    if cloud not in CLOUDS:
        problems.append(Problem("auto_pools.cloud", f"unknown cloud {cloud!r}", "use aws, azure or gcp"))
    if purchase_option not in PURCHASE_OPTIONS:
        problems.append(Problem("auto_pools.purchase_option", f"unknown purchase option {purchase_option!r}",
                                f"use one of {', '.join(PURCHASE_OPTIONS)}"))
    if min_memory_gb is not None and (isinstance(min_memory_gb, bool) or not isinstance(min_memory_gb, (int, float))
                                      or not math.isfinite(min_memory_gb) or min_memory_gb <= 0):
        problems.append(Problem("auto_pools.min_memory_gb", f"min_memory_gb must be a positive number of GB, got "
                                f"{min_memory_gb!r}", "pass e.g. min_memory_gb=80, or leave it unset"))
    cat = catalog or load()
    if gpu and cloud in CLOUDS and not cat.select(cloud=cloud, gpu=gpu, gpus_only=True):
        known = bool(cat.select(gpu=gpu, gpus_only=True))
        problems.append(Problem("auto_pools.gpu", f"no {CLOUDS[cloud]} "
                                f"instance type has GPU model {gpu!r}" + ("" if known else " (nor any in the catalog)"),
                                f"use one of {', '.join(cat.gpu_models(cloud))} on {cloud}"
                                + (f", or another cloud that has {gpu}" if known else "")))
    if problems:
        raise ConfigError(problems)
    weights_known = graph.model is not None and graph.model.weight_bytes() is not None
    best: tuple | None = None
    reasons: list[Problem] = []
    for inst in cat.select(cloud=cloud, gpu=gpu, gpus_only=True):
        where = f"catalog[{inst.name}].gpu_memory_gb"
        if inst.gpu_memory_gb is None and (min_memory_gb or (weights_known and not allow_unknown_memory)):
            reasons.append(Problem(where, f"GPU memory of {inst.name} is unknown, so the weights may not fit",
                                   "set gpu_memory_gb in your catalog file, or pass allow_unknown_memory=True"))
            continue
        if min_memory_gb and inst.gpu_memory_gb < min_memory_gb:
            continue
        mem = memory_problems(graph, inst)
        if mem:
            reasons += mem[:1]
            continue
        if span := _span_without_fabric(graph, inst):
            reasons.append(span)
            continue
        if (missing := unknown_count(inst)) and not allow_unknown_fabric:
            reasons.append(Problem(f"catalog[{inst.name}].{missing}", f"the {inst.fabric.kind} {missing.split('.')[1]} "
                                   f"count of {inst.name} is unknown, so its pods' fabric requests and its node "
                                   "template cannot be built", f"set {missing} in your catalog file, or pass "
                                   "allow_unknown_fabric=True"))
            continue
        pool = GpuPool(name="gpu", instance_type=inst.name, min_nodes=0, max_nodes=512,
                       purchase_option=purchase_option, zones=[zone] if zone else [])
        try:   # the zone does not change the packing; a missing one is reported once a type is chosen
            p = plan(graph, [pool.model_copy(update={"zones": pool.zones or ["?"]})], catalog=cat)
        except PlanError as e:
            reasons += e.problems[:1]
            continue
        nodes = p.total_nodes()
        price = inst.price(purchase_option, zone)
        key = (price is None, (price or 0) * nodes, nodes, inst.arch != "x86_64", nodes * inst.gpus, inst.name)
        if best is None or key < best[0]:
            best = (key, inst, nodes)
    if best is None:
        raise PlanError([Problem("auto_pools", f"no {cloud} instance type{' with ' + gpu if gpu else ''} fits "
                                 f"{graph.name}", "relax the GPU/memory constraint or change the parallelism")]
                        + reasons)
    _, inst, nodes = best
    pool = GpuPool(name="gpu", instance_type=inst.name, nodes=nodes, purchase_option=purchase_option,
                   zones=[zone] if zone else [])
    if zp := zone_problems(pool, inst, "auto_pools", subject="the cheapest type"):
        raise PlanError([Problem("auto_pools.zone", zp[0].message,
                                 "pass zone=… (one availability zone / zone)")])
    return [pool]

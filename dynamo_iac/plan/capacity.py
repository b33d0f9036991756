"""plan(graph, pools) → CapacityPlan: where every worker replica lands, how many nodes of which
type, what it costs, and why when it does not fit.

Rules: a node is never over-committed; a replica that fits on one node never spans two; a
multinode replica takes whole nodes; workers that exchange KV cache (prefill + decode) stay in
one fabric domain (one pool: one AZ / scale set / RDMA network); where the fabric cannot carry
KV between pods of one node (catalog: same_node_kv_transfer = false) prefill and decode get
separate nodes; CPU-only components go to the system pool. Minimise nodes, then cost.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import PlanError, Problem
from ..hardware.model import InstanceType
from ..hardware.pool import GpuPool
from .placement import lower_bound, pack

HOURS_PER_MONTH = 730


@dataclass
class NodePlan:
    pool: str
    index: int
    gpus: int
    slots: dict[int, str] = field(default_factory=dict)     # GPU index → "Worker[r]" or "Worker[r] rank k"

    @property
    def name(self) -> str:
        return f"{self.pool}-{self.index}"


@dataclass
class PoolPlan:
    pool: GpuPool
    instance: InstanceType
    nodes: list[NodePlan] = field(default_factory=list)

    @property
    def used_gpus(self) -> int:
        return sum(len(n.slots) for n in self.nodes)

    def price(self) -> float | None:
        return self.instance.price(self.pool.purchase_option)


@dataclass
class CapacityPlan:
    graph: str
    pools: list[PoolPlan]
    system: list[str]                      # CPU-only components (frontend, planner) → system pool
    warnings: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)   # why the placement is what it is

    def nodes_per_pool(self) -> dict[str, int]:
        return {p.pool.name: len(p.nodes) for p in self.pools}

    def total_nodes(self) -> int:
        return sum(len(p.nodes) for p in self.pools)

    def gpu_utilisation(self) -> float:
        total = sum(len(p.nodes) * p.instance.gpus for p in self.pools)
        used = sum(p.used_gpus for p in self.pools)
        return used / total if total else 0.0

    def cost_per_hour(self) -> float | None:
        total = 0.0
        for p in self.pools:
            if not p.nodes:
                continue
            price = p.price()
            if price is None:
                return None
            total += price * len(p.nodes)
        return round(total, 4)

    def cost_per_month(self) -> float | None:
        h = self.cost_per_hour()
        return None if h is None else round(h * HOURS_PER_MONTH, 2)

    def allocation(self) -> dict[str, dict[str, dict[int, str]]]:
        """pool → node → GPU index → replica label."""
        return {p.pool.name: {n.name: dict(sorted(n.slots.items())) for n in p.nodes} for p in self.pools}

    def to_dict(self) -> dict[str, Any]:
        return {
            "graph": self.graph,
            "pools": [{
                "name": p.pool.name, "instance_type": p.instance.name, "gpu_model": p.instance.gpu_model,
                "gpus_per_node": p.instance.gpus, "purchase_option": p.pool.purchase_option,
                "nodes": len(p.nodes), "max_nodes": p.pool.max, "used_gpus": p.used_gpus,
                "usd_per_node_hour": p.price(),
                "allocation": {n.name: {str(k): v for k, v in sorted(n.slots.items())} for n in p.nodes},
            } for p in self.pools],
            "system_pool": sorted(self.system),
            "total_nodes": self.total_nodes(),
            "gpu_utilisation": round(self.gpu_utilisation(), 4),
            "usd_per_hour": self.cost_per_hour(),
            "usd_per_month": self.cost_per_month(),
            "warnings": self.warnings,
            "reasons": self.reasons,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _items(graph: Any, gpn: int) -> tuple[dict[str, list[tuple[int, str]]], list[tuple[str, int, int]], list[Problem]]:
    """Single-node items per role group, multinode replicas (label, nodes, gpus/node), problems."""
    groups: dict[str, list[tuple[int, str]]] = {}
    multi: list[tuple[str, int, int]] = []
    problems: list[Problem] = []
    for i, w in enumerate(graph.workers):
        g = w.gpu_count
        if g == 0:
            continue
        nodes = w.nodes_for(gpn)
        if nodes > 1:
            if g % nodes or g // nodes > gpn:
                problems.append(Problem(f"workers[{i}].gpus", f"{w.name} needs {g} GPUs, which do not split into "
                                        f"{nodes} whole nodes of {gpn} GPUs",
                                        f"use a multiple of {gpn} GPUs (e.g. tp={math.ceil(g / gpn) * gpn})"))
                continue
            for r in range(w.replicas):
                multi.append((f"{w.name}[{r}]", nodes, g // nodes))
        else:
            for r in range(w.replicas):
                groups.setdefault(w.role, []).append((g, f"{w.name}[{r}]"))
    return groups, multi, problems


def _buckets(graph: Any, inst: InstanceType, groups: dict[str, list[tuple[int, str]]]) -> list[list[tuple[int, str]]]:
    """Groups of replicas that may share nodes: all of them, unless the fabric cannot carry KV
    between pods of one node, then prefill and decode each get their own nodes."""
    if graph.is_disaggregated and not inst.fabric.same_node_kv_transfer:
        return [groups.get("prefill", []), groups.get("decode", []), groups.get("agg", [])]
    return [sum(groups.values(), [])]


def node_lower_bound(graph: Any, inst: InstanceType) -> int:
    groups, multi, _ = _items(graph, inst.gpus)
    return sum(lower_bound(b, inst.gpus) for b in _buckets(graph, inst, groups)) + sum(n for _, n, _ in multi)


def _place_on(graph: Any, pool: GpuPool, inst: InstanceType) -> tuple[PoolPlan, list[str]]:
    from .sizing import memory_problems

    gpn = inst.gpus
    groups, multi, problems = _items(graph, gpn)
    problems += memory_problems(graph, inst)
    if problems:
        raise PlanError(problems)
    reasons = []
    if graph.is_disaggregated and not inst.fabric.same_node_kv_transfer:
        reasons.append(f"prefill and decode on separate nodes: {inst.fabric.kind} on {inst.name} does not carry KV "
                       "transfers between pods of the same node (catalog: same_node_kv_transfer=false)")
    buckets = _buckets(graph, inst, groups)
    plan = PoolPlan(pool, inst)
    for label, nodes, per in multi:
        for k in range(nodes):
            node = NodePlan(pool.name, len(plan.nodes), gpn)
            for gpu in range(per):
                node.slots[gpu] = f"{label} rank {k}"
            plan.nodes.append(node)
    for bucket in buckets:
        for bin_ in pack(bucket, gpn):
            node = NodePlan(pool.name, len(plan.nodes), gpn)
            gpu = 0
            for size, label in sorted(bin_, key=lambda x: (-x[0], x[1])):
                for _ in range(size):
                    node.slots[gpu] = label
                    gpu += 1
            plan.nodes.append(node)
    return plan, reasons


def plan(graph: Any, pools: list[GpuPool], catalog: Any = None) -> CapacityPlan:
    from ..hardware.catalog import load

    graph.check()
    cat = catalog or load()
    if not pools:
        raise PlanError("no GPU pool to place the workers on", "pools", "add a GpuPool(instance_type=…, nodes=…)")
    insts = [cat.get(p.instance_type) for p in pools]
    gpu_pools = [(p, i) for p, i in zip(pools, insts) if i.gpus > 0]
    if not gpu_pools:
        raise PlanError("none of the pools has GPUs", "pools", "add a GPU instance type")
    candidates = []
    errors: list[Problem] = []
    # all GPU workers share one pool: the KV-exchanging workers must stay in one fabric domain,
    # and one pool per graph keeps every replica schedulable on the same node type
    for pool, inst in gpu_pools:
        try:
            pp, reasons = _place_on(graph, pool, inst)
        except PlanError as e:
            errors += e.problems
            continue
        over = len(pp.nodes) - pool.max
        if over > 0:
            errors.append(Problem(f"pools[{pool.name}].max_nodes",
                                  f"{graph.name} needs {len(pp.nodes)} {inst.name} nodes but pool {pool.name!r} "
                                  f"allows at most {pool.max}",
                                  f"raise max_nodes to {len(pp.nodes)} or pick a larger instance type"))
            continue
        price = pp.price()
        candidates.append((len(pp.nodes), price if price is not None else math.inf, pool.name, pp, reasons))
    if not candidates:
        raise PlanError(errors)
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))
    _, _, _, best, reasons = candidates[0]
    plans = [best] + [PoolPlan(p, i) for p, i in zip(pools, insts) if p.name != best.pool.name]
    system = []
    if graph.frontend is not None:
        system.append(f"{graph.frontend.name} ×{graph.frontend.replicas}")
    if graph.planner is not None:
        system.append(f"{graph.planner.name} ×{graph.planner.replicas}")
    warnings = []
    idle = len(best.nodes) * best.instance.gpus - best.used_gpus
    if idle:
        warnings.append(f"{idle} idle GPU(s) on {best.pool.name}")
    if best.price() is None:
        warnings.append(f"price unknown for {best.instance.name} ({best.pool.purchase_option}): cost not computed")
    lb = node_lower_bound(graph, best.instance)
    if len(best.nodes) > lb:
        reasons.append(f"{len(best.nodes)} nodes for a lower bound of {lb}")
    return CapacityPlan(graph=graph.name, pools=plans, system=system, warnings=warnings, reasons=reasons)

"""plan(graph, pools) → CapacityPlan: where every worker replica lands, how many nodes of which
type, what it costs, and why when it does not fit.

Rules: a node is never over-committed, in GPUs nor in its fabric resource (EFA interfaces, RDMA
networks: hardware.fabric); a replica that fits on one node never spans two; a multinode replica
takes whole nodes; workers that exchange KV cache (prefill + decode) stay in one fabric domain
(one pool, whose zone defines the AZ / RDMA network); where the fabric cannot carry KV between
pods of one node (catalog: same_node_kv_transfer) prefill and decode get separate nodes;
independent workers may spread over pools when no single pool holds them; pools of one plan
are of one cloud; CPU-only components go to the system pool. Minimise nodes, then cost.
Nodes are reported twice: `nodes` placement needs, `provisioned` what the node group runs
(max(needed, min_nodes, nodes if given)); cost is on provisioned nodes.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import PlanError, Problem
from ..hardware import fabric as fab
from ..hardware.model import PURCHASE_OPTIONS, InstanceType, region_of
from ..hardware.pool import GpuPool
from .placement import Item, lower_bound, solve

HOURS_PER_MONTH = 730
Replica = tuple[int, int]                 # (worker index, replica index)


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
    lower_bound: int = 0
    optimal: bool = True                   # placement proven minimal
    region: str | None = None              # the stack's region (AWS region, Azure location, GCP region)

    @property
    def used_gpus(self) -> int:
        return sum(len(n.slots) for n in self.nodes)

    @property
    def needed(self) -> int:
        return len(self.nodes)

    @property
    def provisioned(self) -> int:
        """Nodes the node group runs: max(needed, min_nodes, nodes when given)."""
        given = self.pool.nodes if "nodes" in self.pool.model_fields_set else 0
        return max(self.needed, self.pool.min_nodes or 0, given)

    def where(self) -> str | None:
        """Where the pool's prices apply: the stack's region, else its zone when that names a
        region (us-east-1a, us-central1-b; Azure zones are numbers and name none)."""
        return _where(self.pool, self.region)

    def price(self, option: str | None = None) -> float | None:
        return self.instance.price(option or self.pool.purchase_option, self.where())

    def price_note(self, option: str | None = None) -> str | None:
        """Why the price of `option` (default: the chosen one) is unknown or another region's;
        None when it is known for where the pool runs."""
        opt, inst, where = option or self.pool.purchase_option, self.instance, self.where()
        entry = inst.price_entry(opt, where)
        elsewhere = inst.price_regions(opt)
        if entry is not None and entry.usd_per_hour is not None:
            return None if where else (f"{inst.name} {opt} priced as in {entry.region}: the pool's region is not "
                                       "known (set the stack's region or the pool's zones)")
        if entry is not None:
            why = f"the catalog marks the {entry.region} price unknown"
        elif where and elsewhere:
            why = (f"the catalog prices it in {', '.join(elsewhere)} only, and prices are regional "
                   "(another region's is not used)")
        else:
            why = "the catalog has no price for it"
        return f"no {opt} price for {inst.name}{f' in {where}' if where else ''}: {why}"

    def cost(self, option: str | None = None) -> float | None:
        """$/h of the provisioned nodes (0 when none run)."""
        if not self.provisioned:
            return 0.0
        p = self.price(option)
        return None if p is None else p * self.provisioned

    def prices(self) -> list[dict[str, Any]]:
        """Every purchase option with a known price: $/node·h, $/h and $/month on provisioned nodes."""
        out = []
        for opt in PURCHASE_OPTIONS:
            entry = self.instance.price_entry(opt, self.where())
            if entry is None or entry.usd_per_hour is None:
                continue
            h = entry.usd_per_hour * self.provisioned
            out.append({"option": opt, "region": entry.region, "usd_per_node_hour": entry.usd_per_hour,
                        "usd_per_hour": round(h, 4), "usd_per_month": round(h * HOURS_PER_MONTH, 2),
                        "chosen": opt == self.pool.purchase_option, "source": entry.source.url,
                        "date": entry.source.date})
        return out


@dataclass
class CapacityPlan:
    graph: str
    pools: list[PoolPlan]
    system: list[str]                      # CPU-only components (frontend, planner) → system pool
    warnings: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)   # why the placement is what it is

    def _gpu_pools(self) -> list[PoolPlan]:
        return [p for p in self.pools if p.instance.gpus > 0]

    def nodes_per_pool(self) -> dict[str, int]:
        """Nodes placement needs per pool (see provisioned_per_pool for what runs)."""
        return {p.pool.name: p.needed for p in self.pools}

    def provisioned_per_pool(self) -> dict[str, int]:
        return {p.pool.name: p.provisioned for p in self.pools}

    def total_nodes(self) -> int:
        return sum(p.needed for p in self.pools)

    def total_provisioned(self) -> int:
        return sum(p.provisioned for p in self._gpu_pools())

    def gpu_utilisation(self) -> float:
        """Used GPUs ÷ GPUs of the provisioned nodes."""
        total = sum(p.provisioned * p.instance.gpus for p in self.pools)
        used = sum(p.used_gpus for p in self.pools)
        return used / total if total else 0.0

    def cost_per_hour(self, option: str | None = None) -> float | None:
        """$/h of the provisioned GPU nodes at each pool's purchase option (or `option` for all);
        None when a running pool's price is unknown. System (CPU) pools are not included."""
        total = 0.0
        for p in self._gpu_pools():
            c = p.cost(option)
            if c is None:
                return None
            total += c
        return round(total, 4)

    def cost_per_month(self, option: str | None = None) -> float | None:
        h = self.cost_per_hour(option)
        return None if h is None else round(h * HOURS_PER_MONTH, 2)

    def cost_by_option(self) -> dict[str, dict[str, Any]]:
        """$/h and $/month if every GPU pool bought `option`, for each option priced for all of them."""
        chosen = {p.pool.purchase_option for p in self._gpu_pools() if p.provisioned}
        out = {}
        for opt in PURCHASE_OPTIONS:
            h = self.cost_per_hour(opt)
            if h is not None and any(p.provisioned for p in self._gpu_pools()):
                out[opt] = {"usd_per_hour": h, "usd_per_month": round(h * HOURS_PER_MONTH, 2),
                            "chosen": chosen == {opt}}
        return out

    def allocation(self) -> dict[str, dict[str, dict[int, str]]]:
        """pool → node → GPU index → replica label."""
        return {p.pool.name: {n.name: dict(sorted(n.slots.items())) for n in p.nodes} for p in self.pools}

    def to_dict(self) -> dict[str, Any]:
        return {
            "graph": self.graph,
            "pools": [{
                "name": p.pool.name, "instance_type": p.instance.name, "gpu_model": p.instance.gpu_model,
                "gpus_per_node": p.instance.gpus, "purchase_option": p.pool.purchase_option,
                "nodes": p.needed, "provisioned": p.provisioned, "min_nodes": p.pool.min_nodes,
                "max_nodes": p.pool.max, "used_gpus": p.used_gpus,
                "usd_per_node_hour": p.price(), "usd_per_hour": p.cost(), "price_note": p.price_note(),
                "usd_per_month": None if p.cost() is None else round(p.cost() * HOURS_PER_MONTH, 2),
                "prices": p.prices(), "lower_bound": p.lower_bound, "optimal": p.optimal,
                "allocation": {n.name: {str(k): v for k, v in sorted(n.slots.items())} for n in p.nodes},
            } for p in self.pools],
            "system_pool": sorted(self.system),
            "total_nodes": self.total_nodes(),
            "provisioned_nodes": self.total_provisioned(),
            "gpu_utilisation": round(self.gpu_utilisation(), 4),
            "usd_per_hour": self.cost_per_hour(),
            "usd_per_month": self.cost_per_month(),
            "cost_by_option": self.cost_by_option(),
            "warnings": self.warnings,
            "reasons": self.reasons,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# ------------------------------------------------------------------ one pool
def _items(graph: Any, gpn: int, only: Iterable[Replica] | None = None
           ) -> tuple[dict[str, list[Item]], list[tuple[str, int, int]], list[Problem]]:
    """Single-node items per role, multinode replicas (label, nodes, gpus/node), problems."""
    keep = None if only is None else set(only)
    groups: dict[str, list[Item]] = {}
    multi: list[tuple[str, int, int]] = []
    problems: list[Problem] = []
    for i, w in enumerate(graph.workers):
        g = w.gpu_count
        reps = [r for r in range(w.replicas) if keep is None or (i, r) in keep]
        if g == 0 or not reps:
            continue
        nodes = w.nodes_for(gpn)
        if g % nodes or g // nodes > gpn:
            fixed = f" (nodes: {w.nodes} is fixed)" if w.nodes is not None else ""
            whole = math.ceil(g / gpn)
            problems.append(Problem(f"workers[{i}].gpus", f"{w.name} needs {g} GPUs, which do not split into "
                                    f"{nodes} whole nodes of {gpn} GPUs{fixed}: it does not fit nodes of {gpn} GPUs",
                                    (f"set nodes: {whole} or leave nodes unset" if g % whole == 0 and g // whole <= gpn
                                     else f"use a multiple of {gpn} GPUs (e.g. tp={whole * gpn})")
                                    + f", or pick an instance type with ≥ {math.ceil(g / nodes)} GPUs per node"))
            continue
        for r in reps:
            if nodes > 1:
                multi.append((f"{w.name}[{r}]", nodes, g // nodes))
            else:
                groups.setdefault(w.role, []).append((g, f"{w.name}[{r}]"))
    return groups, multi, problems


def _buckets(graph: Any, inst: InstanceType, groups: dict[str, list[Item]]) -> list[list[Item]]:
    """Groups of replicas that may share nodes: all of them, unless the fabric cannot carry KV
    between pods of one node, then prefill and decode each get their own nodes."""
    if graph.is_disaggregated and not fab.kv_same_node(inst):
        return [groups.get("prefill", []), groups.get("decode", []), groups.get("agg", [])]
    return [sum(groups.values(), [])]


def _fabric_limits(inst: InstanceType, sizes: Iterable[int]) -> tuple[dict[int, int], int | None]:
    return {s: fab.pod_request(inst, s) for s in sizes}, fab.node_capacity(inst)


def node_lower_bound(graph: Any, inst: InstanceType) -> int:
    groups, multi, _ = _items(graph, inst.gpus)
    demand, fcap = _fabric_limits(inst, {s for v in groups.values() for s, _ in v})
    return (sum(lower_bound(b, inst.gpus, demand, fcap) for b in _buckets(graph, inst, groups))
            + sum(n for _, n, _ in multi))


def _where(pool: GpuPool, region: str | None) -> str | None:
    zone = pool.zones[0] if pool.zones else None
    return region or (None if zone is None or zone.isdigit() else region_of(zone))


def _place_on(graph: Any, pool: GpuPool, inst: InstanceType, only: Iterable[Replica] | None = None,
              region: str | None = None) -> tuple[PoolPlan, list[str]]:
    """Place the graph's GPU replicas (or `only` these) on one pool; PlanError when one cannot fit."""
    from .sizing import memory_problems

    gpn = inst.gpus
    groups, multi, problems = _items(graph, gpn, only)
    problems += memory_problems(graph, inst)
    if problems:
        raise PlanError(problems)
    reasons = []
    if graph.is_disaggregated and not fab.kv_same_node(inst):
        why = ("does not carry KV transfers between pods of the same node (catalog: same_node_kv_transfer=false)"
               if inst.fabric.same_node_kv_transfer is False else
               "is not known to carry KV transfers between pods of the same node (catalog: same_node_kv_transfer "
               "unknown, so the safe choice)")
        reasons.append(f"prefill and decode on separate nodes: {inst.fabric.kind} on {inst.name} {why}")
    demand, fcap = _fabric_limits(inst, {s for v in groups.values() for s, _ in v} | {p for _, _, p in multi})
    if fcap is not None and any(d * gpn > fcap * s for s, d in demand.items()):      # fabric binds before GPUs
        reasons.append(f"{inst.fabric.resource}: a node has {fcap}; a pod requests "
                       + ", ".join(f"{d} with {s} GPU(s)" for s, d in sorted(demand.items())))
    plan = PoolPlan(pool, inst, region=region)
    for label, nodes, per in multi:
        for k in range(nodes):
            node = NodePlan(pool.name, len(plan.nodes), gpn)
            for gpu in range(per):
                node.slots[gpu] = f"{label} rank {k}"
            plan.nodes.append(node)
    plan.lower_bound = len(plan.nodes)
    for bucket in _buckets(graph, inst, groups):
        packing = solve(bucket, gpn, demand, fcap)
        plan.lower_bound += packing.lower_bound
        plan.optimal = plan.optimal and packing.optimal
        for bin_ in packing.bins:
            node = NodePlan(pool.name, len(plan.nodes), gpn)
            gpu = 0
            for size, label in sorted(bin_, key=lambda x: (-x[0], x[1])):
                for _ in range(size):
                    node.slots[gpu] = label
                    gpu += 1
            plan.nodes.append(node)
    return plan, reasons


# ------------------------------------------------------------------ many pools
def _limit(pool: GpuPool) -> tuple[int, str]:
    """Most nodes placement may use on a pool: `nodes` when given (desired), else max_nodes."""
    if "nodes" in pool.model_fields_set:
        return pool.nodes, "nodes"
    return pool.max, "max_nodes"


def _too_many(graph: Any, pp: PoolPlan) -> Problem | None:
    limit, key = _limit(pp.pool)
    if pp.needed <= limit:
        return None
    name, inst = pp.pool.name, pp.instance
    if key == "nodes" and pp.needed <= pp.pool.max:
        return Problem(f"pools[{name}].nodes", f"pool {name} runs {limit} node{'s' * (limit != 1)} (nodes: {limit}) "
                       f"but {graph.name} needs {pp.needed} {inst.name} nodes",
                       f"set nodes: {pp.needed} or leave nodes unset so the plan sizes it")
    also = f" (and nodes to {pp.needed})" if key == "nodes" else ""
    return Problem(f"pools[{name}].max_nodes", f"{graph.name} needs {pp.needed} {inst.name} nodes but pool {name!r} "
                   f"allows at most {pp.pool.max}", f"raise max_nodes to {pp.needed}{also} or pick a larger instance type")


def _replicas(graph: Any, kv: bool) -> list[Replica]:
    """GPU replicas that exchange KV (prefill/decode of a disaggregated graph) or the others."""
    out = []
    for i, w in enumerate(graph.workers):
        is_kv = graph.is_disaggregated and w.role in ("prefill", "decode")
        if w.gpu_count and is_kv == kv:
            out += [(i, r) for r in range(w.replicas)]
    return out


def _cloud_problems(pools: list[GpuPool], insts: list[InstanceType]) -> list[Problem]:
    clouds = sorted({i.cloud for i in insts if i.cloud != "any"})
    if len(clouds) <= 1:
        return []
    where = ", ".join(f"{p.name} ({i.name}: {i.cloud})" for p, i in zip(pools, insts))
    return [Problem("pools", f"pools of different clouds in one plan ({where}); one plan is one cluster",
                    "plan each cloud's pools separately (one stack per cloud)")]


def _total(pps: dict[str, PoolPlan]) -> tuple[int, float]:
    gpu = [p for p in pps.values() if p.instance.gpus]
    nodes = sum(p.provisioned for p in gpu)
    costs = [p.cost() for p in gpu]
    return nodes, (math.inf if None in costs else sum(c for c in costs if c is not None))


def plan(graph: Any, pools: list[GpuPool], catalog: Any = None, region: str | None = None) -> CapacityPlan:
    """`region`: the stack's region, where the catalog's (regional) prices are looked up; without
    it a pool's zone names the region, and a pool with neither is priced with a warning."""
    from ..hardware.catalog import load

    graph.check()
    cat = catalog or load()
    if not pools:
        raise PlanError("no GPU pool to place the workers on", "pools", "add a GpuPool(instance_type=…, nodes=…)")
    insts = [cat.get(p.instance_type) for p in pools]
    if problems := _cloud_problems(pools, insts):
        raise PlanError(problems)
    gpu_pools = [(p, i) for p, i in zip(pools, insts) if i.gpus > 0]
    if not gpu_pools:
        raise PlanError("none of the pools has GPUs", "pools", "add a GPU instance type")
    empty = {p.name: PoolPlan(p, i, region=region) for p, i in zip(pools, insts)}
    kv = _replicas(graph, kv=True)
    warnings: list[str] = []
    errors: list[Problem] = []
    best: tuple | None = None
    # 1) everything on one pool (KV workers then share its fabric domain): fewest provisioned nodes, then cost
    for pool, inst in gpu_pools:
        try:
            pp, reasons = _place_on(graph, pool, inst, region=region)
        except PlanError as e:
            errors += e.problems
            continue
        bad = [_too_many(graph, pp)] if _too_many(graph, pp) else []
        if kv:
            bad += fab.zone_problems(pool, inst)
        if bad:
            errors += bad
            continue
        key = (*_total({**empty, pool.name: pp}), pool.name)
        if best is None or key < best[0]:
            best = (key, {**empty, pool.name: pp}, reasons)
    if best is not None:
        _, chosen, reasons = best
    else:
        if len(gpu_pools) < 2 or not _replicas(graph, kv=False):     # nothing to spread
            raise PlanError(_dedupe(errors))
        chosen, reasons, spread_errors = _spread(graph, gpu_pools, empty, kv, region)
        if chosen is None:
            raise PlanError(_dedupe(errors + spread_errors))
        warnings.append("no single pool holds the graph: independent workers are spread over pools "
                        f"{', '.join(p for p, pp in chosen.items() if pp.needed)} by a greedy split "
                        "(each pool packed exactly; the split itself is not proven minimal)")
    plans = [chosen[p.name] for p in pools]
    system = []
    if graph.frontend is not None:
        system.append(f"{graph.frontend.name} ×{graph.frontend.replicas}")
    if graph.planner is not None:
        system.append(f"{graph.planner.name} ×{graph.planner.replicas}")
    warnings += _warnings(graph, plans)
    for pp in plans:
        if pp.needed > pp.lower_bound:
            reasons.append(f"{pp.pool.name}: {pp.needed} nodes for a lower bound of {pp.lower_bound}"
                           + ("" if pp.optimal else " (search budget spent)"))
    return CapacityPlan(graph=graph.name, pools=plans, system=system, warnings=warnings, reasons=reasons)


def _spread(graph: Any, gpu_pools: list[tuple[GpuPool, InstanceType]], empty: dict[str, PoolPlan],
            kv: list[Replica], region: str | None = None) -> tuple[dict[str, PoolPlan] | None, list[str], list[Problem]]:
    """KV replicas on one pool (one fabric domain), independent replicas packed pool after pool
    (cheapest known $/GPU first) up to each pool's limit, keeping the fullest nodes."""
    def order(pi):
        p, i = pi
        price = i.price(p.purchase_option, _where(p, region))
        return (price is None, (price or 0) / i.gpus, p.name)

    ranked = sorted(gpu_pools, key=order)
    assigned: dict[str, list[Replica]] = {p.name: [] for p, _ in ranked}
    reasons: list[str] = []
    problems: list[Problem] = []
    if kv:
        home = None
        for pool, inst in ranked:
            try:
                pp, why = _place_on(graph, pool, inst, kv, region)
            except PlanError:
                continue
            if not _too_many(graph, pp) and not fab.zone_problems(pool, inst):
                home, reasons = pool.name, why
                break
        if home is None:
            return None, [], [Problem("pools", f"the prefill and decode workers of {graph.name} exchange KV cache and "
                                      "must share one fabric domain (one pool), but no pool holds all of them",
                                      "raise one pool's max_nodes (or nodes) or pick a larger instance type")]
        assigned[home] = list(kv)
    label_of = {(i, r): f"{w.name}[{r}]" for i, w in enumerate(graph.workers) for r in range(w.replicas)}
    left = _replicas(graph, kv=False)
    for pool, inst in ranked:
        if not left:
            break
        base = len(_place_on(graph, pool, inst, assigned[pool.name], region)[0].nodes) if assigned[pool.name] else 0
        room = _limit(pool)[0] - base
        if room <= 0:
            continue
        try:
            pp, _ = _place_on(graph, pool, inst, left, region)
        except PlanError as e:
            problems += e.problems
            continue
        keep = sorted(pp.nodes, key=lambda n: (-len(n.slots), n.index))[:room]
        kept = {n.index for n in keep}
        # a multinode replica is kept only with all of its nodes
        labels = {lb for lb in {lb for n in keep for lb in _labels(n)}
                  if all(n.index in kept for n in pp.nodes if lb in _labels(n))}
        took = [rep for rep in left if label_of[rep] in labels]
        assigned[pool.name] += took
        left = [rep for rep in left if rep not in took]
    if left:
        return None, [], problems or [Problem("pools", f"{len(left)} replica(s) of {graph.name} "
                                             f"({', '.join(label_of[r] for r in left[:4])}{'…' if len(left) > 4 else ''}) "
                                             "fit in no pool once the others are full",
                                             "raise a pool's max_nodes (or nodes) or add a pool")]
    out = dict(empty)
    for pool, inst in ranked:
        if assigned[pool.name]:
            out[pool.name] = _place_on(graph, pool, inst, assigned[pool.name], region)[0]
    return out, reasons, []


def _warnings(graph: Any, plans: list[PoolPlan]) -> list[str]:
    out = []
    kv_names = {f"{w.name}[{r}]" for i, r in _replicas(graph, kv=True) for w in [graph.workers[i]]}
    kv_pools = {pp.pool.name for pp in plans if any(_labels(n) & kv_names for n in pp.nodes)}
    for pp in plans:
        inst, name = pp.instance, pp.pool.name
        if inst.gpus:
            idle_nodes = pp.provisioned - pp.needed
            if idle_nodes:
                why = f"min_nodes: {pp.pool.min_nodes}" if (pp.pool.min_nodes or 0) >= pp.provisioned else \
                    f"nodes: {pp.pool.nodes}"
                out.append(f"{name} runs {pp.provisioned} node(s) ({why}) but the graph needs {pp.needed}: "
                           f"{idle_nodes} idle node(s)")
            idle = pp.provisioned * inst.gpus - pp.used_gpus
            if idle:
                out.append(f"{idle} idle GPU(s) on {name}")
        if pp.needed and name not in kv_pools:
            out += [f"{p.path}: {p.message} (fix: {p.fix})" for p in fab.zone_problems(pp.pool, inst)]
        if pp.needed and inst.fabric.kind != "none" and inst.fabric.resource and fab.node_capacity(inst) is None:
            out.append(f"{inst.name}: how many {inst.fabric.resource} a node has is unknown (catalog "
                       "fabric.devices): fabric requests not checked")
        note = pp.price_note() if pp.provisioned else None
        if note and pp.price() is None:
            out.append(f"price unknown for {inst.name} ({pp.pool.purchase_option}): {note}; {name} "
                       + ("cost not computed" if inst.gpus else "(system pool) not in the cost"))
        elif note and inst.gpus:
            out.append(note)
        if pp.needed and inst.fabric.kind == "none":
            here = set().union(*(_labels(n) for n in pp.nodes))
            out += [f"{w.name} spans {w.nodes_for(inst.gpus)} {inst.name} nodes, which have no RDMA fabric: its "
                    "TP/PP traffic between nodes goes over TCP (pick a type with more GPUs per node or EFA/IB/RoCE)"
                    for w in graph.workers
                    if w.nodes_for(inst.gpus) > 1 and any(lb.startswith(f"{w.name}[") for lb in here)]
        if pp.needed and inst.gpu_memory_gb is None and graph.model is not None and graph.model.weight_bytes():
            out.append(f"GPU memory of {inst.name} is unknown (catalog): weights-fit check skipped")
    return out


def _labels(node: NodePlan) -> set[str]:
    return {v.split(" rank ")[0] for v in node.slots.values()}


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for p in problems:
        if (p.path, p.message) not in seen:
            seen.add((p.path, p.message))
            out.append(p)
    return out

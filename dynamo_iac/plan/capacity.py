"""plan(graph, pools) → CapacityPlan: where every worker replica lands, how many nodes of which
type, what it costs, and why when it does not fit.

Rules: a node is never over-committed, in GPUs nor in its fabric resource (EFA interfaces, RDMA
networks: hardware.fabric; only pods that use the fabric — prefill/decode, or a replica spanning
nodes — request it); a replica that fits on one node never spans two; a multinode replica takes
whole nodes; every replica of a worker is on one pool (one DGD component = one pod template);
workers that exchange KV cache (prefill + decode) share one pool, one fabric domain, whose zonal
fabric needs one zone; where the fabric cannot carry KV between pods of one node (catalog:
same_node_kv_transfer) prefill and decode get separate nodes; pools of one plan are of one cloud;
CPU-only components go to the system pool. Which pool each worker goes to is searched
(plan/assign.py) to minimise nodes, then cost. Nodes are reported twice: `nodes` placement needs,
`provisioned` what the node group runs (max(needed, min_nodes, nodes if given)); cost is on
provisioned nodes.
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
from .assign import Assignment, assign
from .placement import Item, lower_bound, solve

HOURS_PER_MONTH = 730
ASSIGN_BUDGET = 4_000                     # distinct pool packings the worker → pool search may evaluate


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
    placement: dict[str, str] = field(default_factory=dict)   # GPU worker name → its pool
    placement_optimal: bool = True         # the worker → pool assignment is proven minimal

    def worker_pools(self) -> dict[str, str]:
        """GPU worker name → the one pool all its replicas run on (what DynamoDeployment pins)."""
        return dict(self.placement)

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
            "worker_pools": self.worker_pools(),
            "placement_optimal": self.placement_optimal,
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
def _items(graph: Any, inst: InstanceType, only: Iterable[int] | None = None
           ) -> tuple[dict[str, list[Item]], list[tuple[str, int, int]], list[Problem]]:
    """Single-node items (GPUs, label, fabric units) per role, multinode replicas (label, nodes,
    gpus/node), problems — of every GPU worker, or of the workers indexed `only`."""
    gpn = inst.gpus
    keep = None if only is None else set(only)
    groups: dict[str, list[Item]] = {}
    multi: list[tuple[str, int, int]] = []
    problems: list[Problem] = []
    for i, w in enumerate(graph.workers):
        g = w.gpu_count
        if g == 0 or (keep is not None and i not in keep):
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
        units = fab.pod_request(inst, g, w.role, nodes)         # what the k8s overlay requests
        for r in range(w.replicas):
            if nodes > 1:
                multi.append((f"{w.name}[{r}]", nodes, g // nodes))
            else:
                groups.setdefault(w.role, []).append((g, f"{w.name}[{r}]", units))
    return groups, multi, problems


def _buckets(graph: Any, inst: InstanceType, groups: dict[str, list[Item]]) -> list[list[Item]]:
    """Groups of replicas that may share nodes: all of them, unless the fabric cannot carry KV
    between pods of one node, then prefill and decode each get their own nodes."""
    if graph.is_disaggregated and not fab.kv_same_node(inst):
        return [groups.get("prefill", []), groups.get("decode", []), groups.get("agg", [])]
    return [sum(groups.values(), [])]


def node_lower_bound(graph: Any, inst: InstanceType) -> int:
    groups, multi, _ = _items(graph, inst)
    fcap = fab.node_capacity(inst)
    return (sum(lower_bound(b, inst.gpus, None, fcap) for b in _buckets(graph, inst, groups))
            + sum(n for _, n, _ in multi))


def _where(pool: GpuPool, region: str | None) -> str | None:
    zone = pool.zones[0] if pool.zones else None
    return region or (None if zone is None or zone.isdigit() else region_of(zone))


def _place_on(graph: Any, pool: GpuPool, inst: InstanceType, only: Iterable[int] | None = None,
              region: str | None = None) -> tuple[PoolPlan, list[str]]:
    """Place every replica of the GPU workers (or of the workers indexed `only`) on one pool;
    PlanError when one cannot fit."""
    from .sizing import memory_problems

    gpn = inst.gpus
    groups, multi, problems = _items(graph, inst, only)
    problems += memory_problems(graph, inst, only=only)
    if problems:
        raise PlanError(problems)
    reasons = []
    if graph.is_disaggregated and groups.get("prefill") and groups.get("decode") and not fab.kv_same_node(inst):
        why = ("does not carry KV transfers between pods of the same node (catalog: same_node_kv_transfer=false)"
               if inst.fabric.same_node_kv_transfer is False else
               "is not known to carry KV transfers between pods of the same node (catalog: same_node_kv_transfer "
               "unknown, so the safe choice)")
        reasons.append(f"prefill and decode on separate nodes: {inst.fabric.kind} on {inst.name} {why}")
    fcap = fab.node_capacity(inst)
    asks = sorted({(it[0], it[2]) for v in groups.values() for it in v if it[2]})
    if fcap is not None and any(d * gpn > fcap * s for s, d in asks):      # fabric binds before GPUs
        reasons.append(f"{inst.fabric.resource}: a node has {fcap}; a pod requests "
                       + ", ".join(f"{d} with {s} GPU(s)" for s, d in asks))
    plan = PoolPlan(pool, inst, region=region)
    for label, nodes, per in multi:
        for k in range(nodes):
            node = NodePlan(pool.name, len(plan.nodes), gpn)
            for gpu in range(per):
                node.slots[gpu] = f"{label} rank {k}"
            plan.nodes.append(node)
    plan.lower_bound = len(plan.nodes)
    for bucket in _buckets(graph, inst, groups):
        packing = solve(bucket, gpn, None, fcap)
        plan.lower_bound += packing.lower_bound
        plan.optimal = plan.optimal and packing.optimal
        for bin_ in packing.bins:
            node = NodePlan(pool.name, len(plan.nodes), gpn)
            gpu = 0
            for size, label, _ in sorted(bin_, key=lambda x: (-x[0], x[1])):
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


def _units(graph: Any) -> list[tuple[int, ...]]:
    """Worker indices that go to one pool together: the prefill + decode workers of a
    disaggregated graph (they exchange KV cache: one fabric domain), then every other GPU worker
    alone (a worker's replicas share one pod template, so they share one pool)."""
    gpu = [i for i, w in enumerate(graph.workers) if w.gpu_count]
    kv = tuple(i for i in gpu if graph.is_disaggregated and graph.workers[i].role in fab.KV_ROLES)
    return ([kv] if kv else []) + [(i,) for i in gpu if i not in kv]


def _cloud_problems(pools: list[GpuPool], insts: list[InstanceType]) -> list[Problem]:
    clouds = sorted({i.cloud for i in insts if i.cloud != "any"})
    if len(clouds) <= 1:
        return []
    where = ", ".join(f"{p.name} ({i.name}: {i.cloud})" for p, i in zip(pools, insts))
    return [Problem("pools", f"pools of different clouds in one plan ({where}); one plan is one cluster",
                    "plan each cloud's pools separately (one stack per cloud)")]


def _duplicate_problems(pools: list[GpuPool]) -> list[Problem]:
    seen: dict[str, int] = {}
    out = []
    for i, p in enumerate(pools):
        if p.name in seen:
            out.append(Problem(f"pools[{i}].name", f"pool name {p.name!r} is also pools[{seen[p.name]}]'s: "
                               "the plan, the node groups and the pod selectors key pools by name",
                               "give every pool its own name"))
        seen.setdefault(p.name, i)
    return out


def _score(pp: PoolPlan) -> tuple[int, int, float]:
    """(provisioned nodes, 1 if its price is unknown else 0, known $/h) of a GPU pool."""
    cost = pp.cost()
    return pp.provisioned, int(cost is None), cost or 0.0


def plan(graph: Any, pools: list[GpuPool], catalog: Any = None, region: str | None = None) -> CapacityPlan:
    """`region`: the stack's region, where the catalog's (regional) prices are looked up; without
    it a pool's zone names the region, and a pool with neither is priced with a warning."""
    from ..hardware.catalog import load

    graph.check()
    cat = catalog or load()
    if not pools:
        raise PlanError("no GPU pool to place the workers on", "pools", "add a GpuPool(instance_type=…, nodes=…)")
    if problems := _duplicate_problems(pools):
        raise PlanError(problems)
    insts = [cat.get(p.instance_type) for p in pools]
    if problems := _cloud_problems(pools, insts):
        raise PlanError(problems)
    gpu_pools = [(p, i) for p, i in zip(pools, insts) if i.gpus > 0]
    if not gpu_pools:
        raise PlanError("none of the pools has GPUs", "pools", "add a GPU instance type")
    units = _units(graph)
    kv_unit = {u for u in units if any(graph.workers[i].role in fab.KV_ROLES for i in u) and graph.is_disaggregated}
    placed: dict[tuple[int, frozenset[int]], tuple[PoolPlan, list[str]] | Problem | PlanError] = {}

    def place(p: int, chosen: frozenset[int]) -> tuple[PoolPlan, list[str]] | Problem | PlanError:
        """Pool p holding the units `chosen`: its plan and reasons, or why it cannot."""
        key = (p, chosen)
        if key not in placed:
            pool, inst = gpu_pools[p]
            if not chosen:
                placed[key] = (PoolPlan(pool, inst, region=region), [])
            else:
                try:
                    pp, why = _place_on(graph, pool, inst, [i for u in chosen for i in units[u]], region)
                except PlanError as e:
                    placed[key] = e
                else:
                    bad = _too_many(graph, pp) or next(iter(
                        fab.zone_problems(pool, inst) if any(units[u] in kv_unit for u in chosen) else []), None)
                    placed[key] = bad or (pp, why)
        return placed[key]

    def score(p: int, chosen: frozenset[int]) -> tuple[int, int, float] | None:
        got = place(p, chosen)
        return _score(got[0]) if isinstance(got, tuple) else None

    everything = frozenset(range(len(units)))
    if len(gpu_pools) == 1:            # one pool: nothing to choose, place everything at once
        got = place(0, everything)
        if not isinstance(got, tuple):
            raise got if isinstance(got, PlanError) else PlanError([got])
        result = Assignment((everything,), True)
    else:
        choices = [[p for p in range(len(gpu_pools)) if score(p, frozenset({u})) is not None] for u in range(len(units))]
        if problems := _unplaceable(graph, units, kv_unit, choices, place, gpu_pools):
            raise PlanError(problems)
        for u, c in enumerate(choices):    # preferred first: the pool where the unit alone scores best
            c.sort(key=lambda p, u=u: (score(p, frozenset({u})), p))
        sizes = [sum(graph.workers[i].gpu_count * graph.workers[i].replicas for i in u) for u in units]
        result = assign(len(gpu_pools), sizes, choices, score, budget=ASSIGN_BUDGET)
        if result is None:
            raise PlanError(_dedupe(_together_problems(graph, gpu_pools, everything, place)))
        if not result.sets:
            raise PlanError(f"no assignment of {graph.name}'s workers to pools was found within the search budget "
                            f"({ASSIGN_BUDGET} packings)", "pools", "raise max_nodes so the pools hold the "
                            "workers more easily, or use fewer pools")
    chosen_plans: dict[str, PoolPlan] = {p.name: PoolPlan(p, i, region=region) for p, i in zip(pools, insts)}
    reasons: list[str] = []
    for p, members in enumerate(result.sets):
        pp, why = place(p, members)       # type: ignore[misc]
        chosen_plans[gpu_pools[p][0].name] = pp
        reasons += [r for r in why if r not in reasons]
    plans = [chosen_plans[p.name] for p in pools]
    worker_pools = {graph.workers[i].name: gpu_pools[p][0].name
                    for p, members in enumerate(result.sets) for u in sorted(members) for i in units[u]}
    warnings: list[str] = []
    if len({v for v in worker_pools.values()}) > 1:
        warnings.append("workers on several pools (each worker's replicas on one pool, prefill and decode together): "
                        + "; ".join(f"{w} → {p}" for w, p in worker_pools.items()))
    if not result.proven:
        warnings.append(f"the assignment of workers to pools is the best of {ASSIGN_BUDGET} packings searched, "
                        "not proven minimal (each pool's packing still is)")
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
    return CapacityPlan(graph=graph.name, pools=plans, system=system, warnings=warnings, reasons=reasons,
                        placement=dict(sorted(worker_pools.items())), placement_optimal=result.proven)


def _unplaceable(graph: Any, units: list[tuple[int, ...]], kv_unit: set, choices: list[list[int]], place: Any,
                 gpu_pools: list[tuple[GpuPool, InstanceType]]) -> list[Problem]:
    """Why each unit that fits no pool on its own fits none."""
    out: list[Problem] = []
    for u, members in enumerate(units):
        if choices[u]:
            continue
        for p in range(len(gpu_pools)):
            got = place(p, frozenset({u}))
            out += got.problems if isinstance(got, PlanError) else [got]
        if members in kv_unit:
            out.append(Problem("pools", f"the prefill and decode workers of {graph.name} exchange KV cache and "
                               "must share one fabric domain (one pool), but no pool holds all of them",
                               "raise one pool's max_nodes (or nodes) or pick a larger instance type"))
        else:
            name = graph.workers[members[0]].name
            out.append(Problem("pools", f"no pool holds every replica of {name} (a worker's replicas share one pod "
                               "template, so they go to one pool)",
                               "raise one pool's max_nodes (or nodes), pick a larger instance type, or split the "
                               "worker into two workers"))
    return _dedupe(out)


def _together_problems(graph: Any, gpu_pools: list[tuple[GpuPool, InstanceType]], everything: frozenset[int],
                       place: Any) -> list[Problem]:
    """Every unit fits some pool alone, but no assignment holds them all: what one pool would need."""
    out: list[Problem] = []
    for p in range(len(gpu_pools)):
        got = place(p, everything)
        out += got.problems if isinstance(got, PlanError) else [] if isinstance(got, tuple) else [got]
    out.append(Problem("pools", f"each worker of {graph.name} fits a pool on its own, but the pools together cannot "
                       "hold them all (every worker's replicas on one pool)",
                       "raise a pool's max_nodes (or nodes) or add a pool"))
    return out


def _warnings(graph: Any, plans: list[PoolPlan]) -> list[str]:
    out = []
    kv_names = {f"{w.name}[{r}]" for w in graph.workers if graph.is_disaggregated and w.role in fab.KV_ROLES
                for r in range(w.replicas)}
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

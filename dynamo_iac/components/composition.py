"""One plan per graph for the whole composition (cluster → platform → deployment).

The first component that sees a graph — the cluster, given `graphs=` (and `placement=`) — plans
it here before anything is registered: where each GPU worker runs (the plan's pool, or a pin),
how many nodes each pool runs, and whether the pins and the fabric allow it. The cluster keeps
the result (`cluster.plans`, graph name → GraphPlan); DynamoDeployment renders from the same
GraphPlan, so the node groups and the DGD's nodeSelectors never disagree. A later component can
only fail after the cluster exists (registration cannot be undone), so its errors say LATE.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..errors import ConfigError, DynamoIacError, PlanError, Problem
from ..hardware.pool import GpuPool

LATE = "pass graphs=[graph] (and placement=) to the cluster so this is caught before anything is created"
KV_ROLES = ("prefill", "decode")

# how a graph is pinned: None (the planner picks), a pool (every worker), worker name → pool name
Pin = "GpuPool | str | Mapping[str, str] | None"


@dataclass(frozen=True)
class GraphPlan:
    capacity: Any                                   # CapacityPlan
    where: dict[str, str]                           # GPU worker name → pool name (all its replicas)
    pin: Any = None                                 # what it was planned with (pool name or worker map)
    instances: dict[str, Any] = field(default_factory=dict)


def resolve_pool(pool: GpuPool | str, pools: Sequence[GpuPool], path: str = "pool") -> GpuPool:
    """The cluster's pool that `pool` names; a pool the cluster does not run is an error (its
    nodeSelector would match no node: Pending forever)."""
    by_name = {p.name: p for p in pools}
    name = pool if isinstance(pool, str) else pool.name
    known = ", ".join(sorted(by_name)) or "(none)"
    if name not in by_name:
        raise ConfigError(f"pool {name!r} is not a pool of this cluster (its pools: {known}); workers pinned to "
                          "it would match no node", path, f"use one of {known}, or add the pool to the cluster")
    if isinstance(pool, GpuPool) and pool != by_name[name]:
        raise ConfigError(f"pool {name!r} differs from the cluster's pool of that name", path,
                          f"pass the cluster's own pool (or its name {name!r})")
    return by_name[name]


def normalise_pin(pin: Any, pools: Sequence[GpuPool], path: str) -> str | dict[str, str] | None:
    if pin is None or (isinstance(pin, Mapping) and not pin):
        return None
    if isinstance(pin, (str, GpuPool)):
        return resolve_pool(pin, pools, path).name
    return dict(sorted(pin.items()))


def _subgraph(graph: Any, names: list[str]) -> Any:
    keep = [w for w, n in zip(graph.workers, graph.worker_names()) if n in names]
    return graph.model_copy(update={"workers": keep})


def _merge(graph: Any, parts: list[Any], pools: Sequence[GpuPool], instances: Mapping[str, Any],
           region: str | None) -> Any:
    """Plans of disjoint worker groups → one CapacityPlan over every pool (each group's nodes are
    its own: pinned workers never share a node with the others)."""
    from ..plan import CapacityPlan, NodePlan, PoolPlan

    out = []
    for pool in pools:
        mine = [pp for cap in parts for pp in cap.pools if pp.pool.name == pool.name]
        nodes = [NodePlan(pool.name, i, n.gpus, dict(n.slots))
                 for i, n in enumerate(n for pp in mine for n in pp.nodes)]
        out.append(PoolPlan(pool, instances[pool.name], nodes, lower_bound=sum(pp.lower_bound for pp in mine),
                            optimal=all(pp.optimal for pp in mine), region=region))
    placement = {w: p for cap in parts for w, p in cap.worker_pools().items()}
    return CapacityPlan(graph=graph.name, pools=out, system=parts[0].system,
                        warnings=[w for cap in parts for w in cap.warnings],
                        reasons=[r for cap in parts for r in cap.reasons], placement=dict(sorted(placement.items())))


def plan_graph(graph: Any, pools: Sequence[GpuPool], instances: Mapping[str, Any], *, catalog: Any = None,
               region: str | None = None, pin: Any = None, path: str = "") -> GraphPlan:
    """Plan `graph` on the cluster's `pools` honouring `pin`; check the placement against the
    fabrics (one registry: targets/k8s/fabrics). Raises DynamoIacError naming every problem."""
    from ..plan import plan
    from ..targets.k8s import fabrics

    graph.check()
    at = f"{path}." if path else ""
    pin = normalise_pin(pin, pools, f"{at}pool")
    by_name = {p.name: p for p in pools}
    roles = {n: w.role for w, n in zip(graph.workers, graph.worker_names()) if w.gpu_count}
    if isinstance(pin, str):
        capacity = _merge(graph, [plan(graph, [by_name[pin]], catalog=catalog, region=region)], pools, instances,
                          region)
    elif isinstance(pin, dict):
        problems = []
        for w, p in pin.items():
            if w not in roles:
                problems.append(Problem(f"{at}placement[{w}]", f"{graph.name} has no GPU worker {w!r}",
                                        f"use one of {sorted(roles)}"))
            elif p not in by_name:
                problems.append(Problem(f"{at}placement[{w}]", f"pool {p!r} is not a pool of this cluster",
                                        f"use one of {sorted(by_name)}"))
        if problems:
            raise ConfigError(problems)
        kv_pins = sorted({pin[w] for w in pin if roles[w] in KV_ROLES})
        if len(kv_pins) > 1:
            placed = [(w, roles[w], by_name[pin[w]], instances[pin[w]]) for w in sorted(pin) if roles[w] in KV_ROLES]
            raise DynamoIacError(fabrics.placement_problems(placed) or [Problem(
                f"{at}placement", f"prefill and decode are pinned to pools {kv_pins}; they exchange KV cache and "
                "share one pool (one fabric domain)", f"pin every prefill and decode worker to one pool, e.g. "
                f"{kv_pins[0]!r}")])
        # KV workers follow the pool their group is pinned to; each pinned group gets nodes of its own
        groups: dict[str | None, list[str]] = {}
        for w in roles:
            p = pin.get(w) or (kv_pins[0] if kv_pins and roles[w] in KV_ROLES else None)
            groups.setdefault(p, []).append(w)
        parts = [plan(_subgraph(graph, ws), [by_name[p]] if p else list(pools), catalog=catalog, region=region)
                 for p, ws in sorted(groups.items(), key=lambda kv: kv[0] or "")]
        capacity = parts[0] if len(parts) == 1 and set(groups) == {None} else _merge(graph, parts, pools, instances, region)
    else:
        capacity = plan(graph, list(pools), catalog=catalog, region=region)
    where = dict(sorted(capacity.worker_pools().items()))     # GPU worker → the one pool of all its replicas
    placed = [(w, roles[w], by_name[p], instances[p]) for w, p in sorted(where.items())]
    problems = fabrics.placement_problems(placed) + _image_problems(graph, placed)
    if problems:
        raise DynamoIacError([Problem(f"{at}{q.path}", q.message, q.fix) for q in problems])
    return GraphPlan(capacity, where, pin, dict(instances))


def _image_problems(graph: Any, placed: list[tuple[str, str, GpuPool, Any]]) -> list[Problem]:
    """Workers on EFA pools run the release's -efa image (libfabric's EFA provider); a release
    without one would get the plain image with FI_PROVIDER=efa, which cannot open the devices."""
    release = graph.release()
    explicit = {n for w, n in zip(graph.workers, graph.worker_names()) if w.image}
    efa = sorted(w for w, _, _, inst in placed if inst.fabric.kind == "efa" and w not in explicit)
    if not efa or release.has_efa_image(graph.backend):
        return []
    return [Problem("dynamo_version", f"Dynamo {release.version} publishes no EFA {graph.backend} runtime image "
                    f"(-efa tag), and {efa} run on EFA pools", "use a release with EFA images (see "
                    "dynamo_iac/data/versions.yaml), or set those workers' image to an EFA-enabled one")]


def plan_graphs(graphs: Any, pools: Sequence[GpuPool], catalog: Any, instances: Mapping[str, Any], *,
                region: str | None = None, placement: Mapping[str, Any] | None = None) -> dict[str, GraphPlan]:
    """Every graph given to a cluster, planned before anything is registered; graph name → plan.
    `placement`: graph name → its pin (a pool name for the whole graph, or worker → pool)."""
    out: dict[str, GraphPlan] = {}
    problems: list[Problem] = []
    graphs = list(graphs or ())
    for name in sorted(set(placement or {}) - {g.name for g in graphs}):
        problems.append(Problem(f"placement[{name}]", "no graph of this name is given to the cluster",
                                f"use one of {sorted(g.name for g in graphs)}"))
    for i, g in enumerate(graphs):
        try:
            out[g.name] = plan_graph(g, pools, instances, catalog=catalog, region=region,
                                     pin=(placement or {}).get(g.name), path=f"graphs[{i}]")
        except DynamoIacError as e:
            problems += [q if q.path.startswith("graphs[") else Problem(f"graphs[{i}].{q.path}", q.message, q.fix)
                         for q in e.problems]
    if problems:
        raise PlanError(problems)
    return out


def desired_nodes(pool: GpuPool, plans: Mapping[str, GraphPlan]) -> int:
    """A pool's desired size: the plan's provisioned count (CapacityPlan contract: max(needed,
    min_nodes, nodes)) summed over the graphs placed on it; the pool's own count without a plan."""
    counts = [pp.provisioned for gp in plans.values() for pp in gp.capacity.pools if pp.pool.name == pool.name]
    if not counts:
        return pool.nodes
    total = sum(counts)
    if total > pool.max:
        raise PlanError(f"the graphs placed on pool {pool.name!r} need {total} nodes, it allows {pool.max}",
                        f"pools[{pool.name}].max_nodes", f"raise max_nodes to {total}")
    return total

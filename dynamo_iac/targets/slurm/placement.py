"""The allocation map (node → GPU index → "Component[replica]") and what Slurm can honour of it.

The map comes from the capacity planner (dynamo_iac.plan: optimal packing, multi-node replicas on
whole nodes), or is given as data (--allocation FILE). Either way it is checked
against the graph (every replica gets exactly its GPUs) and against what Slurm can enforce:
a step asks for a GPU *count* per node and slurmd hands out the lowest free indices, so replicas
are launched in (node, first GPU) order and the map must be dense in that order. The script
verifies every step's real GPUs against the map at run time.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...errors import PlanError, Problem
from ...graph.model import DynamoGraph
from .cluster import SlurmCluster

LABEL_RE = re.compile(r"^(?P<name>[A-Za-z0-9][-A-Za-z0-9]*)\[(?P<replica>\d+)\]")

AllocationMap = dict[str, dict[int, str]]


@dataclass(frozen=True)
class ReplicaPlacement:
    component: str
    replica: int
    role: str                                   # agg | prefill | decode
    gpus: tuple[tuple[str, tuple[int, ...]], ...]   # (node, GPU indices) in cluster node order

    @property
    def label(self) -> str:
        return f"{self.component}[{self.replica}]"

    @property
    def step(self) -> str:
        """srun --job-name: unique in the job, safe in file names."""
        return f"{self.component}-{self.replica}"

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.gpus)

    @property
    def gpus_per_node(self) -> int:
        return len(self.gpus[0][1]) if self.gpus else 0


@dataclass
class Placement:
    cluster: SlurmCluster
    allocation: AllocationMap
    replicas: list[ReplicaPlacement]            # launch order
    head: str                                   # frontend / infra / batch-host node
    source: str                                 # "plan" | "first-fit"
    warnings: list[str] = field(default_factory=list)
    frontend: str = "Frontend"                  # the graph's frontend name, for the map's CPU row

    @property
    def used_nodes(self) -> list[str]:
        used = {self.head} | {n for r in self.replicas for n in r.nodes}
        return [n for n in self.cluster.node_names if n in used]

    def rows(self) -> list[tuple[str, str, str]]:
        """(node, GPU, component) rows like sflow's dry-run map; idle GPUs and CPU steps included."""
        out: list[tuple[str, str, str]] = []
        for node in self.cluster.node_names:
            if node == self.head:
                out.append((node, "-", f"{self.frontend} (cpu), probes (batch host)"))
            gpus = self.allocation.get(node, {})
            for i in range(self.cluster.gpus_per_node):
                out.append((node, str(i), gpus.get(i, "(idle)")))
        return out


def planned(graph: DynamoGraph, cluster: SlurmCluster) -> AllocationMap:
    """The capacity planner's allocation map for this cluster's nodes (one placement algorithm for
    every target): node i of the plan is the cluster's i-th node."""
    from ...hardware.model import InstanceType, Source
    from ...hardware.pool import GpuPool
    from ...plan.capacity import _place_on

    gpn = cluster.gpus_per_node
    nodes = cluster.node_names
    inst = InstanceType(cloud="any", name=f"slurm:{cluster.name}", gpu_model="gpu", gpus=gpn, gpu_memory_gb=None,
                        vcpus=None, memory_gib=None, source=Source(url="slurm cluster file", date="-"))
    pool = GpuPool(name="slurm", instance_type=inst.name, nodes=0, max_nodes=len(nodes))
    pp, _ = _place_on(graph, pool, inst)
    if len(pp.nodes) > len(nodes):
        need = graph.total_gpus()
        raise PlanError(Problem("cluster.nodes", f"{graph.name} needs {len(pp.nodes)} nodes of {gpn} GPUs "
                                f"({need} GPUs); {cluster.name} has {len(nodes)}", _fit_fix(graph, cluster)))
    amap: AllocationMap = {n: {} for n in nodes}
    for node, name in zip(pp.nodes, nodes):
        amap[name] = {g: label.split(" rank ")[0] for g, label in sorted(node.slots.items())}
    return amap


def _fit_fix(graph: DynamoGraph, cluster: SlurmCluster) -> str:
    need = graph.total_gpus()
    have = cluster.node_count * cluster.gpus_per_node
    if need > have:
        return f"the graph needs {need} GPUs, the cluster file offers {have}: raise nodes or lower replicas/parallelism"
    return "lower the replica's GPU count to fit one node, set Worker.nodes, or add nodes"


def load_allocation(data: object, source: str = "allocation") -> AllocationMap:
    """An allocation map from plain data ({node: {gpu: "Component[replica]"}}, e.g. a plan's JSON)."""
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise PlanError(Problem(source, "expected {node: {GPU index: 'Component[replica]'}}",
                                "write one mapping per node, e.g. n0: {0: PrefillWorker[0]}"))
    out: AllocationMap = {}
    for node, gpus in data.items():
        out[str(node)] = {}
        for g, label in gpus.items():
            try:
                out[str(node)][int(g)] = str(label)
            except (TypeError, ValueError):
                raise PlanError(Problem(f"{source}.{node}.{g}", "GPU index is not an integer",
                                        "use 0-based GPU indices")) from None
    return out


def place(graph: DynamoGraph, cluster: SlurmCluster, allocation: AllocationMap | None = None) -> Placement:
    """Check an allocation map (given, from the planner, or first-fit) and order it for Slurm."""
    graph.check()
    source = "given"
    if allocation is None:
        allocation = planned(graph, cluster)
        source = "planner"
    problems: list[Problem] = []
    nodes = cluster.node_names
    for n, gpus in allocation.items():
        if n not in nodes:
            problems.append(Problem(f"allocation.{n}", f"node {n!r} is not in the cluster ({', '.join(nodes)})",
                                    "plan against this cluster's node names"))
        for g in gpus:
            if not 0 <= g < cluster.gpus_per_node:
                problems.append(Problem(f"allocation.{n}.{g}", f"GPU index {g} outside 0..{cluster.gpus_per_node - 1}",
                                        "plan against this cluster's GPUs per node"))
    if problems:
        raise PlanError(problems)

    found: dict[tuple[str, int], dict[str, list[int]]] = {}
    for n in nodes:
        for g, label in sorted(allocation.get(n, {}).items()):
            m = LABEL_RE.match(label)
            if not m:
                raise PlanError(Problem(f"allocation.{n}.{g}", f"label {label!r} is not 'Component[replica]'",
                                        "label GPUs as e.g. PrefillWorker[0]"))
            found.setdefault((m["name"], int(m["replica"])), {}).setdefault(n, []).append(g)

    replicas: list[ReplicaPlacement] = []
    names = graph.worker_names()
    for wi, (w, name) in enumerate(zip(graph.workers, names)):
        for r in range(w.replicas):
            got = found.pop((name, r), None)
            if got is None:
                problems.append(Problem(f"workers[{wi}]", f"{name}[{r}] has no GPUs in the allocation map",
                                        "re-plan the graph for this cluster"))
                continue
            total = sum(len(v) for v in got.values())
            per = {len(v) for v in got.values()}
            if total != w.gpu_count:
                problems.append(Problem(f"workers[{wi}]", f"{name}[{r}] holds {total} GPUs in the map; it needs {w.gpu_count}",
                                        "re-plan the graph for this cluster"))
            if len(per) > 1:
                problems.append(Problem(f"workers[{wi}]", f"{name}[{r}] has unequal GPU counts per node "
                                        f"({', '.join(f'{n}: {len(v)}' for n, v in got.items())}); srun asks for one "
                                        "count per node", "place multi-node replicas on whole nodes"))
            replicas.append(ReplicaPlacement(name, r, w.role, tuple((n, tuple(v)) for n, v in got.items())))
    for (name, r) in found:
        problems.append(Problem("allocation", f"{name}[{r}] is in the map but not in the graph", "re-plan the graph"))
    if problems:
        raise PlanError(problems)

    order = {n: i for i, n in enumerate(nodes)}
    replicas.sort(key=lambda p: (order[p.nodes[0]], p.gpus[0][1][0], p.label))
    problems += _slurm_order_problems(replicas, cluster)
    if problems:
        raise PlanError(problems)

    head = nodes[0]
    warnings = []
    idle = [n for n in nodes if n != head and not allocation.get(n)]
    if idle:
        warnings.append(f"nodes {', '.join(idle)} get no replica; they are not requested")
    return Placement(cluster, {n: dict(sorted(allocation.get(n, {}).items())) for n in nodes},
                     replicas, head, source, warnings,
                     graph.frontend.name if graph.frontend is not None else "Frontend")


def _slurm_order_problems(replicas: list[ReplicaPlacement], cluster: SlurmCluster) -> list[Problem]:
    """slurmd gives a step the lowest free GPU indices: the map must be what that yields in launch order."""
    used: dict[str, set[int]] = {n: set() for n in cluster.node_names}
    out = []
    for rp in replicas:
        for node, gpus in rp.gpus:
            free = [g for g in range(cluster.gpus_per_node) if g not in used[node]]
            expect = tuple(free[: len(gpus)])
            if tuple(sorted(gpus)) != expect:
                out.append(Problem(f"allocation.{node}", f"{rp.label} is planned on GPUs {_idx(gpus)} but Slurm hands "
                                   f"the step the lowest free ones ({_idx(expect)})",
                                   "plan replicas densely from GPU 0 on each node"))
            used[node].update(gpus)
    return out


def _idx(gpus: tuple[int, ...] | list[int]) -> str:
    return ",".join(str(g) for g in gpus)

"""Shared by the cluster, platform and deployment components: naming, Kubernetes providers,
what a cluster hands to the platform, and lazy imports (one cloud never loads another's SDK)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from ..errors import ConfigError, PlanError, Problem
from ..targets.k8s.overlay import PROVIDER_TAINTS, pool_taints, tolerations_for  # noqa: F401  (re-exported)

POOL_LABEL = "dynamo-iac/pool"


def component_type(kind: str, name: str) -> str:
    """Type token of our components, e.g. dynamo:aws:GpuCluster, dynamo:k8s:GpuPlatform."""
    return f"dynamo:{kind}:{name}"


def child_opts(parent: pulumi.Resource, provider: Any = None, **kw: Any) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, provider=provider, **kw)


def provider_from_kubeconfig(name: str, path: str | None, context: str | None = None,
                             opts: pulumi.ResourceOptions | None = None) -> Any:
    """A k8s Provider for an existing cluster (byo). The kubeconfig content is a secret."""
    import pulumi_kubernetes as k8s

    where = path or os.environ.get("KUBECONFIG") or "~/.kube/config"
    file = Path(os.path.expanduser(where.split(os.pathsep)[0]))
    if file.is_file():
        content: Any = pulumi.Output.secret(file.read_text())
    elif pulumi.runtime.is_dry_run():
        # previewing without the cluster's credentials (offline plan): the value is unknown
        content = pulumi.Output.secret(f"(kubeconfig from {where})")
    else:
        raise ConfigError(f"kubeconfig {str(file)!r} does not exist", "cluster.kubeconfig",
                          "point dynamo-iac:cluster.kubeconfig (or $KUBECONFIG) at your cluster's kubeconfig")
    return k8s.Provider(name, kubeconfig=content, context=context, opts=opts)


@dataclass(frozen=True)
class PlatformHints:
    """What a cluster needs from GpuPlatform (components/platform.py) — plain data.

    gpu_operator_values: merged into the GPU Operator chart values;
    namespace_labels: labels of namespaces the platform creates (namespace → labels), e.g. the
      privileged pod-security level the GPU / Network Operator's DaemonSets need;
    depends_on: resources the GPU Operator must wait for (node groups, NicClusterPolicy);
    operator_driver_pools: GPU pools whose NVIDIA driver only the GPU Operator installs.
    """

    gpu_operator_values: dict[str, Any] = field(default_factory=dict)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    depends_on: tuple[pulumi.Resource, ...] = ()
    operator_driver_pools: tuple[str, ...] = ()


def plan_graphs(graphs: Any, pools: Any, catalog: Any) -> dict[str, Any]:
    """Plan every graph on the cluster's pools before anything is registered (PlanError up
    front); pool name → the pools' PoolPlans of all graphs."""
    from ..plan import plan as plan_graph

    out: dict[str, list[Any]] = {}
    problems: list[Problem] = []
    for i, g in enumerate(graphs or ()):
        try:
            cap = plan_graph(g, list(pools), catalog=catalog)
        except PlanError as e:
            problems += [Problem(f"graphs[{i}].{q.path}", q.message, q.fix) for q in e.problems]
            continue
        for pp in cap.pools:
            out.setdefault(pp.pool.name, []).append(pp)
    if problems:
        raise PlanError(problems)
    return out


def desired_nodes(pool: Any, plans: dict[str, list[Any]]) -> int:
    """A pool's desired size: the plan's provisioned count (CapacityPlan contract: max(needed,
    min_nodes, nodes)) summed over the graphs placed on it; the pool's own count without a plan
    or while the planner does not report `provisioned`."""
    counts = [getattr(pp, "provisioned", None) for pp in plans.get(pool.name, [])]
    if not counts or any(c is None for c in counts):
        return pool.nodes
    total = sum(counts)
    if total > pool.max:
        raise PlanError(f"the graphs placed on pool {pool.name!r} need {total} nodes, it allows {pool.max}",
                        f"pools[{pool.name}].max_nodes", f"raise max_nodes to {total}")
    return total

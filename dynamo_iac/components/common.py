"""Shared by the cluster, platform and deployment components: naming, Kubernetes providers,
what a cluster hands to the platform, and lazy imports (one cloud never loads another's SDK)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from ..errors import ConfigError, PlanError, Problem

POOL_LABEL = "dynamo-iac/pool"
GPU_TAINT_KEY = "nvidia.com/gpu"
# Taints a cloud puts on nodes by itself (so a pod on such a pool must tolerate them):
# AKS taints every Spot node (AKS docs "Add a Spot node pool"); GKE taints Arm nodes
# (GKE docs "Arm workloads": kubernetes.io/arch=arm64:NoSchedule). EKS and GKE Spot add none.
PROVIDER_TAINTS = {
    ("azure", "spot"): {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"},
    ("gcp", "arm64"): {"key": "kubernetes.io/arch", "value": "arm64", "effect": "NoSchedule"},
}


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


def pool_taints(cloud: str, pool: Any, instance: Any) -> list[dict[str, str]]:
    """Every taint the nodes of `pool` carry, in Kubernetes form: the GPU taint we set, the ones
    the cloud adds itself. The one source for the node groups' taints and the pods' tolerations."""
    taints = []
    if instance.gpus and pool.taint_gpu:
        from ..hardware.pool import GPU_TAINT

        taints.append(dict(GPU_TAINT))
    for key in (pool.purchase_option, instance.arch):
        if (cloud, key) in PROVIDER_TAINTS:
            taints.append(dict(PROVIDER_TAINTS[(cloud, key)]))
    return taints


def tolerations_for(taints: list[dict[str, str]]) -> list[dict[str, str]]:
    """Tolerations of exactly these taints. The GPU taint is tolerated by key (operator Exists),
    as the GPU Operator and upstream recipes write it; the others by key and value."""
    out = []
    for t in taints:
        if t["key"] == GPU_TAINT_KEY:
            out.append({"key": t["key"], "operator": "Exists", "effect": t["effect"]})
        else:
            out.append({"key": t["key"], "operator": "Equal", "value": t["value"], "effect": t["effect"]})
    return out


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

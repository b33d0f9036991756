"""What a cluster adds to a rendered DGD, independent of the DGD API version.

A fabric module (targets/k8s/fabrics/<kind>.py) turns a catalog InstanceType into a FabricOverlay;
the DGD renderer applies it to every GPU worker in either API version. Nothing cloud-specific is
ever written in the graph itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

GPU_TAINT_KEY = "nvidia.com/gpu"
# Taints a cloud puts on nodes by itself (so a pod on such a pool must tolerate them):
# AKS taints every Spot node (AKS docs "Add a Spot node pool"); GKE taints Arm nodes
# (GKE docs "Arm workloads": kubernetes.io/arch=arm64:NoSchedule). EKS and GKE Spot add none.
PROVIDER_TAINTS = {
    ("azure", "spot"): {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"},
    ("gcp", "arm64"): {"key": "kubernetes.io/arch", "value": "arm64", "effect": "NoSchedule"},
}
# What a pod needs to use the node's RDMA NICs, as the upstream recipes run every fabric's
# workers (aws-p5 / aks-ib / gke-roce overlays alike): IPC_LOCK to pin registered memory,
# SYS_PTRACE for CUDA IPC between the pod's processes, privileged + root for the host's RDMA
# device nodes (/dev/infiniband, EFA, the RoCE NICs) and an unlimited memlock.
RDMA_CAPABILITIES = ("IPC_LOCK", "SYS_PTRACE")


def pool_taints(cloud: str, pool: Any, instance: Any) -> list[dict[str, str]]:
    """Every taint the nodes of `pool` carry, in Kubernetes form: the GPU taint we set and the ones
    the cloud adds itself. The one source of the node groups' taints and the pods' tolerations."""
    from ...hardware.pool import GPU_TAINT

    taints = [dict(GPU_TAINT)] if instance.gpus and pool.taint_gpu else []
    for key in (pool.purchase_option, instance.arch):
        if (cloud, key) in PROVIDER_TAINTS:
            taints.append(dict(PROVIDER_TAINTS[(cloud, key)]))
    return taints


def tolerations_for(taints: list[dict[str, str]]) -> list[dict[str, str]]:
    """Tolerations of exactly these taints: the GPU taint by key (operator Exists, as the GPU
    Operator and the upstream recipes write it), the others by key and value."""
    out = []
    for t in taints:
        if t["key"] == GPU_TAINT_KEY:
            out.append({"key": t["key"], "operator": "Exists", "effect": t["effect"]})
        else:
            out.append({"key": t["key"], "operator": "Equal", "value": t["value"], "effect": t["effect"]})
    return out


def merge_tolerations(*groups: Any) -> tuple[dict, ...]:
    out: list[dict] = []
    for g in groups:
        out += [dict(t) for t in g if t not in out]
    return tuple(out)


@dataclass(frozen=True)
class FabricOverlay:
    kind: str = "none"                                   # efa | infiniband | roce | gpudirect-tcpx(o) | none
    env: tuple[tuple[str, str], ...] = ()                # main-container env, in order (overrides same name)
    kv_backends: tuple[str, ...] | None = None           # NIXL backends for KV_TRANSFER_CONFIG, e.g. ("LIBFABRIC",)
    resources: tuple[tuple[str, str], ...] = ()          # extended resources, limits and requests
    capabilities: tuple[str, ...] = ()                   # securityContext.capabilities.add
    privileged: bool = False
    run_as_user: int | None = None
    volumes: tuple[dict, ...] = ()                       # pod volumes (hostPath …)
    volume_mounts: tuple[dict, ...] = ()                 # main container mounts
    pod_annotations: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[dict, ...] = ()
    image_variant: str | None = None                     # "efa" → the release's -efa runtime image
    image_pull_secrets: tuple[str, ...] = ()
    # prefill and decode pods must land on different nodes (same-node KV transfer unsupported)
    separate_prefill_decode_nodes: bool = False


@dataclass(frozen=True)
class RenderTarget:
    """What the cluster/pool knows that the graph does not."""

    gpus_per_node: int | None = None                     # decides multinode (nodeCount) per worker
    overlay: FabricOverlay = field(default_factory=FabricOverlay)
    instance: Any = None                                 # catalog InstanceType: overlay per worker pod size
    node_selector: tuple[tuple[str, str], ...] = ()      # pin GPU workers to the pool
    gpu_toleration: bool = False                         # tolerate nvidia.com/gpu:NoSchedule (tainted GPU pools)
    tolerations: tuple[dict, ...] = ()                   # of the pool's taints (tolerations_for(pool_taints))
    # the model-cache PVC is created outside the DGD (the DynamoDeployment component creates it),
    # so a ModelCache(create=True) renders as a mount of an existing claim in either API
    model_cache_external: bool = False
    # per-worker targets (worker name → target) when the plan spreads workers over pools
    components: tuple[tuple[str, "RenderTarget"], ...] = ()

    def overlay_for(self, gpus_per_pod: int, role: str | None = None, nodes: int = 1) -> FabricOverlay:
        """The fabric overlay of one GPU worker pod (its fabric share depends on its GPU count),
        with the tolerations of the pool's taints first. `role` / `nodes` (the worker's role and
        the nodes a replica spans): a pod that does not use the fabric (hardware.fabric.uses_fabric:
        no KV exchange, one node) gets none, as the planner packs it by GPUs only."""
        overlay = self.overlay
        if self.instance is not None and gpus_per_pod >= 1:
            from ...hardware.fabric import uses_fabric
            from .fabrics import overlay_for

            use = role is None or uses_fabric(role, nodes)
            overlay = overlay_for(self.instance, gpus_per_pod) if use else FabricOverlay()
        if self.tolerations and gpus_per_pod >= 1:
            overlay = replace(overlay, tolerations=merge_tolerations(self.tolerations, overlay.tolerations))
        return overlay

    def for_component(self, name: str) -> "RenderTarget":
        """The target of one component: its own pool's when the plan placed it, else this one."""
        return dict(self.components).get(name, self)

    @classmethod
    def for_pool(cls, pool: Any, instance: Any, *, cloud: str = "", pool_label: str = "dynamo-iac/pool"
                 ) -> "RenderTarget":
        """Everything a pool implies: node size, fabric, pinning to the pool, and tolerations of
        every taint its nodes carry (the GPU taint, the cloud's own such as AKS Spot)."""
        return cls(gpus_per_node=instance.gpus or None, instance=instance,
                   node_selector=((pool_label, pool.name),),
                   tolerations=tuple(tolerations_for(pool_taints(cloud, pool, instance))))

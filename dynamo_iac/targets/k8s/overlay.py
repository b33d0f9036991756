"""What a cluster adds to a rendered DGD, independent of the DGD API version.

A fabric module (targets/k8s/fabrics/<kind>.py) turns a catalog InstanceType into a FabricOverlay;
the DGD renderer applies it to every GPU worker in either API version. Nothing cloud-specific is
ever written in the graph itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    zone_affinity_label: str | None = None               # keep workers in one zone (EFA: one AZ)

    def overlay_for(self, gpus_per_pod: int) -> FabricOverlay:
        """The fabric overlay of one GPU worker pod (its fabric share depends on its GPU count)."""
        if self.instance is None or gpus_per_pod < 1:
            return self.overlay
        from .fabrics import overlay_for

        return overlay_for(self.instance, gpus_per_pod)

    @classmethod
    def for_pool(cls, pool: Any, instance: Any, *, pool_label: str = "dynamo-iac/pool") -> "RenderTarget":
        """Everything a pool implies: node size, fabric, pinning to the pool, the GPU taint."""
        return cls(gpus_per_node=instance.gpus or None, instance=instance,
                   node_selector=((pool_label, pool.name),), gpu_toleration=bool(pool.taint_gpu))

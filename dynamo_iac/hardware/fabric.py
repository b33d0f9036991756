"""Fabric facts the planner and the k8s overlays must agree on, computed once from the catalog:
which pods use the fabric at all, what one GPU pod requests of the node's fabric resource, how
much a node has, and the zone rule of a pool's fabric domain (where KV transfer must stay)."""
from __future__ import annotations

import math

from ..errors import Problem
from .model import InstanceType
from .pool import GpuPool


KV_ROLES = ("prefill", "decode")


def uses_fabric(role: str, nodes: int = 1) -> bool:
    """Does a worker pod use the node's RDMA fabric? Only to move KV cache between prefill and
    decode pods, or for the TP/PP collectives of a replica spanning nodes. A single-node
    aggregated pod exchanges nothing with other pods (NVLink inside the node), so it requests no
    fabric resource and packs by GPUs only."""
    return role in KV_ROLES or nodes > 1


def pod_request(instance: InstanceType, gpus: int, role: str | None = None, nodes: int = 1) -> int:
    """Units of `fabric.resource` one pod of `gpus` GPUs requests on `instance` (0 = none).

    `role` / `nodes`: the worker's role and the nodes one replica spans; a pod that does not
    `uses_fabric` requests 0. role=None: the caller has already decided the pod uses the fabric.
    gpu-share: the pod's GPU share of the node's devices, at least 1 (p5.48xlarge: 32 EFA /
    8 GPUs → 16 for a TP4 pod, as the upstream AWS recipe does); one: a single unit."""
    fab = instance.fabric
    if role is not None and not uses_fabric(role, nodes):
        return 0
    if fab.kind == "none" or not fab.resource or gpus < 1 or not instance.gpus:
        return 0
    if fab.pod_request == "one":
        return 1
    if not fab.devices:
        return 0
    return max(1, math.floor(fab.devices * min(gpus, instance.gpus) / instance.gpus))


def node_capacity(instance: InstanceType) -> int | None:
    """Units of `fabric.resource` one node advertises; None = unbounded or unknown."""
    fab = instance.fabric
    if fab.kind == "none" or not fab.resource:
        return None
    return fab.resource_per_node or fab.devices or None


def unknown_count(instance: InstanceType) -> str | None:
    """The catalog field a fabric needs and does not have (None = complete): the pod request of a
    gpu-share fabric (EFA) and every overlay/launch template need the device count; GKE's RDMA and
    TCPX overlays need the number of networks."""
    fab = instance.fabric
    if fab.kind in ("efa", "infiniband") and not fab.devices:
        return "fabric.devices"
    if fab.kind == "roce" and not (fab.networks or fab.devices):
        return "fabric.networks"
    if fab.kind in ("gpudirect-tcpx", "gpudirect-tcpxo") and not fab.networks:
        return "fabric.networks"
    return None


def kv_same_node(instance: InstanceType) -> bool:
    """May a prefill and a decode pod share a node? Unknown (null) counts as no."""
    return bool(instance.fabric.same_node_kv_transfer)


def zone_problems(pool: GpuPool, instance: InstanceType, where: str = "", subject: str = "") -> list[Problem]:
    """A pool whose fabric domain is zonal (AWS EFA: one AZ / placement group; GCP RDMA: one zonal
    VPC) must name exactly one zone, else the domain is undefined. Shared with components/aws.py.
    `subject` names the pool in the message (default: pool 'name')."""
    dom = instance.fabric.domain
    if dom not in ("az", "network") or len(pool.zones) == 1:
        return []
    what = "no zone" if not pool.zones else f"zones {pool.zones}"
    kind = instance.fabric.kind
    reach = (f"{kind.upper()} only connects instances of one AZ (one placement group)" if dom == "az" else
             f"a {kind} RDMA network is zonal, it only connects nodes of one zone")
    return [Problem(f"{where or 'pools[' + pool.name + ']'}.zones",
                    f"{subject or f'pool {pool.name!r}'} ({instance.name}) has {what}; {reach}",
                    f"set zones: [{(pool.zones or ['<one zone>'])[0]!r}] (one zone)")]


def domain(pool: GpuPool, instance: InstanceType) -> tuple[str, ...] | None:
    """The fabric domain a pool sits in: pools with the same key can exchange KV over the fabric
    (the fabrics' placement checks of pinned workers use it; the planner keeps prefill + decode
    on one pool, which is always one domain). None = the pool has no fabric domain (no RDMA
    fabric, or a zonal fabric without one zone)."""
    dom = instance.fabric.domain
    if dom == "pool":                      # Azure: IB only inside one VM scale set = one node pool
        return (instance.cloud, instance.fabric.kind, "pool", pool.name)
    if dom in ("az", "network"):
        return (instance.cloud, instance.fabric.kind, dom, pool.zone) if pool.zone else None
    return None

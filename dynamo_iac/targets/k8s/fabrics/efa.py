"""AWS EFA: what a GPU worker pod needs to move KV cache over EFA, derived from the catalog.

Matches the fabric parts of the upstream AWS recipe (recipes/qwen3-32b/vllm/cloud-providers,
overlay aws-p5.48xlarge): `vpc.amazonaws.com/efa` = the pod's GPU share of the node's EFA
interfaces (hardware.fabric.pod_request: 16 of 32 for a TP4 pod on p5.48xlarge), libfabric env
(FI_PROVIDER=efa, FI_EFA_USE_DEVICE_RDMA=1, SHM transfer off), NIXL's LIBFABRIC backend for
KV transfer and KVBM, the RDMA security context (overlay.RDMA_CAPABILITIES, privileged, root —
as upstream) and the release's `-efa` image.
EFA cannot carry KV between two pods of one node (EAGAIN), so prefill and decode are kept apart.
"""
from __future__ import annotations

from typing import Sequence

from ....errors import ConfigError, DynamoIacError, Problem
from ....hardware.fabric import domain, pod_request
from ....hardware.model import InstanceType
from ....hardware.pool import GpuPool
from ..overlay import RDMA_CAPABILITIES, FabricOverlay

KIND = "efa"
ENV = (("DYN_KVBM_NIXL_BACKEND_LIBFABRIC", "true"),
       ("DYN_KVBM_NIXL_BACKEND_UCX", "false"),
       ("FI_PROVIDER", "efa"),
       ("FI_EFA_USE_DEVICE_RDMA", "1"),
       ("FI_EFA_ENABLE_SHM_TRANSFER", "0"),
       ("FI_LOG_LEVEL", "warn"))


def overlay(instance: InstanceType, worker_gpus: int) -> FabricOverlay:
    fab = instance.fabric
    where = f"catalog[{instance.name}].fabric"
    if fab.kind != KIND:
        raise ConfigError(f"{instance.name} has fabric {fab.kind!r}, not {KIND!r}", f"{where}.kind",
                          "use fabrics.overlay_for(instance, gpus)")
    if not fab.devices or not fab.resource:
        raise ConfigError(f"the EFA interface count of {instance.name} is unknown", f"{where}.devices",
                          "set fabric.devices (and resource: vpc.amazonaws.com/efa) in the catalog")
    if worker_gpus < 1:
        raise DynamoIacError(f"an EFA overlay is for GPU workers, got {worker_gpus} GPUs", "worker.gpus",
                             "apply fabric overlays to GPU workers only")
    count = pod_request(instance, worker_gpus)       # what the planner packs nodes against
    return FabricOverlay(
        kind=KIND, env=ENV, kv_backends=(fab.nixl_backend or "LIBFABRIC",),
        resources=((fab.resource, str(count)),),
        capabilities=RDMA_CAPABILITIES, privileged=True, run_as_user=0, image_variant="efa",
        separate_prefill_decode_nodes=not fab.same_node_kv_transfer)


def placement_problems(placed: Sequence[tuple[str, str, GpuPool, InstanceType]]) -> list[Problem]:
    """KV-transfer workers (prefill/decode) on EFA pools must share one fabric domain
    (hardware.fabric.domain: one AZ): EFA only connects instances of one AZ, so prefill in
    us-east-1a and decode in us-east-1b would move KV cache over TCP."""
    kv = [(w, r, p, i) for w, r, p, i in placed if r in ("prefill", "decode") and i.fabric.kind == KIND]
    domains = {domain(p, i) for _, _, p, i in kv}
    if len(domains) <= 1 and None not in domains:
        return []
    where = ", ".join(f"{w} ({r}) → {p.name} {p.zones}" for w, r, p, _ in sorted(kv, key=lambda x: x[0]))
    return [Problem("deployment.pool", f"prefill and decode workers sit on EFA pools that are not in one AZ "
                    f"({where}); EFA only connects instances of one AZ, so KV transfer would fall back to TCP",
                    "place every prefill and decode worker on pools of one AZ (each with exactly one zone)")]

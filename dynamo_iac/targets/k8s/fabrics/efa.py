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

from ....errors import ConfigError, DynamoIacError
from ....hardware.fabric import pod_request
from ....hardware.model import InstanceType
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

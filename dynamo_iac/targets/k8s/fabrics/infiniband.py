"""InfiniBand (Azure ND-series on AKS): what a GPU worker pod needs to move KV cache over IB.

Derived from the catalog entry only. Matches the fabric parts of the upstream AKS overlay
(recipes/qwen3-32b/vllm/cloud-providers, overlay `aks-ib`):
  - the RDMA shared device plugin's resource (`rdma/shared_ib: 1`; one grant opens every HCA),
  - UCX over IB with GPUDirect RDMA (`UCX_NET_DEVICES` = one HCA per GPU of the pod,
    `UCX_IB_GPU_DIRECT_RDMA=yes`), NCCL bootstrap on eth0, NIXL's UCX backend,
  - the `/dev/infiniband` host devices mounted into the container and the RDMA security context
    (overlay.RDMA_CAPABILITIES, privileged, root — as upstream).
The pool's tolerations (GPU taint, AKS Spot) come from the pool (RenderTarget.for_pool).
The cluster side (Network Operator, NicClusterPolicy, device plugin) is components/azure.py.
"""
from __future__ import annotations

from typing import Sequence

from ....errors import ConfigError, DynamoIacError, Problem
from ....hardware.fabric import pod_request
from ....hardware.model import InstanceType
from ....hardware.pool import GpuPool
from ..overlay import RDMA_CAPABILITIES, FabricOverlay

KIND = "infiniband"
# mlx5 is the driver of the ConnectX HCAs on every ND-series VM; ports are 1-based.
HCA_PREFIX = "mlx5_"
IB_VOLUME = {"name": "ib", "hostPath": {"path": "/dev/infiniband"}}
IB_MOUNT = {"name": "ib", "mountPath": "/dev/infiniband"}


def ucx_net_devices(hcas: int) -> str:
    return ",".join(f"{HCA_PREFIX}{i}:1" for i in range(hcas))


def overlay(instance: InstanceType, worker_gpus: int) -> FabricOverlay:
    """The overlay for one GPU worker pod of `worker_gpus` GPUs on an IB node of `instance`."""
    fab = instance.fabric
    where = f"catalog[{instance.name}].fabric"
    if fab.kind != KIND:
        raise ConfigError(f"{instance.name} has fabric {fab.kind!r}, not {KIND!r}", f"{where}.kind",
                          "use the overlay of the instance's fabric kind (fabrics.overlay_for)")
    problems = []
    if not fab.devices:
        problems.append(Problem(f"{where}.devices", "the number of InfiniBand HCAs per node is unknown",
                                "set fabric.devices in the catalog (e.g. 8 for Standard_ND96isr_H100_v5)"))
    if not fab.resource:
        problems.append(Problem(f"{where}.resource", "the Kubernetes resource of the RDMA device plugin is unknown",
                                "set fabric.resource in the catalog (rdma/shared_ib with the shared device plugin)"))
    if problems:
        raise ConfigError(problems)
    if worker_gpus < 1:
        raise DynamoIacError(f"an InfiniBand overlay is for GPU workers, got {worker_gpus} GPUs", "worker.gpus",
                             "apply fabric overlays to GPU workers only")
    # one HCA per GPU (ND H100/H200 v5: a dedicated 400 Gb/s HCA per GPU), never more than the node has
    hcas = min(worker_gpus, fab.devices or 0)
    backend = fab.nixl_backend or "UCX"
    return FabricOverlay(
        kind=KIND,
        env=(("UCX_NET_DEVICES", ucx_net_devices(hcas)),
             ("UCX_IB_GPU_DIRECT_RDMA", "yes"),
             ("NCCL_SOCKET_IFNAME", "eth0")),
        kv_backends=(backend,),
        # the shared device plugin hands every HCA to any pod holding one unit (catalog
        # pod_request: one; the planner packs nodes against resource_per_node = rdmaHcaMax)
        resources=((fab.resource or "", str(pod_request(instance, worker_gpus))),),
        capabilities=RDMA_CAPABILITIES, privileged=True, run_as_user=0,
        volumes=(IB_VOLUME,),
        volume_mounts=(IB_MOUNT,),
        separate_prefill_decode_nodes=not fab.same_node_kv_transfer,
    )


def placement_problems(placed: Sequence[tuple[str, str, GpuPool, InstanceType]]) -> list[Problem]:
    """KV-transfer workers (prefill/decode) on IB pools must share one node pool.

    `placed` is (worker name, role, pool, instance) per GPU worker. Azure wires InfiniBand only
    between VMs of one scale set, i.e. one AKS agent pool: a prefill worker in pool A cannot
    reach a decode worker in pool B over IB, and NIXL would silently fall back to TCP.
    """
    kv = [(w, r, p) for w, r, p, i in placed if r in ("prefill", "decode") and i.fabric.kind == KIND]
    pools = sorted({p.name for _, _, p in kv})
    if len(pools) <= 1:
        return []
    where = ", ".join(f"{w} ({r}) → {p.name}" for w, r, p in sorted(kv, key=lambda x: x[0]))
    return [Problem("deployment.pool", f"prefill and decode workers are placed in InfiniBand node pools {pools} "
                    f"({where}); InfiniBand only connects VMs of one scale set (one AKS node pool), so KV "
                    "transfer between them would fall back to TCP",
                    f"place every prefill and decode worker in one pool, e.g. {pools[0]!r}")]

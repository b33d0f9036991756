"""RDMA over Converged Ethernet (GKE A3 Ultra / A4: ConnectX-7 NICs in a RoCE VPC).

Derived from the catalog entry only. Matches the fabric parts of the upstream GKE overlay
(recipes/qwen3-32b/vllm/cloud-providers, overlay `gke-roce`):
  - one GKE multi-network per GPU of the pod (`networking.gke.io.networks/rdma-N` and its `.IP`),
    attached through the `networking.gke.io/interfaces` annotation (eth0 stays the default),
  - the NCCL gIB plugin and the GKE-installed NVIDIA libraries mounted from the host,
  - NCCL bootstrap on eth0 without cross-NIC rings, NIXL's default (UCX) backend,
  - the RDMA security context (overlay.RDMA_CAPABILITIES, privileged, root — as upstream) and
    the toleration of GKE's arm64 taint; the pool's own tolerations come from the pool.
The names of the Network objects are shared with components/gcp.py, which creates them.
"""
from __future__ import annotations

import json
from typing import Sequence

from ....errors import ConfigError, DynamoIacError, Problem
from ....hardware.model import InstanceType
from ....hardware.pool import GpuPool
from ..overlay import RDMA_CAPABILITIES, FabricOverlay

KIND = "roce"
NETWORK_RESOURCE = "networking.gke.io.networks"
# GKE taints Arm nodes (A4X / GB200) with kubernetes.io/arch=arm64:NoSchedule
ARM64_TOLERATION = {"key": "kubernetes.io/arch", "operator": "Equal", "value": "arm64", "effect": "NoSchedule"}
# where GKE's nccl-rdma-installer (components/gke_rdma.py) puts the gIB NCCL plugin and GKE puts the
# NVIDIA driver libraries; the installer also copies gIB's libraries into nvidia/lib64, so the
# pod needs no LD_LIBRARY_PATH of its own (upstream's gke-roce overlay sets none either)
HOST_LIBS = (("gib", "/home/kubernetes/bin/gib", "/usr/local/gib"),
             ("nvidia", "/home/kubernetes/bin/nvidia", "/usr/local/nvidia"))


def rdma_network_name(index: int) -> str:
    """Name of the GKE Network object of the index-th RDMA NIC (created by GcpGpuCluster)."""
    return f"rdma-{index}"


def gvnic_network_name(index: int) -> str:
    """Name of the GKE Network object of the index-th extra gVNIC (1-based, eth0 is the default)."""
    return f"gvnic-{index}"


def gvnic_networks(instance: InstanceType) -> int:
    """Extra gVNIC NICs beside eth0 on this machine type (A3 Ultra / A4: 1); catalog extra."""
    return int(instance.extra.get("gvnic_networks", 0))


def interfaces_annotation(networks: list[str], first_index: int) -> str:
    """The `networking.gke.io/interfaces` value, laid out as upstream writes it."""
    rows = [{"interfaceName": "eth0", "network": "default"}]
    rows += [{"interfaceName": f"eth{first_index + i}", "network": n} for i, n in enumerate(networks)]
    return "[" + ",\n ".join(json.dumps(r, separators=(",", ":")) for r in rows) + "]\n"


def overlay(instance: InstanceType, worker_gpus: int) -> FabricOverlay:
    """The overlay for one GPU worker pod of `worker_gpus` GPUs on a RoCE node of `instance`."""
    fab = instance.fabric
    where = f"catalog[{instance.name}].fabric"
    if fab.kind != KIND:
        raise ConfigError(f"{instance.name} has fabric {fab.kind!r}, not {KIND!r}", f"{where}.kind",
                          "use the overlay of the instance's fabric kind (fabrics.overlay_for)")
    nics = fab.networks or fab.devices
    if not nics:
        raise ConfigError([Problem(f"{where}.networks", "the number of RDMA networks per node is unknown",
                                   "set fabric.networks in the catalog (8 for a3-ultragpu-8g)")])
    if worker_gpus < 1:
        raise DynamoIacError(f"a RoCE overlay is for GPU workers, got {worker_gpus} GPUs", "worker.gpus",
                             "apply fabric overlays to GPU workers only")
    # one RDMA NIC per GPU (each CX-7 sits next to its GPU), never more than the node has
    names = [rdma_network_name(i) for i in range(min(worker_gpus, nics))]
    resources: list[tuple[str, str]] = []
    for n in names:
        resources += [(f"{NETWORK_RESOURCE}/{n}", "1"), (f"{NETWORK_RESOURCE}/{n}.IP", "1")]
    # eth1… are the extra gVNICs of the node; the RDMA NICs come after them
    first = 1 + gvnic_networks(instance)
    # upstream tolerates GKE's arm64 taint on every RoCE worker, so one manifest serves A3 Ultra /
    # A4 (x86) and A4X (arm64) pools; harmless where no node carries the taint
    tolerations = [ARM64_TOLERATION]
    return FabricOverlay(
        kind=KIND,
        env=(("NCCL_SOCKET_IFNAME", "eth0"), ("NCCL_CROSS_NIC", "0")),
        kv_backends=None,            # upstream leaves NIXL on its default backend (UCX)
        resources=tuple(resources),
        capabilities=RDMA_CAPABILITIES, privileged=True, run_as_user=0,
        volumes=tuple({"name": n, "hostPath": {"path": host}} for n, host, _ in HOST_LIBS),
        volume_mounts=tuple({"name": n, "mountPath": mount} for n, _, mount in HOST_LIBS),
        pod_annotations=(("networking.gke.io/default-interface", "eth0"),
                         ("networking.gke.io/interfaces", interfaces_annotation(names, first))),
        tolerations=tuple(tolerations),
        separate_prefill_decode_nodes=not fab.same_node_kv_transfer,
    )


def placement_problems(placed: Sequence[tuple[str, str, GpuPool, InstanceType]]) -> list[Problem]:
    """KV-transfer workers (prefill/decode) on RoCE pools must share one zone: a RoCE VPC is zonal
    (its network profile is <zone>-vpc-roce), so NICs in two zones sit in two RDMA networks."""
    kv = [(w, r, p) for w, r, p, i in placed if r in ("prefill", "decode") and i.fabric.kind == KIND]
    zones = sorted({z for _, _, p in kv for z in p.zones})
    if len(zones) <= 1:
        return []
    where = ", ".join(f"{w} ({r}) → {p.name} {p.zones}" for w, r, p in sorted(kv, key=lambda x: x[0]))
    return [Problem("deployment.pool", f"prefill and decode workers sit on RoCE pools in zones {zones} ({where}); "
                    "a RoCE network is zonal, so KV transfer between zones has no RDMA path",
                    "put every prefill and decode worker's pool in one zone")]


"""GKE GPUDirect-TCPX (a3-highgpu-8g) and GPUDirect-TCPXO (a3-megagpu-8g): no KV-transfer path.

TCPX / TCPXO are NCCL network plugins (the nccl-tcpx(o) installer, the RxDM sidecar, NRI device
injection and vpc1…vpcN interfaces; GKE "Maximize GPU network bandwidth with GPUDirect-TCPX",
cluster-toolkit gpu_direct.tf): they carry NCCL collectives only. NIXL, which moves Dynamo's KV
cache, reaches RDMA through UCX or libfabric on InfiniBand, RoCE or EFA (Dynamo docs "RDMA Setup");
on these machine types it would fall back to TCP on eth0, and upstream Dynamo has no TCPX(O) recipe.
So prefill / decode workers on these pools are refused with the fix instead of being rendered
without an overlay; aggregated workers get no overlay (NCCL across nodes then uses TCP sockets).
"""
from __future__ import annotations

from typing import Sequence

from ....errors import ConfigError, Problem
from ....hardware.model import InstanceType
from ....hardware.pool import GpuPool
from ..overlay import FabricOverlay

KINDS = ("gpudirect-tcpx", "gpudirect-tcpxo")


def overlay(instance: InstanceType, worker_gpus: int) -> FabricOverlay:
    """Aggregated GPU workers on a TCPX(O) node: nothing to add (see the module docstring)."""
    fab = instance.fabric
    if fab.kind not in KINDS:
        raise ConfigError(f"{instance.name} has fabric {fab.kind!r}, not one of {KINDS}",
                          f"catalog[{instance.name}].fabric.kind", "use fabrics.overlay_for(instance, gpus)")
    return FabricOverlay(kind=fab.kind, separate_prefill_decode_nodes=not fab.same_node_kv_transfer)


def placement_problems(placed: Sequence[tuple[str, str, GpuPool, InstanceType]]) -> list[Problem]:
    """Prefill / decode workers placed on a TCPX(O) pool: NIXL has no GPUDirect path there."""
    return [Problem("deployment.pool", f"{w} ({role}) is placed on pool {pool.name!r} ({inst.name}, "
                    f"{inst.fabric.kind}): GPUDirect-{inst.fabric.kind.split('-', 1)[1].upper()} carries NCCL "
                    "traffic only, NIXL has no RDMA path there for the KV transfer of disaggregated serving",
                    "put prefill and decode on a GKE RoCE pool (a3-ultragpu-8g or a4-highgpu-8g), or serve "
                    "the graph aggregated (patterns.aggregated) on this pool")
            for w, role, pool, inst in placed if role in ("prefill", "decode") and inst.fabric.kind in KINDS]

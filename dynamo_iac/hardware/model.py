"""Schema of the hardware catalog (the data lives in dynamo_iac/data/catalog.yaml).

A fact about an instance type lives here once; the planner, the cloud components and the
fabric overlays all read it from the catalog entry, never from their own tables.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Cloud = Literal["aws", "azure", "gcp", "any"]
FabricKind = Literal["efa", "infiniband", "roce", "gpudirect-tcpx", "gpudirect-tcpxo", "none"]
PurchaseOption = Literal["on-demand", "spot", "capacity-block", "reservation"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    url: str
    date: str                       # YYYY-MM-DD the fact was read
    note: str = ""


class Price(_Strict):
    option: PurchaseOption
    usd_per_hour: float | None      # None = unknown (never invented)
    region: str
    source: Source


class Fabric(_Strict):
    """The node's fast GPU-to-GPU network and how Kubernetes exposes it."""

    kind: FabricKind = "none"
    devices: int | None = None              # EFA interfaces / IB HCAs; None = unknown
    resource: str | None = None             # k8s extended resource, e.g. vpc.amazonaws.com/efa, rdma/shared_ib
    resource_per_node: int | None = None    # how many of `resource` a node advertises (None = devices)
    networks: int | None = None             # extra VPC networks (GKE multi-networking)
    gbps: int | None = None                 # aggregate bandwidth per node
    # KV-cache transfer between two pods on the *same* node works over this fabric?
    # (EFA: no — libfabric returns EAGAIN between pods on one node, so prefill/decode get
    # separate nodes.) Read by the planner and the k8s anti-affinity; never hard-coded there.
    same_node_kv_transfer: bool = True
    # the domain that KV transfer must stay inside: az (AWS AZ / placement group),
    # pool (Azure: IB connects VMs of one scale set), network (GCP: one RDMA VPC)
    domain: Literal["az", "pool", "network", "none"] = "none"
    nixl_backend: Literal["LIBFABRIC", "UCX"] | None = None
    source: Source | None = None


class InstanceType(_Strict):
    cloud: Cloud
    name: str
    gpu_model: str                          # e.g. H100, H200, A100, L40S, B200, GB200
    gpus: int = Field(ge=0)
    gpu_memory_gb: float | None             # per GPU
    vcpus: int | None
    memory_gib: float | None
    arch: Literal["x86_64", "arm64"] = "x86_64"
    fabric: Fabric = Fabric()
    prices: tuple[Price, ...] = ()
    source: Source
    # cloud-specific facts used by that cloud's component only (e.g. GCP accelerator type)
    extra: dict[str, str | int | bool] = Field(default_factory=dict)

    def price(self, option: PurchaseOption = "on-demand") -> float | None:
        for p in self.prices:
            if p.option == option:
                return p.usd_per_hour
        return None

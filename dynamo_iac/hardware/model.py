"""Schema of the hardware catalog (the data lives in dynamo_iac/data/catalog.yaml).

A fact about an instance type lives here once; the planner, the cloud components and the
fabric overlays all read it from the catalog entry, never from their own tables.
"""
from __future__ import annotations

import datetime as _dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Cloud = Literal["aws", "azure", "gcp", "any"]
FabricKind = Literal["efa", "infiniband", "roce", "gpudirect-tcpx", "gpudirect-tcpxo", "none"]
PurchaseOption = Literal["on-demand", "spot", "capacity-block", "reservation"]
PURCHASE_OPTIONS: tuple[str, ...] = PurchaseOption.__args__        # type: ignore[attr-defined]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    url: str
    date: str                       # YYYY-MM-DD the fact was read ("-" for synthetic entries, e.g. Slurm)
    note: str = ""

    @field_validator("date")
    @classmethod
    def _iso(cls, v: str) -> str:
        if v != "-":
            try:
                _dt.date.fromisoformat(v)
            except ValueError:
                raise ValueError(f"date {v!r} is not YYYY-MM-DD") from None
        return v


class Price(_Strict):
    option: PurchaseOption
    usd_per_hour: float | None = Field(ge=0)   # None = unknown (never invented)
    region: str
    source: Source


class Fabric(_Strict):
    """The node's fast GPU-to-GPU network and how Kubernetes exposes it."""

    kind: FabricKind = "none"
    devices: int | None = Field(None, ge=0)           # EFA interfaces / IB HCAs / RDMA NICs; None = unknown
    resource: str | None = None                       # k8s extended resource, e.g. vpc.amazonaws.com/efa, rdma/shared_ib
    resource_per_node: int | None = Field(None, ge=1)  # how many of `resource` a node advertises (None = devices)
    # what one GPU pod requests of `resource` (hardware.fabric.pod_request):
    #   gpu-share: its GPU share of the node's devices, at least 1 (EFA: 16 of 32 for TP4 on p5)
    #   one:       one unit (IB shared device plugin; one unit of each GKE RDMA network it uses)
    pod_request: Literal["gpu-share", "one"] = "gpu-share"
    networks: int | None = Field(None, ge=0)          # extra VPC networks (GKE multi-networking)
    gbps: int | None = Field(None, ge=0)              # aggregate bandwidth per node
    # KV-cache transfer between two pods on the *same* node works over this fabric? None = unknown,
    # treated as no. (EFA: no — libfabric returns EAGAIN between pods on one node, so prefill/decode
    # get separate nodes.) Read by the planner and the k8s anti-affinity; never hard-coded there.
    same_node_kv_transfer: bool | None = True
    # the domain that KV transfer must stay inside: az (AWS AZ / placement group),
    # pool (Azure: IB connects VMs of one scale set), network (GCP: one zonal RDMA VPC)
    domain: Literal["az", "pool", "network", "none"] = "none"
    nixl_backend: Literal["LIBFABRIC", "UCX"] | None = None
    source: Source | None = None


class InstanceType(_Strict):
    cloud: Cloud
    name: str
    gpu_model: str                          # e.g. H100, H200, A100-80GB, L40S, B200, GB200
    gpus: int = Field(ge=0)
    gpu_memory_gb: float | None = Field(gt=0)  # per GPU, decimal GB (vendor figure; GiB converted)
    vcpus: int | None = Field(gt=0)
    memory_gib: float | None = Field(gt=0)
    arch: Literal["x86_64", "arm64"] = "x86_64"
    fabric: Fabric = Fabric()
    prices: tuple[Price, ...] = ()
    source: Source
    # cloud-specific facts used by that cloud's component only (e.g. GCP accelerator type)
    extra: dict[str, str | int | bool] = Field(default_factory=dict)

    def price_entry(self, option: str = "on-demand", region: str | None = None) -> Price | None:
        """The catalog price of `option`, preferring `region` (a zone like us-east-1a matches us-east-1)."""
        cands = [p for p in self.prices if p.option == option]
        if region:
            here = [p for p in cands if region == p.region or region.startswith(p.region)]
            cands = here or cands
        return cands[0] if cands else None

    def price(self, option: str = "on-demand", region: str | None = None) -> float | None:
        p = self.price_entry(option, region)
        return None if p is None else p.usd_per_hour

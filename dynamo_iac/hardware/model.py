"""Schema of the hardware catalog (the data lives in dynamo_iac/data/catalog.yaml).

A fact about an instance type lives here once; the planner, the cloud components and the
fabric overlays all read it from the catalog entry, never from their own tables.
"""
from __future__ import annotations

import datetime as _dt
import re
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

    def price_entry(self, option: str = "on-demand", where: str | None = None) -> Price | None:
        """The catalog price of `option` where a pool runs: `where` is a region, or a zone that
        names its region (us-east-1a, us-central1-b → us-east-1, us-central1). Prices are
        regional: with `where`, another region's entry is never returned (None = no entry here);
        without it, the first entry listed, and the caller says whose region it is."""
        cands = [p for p in self.prices if p.option == option]
        if where is None:
            return cands[0] if cands else None
        return next((p for p in cands if in_region(where, p.region)), None)

    def price(self, option: str = "on-demand", where: str | None = None) -> float | None:
        p = self.price_entry(option, where)
        return None if p is None else p.usd_per_hour

    def price_regions(self, option: str = "on-demand") -> list[str]:
        """Regions the catalog has a known `option` price for."""
        return [p.region for p in self.prices if p.option == option and p.usd_per_hour is not None]


def region_of(where: str) -> str:
    """The region a zone names (us-east-1a → us-east-1, us-central1-b → us-central1); a region as is."""
    m = re.fullmatch(r"(.*\d)-?[a-z]", where)
    return m.group(1) if m else where


def in_region(where: str, region: str) -> bool:
    """`where` is `region` or one of its zones: the region plus a letter, with or without a dash
    (AWS us-east-1a, GCP us-central1-b); us-east-1-atl-1a is the Atlanta Local Zone, not us-east-1."""
    return where == region or re.fullmatch(re.escape(region) + r"-?[a-z]", where) is not None

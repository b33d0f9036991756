"""Schema of the hardware catalog (the data lives in dynamo_iac/data/catalog.yaml).

A fact about an instance type lives here once; the planner, the cloud components and the
fabric overlays all read it from the catalog entry, never from their own tables.
"""
from __future__ import annotations

import datetime as _dt
import re
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Cloud = Literal["aws", "azure", "gcp", "any"]
CLOUDS = {"aws": "AWS", "azure": "Azure", "gcp": "GCP"}     # the clouds a pool can be on, and their names
FabricKind = Literal["efa", "infiniband", "roce", "gpudirect-tcpx", "gpudirect-tcpxo", "none"]
PurchaseOption = Literal["on-demand", "spot", "capacity-block", "reservation"]
PURCHASE_OPTIONS: tuple[str, ...] = PurchaseOption.__args__        # type: ignore[attr-defined]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# numbers are taken as written: no bool → 1 / "8" → 8 coercion, no inf / nan
def _count(**kw: Any) -> Any:
    return Field(strict=True, **kw)


def _number(**kw: Any) -> Any:
    return Field(strict=True, allow_inf_nan=False, **kw)


@lru_cache(maxsize=1)
def builtin_doc() -> dict[str, Any]:
    """The package catalog file, parsed once (catalog.py reads its entries, Fabric its kind defaults)."""
    from .. import yamlio

    return yamlio.load(resources.files("dynamo_iac.data").joinpath("catalog.yaml").read_text())


def fabric_defaults() -> dict[str, dict[str, Any]]:
    """Per fabric kind, the facts an entry inherits when it does not give them (catalog.yaml
    `fabric_defaults`, each with its source): a user's `{kind: efa, devices: 8}` gets EFA's
    same-node and domain rules, never permissive ones."""
    return builtin_doc().get("fabric_defaults") or {}


class Source(_Strict):
    url: str
    date: str                       # YYYY-MM-DD the fact was read ("-" for synthetic entries, e.g. Slurm)
    note: str = ""

    @field_validator("date", mode="before")
    @classmethod
    def _iso(cls, v: Any) -> Any:
        if isinstance(v, _dt.date) and not isinstance(v, _dt.datetime):
            return v.isoformat()               # an unquoted YAML date (2026-01-01) is a date, not a string
        if isinstance(v, str) and v != "-":
            try:
                _dt.date.fromisoformat(v)
            except ValueError:
                raise ValueError(f"date {v!r} is not YYYY-MM-DD") from None
        return v


class Price(_Strict):
    option: PurchaseOption
    usd_per_hour: float | None = _number(ge=0)   # None = unknown (never invented)
    region: str
    source: Source


class Fabric(_Strict):
    """The node's fast GPU-to-GPU network and how Kubernetes exposes it."""

    kind: FabricKind = "none"
    devices: int | None = _count(default=None, ge=0)  # EFA interfaces / IB HCAs / RDMA NICs; None = unknown
    resource: str | None = None                       # k8s extended resource, e.g. vpc.amazonaws.com/efa, rdma/shared_ib
    resource_per_node: int | None = _count(default=None, ge=1)  # how many of `resource` a node advertises (None = devices)
    # what one GPU pod requests of `resource` (hardware.fabric.pod_request):
    #   gpu-share: its GPU share of the node's devices, at least 1 (EFA: 16 of 32 for TP4 on p5)
    #   one:       one unit (IB shared device plugin; one unit of each GKE RDMA network it uses)
    pod_request: Literal["gpu-share", "one"] = "gpu-share"
    networks: int | None = _count(default=None, ge=0)  # extra VPC networks (GKE multi-networking)
    gbps: int | None = _count(default=None, ge=0)      # aggregate bandwidth per node
    # KV-cache transfer between two pods on the *same* node works over this fabric? None = unknown,
    # treated as no. (EFA: no — libfabric returns EAGAIN between pods on one node, so prefill/decode
    # get separate nodes.) Read by the planner and the k8s anti-affinity; never hard-coded there.
    # Fields not given come from the kind's row of fabric_defaults (see _kind_defaults).
    same_node_kv_transfer: bool | None = None
    # the domain that KV transfer must stay inside: az (AWS AZ / placement group),
    # pool (Azure: IB connects VMs of one scale set), network (GCP: one zonal RDMA VPC)
    domain: Literal["az", "pool", "network", "none"] = "none"
    nixl_backend: Literal["LIBFABRIC", "UCX"] | None = None
    source: Source | None = None

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            base = fabric_defaults().get(data.get("kind", "none")) if isinstance(data.get("kind", "none"), str) else None
            if base:
                data = {**base, **data}
        return data


class InstanceType(_Strict):
    cloud: Cloud
    name: str
    gpu_model: str                          # e.g. H100, H200, A100-80GB, L40S, B200, GB200
    gpus: int = _count(ge=0)
    gpu_memory_gb: float | None = _number(gt=0)  # per GPU, GB as the vendor's page states it
    vcpus: int | None = _count(gt=0)
    memory_gib: float | None = _number(gt=0)
    arch: Literal["x86_64", "arm64"] = "x86_64"
    fabric: Fabric = Field(default_factory=Fabric)
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

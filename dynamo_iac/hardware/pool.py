"""GpuPool: a group of identical GPU nodes. Cloud-neutral; the planner and every cluster
component take the same object, and the catalog entry supplies every hardware fact."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .model import PurchaseOption

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


class GpuPool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}$", description="pool name (also the k8s node label value)")
    instance_type: str = Field(description="catalog name, e.g. p5.48xlarge, Standard_ND96isr_H100_v5, a3-ultragpu-8g")
    nodes: int = Field(1, ge=0, description="desired node count")
    min_nodes: int | None = Field(None, ge=0)
    max_nodes: int | None = Field(None, ge=0)
    zones: list[str] = Field(default_factory=list, description="AZ / zone(s); EFA/IB/RDMA pools need exactly one")
    purchase_option: PurchaseOption = "on-demand"
    capacity_reservation_id: str | None = None
    placement_group: bool | None = None      # None = on for fabric pools unless reserved capacity
    labels: dict[str, str] = Field(default_factory=dict)
    taint_gpu: bool = True                    # nvidia.com/gpu NoSchedule taint
    gpu_driver: Literal["operator", "provider"] = "operator"   # who installs the NVIDIA driver

    @model_validator(mode="after")
    def _bounds(self) -> "GpuPool":
        lo = self.min_nodes if self.min_nodes is not None else self.nodes
        hi = self.max_nodes if self.max_nodes is not None else self.nodes
        if lo > hi:
            raise ValueError(f"min_nodes ({lo}) > max_nodes ({hi}); raise max_nodes or lower min_nodes")
        if not (lo <= self.nodes <= hi):
            raise ValueError(f"nodes ({self.nodes}) must lie within min_nodes..max_nodes ({lo}..{hi})")
        return self

    @property
    def min(self) -> int:
        return self.min_nodes if self.min_nodes is not None else self.nodes

    @property
    def max(self) -> int:
        return self.max_nodes if self.max_nodes is not None else self.nodes

    @property
    def zone(self) -> str | None:
        return self.zones[0] if len(self.zones) == 1 else None

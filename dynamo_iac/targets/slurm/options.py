"""Per-run choices that are neither the graph nor the cluster: engine, benchmark, serving."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class BenchmarkOptions(BaseModel):
    """An aiperf step after readiness; its artifacts land in <run dir>/aiperf."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: list[str] = Field(default_factory=lambda: ["aiperf"], description="aiperf launcher on the head node")
    concurrency: int = Field(1, ge=1)
    request_count: int = Field(10, ge=1)
    isl: int = Field(64, ge=1, description="synthetic input tokens (mean)")
    osl: int = Field(16, ge=1, description="output tokens (mean)")
    streaming: bool = True
    tokenizer: str | None = Field(None, description="default: the model path/id")
    extra_args: list[str] = Field(default_factory=list)
    image: str | None = Field(None, description="pyxis image for aiperf (default: the graph's container, if any)")


class RunOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: Literal["graph", "mocker"] = Field("graph", description="mocker: dynamo.mocker stands in for every engine")
    model_path: str | None = Field(None, description="model directory the workers load (mocker: required)")
    speedup_ratio: float = Field(100.0, gt=0, description="dynamo.mocker --speedup-ratio")
    benchmark: BenchmarkOptions | None = None
    keep_serving: bool | None = Field(None, description="after readiness (and the benchmark) keep serving until "
                                                        "cancelled; default: yes unless a benchmark runs")
    job_name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    run_dir: str | None = Field(None, description="fixed run directory (default <output_dir>/<job>-<job id>)")

    @property
    def serve_after_ready(self) -> bool:
        return self.keep_serving if self.keep_serving is not None else self.benchmark is None

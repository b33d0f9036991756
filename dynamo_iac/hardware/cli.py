"""`dynamo-iac catalog [--cloud aws] [--gpu h100] [--json]`: the instance catalog with sources."""
from __future__ import annotations

import json
import sys
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("catalog")
    def catalog_cmd(
        cloud: Optional[str] = typer.Option(None, "--cloud", help="aws | azure | gcp"),
        gpu: Optional[str] = typer.Option(None, "--gpu", help="GPU model filter, e.g. h100"),
        as_json: bool = typer.Option(False, "--json", help="JSON on stdout"),
    ) -> None:
        """Instance / VM types: GPUs, memory, fabric and prices, each with its source."""
        from rich.console import Console
        from rich.table import Table

        from ..errors import ConfigError
        from .catalog import load

        if cloud and cloud not in ("aws", "azure", "gcp"):
            raise ConfigError(f"unknown cloud {cloud!r}", "--cloud", "use aws, azure or gcp")
        items = load().select(cloud=cloud, gpu=gpu)
        if as_json:
            sys.stdout.write(json.dumps([i.model_dump(mode="json") for i in items], indent=2, sort_keys=True) + "\n")
            return
        t = Table(title="dynamo-iac catalog", title_justify="left", header_style="bold")
        for col in ("cloud", "name", "GPUs", "GPU", "GB/GPU", "vCPU", "GiB", "arch", "fabric", "$/h on-demand"):
            t.add_column(col, no_wrap=col in ("name", "fabric"))
        for i in items:
            f = i.fabric
            fab = "-" if f.kind == "none" else f"{f.kind}" + (f"×{f.devices}" if f.devices else "") + \
                (f" ({f.networks} nets)" if f.networks else "")
            price = i.price("on-demand")

            def fmt(v):
                return "unknown" if v is None else f"{v:g}"
            t.add_row(i.cloud, i.name, str(i.gpus), i.gpu_model, fmt(i.gpu_memory_gb), fmt(i.vcpus), fmt(i.memory_gib),
                      i.arch, fab, "unknown" if price is None else f"{price:,.2f}")
        Console(highlight=False).print(t)

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
        gpu: Optional[str] = typer.Option(None, "--gpu", help="GPU model, e.g. h100, a100 (both A100 variants), b200"),
        as_json: bool = typer.Option(False, "--json", help="JSON on stdout"),
    ) -> None:
        """Instance / VM types: GPUs, memory, fabric and prices, each with its source."""
        from rich.console import Console
        from rich.table import Table

        from ..errors import ConfigError
        from .catalog import load
        from .model import CLOUDS, PURCHASE_OPTIONS

        cloud = cloud.lower() if cloud else None
        if cloud and cloud not in CLOUDS:
            raise ConfigError(f"unknown cloud {cloud!r}", "--cloud", "use aws, azure or gcp")
        cat = load()
        items = cat.select(cloud=cloud, gpu=gpu)
        if not items:
            raise ConfigError(f"no {cloud + ' ' if cloud else ''}instance type has GPU model {gpu!r}", "--gpu",
                              f"use one of {', '.join(cat.gpu_models(cloud))}" + (f" (on {cloud})" if cloud else ""))
        if as_json:
            sys.stdout.write(json.dumps([i.model_dump(mode="json") for i in items], indent=2, sort_keys=True) + "\n")
            return
        console = Console(highlight=False)
        t = Table(title="dynamo-iac catalog ($/h per node; ? = unknown; \\[n] = source)", title_justify="left",
                  header_style="bold")
        for col in ("cloud", "name", "GPUs", "vCPU/GiB", "fabric", "$/h by purchase option"):
            t.add_column(col, no_wrap=col in ("cloud", "name"), overflow="fold")

        def fmt(v):
            return "?" if v is None else f"{v:g}"
        sources: dict[str, int] = {}

        def ref(url: str) -> str:
            return f"[{sources.setdefault(url, len(sources) + 1)}]"
        for i in items:
            f = i.fabric
            fab = "-" if f.kind == "none" else f"{f.kind}" + (f"×{f.devices}" if f.devices else "") + \
                (f" ({f.networks} nets)" if f.networks else "") + (f" {ref(f.source.url)}" if f.source else "")
            prices = [f"{p.option} {'?' if p.usd_per_hour is None else f'{p.usd_per_hour:,.2f}'} {p.region} "
                      f"{ref(p.source.url)}" for opt in PURCHASE_OPTIONS for p in i.prices if p.option == opt]
            gpus = f"{i.gpus}× {i.gpu_model} {fmt(i.gpu_memory_gb)} GB" if i.gpus else "-"
            t.add_row(i.cloud, i.name + f" {ref(i.source.url)}", gpus, f"{fmt(i.vcpus)}/{fmt(i.memory_gib)} {i.arch}",
                      fab, "\n".join(prices) or "-")
        console.print(t)
        for url, n in sources.items():
            console.print(f"[{n}] {url}", markup=False, soft_wrap=True)

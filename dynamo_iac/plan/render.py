"""The capacity plan for people: a table per pool and an allocation tree (node → GPU → replica)."""
from __future__ import annotations

from typing import Any


def allocation_lines(plan: Any) -> list[str]:
    lines = []
    for p in plan.pools:
        if not p.nodes:
            continue
        lines.append(f"{p.pool.name} ({p.instance.name}, {p.instance.gpus}× {p.instance.gpu_model}, "
                     f"{p.pool.purchase_option})")
        for ni, n in enumerate(p.nodes):
            last_n = ni == len(p.nodes) - 1
            lines.append(f"{'└─' if last_n else '├─'} {n.name}  {len(n.slots)}/{n.gpus} GPUs")
            for gi in range(n.gpus):
                label = n.slots.get(gi, "(idle)")
                lines.append(f"{'   ' if last_n else '│  '}{'└─' if gi == n.gpus - 1 else '├─'} GPU {gi}: {label}")
    if plan.system:
        lines.append(f"system pool: {', '.join(plan.system)}")
    return lines


def print_plan(plan: Any, console: Any) -> None:
    from rich.table import Table

    t = Table(show_edge=False, header_style="bold")
    for col in ("pool", "instance", "GPUs/node", "nodes", "max", "GPUs used", "$/node·h", "$/h"):
        t.add_column(col)
    for p in plan.pools:
        price = p.price()
        t.add_row(p.pool.name, p.instance.name, str(p.instance.gpus), str(len(p.nodes)), str(p.pool.max),
                  f"{p.used_gpus}/{len(p.nodes) * p.instance.gpus}",
                  "unknown" if price is None else f"{price:,.2f}",
                  "unknown" if price is None else f"{price * len(p.nodes):,.2f}")
    console.print(t)
    for line in allocation_lines(plan):
        console.print(line, markup=False, highlight=False)
    h, m = plan.cost_per_hour(), plan.cost_per_month()
    console.print(f"cost: {'unknown' if h is None else f'${h:,.2f}/hour'} · "
                  f"{'unknown' if m is None else f'${m:,.0f}/month'} · GPU utilisation "
                  f"{plan.gpu_utilisation():.0%}", markup=False)
    for r in plan.reasons:
        console.print(f"why: {r}", markup=False)
    for w in plan.warnings:
        console.print(f"warning: {w}", markup=False)

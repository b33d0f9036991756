"""The capacity plan for people: a table per pool and an allocation tree (node → GPU → replica)."""
from __future__ import annotations

from typing import Any


def allocation_lines(plan: Any) -> list[str]:
    lines = []
    for p in plan.pools:
        if not p.provisioned or not p.instance.gpus:
            continue
        lines.append(f"{p.pool.name} ({p.instance.name}, {p.instance.gpus}× {p.instance.gpu_model}, "
                     f"{p.pool.purchase_option})")
        idle = p.provisioned - len(p.nodes)
        for ni, n in enumerate(p.nodes):
            last_n = ni == len(p.nodes) - 1 and not idle
            lines.append(f"{'└─' if last_n else '├─'} {n.name}  {len(n.slots)}/{n.gpus} GPUs")
            for gi in range(n.gpus):
                label = n.slots.get(gi, "(idle)")
                lines.append(f"{'   ' if last_n else '│  '}{'└─' if gi == n.gpus - 1 else '├─'} GPU {gi}: {label}")
        if idle:
            lines.append(f"└─ {idle} more node(s) provisioned (min_nodes / nodes), all GPUs idle")
    if plan.system:
        lines.append(f"system pool: {', '.join(plan.system)}")
    return lines


def _usd(v: float | None, fmt: str = "{:,.2f}") -> str:
    return "unknown" if v is None else fmt.format(v)


def print_plan(plan: Any, console: Any) -> None:
    from rich.table import Table

    t = Table(show_edge=False, header_style="bold")
    for col in ("pool", "instance", "GPUs/node", "nodes", "provisioned", "max", "GPUs used", "$/node·h", "$/h"):
        t.add_column(col)
    for p in plan.pools:
        t.add_row(p.pool.name, p.instance.name, str(p.instance.gpus), str(p.needed), str(p.provisioned),
                  str(p.pool.max), f"{p.used_gpus}/{p.provisioned * p.instance.gpus}", _usd(p.price()), _usd(p.cost()))
    console.print(t)
    for line in allocation_lines(plan):
        console.print(line, markup=False, highlight=False)
    h, m = plan.cost_per_hour(), plan.cost_per_month()
    console.print(f"cost: {'unknown' if h is None else f'${h:,.2f}/hour'} · "
                  f"{'unknown' if m is None else f'${m:,.0f}/month'} · GPU utilisation "
                  f"{plan.gpu_utilisation():.0%}", markup=False)
    for p in plan.pools:
        for row in p.prices():
            mark = "  ← chosen" if row["chosen"] else ""
            console.print(f"  {p.pool.name} {row['option']} ({row['region']}): ${row['usd_per_hour']:,.2f}/hour · "
                          f"${row['usd_per_month']:,.0f}/month{mark}", markup=False)
    for r in plan.reasons:
        console.print(f"why: {r}", markup=False)
    for w in plan.warnings:
        console.print(f"warning: {w}", markup=False)

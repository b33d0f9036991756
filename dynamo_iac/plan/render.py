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


def cost_lines(plan: Any) -> list[str]:
    """The cost line; when it is unknown, which pool's instance type has no price for its purchase
    option and region, and the catalog file that adds one (the other options follow as rows)."""
    h, m, util = plan.cost_per_hour(), plan.cost_per_month(), f"GPU utilisation {plan.gpu_utilisation():.0%}"
    if h is not None:
        return [f"cost: ${h:,.2f}/hour · ${m:,.0f}/month · {util}"]
    gaps = [p for p in plan.pools if p.instance.gpus and p.provisioned and p.price() is None]
    lines = ["cost: unknown — " + "; ".join(f"no {p.pool.purchase_option} price for {p.instance.name}"
                                            f"{f' in {p.where()}' if p.where() else ''} (pool {p.pool.name})"
                                            for p in gaps) + f" · {util}"]
    for p in gaps:
        region = p.where() or "<region>"
        lines += ["  add it with a catalog file, DYNAMO_IAC_CATALOG=<file.yaml>:",
                  "    instances:",
                  f"      - name: {p.instance.name}",
                  f"        prices: [{{option: {p.pool.purchase_option}, region: {region}, usd_per_hour: <USD>, "
                  "source: {url: <where you read it>, date: <YYYY-MM-DD>}}]"]
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
    for line in cost_lines(plan):
        console.print(line, markup=False, highlight=False, soft_wrap=True)     # the YAML stays copyable
    for p in plan.pools:
        if not p.provisioned:              # a pool that runs no node costs nothing: no price rows
            continue
        for row in p.prices():
            mark = "  ← chosen" if row["chosen"] else ""
            console.print(f"  {p.pool.name} {row['option']} ({row['region']}): ${row['usd_per_hour']:,.2f}/hour · "
                          f"${row['usd_per_month']:,.0f}/month{mark}", markup=False)
    for r in plan.reasons:
        console.print(f"why: {r}", markup=False)
    for w in plan.warnings:
        console.print(f"warning: {w}", markup=False)

"""Cost guard and capacity guard: the capacity plan the program exports (stack outputs
`capacity_plan`, `nodes`, `cost_per_hour_usd`, `cost_per_month_usd`) against budgets and the pools."""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from pydantic import Field

from ..model import Context, Finding, NotApplicable, Rule, RuleConfig, StackView
from ..pools import gpu_pools, pools

HOURS_PER_MONTH = 730


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _plan_rows(outputs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    plan = outputs.get("capacity_plan")
    rows = plan.get("pools") if isinstance(plan, Mapping) else None
    if isinstance(rows, Mapping):
        rows = [{"name": k, **v} if isinstance(v, Mapping) else {"name": k, "nodes": v} for k, v in rows.items()]
    return [r for r in rows if isinstance(r, Mapping) and isinstance(r.get("name", r.get("pool")), str)] \
        if isinstance(rows, list) else []


def planned_nodes(outputs: Mapping[str, Any] | None) -> dict[str, int] | None:
    """pool → nodes the stack runs on it: the plan's `provisioned` (max of what placement needs,
    min_nodes and nodes), else the `nodes` output, else what placement needs."""
    if not outputs:
        return None
    out: dict[str, int] = {}
    for row in _plan_rows(outputs):
        n = _num(row.get("provisioned", row.get("nodes", row.get("planned_nodes"))))
        if n is not None:
            out[row.get("name", row.get("pool"))] = int(n)
    if out:
        return out
    nodes = outputs.get("nodes")
    if isinstance(nodes, Mapping) and nodes:
        return {str(k): int(v) for k, v in nodes.items() if _num(v) is not None}
    return None


def planned_gpus(outputs: Mapping[str, Any] | None) -> int | None:
    """GPUs of the provisioned nodes, from the plan's pool rows."""
    rows = _plan_rows(outputs or {})
    total = 0
    for row in rows:
        n, g = _num(row.get("provisioned", row.get("nodes"))), _num(row.get("gpus_per_node"))
        if n is None or g is None:
            return None
        total += int(n * g)
    return total if rows else None


class BudgetConfig(RuleConfig):
    max_usd_per_hour: float | None = Field(None, gt=0, description="budget for the whole stack, USD per hour")
    max_usd_per_month: float | None = Field(None, gt=0, description="budget for the whole stack, USD per month (730 h)")
    max_gpus: int | None = Field(None, gt=0, description="most GPUs the stack may hold")


def _estimate(stack: StackView, ctx: Context) -> tuple[float | None, int, list[str]]:
    """$/h, GPUs and the instance types without a price, from the pools' desired sizes and catalog
    prices (when no plan output is visible)."""
    total, gpus, unpriced = 0.0, 0, []
    for p, inst in gpu_pools(stack, ctx.catalog):
        n = p.desired if p.desired is not None else p.min or 0
        gpus += n * inst.gpus
        where = p.zones[0] if p.zones else None        # prices are regional: the pool's zone names its region
        price = inst.price(p.purchase if p.purchase in ("on-demand", "spot", "capacity-block", "reservation")
                           else "on-demand", where)
        if price is None:
            price = inst.price("on-demand", where)
        if price is None:
            unpriced.append(inst.name)
            continue
        total += n * price
    return (None if unpriced else total), gpus, sorted(set(unpriced))


def check_budget(stack: StackView, ctx: Context) -> Iterator[Finding]:
    cfg: BudgetConfig = ctx.config
    if cfg.max_usd_per_hour is None and cfg.max_usd_per_month is None and cfg.max_gpus is None:
        raise NotApplicable("no budget configured (maxUsdPerHour / maxUsdPerMonth / maxGpus)")
    out = stack.outputs or {}
    hour = _num(out.get("cost_per_hour_usd"))
    month = _num(out.get("cost_per_month_usd"))
    source = "the capacity plan"
    est_hour, est_gpus, unpriced = _estimate(stack, ctx)
    if hour is None:
        hour, source = est_hour, "the pools' sizes at catalog prices"
    if month is None and hour is not None:
        month = hour * HOURS_PER_MONTH
    if hour is None and (cfg.max_usd_per_hour is not None or cfg.max_usd_per_month is not None):
        # a guard that cannot prove the budget holds must not pass silently
        what = f"price unknown for {', '.join(unpriced)}" if unpriced else "the stack's $/hour is unknown"
        yield Finding(f"cannot prove the stack stays within its budget: {what}",
                      "add a price to the catalog override, or raise / disable the budget "
                      "(maxUsdPerHour / maxUsdPerMonth)")
    if cfg.max_usd_per_hour is not None and hour is not None:
        if hour > cfg.max_usd_per_hour:
            yield Finding(f"the stack costs ${hour:,.2f}/hour by {source}, over the budget of "
                          f"${cfg.max_usd_per_hour:,.2f}/hour",
                          "use fewer or smaller nodes, spot / reserved capacity, or raise maxUsdPerHour")
    if cfg.max_usd_per_month is not None and month is not None and month > cfg.max_usd_per_month:
        yield Finding(f"the stack costs ${month:,.0f}/month by {source}, over the budget of "
                      f"${cfg.max_usd_per_month:,.0f}/month", "shrink the pools or raise maxUsdPerMonth")
    if cfg.max_gpus is not None:
        gpus = planned_gpus(out)
        gpus = gpus if gpus is not None else est_gpus
        if gpus > cfg.max_gpus:
            yield Finding(f"the stack holds {gpus} GPUs, over the limit of {cfg.max_gpus}",
                          "shrink the pools or raise maxGpus")


BUDGET = Rule(
    "cost-budget",
    "The stack's $/hour (and $/month, GPUs) stays within the configured budget.",
    "mandatory", "stack", check_budget, config=BudgetConfig)


def _needed_nodes(outputs: Mapping[str, Any] | None) -> dict[str, int]:
    """pool → nodes placement needs (the plan rows' `nodes`, else the `nodes_needed` output)."""
    out = {}
    for row in _plan_rows(outputs or {}):
        n = _num(row.get("nodes"))
        if n is not None:
            out[row.get("name", row.get("pool"))] = int(n)
    needed = (outputs or {}).get("nodes_needed")
    if not out and isinstance(needed, Mapping):
        out = {str(k): int(v) for k, v in needed.items() if _num(v) is not None}
    return out


def check_capacity(stack: StackView, ctx: Context) -> Iterator[Finding]:
    plan = planned_nodes(stack.outputs)
    if plan is None:
        raise NotApplicable("no capacity plan among the stack outputs (capacity_plan / nodes)")
    needed = _needed_nodes(stack.outputs)
    by_name = {p.name: p for p in pools(stack)}
    for name, runs in sorted(plan.items()):
        need = needed.get(name, runs)
        p = by_name.get(name)
        if p is None:
            yield Finding(f"the capacity plan places {runs} node(s) on pool {name}, which the stack does not create",
                          "add the pool or re-plan on the stack's pools")
            continue
        top = p.max if p.max is not None else p.desired
        if top is not None and top < need:
            yield Finding(f"pool {name} can grow to {top} node(s) but the capacity plan needs {need}: the graph "
                          f"never fully schedules", f"raise the pool's max_nodes to at least {need}", p.urn)
        elif top is not None and top < runs:
            yield Finding(f"pool {name} can grow to {top} node(s) but the stack provisions {runs} on it "
                          f"(min_nodes / nodes)", f"raise max_nodes to at least {runs} or lower min_nodes / nodes",
                          p.urn)


CAPACITY = Rule(
    "capacity-covers-plan",
    "Every pool's maximum size covers the nodes the capacity plan needs and provisions on it.",
    "mandatory", "stack", check_capacity, refs=("dynamo_iac.plan CapacityPlan",))


RULES = [BUDGET, CAPACITY]

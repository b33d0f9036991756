"""Capacity planner: worked examples, errors with fixes, and properties against a brute force."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynamo_iac import patterns
from dynamo_iac.errors import PlanError
from dynamo_iac.graph import DynamoGraph, Model, Parallelism, Worker
from dynamo_iac.hardware import fabric
from dynamo_iac.hardware.catalog import fabric_share, load
from dynamo_iac.hardware.pool import GpuPool
from dynamo_iac.plan import auto_pools, plan
from dynamo_iac.plan.capacity import node_lower_bound

# nodes left unset: the plan sizes the pool (provisioned = needed)
P5 = GpuPool(name="h100", instance_type="p5.48xlarge", max_nodes=8, zones=["us-east-1a"])
ND = GpuPool(name="nd", instance_type="Standard_ND96isr_H100_v5", max_nodes=8)


def test_aggregated_2x_tp4_on_p5_is_one_full_node():
    c = plan(patterns.aggregated("a", "m/x", tp=4, replicas=2), [P5])
    assert c.nodes_per_pool() == {"h100": 1}
    assert c.gpu_utilisation() == 1.0
    assert c.allocation()["h100"]["h100-0"] == {i: f"Worker[{i // 4}]" for i in range(8)}


def test_disaggregated_tp4_on_p5_needs_two_nodes_because_of_efa():
    c = plan(patterns.disaggregated("d", "m/x", tp=4), [P5])
    assert c.nodes_per_pool() == {"h100": 2}
    assert any("EFA".lower() in r.lower() and "same node" in r for r in c.reasons)
    nodes = c.allocation()["h100"]
    assert {frozenset(v.values()) for v in nodes.values()} == {frozenset({"PrefillWorker[0]"}),
                                                               frozenset({"DecodeWorker[0]"})}


def test_disaggregated_on_infiniband_shares_a_node():
    c = plan(patterns.disaggregated("d", "m/x", tp=4), [ND])
    assert c.nodes_per_pool() == {"nd": 1}


def test_tp16_is_one_multinode_worker_on_two_nodes():
    c = plan(patterns.multinode("m", "m/x", gpus=16), [P5])
    assert c.nodes_per_pool() == {"h100": 2}
    alloc = c.allocation()["h100"]
    assert alloc["h100-0"][0] == "Worker[0] rank 0" and alloc["h100-1"][7] == "Worker[0] rank 1"


def test_70b_bf16_at_tp1_does_not_fit_80gb():
    g = patterns.aggregated("big", Model("meta-llama/Llama-3.1-70B", params_b=70, dtype="bf16"), tp=1)
    with pytest.raises(PlanError) as e:
        plan(g, [P5])
    (p,) = e.value.problems
    assert p.path == "workers[0].parallelism" and "tp >= 2" in p.fix


def test_pool_max_too_small_says_how_to_fix():
    small = GpuPool(name="h100", instance_type="p5.48xlarge", max_nodes=1, zones=["us-east-1a"])
    with pytest.raises(PlanError) as e:
        plan(patterns.disaggregated("d", "m/x", tp=4), [small])
    (p,) = e.value.problems
    assert "needs 2" in p.message and "raise max_nodes to 2" in p.fix


def test_unknown_instance_type_suggests():
    with pytest.raises(Exception) as e:
        plan(patterns.aggregated("a", "m/x"), [GpuPool(name="x", instance_type="p5.48xlarg")])
    assert "p5.48xlarge" in e.value.problems[0].fix


def test_cost_and_unknown_price_warning():
    cb = P5.model_copy(update={"purchase_option": "capacity-block"})
    c = plan(patterns.disaggregated("d", "m/x", tp=4), [cb])
    assert c.cost_per_hour() == pytest.approx(2 * load().get("p5.48xlarge").price("capacity-block"))
    assert c.cost_per_month() == pytest.approx(c.cost_per_hour() * 730)
    c2 = plan(patterns.disaggregated("d", "m/x", tp=4), [ND])
    assert c2.cost_per_hour() is None and any("price unknown" in w for w in c2.warnings)


def test_fabric_share_matches_upstream_recipe():
    # upstream AWS recipe: a TP4 worker on p5.48xlarge requests 16 of the node's 32 EFA interfaces
    assert fabric_share(load().get("p5.48xlarge"), 4) == 16
    assert fabric_share(load().get("p5.48xlarge"), 8) == 32


def test_auto_pools_picks_a_feasible_cheapest_type():
    (pool,) = auto_pools(patterns.disaggregated("d", "m/x", tp=4), "aws", zone="us-east-1a")
    assert load().get(pool.instance_type).price("on-demand") is not None
    with pytest.raises(PlanError):
        auto_pools(patterns.aggregated("big", Model("x/y", params_b=2000, dtype="bf16"), tp=1), "aws", gpu="l40s")


def test_json_is_deterministic():
    g = patterns.disaggregated("d", "m/x", tp=2)
    assert plan(g, [P5]).to_json() == plan(g, [P5]).to_json()


# ------------------------------------------------------------------ properties
ONE_CLOUD = {"aws": ["p5.48xlarge", "p4d.24xlarge", "g6e.12xlarge", "g6e.24xlarge"],
             "azure": ["Standard_ND96isr_H100_v5", "Standard_ND128isr_NDR_GB200_v6"],
             "gcp": ["a3-ultragpu-8g", "a3-highgpu-8g"]}
ZONE = {"aws": "us-east-1a", "azure": "1", "gcp": "us-central1-b"}


def _brute_min_bins(items: list[tuple[int, int]], cap: int, fcap: int | None) -> int:
    """Fewest bins for (GPUs, fabric units) items, by trying every set of items for the bin that
    holds the first remaining one (exhaustive over subsets, memoised)."""
    from functools import lru_cache

    @lru_cache(maxsize=None)
    def best(rest: frozenset[int]) -> int:
        if not rest:
            return 0
        first, others = min(rest), sorted(rest - {min(rest)})
        out = len(rest)
        for mask in range(1 << len(others)):
            pick = [first] + [o for k, o in enumerate(others) if mask >> k & 1]
            g, f = sum(items[i][0] for i in pick), sum(items[i][1] for i in pick)
            if g <= cap and (fcap is None or f <= fcap):
                out = min(out, 1 + best(rest - set(pick)))
        return out
    return best(frozenset(range(len(items))))


def _brute_pool_nodes(g: DynamoGraph, workers: list[int], it) -> int | None:
    """Nodes of one pool holding every replica of `workers`, from the rules alone; None = a
    replica does not split into whole nodes."""
    buckets: dict[str, list[tuple[int, int]]] = {}
    whole = 0
    for i in workers:
        w = g.workers[i]
        n = w.nodes_for(it.gpus)
        if w.gpu_count % n or w.gpu_count // n > it.gpus:
            return None
        if n > 1:
            whole += n * w.replicas
            continue
        key = w.role if g.is_disaggregated and not fabric.kv_same_node(it) else "all"
        req = fabric.pod_request(it, w.gpu_count, w.role, 1)
        buckets.setdefault(key, []).extend([(w.gpu_count, req)] * w.replicas)
    return whole + sum(_brute_min_bins(v, it.gpus, fabric.node_capacity(it)) for v in buckets.values())


def _brute_plan(g: DynamoGraph, pools: list[GpuPool]):
    """Minimum (nodes, $/h, pools used) over every assignment of workers to pools (prefill and
    decode together), each pool packed by brute force; None = nothing fits."""
    cat = load()
    kv = [i for i, w in enumerate(g.workers) if g.is_disaggregated and w.role in ("prefill", "decode")]
    units = ([kv] if kv else []) + [[i] for i, w in enumerate(g.workers) if i not in kv]
    best = None
    for choice in itertools.product(range(len(pools)), repeat=len(units)):
        nodes, cost, used = 0, 0.0, 0
        for p, pool in enumerate(pools):
            members = [i for u, c in zip(units, choice) if c == p for i in u]
            if not members:
                continue
            it = cat.get(pool.instance_type)
            n = _brute_pool_nodes(g, members, it)
            if n is None or n > pool.max:
                break
            price = it.price(pool.purchase_option, ZONE.get(it.cloud))
            nodes, used = nodes + n, used + 1
            cost += float("inf") if price is None else price * n
        else:
            key = (nodes, round(cost, 6), used)
            best = key if best is None or key < best else best
    return best


@st.composite
def small_graph(draw):
    disagg = draw(st.booleans())
    sizes = st.sampled_from([1, 2, 3, 4, 5, 6, 8, 16])
    if disagg:
        ws = [Worker(role="prefill", gpus=draw(sizes), replicas=draw(st.integers(1, 2))),
              Worker(role="decode", gpus=draw(sizes), replicas=draw(st.integers(1, 2)))]
        ws += [Worker(role="decode", name=f"Decode{i}", gpus=draw(sizes), replicas=1)
               for i in range(draw(st.integers(0, 1)))]
    else:
        ws = [Worker(name=f"w{i}", gpus=draw(sizes), replicas=draw(st.integers(1, 2)))
              for i in range(draw(st.integers(1, 3)))]
    return DynamoGraph(name="g", model=Model("m/x"), workers=ws)


@st.composite
def some_pools(draw):
    cloud = draw(st.sampled_from(sorted(ONE_CLOUD)))
    types = draw(st.lists(st.sampled_from(ONE_CLOUD[cloud]), min_size=1, max_size=3))
    return [GpuPool(name=f"p{k}", instance_type=t, max_nodes=draw(st.integers(1, 5)), zones=[ZONE[cloud]])
            for k, t in enumerate(types)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=small_graph(), pools=some_pools())
def test_placement_properties(g, pools):
    cat = load()
    brute = _brute_plan(g, pools)
    try:
        c = plan(g, pools)
    except PlanError as e:
        assert brute is None, (brute, str(e))     # infeasible exactly when no assignment fits
        return
    assert brute is not None and c.placement_optimal
    where = c.worker_pools()
    kv = {w.name for w in g.workers if g.is_disaggregated and w.role in ("prefill", "decode")}
    labels: dict[str, int] = {}
    pools_of: dict[str, set[str]] = {}
    for pp in c.pools:
        it = cat.get(pp.pool.instance_type)
        assert pp.needed <= pp.pool.max
        for node in pp.nodes:
            assert len(node.slots) <= it.gpus and all(0 <= k < it.gpus for k in node.slots)   # never over-committed
            replicas_here = {lbl.split(" rank ")[0] for lbl in node.slots.values()}
            if any(" rank " in lbl for lbl in node.slots.values()):
                assert len(replicas_here) == 1          # a multinode replica takes whole nodes
            names = {lbl.split("[")[0] for lbl in replicas_here}
            for lbl in node.slots.values():
                labels[lbl.split(" rank ")[0]] = labels.get(lbl.split(" rank ")[0], 0) + 1
            for n in names:
                pools_of.setdefault(n, set()).add(pp.pool.name)
            if not fabric.kv_same_node(it) and g.is_disaggregated:         # fabric rule: separate nodes
                assert len({w.role for w in g.workers if w.name in names} & {"prefill", "decode"}) <= 1
            # the fabric resource is never over-committed (what the k8s overlay requests per pod)
            cap = fabric.node_capacity(it)
            if cap is not None and not any(" rank " in v for v in node.slots.values()):
                pods = {lbl: list(node.slots.values()).count(lbl) for lbl in set(node.slots.values())}
                role = {w.name: w.role for w in g.workers}
                assert sum(fabric.pod_request(it, n, role[lbl.split("[")[0]], 1) for lbl, n in pods.items()) <= cap
    # every worker's replicas on one pool, the one the plan names; prefill + decode on one pool
    assert all(len(v) == 1 for v in pools_of.values()) and {w: next(iter(v)) for w, v in pools_of.items()} == where
    assert len({where[w] for w in kv}) <= 1
    # every replica placed exactly once, with all its GPUs, on one node unless it spans nodes
    expected = {f"{w.name}[{r}]": w.gpu_count for w in g.workers for r in range(w.replicas)}
    assert labels == expected
    for pp in c.pools:
        for node in pp.nodes:
            for lbl in set(node.slots.values()):
                if " rank " not in lbl:
                    assert list(node.slots.values()).count(lbl) == expected[lbl]
    # optimal: (nodes, $/h, pools used) equal the brute force over assignments × packings
    cost = c.cost_per_hour()
    nodes, usd, used = brute
    assert (c.total_nodes(), sum(1 for pp in c.pools if pp.needed)) == (nodes, used)
    assert (cost is None) == (usd == float("inf")) and (cost is None or cost == pytest.approx(usd, abs=1e-3))
    for pp in c.pools:                   # and never below the bound of what each pool holds
        on = [w for w in g.workers if where.get(w.name) == pp.pool.name]
        if on:
            sub = DynamoGraph(name="g", model=Model("m/x"), workers=on)
            assert pp.needed >= node_lower_bound(sub, cat.get(pp.pool.instance_type))

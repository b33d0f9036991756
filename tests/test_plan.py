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
def _brute_min_bins(sizes: list[int], cap: int, demand=lambda s: 0, fcap: int | None = None) -> int:
    """Every assignment of items to bins; a bin holds ≤ cap GPUs and ≤ fcap fabric units."""
    best = len(sizes)
    n = len(sizes)
    for assign in itertools.product(range(n), repeat=n):
        loads: dict[int, list[int]] = {}
        for s, b in zip(sizes, assign):
            g, f = loads.get(b, [0, 0])
            loads[b] = [g + s, f + demand(s)]
        if all(g <= cap and (fcap is None or f <= fcap) for g, f in loads.values()):
            best = min(best, len(loads))
    return best


@st.composite
def small_graph(draw):
    disagg = draw(st.booleans())
    sizes = st.sampled_from([1, 2, 3, 4, 5, 6, 8])
    if disagg:
        ws = [Worker(role="prefill", gpus=draw(sizes), replicas=draw(st.integers(1, 2))),
              Worker(role="decode", gpus=draw(sizes), replicas=draw(st.integers(1, 2)))]
    else:
        ws = [Worker(name=f"w{i}", gpus=draw(sizes), replicas=draw(st.integers(1, 2)))
              for i in range(draw(st.integers(1, 3)))]
    return DynamoGraph(name="g", model=Model("m/x"), workers=ws)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=small_graph(), inst=st.sampled_from(["p5.48xlarge", "Standard_ND96isr_H100_v5", "g6e.12xlarge",
                                              "p4d.24xlarge", "g6e.24xlarge", "a3-ultragpu-8g"]))
def test_placement_properties(g, inst):
    pool = GpuPool(name="p", instance_type=inst, max_nodes=64, zones=["z-1a"])
    it = load().get(inst)
    try:
        c = plan(g, [pool])
    except PlanError as e:   # only a multinode worker whose GPUs do not split into whole nodes
        assert any(w.gpu_count > it.gpus and w.gpu_count % w.nodes_for(it.gpus) for w in g.workers), str(e)
        return
    (pp,) = [p for p in c.pools if p.pool.name == "p"]
    labels: dict[str, int] = {}
    for node in pp.nodes:
        assert len(node.slots) <= it.gpus and all(0 <= k < it.gpus for k in node.slots)   # never over-committed
        roles = set()
        replicas_here = {lbl.split(" rank ")[0] for lbl in node.slots.values()}
        if any(" rank " in lbl for lbl in node.slots.values()):
            assert len(replicas_here) == 1          # a multinode replica takes whole nodes
        for lbl in node.slots.values():
            lbl = lbl.split(" rank ")[0]
            labels[lbl] = labels.get(lbl, 0) + 1
            roles.add(lbl.split("[")[0])
        if not it.fabric.same_node_kv_transfer:
            assert not ({"PrefillWorker", "DecodeWorker"} <= roles)   # fabric rule
        # the fabric resource is never over-committed either (what the k8s overlay requests per pod)
        cap = fabric.node_capacity(it)
        if cap is not None:
            pods = {lbl: sum(1 for v in node.slots.values() if v == lbl) for lbl in set(node.slots.values())}
            assert sum(fabric.pod_request(it, n) for n in pods.values()) <= cap
    # every replica placed exactly once, with all its GPUs, on one node (none spans two here)
    expected = {f"{w.name}[{r}]": w.gpu_count for w in g.workers for r in range(w.replicas)}
    assert labels == expected
    for node in pp.nodes:
        for lbl in set(node.slots.values()):
            if " rank " not in lbl:   # a replica that fits one node never spans two
                assert sum(1 for v in node.slots.values() if v == lbl) == expected[lbl]
    # optimal: equals a brute force per fabric bucket (+ whole nodes of multinode replicas)
    groups: dict[str, list[int]] = {}
    whole = 0
    for w in g.workers:
        if w.gpu_count > it.gpus:
            whole += w.nodes_for(it.gpus) * w.replicas
            continue
        key = w.role if not it.fabric.same_node_kv_transfer else "all"
        groups.setdefault(key, []).extend([w.gpu_count] * w.replicas)
    brute = whole + sum(_brute_min_bins(v, it.gpus, lambda s: fabric.pod_request(it, s), fabric.node_capacity(it))
                        for v in groups.values())
    assert len(pp.nodes) == brute
    assert len(pp.nodes) >= node_lower_bound(g, it)

"""Planner rules found by the audit: fabric capacity, over-commit, fabric domains, provisioned
nodes, cost per purchase option, auto sizing on unknown figures, exact search at scale."""
from __future__ import annotations

import json
import time

import pytest

from dynamo_iac import patterns
from dynamo_iac.errors import ConfigError, PlanError
from dynamo_iac.graph import DynamoGraph, Model, Worker
from dynamo_iac.hardware import fabric
from dynamo_iac.hardware.catalog import fabric_share, load
from dynamo_iac.hardware.pool import GpuPool
from dynamo_iac.plan import auto_pools, plan
from dynamo_iac.plan.placement import solve
from dynamo_iac.targets.k8s.fabrics import overlay_for
from dynamo_iac.targets.k8s.overlay import RenderTarget

CAT = load()


def pool(name="p", inst="p5.48xlarge", **kw):
    return GpuPool(**{"name": name, "instance_type": inst, "max_nodes": 16, "zones": ["us-east-1a"], **kw})


def disagg_tp1(n):
    return patterns.disaggregated("d", "m/x", prefill=Worker(role="prefill", gpus=1, replicas=n),
                                  decode=Worker(role="decode", gpus=1, replicas=n))


def _requests(c, it, graph):
    """Fabric units the k8s overlay requests per node of the plan (from the overlay itself)."""
    target = RenderTarget.for_pool(c.pools[0].pool, it)
    role = {w.name: w.role for w in graph.workers}
    out = []
    for node in c.pools[0].nodes:
        pods = {lbl: list(node.slots.values()).count(lbl) for lbl in set(node.slots.values())}
        total = 0
        for lbl, gpus in pods.items():
            res = dict(target.overlay_for(gpus, role[lbl.split("[")[0]], 1).resources)
            total += int(res.get(it.fabric.resource, 0))
        out.append(total)
    return out


def test_efa_interfaces_are_a_second_capacity_dimension():
    it = CAT.get("p4d.24xlarge")                       # 4 EFA for 8 GPUs: a TP1 KV pod takes 1
    g = disagg_tp1(8)
    c = plan(g, [pool(inst="p4d.24xlarge")])
    assert c.nodes_per_pool() == {"p": 4}                 # 4 pods per node, prefill and decode apart
    assert max(_requests(c, it, g)) <= fabric.node_capacity(it) == 4
    assert any("vpc.amazonaws.com/efa" in r for r in c.reasons)


def test_pods_that_move_no_kv_and_span_no_nodes_request_no_fabric():
    """Aggregated single-node pods exchange nothing between pods: no EFA request, packed by GPUs
    (8 × TP1 on p4d = 1 node, not 2; 4 × TP1 on g6e.24xlarge = 1, not 2) — and the k8s overlay
    requests none either; a replica spanning nodes still does."""
    for inst, n in (("p4d.24xlarge", 8), ("g6e.24xlarge", 4)):
        it = CAT.get(inst)
        g = patterns.aggregated("a", "m/x", tp=1, replicas=n)
        c = plan(g, [pool(inst=inst)])
        assert c.nodes_per_pool() == {"p": 1} and _requests(c, it, g) == [0]
        assert not any(it.fabric.resource in r for r in c.reasons)
        doc = g.to_dgd(target=RenderTarget.for_pool(c.pools[0].pool, it))
        (w,) = [x for x in doc["spec"]["components"] if x["type"] == "worker"]
        assert it.fabric.resource not in json.dumps(w) and "FI_PROVIDER" not in json.dumps(w)
    assert fabric.pod_request(CAT.get("p5.48xlarge"), 8, "agg", 2) == 32       # TP16 over 2 nodes: EFA
    assert fabric.pod_request(CAT.get("p5.48xlarge"), 4, "decode", 1) == 16


def test_overlay_requests_come_from_the_planned_fact():
    for name in ("p5.48xlarge", "p4d.24xlarge", "Standard_ND96isr_H100_v5", "a3-ultragpu-8g"):
        it = CAT.get(name)
        for g in (1, 2, 4, 8):
            res = dict(overlay_for(it, g).resources)
            if it.fabric.kind == "roce":     # one unit of each RDMA network the pod uses
                assert all(v == "1" for v in res.values()) and fabric.pod_request(it, g, "prefill") == 1
            else:
                assert int(res[it.fabric.resource]) == fabric.pod_request(it, g, "decode") == fabric_share(it, g)


def test_infiniband_node_holds_prefill_and_decode():
    it = CAT.get("Standard_ND96isr_H100_v5")
    assert fabric.node_capacity(it) == 63              # aks-rdma-infiniband rdmaHcaMax, not 1
    c = plan(patterns.disaggregated("d", "m/x", tp=4), [GpuPool(name="nd", instance_type=it.name, max_nodes=4)])
    assert c.nodes_per_pool() == {"nd": 1} and sum(_requests(c, it, patterns.disaggregated("d", "m/x", tp=4))) == 2


def test_gke_rdma_network_holds_one_pod_per_node():
    g = patterns.disaggregated("d", "m/x", prefill=Worker(role="prefill", gpus=4, replicas=2),
                               decode=Worker(role="decode", gpus=4))
    c = plan(g, [pool(inst="a3-ultragpu-8g", zones=["us-central1-b"])])
    assert c.nodes_per_pool() == {"p": 3}                 # one RDMA pod per node: 2 prefill + 1 decode
    agg = plan(patterns.aggregated("a", "m/x", tp=4, replicas=2), [pool(inst="a3-ultragpu-8g", zones=["us-central1-b"])])
    assert agg.nodes_per_pool() == {"p": 1}               # no KV, one node each: no RDMA network needed


def test_gpus_are_never_over_committed():
    g = DynamoGraph(name="g", model=Model("m/x"), workers=[Worker(gpus=16, nodes=1)])
    with pytest.raises(PlanError) as e:
        plan(g, [pool()])
    (p,) = e.value.problems
    assert p.path == "workers[0].gpus" and "does not fit" in p.message and "nodes: 2" in p.fix


def test_exact_on_large_mixed_graph():
    ws = [Worker(name=n, gpus=g, replicas=r) for n, g, r in
          [("A", 8, 6), ("B", 7, 3), ("C", 4, 3), ("D", 3, 6), ("E", 2, 9), ("F", 1, 3)]]
    c = plan(DynamoGraph(name="g", model=Model("m/x"), workers=ws), [pool(max_nodes=64)])
    assert c.total_nodes() == 15 and c.pools[0].optimal and not c.reasons


def test_search_budget_is_reported():
    items = [(s, f"{s}-{i}") for s, n in ((5, 7), (4, 5), (3, 9), (2, 4)) for i in range(n)]
    p = solve(items, 8, budget=1)
    assert len(p.bins) >= p.lower_bound and sum(len(b) for b in p.bins) == len(items)
    assert p.optimal == (len(p.bins) == p.lower_bound)


def test_kv_workers_need_one_zone_on_zonal_fabrics():
    for zones in ([], ["us-east-1a", "us-east-1b"]):
        with pytest.raises(PlanError) as e:
            plan(patterns.disaggregated("d", "m/x", tp=4), [pool(zones=zones)])
        assert e.value.problems[0].path == "pools[p].zones"
    c = plan(patterns.aggregated("a", "m/x", tp=8), [pool(zones=[])])       # no KV: warned, not refused
    assert any("zones" in w for w in c.warnings)


def test_a_workers_replicas_stay_on_one_pool_but_workers_may_use_several():
    two = [pool("a", max_nodes=1), pool("b", max_nodes=1)]
    with pytest.raises(PlanError) as e:      # one worker = one pod template: its replicas cannot be split
        plan(patterns.aggregated("a", "m/x", tp=8, replicas=2), two)
    assert any("no pool holds every replica of Worker" in p.message for p in e.value.problems)
    g = DynamoGraph(name="g", model=Model("m/x"), workers=[Worker(name="x", gpus=8), Worker(name="y", gpus=8)])
    c = plan(g, two)
    assert c.nodes_per_pool() == {"a": 1, "b": 1} and c.worker_pools() == {"x": "a", "y": "b"}
    assert json.loads(c.to_json())["worker_pools"] == {"x": "a", "y": "b"}
    assert any("several pools" in w for w in c.warnings)
    with pytest.raises(PlanError):
        plan(patterns.disaggregated("d", "m/x", tp=8), two)            # prefill + decode: one domain


def test_pools_of_two_clouds_are_refused():
    with pytest.raises(PlanError) as e:
        plan(patterns.aggregated("a", "m/x"), [pool(), GpuPool(name="g", instance_type="a3-ultragpu-8g")])
    assert "different clouds" in e.value.problems[0].message


def test_provisioned_nodes_and_cost():
    cb = dict(purchase_option="capacity-block")
    c = plan(patterns.aggregated("a", "m/x", tp=4, replicas=2), [pool(nodes=4, min_nodes=4, **cb)])
    (pp,) = c.pools
    assert (pp.needed, pp.provisioned) == (1, 4)
    price = CAT.get("p5.48xlarge").price("capacity-block")
    assert c.cost_per_hour() == pytest.approx(4 * price)
    assert any("idle node" in w for w in c.warnings)
    doc = json.loads(c.to_json())
    assert doc["pools"][0]["provisioned"] == 4 and doc["pools"][0]["nodes"] == 1
    with pytest.raises(PlanError) as e:
        plan(patterns.disaggregated("d", "m/x", tp=4), [pool(nodes=1)])
    assert e.value.problems[0].fix == "set nodes: 2 or leave nodes unset so the plan sizes it"


def test_cost_per_purchase_option_marks_the_chosen_one():
    c = plan(patterns.aggregated("a", "m/x", tp=8, replicas=3), [pool(inst="p4d.24xlarge", zones=["us-east-2a"])])
    rows = {r["option"]: r for r in c.pools[0].prices()}
    assert set(rows) == {"on-demand", "capacity-block"}
    assert rows["on-demand"]["chosen"] and not rows["capacity-block"]["chosen"]
    cb = CAT.get("p4d.24xlarge").price("capacity-block", "us-east-2")
    assert rows["capacity-block"]["usd_per_hour"] == pytest.approx(3 * cb)
    assert c.cost_by_option()["capacity-block"]["usd_per_month"] == pytest.approx(3 * cb * 730)


def test_auto_pools_distrusts_unknown_figures():
    m70 = Model("meta-llama/Llama-3.1-70B", params_b=70, dtype="bf16")
    with pytest.raises(PlanError) as e:                                   # a4's B200 memory is unknown
        auto_pools(patterns.aggregated("a", m70, tp=1), "gcp", zone="us-central1-b")
    assert any(p.path == "catalog[a4-highgpu-8g].gpu_memory_gb" for p in e.value.problems)
    with pytest.raises(PlanError) as e:     # 140 GB fits only B200 (179 × 0.9), whose EFA count is unknown
        auto_pools(patterns.aggregated("a", m70, tp=1), "aws", zone="us-east-1a")
    assert any(p.path == "catalog[p6-b200.48xlarge].fabric.devices" and "allow_unknown_fabric" in p.fix
               for p in e.value.problems)
    (b200,) = auto_pools(patterns.aggregated("a", m70, tp=1), "aws", zone="us-east-1a", allow_unknown_fabric=True)
    assert b200.instance_type == "p6-b200.48xlarge"
    (p,) = auto_pools(patterns.aggregated("a", m70, tp=2), "aws", zone="us-east-1a")
    assert CAT.get(p.instance_type).gpu_memory_gb is not None
    with pytest.raises(PlanError) as e:
        auto_pools(patterns.aggregated("a", "m/x", tp=8), "aws", gpu="h100")   # EFA types need a zone
    assert e.value.problems[0].path == "auto_pools.zone"
    (az,) = auto_pools(patterns.aggregated("a", m70, tp=2), "azure")
    assert CAT.get(az.instance_type).arch == "x86_64"                 # prices unknown: not GB200 by name
    for bad in (dict(purchase_option="cheap"), dict(gpu="tpu")):
        with pytest.raises(ConfigError):
            auto_pools(patterns.aggregated("a", "m/x"), "aws", **bad)


def test_planning_is_fast_on_the_largest_graphs():
    ws = [Worker(name=f"w{i}", gpus=g, replicas=8) for i, g in enumerate((1, 2, 3, 5, 6, 7, 8, 4))]
    g = DynamoGraph(name="big", model=Model("m/x"), workers=ws)          # 64 replicas, 288 GPUs
    t = time.perf_counter()
    c = plan(g, [pool(max_nodes=128)])
    assert time.perf_counter() - t < 1.0 and c.pools[0].used_gpus == 288



def test_auto_pools_never_splits_a_replica_over_nodes_without_rdma():
    """TP8 on L40S: two g6e.12xlarge (4 GPUs, no fabric) are the cheapest GPUs, but the replica's
    TP collectives would cross nodes over TCP — no candidate; a type with 8 GPUs or EFA wins."""
    from dynamo_iac.hardware.catalog import Catalog

    cat = load()
    graph = patterns.aggregated("a", "m/x", tp=8)
    (pool,) = auto_pools(graph, "aws", gpu="l40s", zone="us-east-1a")
    inst = cat.get(pool.instance_type)
    assert inst.name != "g6e.12xlarge" and (inst.gpus >= 8 or inst.fabric.kind != "none")
    only_tcp = Catalog({"g6e.12xlarge": cat.get("g6e.12xlarge")})
    with pytest.raises(PlanError) as e:
        auto_pools(graph, "aws", zone="us-east-1a", catalog=only_tcp)
    assert [p.path for p in e.value.problems] == ["auto_pools", "workers[0]"]
    assert "would span 2 g6e.12xlarge nodes" in e.value.problems[1].message
    assert "no RDMA fabric" in e.value.problems[1].message


def test_plan_warns_when_a_replica_spans_nodes_without_rdma():
    pool = GpuPool(name="l40s", instance_type="g6e.12xlarge", max_nodes=4, zones=["us-east-1a"])
    spans = plan(patterns.aggregated("a", "m/x", tp=8), [pool])
    assert spans.pools[0].needed == 2
    assert [w for w in spans.warnings if "no RDMA fabric" in w] == [
        "Worker spans 2 g6e.12xlarge nodes, which have no RDMA fabric: its TP/PP traffic between nodes goes over "
        "TCP (pick a type with more GPUs per node or EFA/IB/RoCE)"]
    assert not [w for w in plan(patterns.aggregated("a", "m/x", tp=4), [pool]).warnings if "RDMA" in w]

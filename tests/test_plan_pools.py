"""Several pools: each worker on one pool, the assignment minimising nodes then cost, pool names
unique; auto_pools and catalog arguments checked per cloud; idle pools print no price rows."""
from __future__ import annotations

import io

import pytest
from rich.console import Console
from typer.testing import CliRunner

from dynamo_iac import patterns
from dynamo_iac.errors import ConfigError, PlanError
from dynamo_iac.graph import DynamoGraph, Model, Worker
from dynamo_iac.hardware.catalog import load
from dynamo_iac.hardware.pool import GpuPool
from dynamo_iac.plan import auto_pools, capacity, plan
from dynamo_iac.plan.assign import assign
from dynamo_iac.plan.render import print_plan

CAT = load()
P5 = GpuPool(name="p5", instance_type="p5.48xlarge", max_nodes=8, zones=["us-east-1a"])
G6 = GpuPool(name="g6", instance_type="g6e.12xlarge", max_nodes=8, zones=["us-east-1a"])


def _graph(*workers: tuple[str, int, int]) -> DynamoGraph:
    return DynamoGraph(name="g", model=Model("m/x"), workers=[Worker(name=n, gpus=g, replicas=r) for n, g, r in workers])


def test_workers_go_where_the_total_is_cheapest():
    # a: 2 × TP4 fills one p5 node; b: 1 × TP4 fills one g6e.12xlarge (4 L40S): 2 nodes either way,
    # but p5 + g6e costs less than two p5 nodes
    c = plan(_graph(("a", 4, 2), ("b", 4, 1)), [P5, G6])
    assert c.worker_pools() == {"a": "p5", "b": "g6"} and c.total_nodes() == 2
    p5, g6 = (CAT.get(n).price("on-demand", "us-east-1") for n in ("p5.48xlarge", "g6e.12xlarge"))
    assert c.cost_per_hour() == pytest.approx(p5 + g6) and c.placement_optimal
    # one worker of 3 × TP4: its replicas share one pool, and 2 p5 nodes beat 3 g6e nodes
    one = plan(_graph(("w", 4, 3)), [P5, G6])
    assert one.worker_pools() == {"w": "p5"} and one.nodes_per_pool() == {"p5": 2, "g6": 0}


def test_duplicate_pool_names_are_refused():
    with pytest.raises(PlanError) as e:
        plan(_graph(("w", 4, 1)), [P5, P5])
    (p,) = e.value.problems
    assert p.path == "pools[1].name" and "'p5'" in p.message and "own name" in p.fix


def test_a_spent_search_budget_keeps_the_best_assignment_and_says_so(monkeypatch):
    pools = [GpuPool(name=f"p{i}", instance_type="p5.48xlarge", max_nodes=2, zones=["us-east-1a"]) for i in range(3)]
    g = _graph(*((f"w{i}", 3, 1) for i in range(6)))
    full = plan(g, pools)
    assert full.placement_optimal and full.total_nodes() == 3
    monkeypatch.setattr(capacity, "ASSIGN_BUDGET", 2)
    cut = plan(g, pools)
    assert not cut.placement_optimal and any("not proven minimal" in w for w in cut.warnings)
    assert sorted(cut.worker_pools()) == [f"w{i}" for i in range(6)]       # still every worker placed


def test_assign_alone_matches_exhaustive_search_on_a_tiny_case():
    # two pools (price 1 and 3 per node), units of 1 GPU on 2-GPU nodes, pool 0 at most 1 node
    def score(p, units):
        n = -(-len(units) // 2)
        if p == 0 and n > 1:
            return None
        return n, 0, n * (1.0, 3.0)[p]
    got = assign(2, [1, 1, 1], [[0, 1]] * 3, score, budget=100)
    assert got.proven and sorted(len(s) for s in got.sets) == [1, 2] and len(got.sets[0]) == 2


def test_pools_without_nodes_print_no_price_rows():
    c = plan(_graph(("w", 4, 3)), [P5, G6])
    buf = io.StringIO()
    print_plan(c, Console(file=buf, width=200, color_system=None))
    out = buf.getvalue()
    assert "p5 on-demand" in out and "g6 on-demand" not in out


def test_auto_pools_arguments_are_checked_per_cloud():
    with pytest.raises(ConfigError) as e:
        auto_pools(patterns.aggregated("a", "m/x"), "aws", gpu="gb200")
    (p,) = e.value.problems
    listed = p.fix.split(" on aws")[0]
    assert p.message == "no AWS instance type has GPU model 'gb200'" and "h100" in listed and "gb200" not in listed
    with pytest.raises(ConfigError) as e:
        auto_pools(patterns.aggregated("a", "m/x"), "aws", min_memory_gb=-5)
    assert e.value.problems[0].path == "auto_pools.min_memory_gb"
    (pool,) = auto_pools(patterns.aggregated("a", "m/x", tp=4), "AWS", zone="us-east-1a")
    assert CAT.get(pool.instance_type).cloud == "aws"


def test_catalog_cli_cloud_is_case_insensitive_and_lists_that_clouds_gpus():
    from dynamo_iac.cli import app

    r = CliRunner().invoke(app, ["catalog", "--cloud", "AWS", "--json"])
    assert r.exit_code == 0 and "p5.48xlarge" in r.output and "Standard_ND96isr_H100_v5" not in r.output
    r = CliRunner().invoke(app, ["catalog", "--cloud", "aws", "--gpu", "gb200"])
    assert isinstance(r.exception, ConfigError)
    fix = r.exception.problems[0].fix
    assert "h100" in fix and "gb200" not in fix

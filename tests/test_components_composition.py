"""The composition contract under mocks: the cluster plans the graphs it is given (and their
pins), its node groups run the plan's counts, the DGD pins every worker to the pool the plan put
it on; graph changes never replace a GPU node group; bad input stops before anything exists."""
from __future__ import annotations

import pytest

from dynamo_iac import patterns
from dynamo_iac.errors import DynamoIacError
from dynamo_iac.graph import Model, ModelCache, Parallelism, Worker
from dynamo_iac.hardware.pool import GpuPool
from dynamo_iac.preview.engine import run_program

pytestmark = pytest.mark.mocks

AGG = patterns.aggregated("qwen3-8b", Model("Qwen/Qwen3-8B", cache=ModelCache()),
                          worker=Worker(replicas=2, parallelism=Parallelism(tp=2)))
H100 = GpuPool(name="h100", instance_type="p5.48xlarge", min_nodes=0, max_nodes=2, zones=["us-east-1a"])
L40S = GpuPool(name="l40s", instance_type="g6e.12xlarge", min_nodes=0, max_nodes=2, zones=["us-east-1a"])


def disagg(decode_replicas: int = 1):
    return patterns.disaggregated("qwen3-32b", Model("Qwen/Qwen3-32B", cache=ModelCache()),
                                  prefill=Worker(parallelism=Parallelism(tp=4)),
                                  decode=Worker(replicas=decode_replicas, parallelism=Parallelism(tp=4)))


def of(rec, suffix):
    return [r for r in rec.resources if r.type.endswith(suffix)]


def gpu_workers(rec):
    (dgd,) = of(rec, ":DynamoGraphDeployment")
    return {c["name"]: c["podTemplate"]["spec"] for c in dgd.inputs["spec"]["components"] if c["type"] != "frontend"}


@pytest.fixture
def ignored(monkeypatch):
    """name → ignore_changes of every registered resource (the recorder keeps no such field)."""
    from pulumi.runtime import mocks

    seen: dict[str, list[str]] = {}
    orig = mocks.MockMonitor.RegisterResource

    def register(self, request):
        seen[request.name] = sorted(request.ignoreChanges)
        return orig(self, request)
    monkeypatch.setattr(mocks.MockMonitor, "RegisterResource", register)
    return seen


@pytest.fixture
def registered(monkeypatch):
    import pulumi

    names: list[str] = []
    orig = pulumi.Resource.__init__

    def counting(self, t, name, *a, **k):
        if not t.startswith("pulumi:pulumi:Stack"):
            names.append(f"{t}::{name}")
        return orig(self, t, name, *a, **k)
    monkeypatch.setattr(pulumi.Resource, "__init__", counting)
    return names


def aws_stack(pools, graph, placement=None, **deploy):
    def program():
        from dynamo_iac.components.aws import AwsGpuCluster
        from dynamo_iac.components.deployment import DynamoDeployment
        from dynamo_iac.components.platform import GpuPlatform

        c = AwsGpuCluster("prod", region="us-east-1", pools=pools, graphs=[graph], placement=placement)
        DynamoDeployment("d", graph=graph, platform=GpuPlatform("p", cluster=c, graphs=[graph]), **deploy)
    return run_program(program, project="t", stack="t")


def test_two_pools_workers_follow_the_plan_and_node_groups_its_counts():
    from dynamo_iac.components.composition import plan_graph
    from dynamo_iac.hardware.catalog import load

    cat = load()
    pools = [H100, L40S]
    gp = plan_graph(AGG, pools, {p.name: cat.get(p.instance_type) for p in pools}, catalog=cat, region="us-east-1")
    assert gp.where == {"Worker": "l40s"}                       # cheaper per GPU: not pools[0]
    rec = aws_stack(pools, AGG)
    specs = gpu_workers(rec)
    assert {w: s["nodeSelector"]["dynamo-iac/pool"] for w, s in specs.items()} == gp.where
    groups = {r.inputs["nodeGroupName"]: r.inputs["scalingConfig"]["desiredSize"]
              for r in of(rec, "aws:eks/nodeGroup:NodeGroup") if r.inputs["nodeGroupName"] != "system"}
    assert groups == gp.capacity.provisioned_per_pool() == {"h100": 0, "l40s": 1}


def test_stack_program_two_pools(tmp_path):
    """The stack program (what `pulumi up` and `dynamo-iac plan` run) wires the same plan through."""
    from dynamo_iac.stacks.config import parse
    from dynamo_iac.stacks.program import build

    (tmp_path / "g.yaml").write_text("name: qwen3-8b\nbackend: vllm\nmodel: {id: Qwen/Qwen3-8B, dtype: bf16, "
                                     "params_b: 8.2, cache: {pvc: model-cache, mount_path: /model-cache, "
                                     "size: 50Gi}}\nhf_token_secret: null\nworkers:\n  - role: agg\n    replicas: 2\n"
                                     "    parallelism: {tp: 2}\n")
    cfg = parse({"cloud": "aws", "region": "us-east-1", "graph": "g.yaml", "storage": {"kind": "efs"},
                 "pools": [H100.model_dump(exclude_unset=True), L40S.model_dump(exclude_unset=True)]}, "Pulumi.two.yaml")
    out = {}
    rec = run_program(lambda: out.update(build(cfg, "two", tmp_path, export=False, token_from_stack=False)),
                      project="dynamo-iac", stack="two")
    specs = gpu_workers(rec)
    assert [s["nodeSelector"] for s in specs.values()] == [{"dynamo-iac/pool": "l40s"}]
    assert out["capacity"].worker_pools() == {"Worker": "l40s"}
    groups = {r.inputs["nodeGroupName"]: r.inputs["scalingConfig"]["desiredSize"]
              for r in of(rec, "aws:eks/nodeGroup:NodeGroup") if r.inputs["nodeGroupName"] != "system"}
    assert groups == out["capacity"].provisioned_per_pool()


def test_pins_given_to_the_cluster_size_the_node_groups():
    rec = aws_stack([H100, L40S], AGG, placement={"qwen3-8b": "h100"})
    assert [s["nodeSelector"] for s in gpu_workers(rec).values()] == [{"dynamo-iac/pool": "h100"}]
    groups = {r.inputs["nodeGroupName"]: r.inputs["scalingConfig"]["desiredSize"]
              for r in of(rec, "aws:eks/nodeGroup:NodeGroup") if r.inputs["nodeGroupName"] != "system"}
    assert groups == {"h100": 1, "l40s": 0}


def test_deployment_pin_the_cluster_did_not_plan_is_refused():
    with pytest.raises(DynamoIacError) as e:
        aws_stack([H100, L40S], AGG, pool="h100")
    (p,) = e.value.problems
    assert p.path == "pool" and "placement={'qwen3-8b': 'h100'}" in p.fix


def test_pool_not_of_the_cluster_is_named(registered):
    b200 = GpuPool(name="b200", instance_type="p6-b200.48xlarge", nodes=1, zones=["us-east-1a"])
    with pytest.raises(DynamoIacError) as e:
        aws_stack([H100, L40S], AGG, placement={"qwen3-8b": b200.name})
    assert "pool 'b200' is not a pool of this cluster (its pools: h100, l40s)" in str(e.value)
    assert registered == []


def test_namespace_nobody_creates_is_refused():
    with pytest.raises(DynamoIacError) as e:
        aws_stack([L40S], AGG, namespace="team-a")
    (p,) = e.value.problems
    assert p.path == "namespace" and "hf_token_namespace='team-a'" in p.fix


def test_efa_prefill_decode_in_two_azs_refused_at_the_cluster(registered):
    a = GpuPool(name="h100a", instance_type="p5.48xlarge", nodes=1, max_nodes=2, zones=["us-east-1a"])
    b = GpuPool(name="h100b", instance_type="p5.48xlarge", nodes=1, max_nodes=2, zones=["us-east-1b"])
    with pytest.raises(DynamoIacError) as e:
        aws_stack([a, b], disagg(), placement={"qwen3-32b": {"PrefillWorker": "h100a", "DecodeWorker": "h100b"}})
    assert [p.path for p in e.value.problems] == ["graphs[0].deployment.pool"]
    assert "EFA only connects instances of one AZ" in e.value.problems[0].message
    assert registered == []


def test_late_errors_name_the_cluster_argument():
    """Composed without graphs=: the deployment's own plan fails after the cluster exists; it says so."""
    small = GpuPool(name="h100", instance_type="p5.48xlarge", nodes=1, max_nodes=1, zones=["us-east-1a"])

    def program():
        from dynamo_iac.components.aws import AwsGpuCluster
        from dynamo_iac.components.deployment import DynamoDeployment
        from dynamo_iac.components.platform import GpuPlatform

        c = AwsGpuCluster("prod", region="us-east-1", pools=[small])
        DynamoDeployment("d", graph=disagg(), platform=GpuPlatform("p", cluster=c))
    with pytest.raises(DynamoIacError) as e:
        run_program(program, project="t", stack="t")
    assert all(p.fix.endswith("pass graphs=[graph] (and placement=) to the cluster so this is caught before "
                              "anything is created") for p in e.value.problems)


def _replicas_diff(build, pool, decode_a=1, decode_b=3):
    """The GPU node group / pool for two decode replica counts, and the plan's counts for both."""
    from dynamo_iac.plan import plan

    counts = [plan(disagg(n), [pool]).provisioned_per_pool()[pool.name] for n in (decode_a, decode_b)]
    assert counts[0] < counts[1]
    return build(disagg(decode_a)), build(disagg(decode_b)), counts


def test_replica_change_never_replaces_an_eks_node_group():
    pool = GpuPool(name="h100", instance_type="p5.48xlarge", min_nodes=0, max_nodes=4, zones=["us-east-1a"])

    def build(graph):
        def program():
            from dynamo_iac.components.aws import AwsGpuCluster
            AwsGpuCluster("prod", region="us-east-1", pools=[pool], graphs=[graph])
        rec = run_program(program, project="t", stack="t")
        (ng,) = [r for r in of(rec, "aws:eks/nodeGroup:NodeGroup") if r.name == "prod-h100"]
        return ng
    a, b, counts = _replicas_diff(build, pool)
    # desiredSize is updated in place (EKS UpdateNodegroupConfig); nothing else moves
    assert [a.inputs["scalingConfig"]["desiredSize"], b.inputs["scalingConfig"]["desiredSize"]] == counts
    changed = {k for k in a.inputs if a.inputs[k] != b.inputs[k]}
    assert changed == {"scalingConfig"} and not a.replace_on_changes


def test_replica_change_never_replaces_a_gke_node_pool(ignored):
    autoscaled = GpuPool(name="ultra", instance_type="a3-ultragpu-8g", min_nodes=0, max_nodes=4,
                         zones=["us-central1-b"], gpu_driver="provider")
    fixed = GpuPool(name="ultra", instance_type="a3-ultragpu-8g", nodes=2, zones=["us-central1-b"],
                    gpu_driver="provider")

    def builder(pool):
        def build(graph):
            def program():
                from dynamo_iac.components.gcp import GcpGpuCluster
                GcpGpuCluster("gke", region="us-central1", project="p", pools=[pool], graphs=[graph])
            rec = run_program(program, project="t", stack="t")
            (np,) = [r for r in of(rec, "gcp:container/nodePool:NodePool") if r.name == "gke-ultra"]
            return np
        return build
    a, b, counts = _replicas_diff(builder(autoscaled), autoscaled)
    assert [a.inputs["initialNodeCount"], b.inputs["initialNodeCount"]] == counts
    assert ignored["gke-ultra"] == ["initialNodeCount", "nodeCount"]      # ForceNew field never diffed
    assert {k for k in a.inputs if a.inputs[k] != b.inputs[k]} == {"initialNodeCount"}
    # a fixed-size pool is sized by nodeCount (resized in place), never by initialNodeCount
    np = builder(fixed)(disagg(1))
    assert "initialNodeCount" not in np.inputs and np.inputs["nodeCount"] == 2 and ignored["gke-ultra"] == []


def test_replica_change_resizes_an_aks_pool_in_place(ignored):
    auto = GpuPool(name="ndh100", instance_type="Standard_ND96isr_H100_v5", min_nodes=0, max_nodes=4)

    def build(graph):
        def program():
            from dynamo_iac.components.azure import AzureGpuCluster
            AzureGpuCluster("aks", location="eastus", pools=[auto], graphs=[graph])
        rec = run_program(program, project="t", stack="t")
        (ap,) = [r for r in of(rec, "azure-native:containerservice:AgentPool") if r.name == "aks-ndh100"]
        return ap
    a, b, counts = _replicas_diff(build, auto)
    assert [a.inputs["count"], b.inputs["count"]] == counts
    assert {k for k in a.inputs if a.inputs[k] != b.inputs[k]} == {"count"}
    assert ignored["aks-ndh100"] == ["count"] and a.inputs["enableAutoScaling"] is True


def test_gke_gpu_operator_namespace_admits_critical_pods():
    pool = GpuPool(name="ultra", instance_type="a3-ultragpu-8g", nodes=2, zones=["us-central1-b"],
                   gpu_driver="provider")

    def program():
        from dynamo_iac.components.gcp import GcpGpuCluster
        from dynamo_iac.components.platform import GpuPlatform

        GpuPlatform("platform", cluster=GcpGpuCluster("gke", region="us-central1", project="p", pools=[pool]))
    rec = run_program(program, project="t", stack="t")
    (quota,) = of(rec, "kubernetes:core/v1:ResourceQuota")
    assert quota.inputs["metadata"] == {"name": "critical-pods", "namespace": "gpu-operator"}
    assert quota.inputs["spec"]["scopeSelector"] == {"matchExpressions": [{
        "operator": "In", "scopeName": "PriorityClass", "values": ["system-node-critical", "system-cluster-critical"]}]}
    (ns,) = [r for r in of(rec, "kubernetes:core/v1:Namespace") if r.inputs["metadata"]["name"] == "gpu-operator"]
    (op,) = [r for r in of(rec, "kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "gpu-operator"]
    assert quota.urn in op.dependencies and ns.urn in quota.dependencies
    assert op.inputs["createNamespace"] is False


def test_no_quota_outside_gke():
    rec = aws_stack([L40S], AGG)
    assert of(rec, "kubernetes:core/v1:ResourceQuota") == []


@pytest.mark.parametrize("make,path,words", [
    (lambda: ("aws", {"system_nodes": 0}), "cluster.system_nodes", "at least one"),
    (lambda: ("aws", {"root_volume_gib": 0}), "cluster.root_volume_gib", "root volume"),
    (lambda: ("aws", {"pools": [GpuPool(name="l40s", instance_type="g6e.12xlarge", nodes=1, zones=["us-east-1a"],
                                         labels={"team": "a b c"})]}), "pools[0].labels[team]", "label value"),
    (lambda: ("azure", {"system_nodes": 0}), "system_nodes", "System pool"),
    (lambda: ("azure", {"node_subnet_cidr": "10.100.0.0/16"}), "node_subnet_cidr", "is not inside vnet_cidr"),
    (lambda: ("azure", {"vnet_cidr": "10.300.0.0/16"}), "vnet_cidr", "not an IPv4 CIDR"),
    (lambda: ("azure", {"storage": "azure-lustre"}), "storage.kind", "azurelustre CSI driver"),
    (lambda: ("gcp", {"pods_cidr": "10.300.0.0/14"}), "pods_cidr", "not an IPv4 CIDR"),
    (lambda: ("gcp", {"services_cidr": "10.0.0.0/20"}), "node_cidr", "overlaps services_cidr"),
    (lambda: ("gcp", {"storage": "lustre"}), "storage.kind", "private services access"),
])
def test_cluster_inputs_rejected_before_anything(make, path, words, registered):
    cloud, kw = make()

    def program():
        if cloud == "aws":
            from dynamo_iac.components.aws import AwsGpuCluster
            AwsGpuCluster("prod", region="us-east-1", **{"pools": [L40S], **kw})
        elif cloud == "azure":
            from dynamo_iac.components.azure import AzureGpuCluster
            AzureGpuCluster("aks", location="eastus", pools=[GpuPool(name="ndh100",
                            instance_type="Standard_ND96isr_H100_v5", nodes=1)], **kw)
        else:
            from dynamo_iac.components.gcp import GcpGpuCluster
            GcpGpuCluster("gke", region="us-central1", project="p", pools=[GpuPool(
                name="ultra", instance_type="a3-ultragpu-8g", nodes=1, zones=["us-central1-b"],
                gpu_driver="provider")], **kw)
    with pytest.raises(DynamoIacError) as e:
        run_program(program, project="t", stack="t")
    assert any(p.path == path and words in p.message for p in e.value.problems), [str(p) for p in e.value.problems]
    assert registered == []

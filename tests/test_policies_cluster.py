"""Rules that relate the graph to its node pools (GPUs per node, fabric, zones, taints, drivers),
with hardware facts from the real catalog: a passing and a failing fixture per rule, asserted on
the exact violation."""
from __future__ import annotations

import dataclasses

import pytest

from test_policies_support import EFA, IB, agg, dgd, dgd_urn, disagg, pod, render, res, run, urn

pytestmark = pytest.mark.policy
NG = "aws:eks/nodeGroup:NodeGroup"
AP = "azure-native:containerservice:AgentPool"
NP = "gcp:container/nodePool:NodePool"
AWS, AZURE, GCP = "dynamo:aws:GpuCluster", "dynamo:azure:GpuCluster", "dynamo:gcp:GpuCluster"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}


def nodegroup(name: str = "h100", it: str = "p5.48xlarge", taint: bool = True, capacity: str = "ON_DEMAND",
              max_size: int = 4, **kw):
    props = {"nodeGroupName": name, "instanceTypes": [it], "amiType": "AL2023_x86_64_NVIDIA",
             "capacityType": capacity, "labels": {"dynamo-iac/pool": name},
             "scalingConfig": {"desiredSize": 2.0, "minSize": 2.0, "maxSize": float(max_size)}}
    if taint:
        props["taints"] = [GPU_TAINT]
    return res(NG, f"prod-{name}", props, parent_type=AWS, **kw)


def ng_urn(name: str = "h100") -> str:
    return urn(NG, f"prod-{name}", AWS)


def agent_pool(name: str, vm: str = "Standard_ND96isr_H100_v5", spot: bool = False):
    props = {"agentPoolName": name, "vmSize": vm, "count": 2.0, "nodeLabels": {"dynamo-iac/pool": name},
             "nodeTaints": ["nvidia.com/gpu=present:NoSchedule"], "gpuProfile": {"driver": "None"}}
    if spot:
        props["scaleSetPriority"] = "Spot"
    return res(AP, f"prod-{name}", props, parent_type=AZURE)


def gke_pool(name: str = "h100", networks: int = 9, gvnic: bool = True):
    nc = {"machineType": "a3-ultragpu-8g", "labels": {"dynamo-iac/pool": name},
          "guestAccelerators": [{"type": "nvidia-h200-141gb", "count": 8.0,
                                 "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}]}
    if gvnic:
        nc["gvnic"] = {"enabled": True}
    props = {"name": name, "nodeConfig": nc, "nodeCount": 2.0, "nodeLocations": ["us-central1-b"],
             "networkConfig": {"additionalNodeNetworkConfigs": [{"network": f"n{i}", "subnetwork": f"s{i}"}
                                                                for i in range(networks)]}}
    return res(NP, f"prod-{name}", props, parent_type=GCP)


@pytest.fixture(scope="module", autouse=True)
def _catalog_entries():
    """These tests read the real catalog; say so plainly if an entry they rely on is missing."""
    from dynamo_iac.hardware import catalog

    cat = catalog.load()
    for name in ("p5.48xlarge", "g6e.12xlarge", "Standard_ND96isr_H100_v5", "a3-ultragpu-8g"):
        cat.get(name)


def test_worker_gpus_fit_node() -> None:
    assert run("worker-gpus-fit-node", nodegroup(), dgd(render(disagg(tp=4), "v1beta1"))) == []
    # 16 GPUs in one pod (the renderer was told the node has 16): no p5 node has that many
    big = render(disagg(tp=16), "v1beta1", gpus_per_node=16)
    assert run("worker-gpus-fit-node", nodegroup(), dgd(big)) == [
        ("worker-gpus-fit-node", dgd_urn(big),
         f"DGD qwen component {w} requests 16 GPUs per pod but its node pool(s) h100 (p5.48xlarge, 8 GPUs/node) have "
         f"fewer: the pods never schedule") for w in ("DecodeWorker", "PrefillWorker")]
    # pinned to a pool the stack does not have
    doc = render(agg(), "v1alpha1")
    assert run("worker-gpus-fit-node", nodegroup("l40s", "g6e.12xlarge"), dgd(doc)) == [(
        "worker-gpus-fit-node", dgd_urn(doc, "small"),
        "DGD small component Worker selects nodes {'dynamo-iac/pool': 'h100'} that no GPU pool of the stack matches "
        "(l40s): its pods stay Pending")]


def test_worker_gpus_fit_declared_pools_of_an_existing_cluster() -> None:
    """byo: no pool resources; the pools described in the stack config stand in for them."""
    cfg = {"dynamo-iac:pools": [{"name": "h100", "instance_type": "g6e.12xlarge", "nodes": 1}]}
    doc = render(agg(tp=2), "v1beta1")
    assert run("worker-gpus-fit-node", dgd(doc), config=cfg) == []
    doc = render(agg(tp=8), "v1beta1")
    assert run("worker-gpus-fit-node", dgd(doc), config=cfg) == [(
        "worker-gpus-fit-node", dgd_urn(doc, "small"),
        "DGD small component Worker requests 8 GPUs per pod but its node pool(s) h100 (g6e.12xlarge, 4 GPUs/node) "
        "have fewer: the pods never schedule")]


def test_disagg_requests_rdma() -> None:
    assert run("disagg-requests-rdma", nodegroup(), dgd(render(disagg(), "v1beta1", EFA))) == []
    doc = render(disagg(), "v1alpha1")
    assert run("disagg-requests-rdma", nodegroup(), dgd(doc)) == [
        ("disagg-requests-rdma", dgd_urn(doc),
         f"DGD qwen component {w} runs on h100 (p5.48xlarge, efa) but requests no vpc.amazonaws.com/efa: KV cache "
         f"between prefill and decode falls back to TCP (~100 s TTFT)") for w in ("DecodeWorker", "PrefillWorker")]
    # an aggregated graph moves no KV cache between pods
    assert run("disagg-requests-rdma", nodegroup(), dgd(render(agg(), "v1alpha1"))) == []


def test_aks_rdma_single_pool() -> None:
    doc = render(disagg(), "v1beta1", IB)
    assert run("aks-rdma-single-pool", agent_pool("h100"), agent_pool("h100b"), dgd(doc)) == []
    for w in ("PrefillWorker", "DecodeWorker"):
        del pod(doc, w)["nodeSelector"]
    assert run("aks-rdma-single-pool", agent_pool("h100"), agent_pool("h100b"), dgd(doc)) == [
        ("aks-rdma-single-pool", dgd_urn(doc),
         f"DGD qwen component {w} can land on InfiniBand pools h100, h100b: IB only connects VMs of one scale set "
         f"(one AKS pool)") for w in ("DecodeWorker", "PrefillWorker")]
    pod(doc, "PrefillWorker")["nodeSelector"] = {"dynamo-iac/pool": "h100"}
    pod(doc, "DecodeWorker")["nodeSelector"] = {"kubernetes.azure.com/agentpool": "h100b"}
    assert run("aks-rdma-single-pool", agent_pool("h100"), agent_pool("h100b"), dgd(doc)) == [(
        "aks-rdma-single-pool", dgd_urn(doc),
        "DGD qwen places its RDMA workers on different InfiniBand pools (PrefillWorker → h100, DecodeWorker → h100b): "
        "KV transfer between scale sets has no IB path")]


def test_gke_gpudirect_networks() -> None:
    assert run("gke-gpudirect-networks", gke_pool()) == []
    u = urn(NP, "prod-h100", GCP)
    assert run("gke-gpudirect-networks", gke_pool(networks=0, gvnic=False)) == [
        ("gke-gpudirect-networks", u, "GKE pool h100 (a3-ultragpu-8g) runs without gVNIC, which multi-NIC GPUDirect "
                                      "needs"),
        ("gke-gpudirect-networks", u, "GKE pool h100 (a3-ultragpu-8g, roce) attaches 0 additional node network(s); "
                                      "the machine type's GPUDirect NICs need 9")]


def test_efa_single_az() -> None:
    subnet = lambda n, az: res("aws:ec2/subnet:Subnet", n, {"availabilityZone": az, "cidrBlock": "10.0.0.0/20"},
                               parent_type=AWS)
    a, b = subnet("prod-a", "us-east-1a"), subnet("prod-b", "us-east-1b")
    one = nodegroup(dependencies=(a.urn,))
    assert run("efa-single-az", a, b, one) == []
    two = nodegroup(dependencies=(a.urn, b.urn))
    assert run("efa-single-az", a, b, two) == [(
        "efa-single-az", ng_urn(),
        "EFA pool h100 (p5.48xlarge) spans zones us-east-1a, us-east-1b: EFA does not cross AZs, so KV transfers "
        "between workers in different zones fail")]
    # workers that keep themselves in one zone make it safe
    doc = render(disagg(), "v1beta1", EFA)
    for w in ("PrefillWorker", "DecodeWorker"):
        pod(doc, w)["affinity"]["podAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "topologyKey": "topology.kubernetes.io/zone",
            "labelSelector": {"matchLabels": {"nvidia.com/dynamo-graph-deployment-name": "qwen"}}}]}
    assert run("efa-single-az", a, b, two, dgd(doc)) == []


def test_placement_group_without_reservation() -> None:
    pg = res("aws:ec2/placementGroup:PlacementGroup", "prod-pg", {"strategy": "cluster"}, parent_type=AWS)
    lt = res("aws:ec2/launchTemplate:LaunchTemplate", "prod-lt", {"placement": {"groupName": "prod-pg-x"}},
             parent_type=AWS, dependencies=(pg.urn,))
    assert run("placement-group-without-reservation", pg, lt, nodegroup(dependencies=(lt.urn,))) == []
    block = nodegroup(capacity="CAPACITY_BLOCK", dependencies=(lt.urn,))
    assert run("placement-group-without-reservation", pg, lt, block) == [(
        "placement-group-without-reservation", ng_urn(),
        "EKS pool h100 uses capacity block capacity and its launch template prod-lt also places nodes in a placement "
        "group: the reserved instances cannot be launched into it")]


def test_gpu_pools_tainted() -> None:
    assert run("gpu-pools-tainted", nodegroup(), gke_pool()) == []       # GKE taints GPU nodes itself
    assert run("gpu-pools-tainted", nodegroup(taint=False), nodegroup("cpu", "m5.2xlarge", taint=False)) == [(
        "gpu-pools-tainted", ng_urn(),
        "GPU pool h100 (p5.48xlarge) carries no nvidia.com/gpu NoSchedule taint: CPU pods fill the GPU nodes and block "
        "workers")]


def test_gpu_pods_tolerate_taints() -> None:
    doc = render(disagg(), "v1beta1", IB)
    assert run("gpu-pods-tolerate-taints", agent_pool("h100"), dgd(doc)) == []
    # a Spot pool: AKS adds its own taint, which the renderer's GPU toleration does not cover
    assert run("gpu-pods-tolerate-taints", agent_pool("h100", spot=True), dgd(doc)) == [
        ("gpu-pods-tolerate-taints", dgd_urn(doc),
         f"DGD qwen component {w} tolerates none of its pools' taints (h100: "
         f"kubernetes.azure.com/scalesetpriority=spot:NoSchedule): its pods stay Pending")
        for w in ("DecodeWorker", "PrefillWorker")]
    for w in ("PrefillWorker", "DecodeWorker"):
        pod(doc, w)["tolerations"].append({"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal",
                                           "value": "spot", "effect": "NoSchedule"})
    assert run("gpu-pods-tolerate-taints", agent_pool("h100", spot=True), dgd(doc)) == []


def test_one_gpu_driver() -> None:
    op = lambda values: res("kubernetes:helm.sh/v3:Release", "gpu-operator",
                            {"chart": "gpu-operator", "version": "v26.7.0", "values": values})
    assert run("one-gpu-driver", nodegroup(), op({"driver": {"enabled": False}})) == []
    assert run("one-gpu-driver", nodegroup(), op({})) == [(
        "one-gpu-driver", ng_urn(),
        "GPU pool h100 gets the NVIDIA driver from the cloud (aws) and the GPU Operator release gpu-operator installs "
        "its own (driver.enabled is not false): two drivers on one node break the container runtime")]
    # AKS pool that skips the AKS driver (gpu_profile.driver=None): the operator's driver is the only one
    assert run("one-gpu-driver", agent_pool("h100"), op({})) == []


def _catalog_with_p5_price(price: float | None):
    """The real catalog with p5.48xlarge's on-demand price set (None: no price at all)."""
    from dynamo_iac.hardware import catalog
    from dynamo_iac.policies.model import Catalog

    real = catalog.load()

    class Priced:
        def get(self, name):
            inst = real.get(name)
            if name != "p5.48xlarge":
                return inst
            src = inst.source
            prices = [] if price is None else [inst.prices[0].model_copy(update={
                "option": "on-demand", "usd_per_hour": price, "source": src})] if inst.prices else []
            return inst.model_copy(update={"prices": prices})

    return Catalog(lambda: Priced())


def _budget(settings, catalog, outputs=None):
    from dynamo_iac.policies import PolicySettings, StackView, evaluate
    from test_policies_support import rule

    r = rule("cost-budget")
    report = evaluate(StackView([nodegroup()], outputs=outputs),
                      PolicySettings.parse({"cost-budget": settings} if settings else {}, "test", [r]),
                      rules=[r], catalog=catalog)
    return [(v.level, v.message, v.fix) for v in report.violations], [s.reason for s in report.skipped]


def test_cost_budget_estimates_without_a_plan() -> None:
    """CrossGuard may not show the stack outputs: the guard then prices the pools from the catalog."""
    price = 40.0
    cat = _catalog_with_p5_price(price)
    ng_cost = 2 * price                              # desired 2 nodes
    assert _budget({"maxUsdPerHour": ng_cost + 1, "maxGpus": 16}, cat) == ([], [])
    msgs = [m for _, m, _ in _budget({"maxUsdPerHour": price, "maxGpus": 8}, cat)[0]]
    assert msgs == [
        "the stack costs ${:,.2f}/hour by the pools' sizes at catalog prices, over the budget of "
        "${:,.2f}/hour".format(ng_cost, price),
        "the stack holds 16 GPUs, over the limit of 8"]


def test_rdma_overlay_fixture_is_what_the_catalog_says() -> None:
    """The fixtures' fabric overlays name the resources the catalog gives for these instance types."""
    from dynamo_iac.hardware import catalog

    cat = catalog.load()
    assert cat.get("p5.48xlarge").fabric.resource == dict(EFA.resources).popitem()[0] == "vpc.amazonaws.com/efa"
    assert cat.get("Standard_ND96isr_H100_v5").fabric.resource == dict(IB.resources).popitem()[0]
    assert dataclasses.is_dataclass(EFA)


def test_cost_budget_with_an_unknown_price_is_a_violation_not_a_pass() -> None:
    """A budget the guard cannot prove holds fails the guard; without a budget it is not evaluated."""
    cat = _catalog_with_p5_price(None)
    out = {"cost_per_hour_usd": None}                # what the program exports when a price is unknown
    assert _budget({"maxUsdPerHour": 1}, cat, out) == ([(
        "mandatory", "cannot prove the stack stays within its budget: price unknown for p5.48xlarge",
        "add a price to the catalog override, or raise / disable the budget (maxUsdPerHour / maxUsdPerMonth)")], [])
    assert _budget({"maxUsdPerMonth": 1000}, cat, out)[0][0][1].endswith("price unknown for p5.48xlarge")
    assert _budget(None, cat, out) == ([], ["no budget configured (maxUsdPerHour / maxUsdPerMonth / maxGpus)"])

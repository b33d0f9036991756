"""Every pod the three clusters' stacks create can land on some node: a generic check of the
recorded node pools' taints (ours and the ones the cloud adds itself) against each workload's
tolerations and node selector — the Frontend, the operators' controllers (Helm releases, no
tolerations), the model download Job, and every GPU worker on the pool it is pinned to."""
from __future__ import annotations

import pytest

from dynamo_iac import patterns
from dynamo_iac.graph import Model, ModelCache, Parallelism, Worker
from dynamo_iac.hardware.pool import GpuPool
from dynamo_iac.preview.engine import run_program

pytestmark = pytest.mark.mocks
GRAPH = patterns.disaggregated("qwen3-32b", Model("Qwen/Qwen3-32B", cache=ModelCache()),
                               prefill=Worker(parallelism=Parallelism(tp=4)),
                               decode=Worker(parallelism=Parallelism(tp=4)))
POOL_LABEL = "dynamo-iac/pool"
EFFECT = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
AKS_SPOT = {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"}


def _taint(s: str) -> dict:
    kv, effect = s.rsplit(":", 1)
    key, _, value = kv.partition("=")
    return {"key": key, "value": value, "effect": effect}


def node_pools(rec) -> dict[str, list[dict]]:
    """pool name → taints of its nodes, from the recorded cluster resources."""
    out: dict[str, list[dict]] = {}
    for r in rec.resources:
        i = r.inputs
        if r.type == "aws:eks/nodeGroup:NodeGroup":
            out[i["labels"][POOL_LABEL]] = [{**t, "effect": EFFECT[t["effect"]]} for t in i.get("taints") or []]
        elif r.type == "azure-native:containerservice:ManagedCluster":
            for p in i["agentPoolProfiles"]:
                out[p["name"]] = [_taint(t) for t in p.get("nodeTaints") or []]
        elif r.type == "azure-native:containerservice:AgentPool":
            taints = [_taint(t) for t in i.get("nodeTaints") or []]
            if i.get("scaleSetPriority") == "Spot":
                taints.append(AKS_SPOT)               # AKS adds it to every Spot node
            out[i["agentPoolName"]] = taints
        elif r.type == "gcp:container/nodePool:NodePool":
            cfg = i["nodeConfig"]
            out[cfg["labels"][POOL_LABEL]] = [{**t, "effect": EFFECT[t["effect"]]} for t in cfg.get("taints") or []]
    return out


def tolerates(tol: dict, taint: dict) -> bool:
    if tol.get("key") not in (None, taint["key"]):
        return False
    if tol.get("effect") not in (None, "", taint["effect"]):
        return False
    return tol.get("operator") == "Exists" or tol.get("value") == taint["value"]


def schedulable_on(pools: dict[str, list[dict]], tolerations: list[dict], selector: dict) -> list[str]:
    return sorted(name for name, taints in pools.items()
                  if all(any(tolerates(t, x) for t in tolerations) for x in taints)
                  and selector.get(POOL_LABEL, name) == name)


def workloads(rec) -> list[tuple[str, list[dict], dict]]:
    """(what, tolerations, nodeSelector) of every pod template of the stack."""
    out = []
    for r in rec.resources:
        if r.type.endswith(":DynamoGraphDeployment"):
            for c in r.inputs["spec"]["components"]:
                spec = c["podTemplate"]["spec"]
                out.append((f"DGD {c['name']}", spec.get("tolerations", []), spec.get("nodeSelector", {})))
        elif r.type == "kubernetes:batch/v1:Job":
            spec = r.inputs["spec"]["template"]["spec"]
            out.append((f"Job {r.name}", spec.get("tolerations", []), spec.get("nodeSelector", {})))
        elif r.type == "kubernetes:helm.sh/v3:Release":
            out.append((f"controllers of {r.inputs['chart']}", [], {}))
    return out


def program(cloud: str, pools: list[GpuPool]):
    def build():
        from dynamo_iac.components.deployment import DynamoDeployment
        from dynamo_iac.components.platform import GpuPlatform

        if cloud == "aws":
            from dynamo_iac.components.aws import AwsGpuCluster
            c = AwsGpuCluster("prod", region="us-east-1", pools=pools)
        elif cloud == "azure":
            from dynamo_iac.components.azure import AzureGpuCluster
            c = AzureGpuCluster("aks", location="eastus", pools=pools, storage="azure-files")
        else:
            from dynamo_iac.components.gcp import GcpGpuCluster
            c = GcpGpuCluster("gke", region="us-central1", project="p", pools=pools, storage="filestore")
        p = GpuPlatform("platform", cluster=c, graphs=[GRAPH], prometheus=True)
        DynamoDeployment("qwen3", graph=GRAPH, platform=p, pool=pools[0], model_download=True)
    return run_program(build, project="t", stack="t")


CASES = {
    "aws": [GpuPool(name="h100", instance_type="p5.48xlarge", nodes=2, zones=["us-east-1a"])],
    "azure-spot": [GpuPool(name="ndspot", instance_type="Standard_ND96isr_H100_v5", nodes=2, purchase_option="spot")],
    "gcp": [GpuPool(name="a3ultra", instance_type="a3-ultragpu-8g", nodes=2, zones=["us-central1-b"],
                    gpu_driver="provider")],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_workload_has_a_schedulable_pool(case):
    rec = program(case.split("-")[0], CASES[case])
    pools = node_pools(rec)
    assert "system" in pools and CASES[case][0].name in pools
    seen = workloads(rec)
    kinds = {w.split()[0] for w, _, _ in seen}
    assert {"DGD", "Job", "controllers"} <= kinds
    for what, tolerations, selector in seen:
        assert schedulable_on(pools, tolerations, selector), (what, tolerations, selector, pools)
    # CPU-only pods have the untainted system pool; GPU workers land on their own pool only
    by = {w: schedulable_on(pools, t, s) for w, t, s in seen}
    assert by["DGD Frontend"] == ["system"] and by["Job qwen3-model-download"] == ["system"]
    assert by["DGD PrefillWorker"] == by["DGD DecodeWorker"] == [CASES[case][0].name]


def test_check_sees_a_tainted_system_pool():
    """The checker itself: the old AKS system pool (CriticalAddonsOnly) leaves a Frontend nowhere."""
    pools = {"system": [_taint("CriticalAddonsOnly=true:NoSchedule")], "gpu": [_taint("nvidia.com/gpu=present:NoSchedule")]}
    assert schedulable_on(pools, [], {}) == []
    assert schedulable_on(pools, [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                          {POOL_LABEL: "gpu"}) == ["gpu"]

"""Azure AKS and Google GKE clusters under the recording mock monitor: resource trees asserted on
their inputs, the same graph on both, lazy cloud imports, and bad input rejected up front."""
from __future__ import annotations

import subprocess
import sys

import pytest

from dynamo_iac import patterns
from dynamo_iac.errors import DynamoIacError
from dynamo_iac.graph import Model, ModelCache, Parallelism, Worker
from dynamo_iac.hardware.pool import GpuPool
from dynamo_iac.preview.engine import run_program

pytestmark = pytest.mark.mocks
GRAPH = patterns.disaggregated("qwen3-32b", Model("Qwen/Qwen3-32B", cache=ModelCache()),
                               prefill=Worker(parallelism=Parallelism(tp=4)),
                               decode=Worker(parallelism=Parallelism(tp=4)))


def run(build):
    return run_program(build, project="t", stack="t")


def types(rec):
    return {r.type for r in rec.resources}


def of(rec, t):
    return [r for r in rec.resources if r.type == t]


def azure_stack(pools, **kw):
    def program():
        from dynamo_iac.components.azure import AzureGpuCluster
        from dynamo_iac.components.deployment import DynamoDeployment
        from dynamo_iac.components.platform import GpuPlatform

        c = AzureGpuCluster("aks", location="eastus", pools=pools, storage="azure-files", **kw)
        p = GpuPlatform("platform", cluster=c, graphs=[GRAPH])
        DynamoDeployment("qwen3", graph=GRAPH, platform=p, pool=pools[0])
    return run(program)


def gcp_stack(pools, **kw):
    def program():
        from dynamo_iac.components.deployment import DynamoDeployment
        from dynamo_iac.components.gcp import GcpGpuCluster
        from dynamo_iac.components.platform import GpuPlatform

        c = GcpGpuCluster("gke", region="us-central1", project="p", pools=pools, storage="filestore", **kw)
        p = GpuPlatform("platform", cluster=c, graphs=[GRAPH])
        DynamoDeployment("qwen3", graph=GRAPH, platform=p, pool=pools[0])
    return run(program)


ND = GpuPool(name="ndh100", instance_type="Standard_ND96isr_H100_v5", nodes=2)
A3U = GpuPool(name="a3ultra", instance_type="a3-ultragpu-8g", nodes=2, zones=["us-central1-b"], gpu_driver="provider")


def test_aks_tree():
    rec = azure_stack([ND])
    pools = {r.name: r.inputs for r in of(rec, "azure-native:containerservice:AgentPool")}
    gpu = next(v for k, v in pools.items() if "ndh100" in k)
    assert gpu["vmSize"] == "Standard_ND96isr_H100_v5" and gpu["count"] == 2
    assert "nvidia.com/gpu=present:NoSchedule" in gpu["nodeTaints"]
    assert gpu["gpuProfile"] == {"driver": "None"}            # the GPU Operator installs the driver
    cr = [r for r in rec.resources if r.inputs.get("kind") == "NicClusterPolicy"]
    assert cr, "InfiniBand pools get the Network Operator's NicClusterPolicy"
    assert any(r.retain_on_delete or r.protect for r in rec.resources if "model-cache" in r.name)
    (dgd,) = of(rec, "kubernetes:nvidia.com/v1beta1:DynamoGraphDeployment")
    main = dgd.inputs["spec"]["components"][1]["podTemplate"]["spec"]["containers"][0]
    assert main["resources"]["limits"]["rdma/shared_ib"] == "1"


def test_gke_tree():
    rec = gcp_stack([A3U])
    (np,) = [r for r in of(rec, "gcp:container/nodePool:NodePool") if "a3ultra" in r.name]
    cfg = np.inputs["nodeConfig"]
    assert cfg["machineType"] == "a3-ultragpu-8g"
    assert cfg["guestAccelerators"][0]["type"] == "nvidia-h200-141gb" and cfg["guestAccelerators"][0]["count"] == 8
    assert any(t["key"] == "nvidia.com/gpu" for t in cfg["taints"])
    nets = np.inputs["networkConfig"]["additionalNodeNetworkConfigs"]
    assert len(nets) >= 8                                      # 8 RDMA NICs (+ gVNIC)
    (cluster,) = of(rec, "gcp:container/cluster:Cluster")
    assert cluster.inputs["datapathProvider"] == "ADVANCED_DATAPATH"
    assert cluster.inputs["enableMultiNetworking"] is True
    assert any(r.inputs.get("kind") == "GKENetworkParamSet" for r in rec.resources)
    assert any((r.retain_on_delete or r.protect) for r in rec.resources if r.type.startswith("gcp:filestore"))


def test_aws_stack_imports_no_other_cloud():
    code = ("import sys; from dynamo_iac.preview.stack import run_stack; run_stack('aws-p5-disagg'); "
            "bad = [m for m in sys.modules if m.startswith(('pulumi_azure_native', 'pulumi_gcp'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_rdma_prefill_and_decode_in_two_aks_pools_rejected():
    from dynamo_iac.hardware.catalog import load
    from dynamo_iac.targets.k8s.fabrics import infiniband

    inst = load().get("Standard_ND96isr_H100_v5")
    other = GpuPool(name="ndh100b", instance_type="Standard_ND96isr_H100_v5", nodes=1)
    problems = infiniband.placement_problems([("PrefillWorker", "prefill", ND, inst),
                                              ("DecodeWorker", "decode", other, inst)])
    assert problems and "one scale set" in problems[0].message and "ndh100" in problems[0].fix


def test_a3_mega_without_its_networks_rejected():
    mega = GpuPool(name="a3mega", instance_type="a3-megagpu-8g", nodes=2, zones=["us-central1-b"],
                   gpu_driver="provider")
    with pytest.raises(DynamoIacError) as e:
        gcp_stack([mega], gpudirect=False)
    assert "a3-megagpu-8g" in str(e.value)


def test_operator_driver_and_aks_driver_mixed_rejected():
    keep = GpuPool(name="keep", instance_type="Standard_ND96isr_H100_v5", nodes=1, gpu_driver="provider")
    with pytest.raises(DynamoIacError) as e:
        azure_stack([ND, keep])
    assert "mutually exclusive" in str(e.value)

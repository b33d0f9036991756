"""Azure AKS and Google GKE clusters under the recording mock monitor: resource trees asserted on
their inputs, the same graph on both, lazy cloud imports, and bad input rejected up front."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from dynamo_iac import patterns
from dynamo_iac.errors import DynamoIacError
from dynamo_iac.graph import Model, ModelCache, Parallelism, Worker
from dynamo_iac.hardware.catalog import load
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
    from dynamo_iac import versions
    from dynamo_iac.components.azure import storage_account_name

    rec = azure_stack([ND])
    pools = {r.name: r.inputs for r in of(rec, "azure-native:containerservice:AgentPool")}
    assert set(pools) == {"aks-ndh100"}
    gpu = pools["aks-ndh100"]
    assert {k: v for k, v in gpu.items() if k not in ("resourceGroupName", "resourceName", "vnetSubnetID")} == {
        "agentPoolName": "ndh100", "count": 2, "gpuProfile": {"driver": "None"}, "mode": "User",
        "nodeLabels": {"dynamo-iac/pool": "ndh100"}, "nodeTaints": ["nvidia.com/gpu=present:NoSchedule"],
        "osSKU": "Ubuntu", "osType": "Linux", "tags": {"managed-by": "dynamo-iac"},
        "vmSize": "Standard_ND96isr_H100_v5"}
    (aks,) = of(rec, "azure-native:containerservice:ManagedCluster")
    (system,) = aks.inputs["agentPoolProfiles"]
    assert system["mode"] == "System" and "nodeTaints" not in system      # CPU pods run here
    (policy,) = [r for r in rec.resources if r.inputs.get("kind") == "NicClusterPolicy"]
    spec = policy.inputs["spec"]
    images = versions.chart_images("network-operator")
    for key in ("ofedDriver", "rdmaSharedDevicePlugin"):
        assert {k: spec[key][k] for k in ("repository", "image", "version")} == images[key]
    assert json.loads(spec["rdmaSharedDevicePlugin"]["config"]) == {"configList": [{
        "rdmaHcaMax": load().get("Standard_ND96isr_H100_v5").fabric.resource_per_node, "resourceName": "shared_ib",
        "selectors": {"linkTypes": ["infiniband"], "vendors": ["15b3"]}}]}
    # operator namespaces exist, labelled privileged, before their charts
    ns = {r.inputs["metadata"]["name"]: r for r in of(rec, "kubernetes:core/v1:Namespace")}
    for name in ("gpu-operator", "network-operator"):
        assert ns[name].inputs["metadata"]["labels"] == {"pod-security.kubernetes.io/enforce": "privileged"}
    rel = {r.inputs["chart"]: r for r in of(rec, "kubernetes:helm.sh/v3:Release")}
    assert rel["gpu-operator"].inputs["createNamespace"] is False
    assert ns["gpu-operator"].urn in rel["gpu-operator"].dependencies
    assert rel["gpu-operator"].inputs["values"] == {"cdi": {"enabled": True}, "dcgmExporter": {"enabled": True},
                                                    "driver": {"rdma": {"enabled": True}}, "nfd": {"enabled": False}}
    # model cache: a valid, deterministic storage account name; retained storage
    (acct,) = of(rec, "azure-native:storage:StorageAccount")
    assert acct.inputs["accountName"] == storage_account_name("aks", "t", "t")
    assert re.fullmatch(r"[a-z0-9]{3,24}", acct.inputs["accountName"]) and acct.retain_on_delete
    (share,) = of(rec, "azure-native:storage:FileShare")
    assert share.retain_on_delete and share.inputs["shareQuota"] == 1024
    (dgd,) = of(rec, "kubernetes:nvidia.com/v1beta1:DynamoGraphDeployment")
    comps = {c["name"]: c for c in dgd.inputs["spec"]["components"]}
    main = comps["DecodeWorker"]["podTemplate"]["spec"]["containers"][0]
    assert main["resources"]["limits"] == {"nvidia.com/gpu": "4", "rdma/shared_ib": "1"}


def test_storage_account_names_valid_and_distinct():
    from dynamo_iac.components.azure import storage_account_name

    names = {storage_account_name(n, "proj", st) for n in ("aks", "My-Very-Long-Cluster-Name-2026", "x")
             for st in ("dev", "prod")}
    assert len(names) == 6 and all(re.fullmatch(r"[a-z0-9]{3,24}", n) for n in names)
    assert storage_account_name("aks", "proj", "dev") == storage_account_name("aks", "proj", "dev")


def test_aks_spot_pool():
    spot = GpuPool(name="spot", instance_type="Standard_ND96isr_H100_v5", nodes=2, purchase_option="spot")
    rec = azure_stack([spot])
    (pool,) = of(rec, "azure-native:containerservice:AgentPool")
    i = pool.inputs
    assert (i["scaleSetPriority"], i["scaleSetEvictionPolicy"], i["spotMaxPrice"]) == ("Spot", "Delete", -1)
    assert i["nodeTaints"] == ["nvidia.com/gpu=present:NoSchedule"]      # AKS adds the spot taint itself
    (dgd,) = of(rec, "kubernetes:nvidia.com/v1beta1:DynamoGraphDeployment")
    for c in dgd.inputs["spec"]["components"][1:]:
        assert {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
                "effect": "NoSchedule"} in c["podTemplate"]["spec"]["tolerations"]


def test_gke_tree():
    rec = gcp_stack([A3U])
    pools = {r.name: r for r in of(rec, "gcp:container/nodePool:NodePool")}
    assert set(pools) == {"gke-system", "gke-a3ultra"}
    np = pools["gke-a3ultra"].inputs
    assert np["nodeConfig"] == {
        "diskSizeGb": 200, "gvnic": {"enabled": True}, "imageType": "COS_CONTAINERD",
        "guestAccelerators": [{"count": 8, "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"},
                               "type": "nvidia-h200-141gb"}],
        "labels": {"dynamo-iac/pool": "a3ultra"}, "machineType": "a3-ultragpu-8g",
        "oauthScopes": ["https://www.googleapis.com/auth/cloud-platform"],
        "taints": [{"effect": "NO_SCHEDULE", "key": "nvidia.com/gpu", "value": "present"}]}
    assert (np["nodeCount"], np["nodeLocations"], np["placementPolicy"]) == (2, ["us-central1-b"], {"type": "COMPACT"})
    nets = np["networkConfig"]["additionalNodeNetworkConfigs"]
    assert nets == [{"network": "gke-gvnic-1", "subnetwork": "gke-gvnic-1"}] + [
        {"network": "gke-rdma", "subnetwork": f"gke-rdma-sub-{i}"} for i in range(8)]
    assert "taints" not in pools["gke-system"].inputs["nodeConfig"]
    (cluster,) = of(rec, "gcp:container/cluster:Cluster")
    assert cluster.inputs["datapathProvider"] == "ADVANCED_DATAPATH"
    assert cluster.inputs["enableMultiNetworking"] is True
    params = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in rec.resources
              if r.inputs.get("kind") == "GKENetworkParamSet"}
    assert params == {"gvnic-1": {"deviceMode": "NetDevice", "vpc": "gke-gvnic-1", "vpcSubnet": "gke-gvnic-1"},
                      **{f"rdma-{i}": {"deviceMode": "RDMA", "vpc": "gke-rdma", "vpcSubnet": f"gke-rdma-sub-{i}"}
                         for i in range(8)}}
    (rdma,) = [r for r in of(rec, "gcp:compute/network:Network") if r.name == "gke-rdma"]
    assert rdma.inputs["networkProfile"] == "projects/p/global/networkProfiles/us-central1-b-vpc-roce"
    (fs,) = of(rec, "gcp:filestore/instance:Instance")
    assert fs.retain_on_delete and fs.inputs["tier"] == "ZONAL" and fs.inputs["fileShares"]["capacityGb"] == 1024
    (pv,) = of(rec, "kubernetes:core/v1:PersistentVolume")
    assert pv.retain_on_delete and pv.inputs["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    # GKE's driver mode: the GPU Operator installs neither driver, toolkit nor device plugin
    rel = {r.inputs["chart"]: r.inputs for r in of(rec, "kubernetes:helm.sh/v3:Release")}
    assert rel["gpu-operator"]["values"] == {"cdi": {"enabled": True}, "dcgmExporter": {"enabled": True},
                                             "devicePlugin": {"enabled": False}, "driver": {"enabled": False},
                                             "toolkit": {"enabled": False}}


def test_aws_stack_imports_no_other_cloud():
    code = ("import sys; from dynamo_iac.preview.stack import run_stack; run_stack('aws-p5-disagg'); "
            "bad = [m for m in sys.modules if m.startswith(('pulumi_azure_native', 'pulumi_gcp'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_rdma_prefill_and_decode_in_two_aks_pools_rejected():
    """Through the public component path: DynamoDeployment places each worker on a pool (the
    plan's, or `placement`), and KV-exchanging IB workers in two pools are refused up front."""
    other = GpuPool(name="ndh100b", instance_type="Standard_ND96isr_H100_v5", nodes=2)

    def program():
        from dynamo_iac.components.azure import AzureGpuCluster
        from dynamo_iac.components.deployment import DynamoDeployment
        from dynamo_iac.components.platform import GpuPlatform

        c = AzureGpuCluster("aks", location="eastus", pools=[ND, other])
        p = GpuPlatform("platform", cluster=c, graphs=[GRAPH])
        DynamoDeployment("qwen3", graph=GRAPH, platform=p,
                         placement={"PrefillWorker": "ndh100", "DecodeWorker": "ndh100b"})
    with pytest.raises(DynamoIacError) as e:
        run(program)
    assert "one scale set" in str(e.value) and "ndh100" in e.value.problems[0].fix


def test_workers_pinned_to_their_own_pools():
    """Non-KV placement across pools: each worker's nodeSelector names the pool it was placed on."""
    graph = patterns.aggregated("qwen3-32b", Model("Qwen/Qwen3-32B", cache=ModelCache()),
                                worker=Worker(parallelism=Parallelism(tp=4)))
    a = GpuPool(name="ndh100", instance_type="Standard_ND96isr_H100_v5", nodes=1)
    b = GpuPool(name="ndh100b", instance_type="Standard_ND96isr_H100_v5", nodes=1)

    def program():
        from dynamo_iac.components.azure import AzureGpuCluster
        from dynamo_iac.components.deployment import DynamoDeployment
        from dynamo_iac.components.platform import GpuPlatform

        c = AzureGpuCluster("aks", location="eastus", pools=[a, b])
        p = GpuPlatform("platform", cluster=c, graphs=[graph])
        name = graph.worker_names()[0]
        DynamoDeployment("qwen3", graph=graph, platform=p, placement={name: "ndh100b"})
    rec = run(program)
    (dgd,) = of(rec, "kubernetes:nvidia.com/v1beta1:DynamoGraphDeployment")
    workers = [c for c in dgd.inputs["spec"]["components"] if c["type"] != "frontend"]
    assert [c["podTemplate"]["spec"]["nodeSelector"] for c in workers] == [{"dynamo-iac/pool": "ndh100b"}]


def test_operator_driver_without_the_gpu_operator_rejected():
    def program():
        from dynamo_iac.components.azure import AzureGpuCluster
        from dynamo_iac.components.platform import GpuPlatform

        c = AzureGpuCluster("aks", location="eastus", pools=[ND])
        GpuPlatform("platform", cluster=c, graphs=[GRAPH], gpu_operator=False)
    with pytest.raises(DynamoIacError) as e:
        run(program)
    assert e.value.problems[0].path == "gpu_operator" and "no driver" in str(e.value)


def test_a3_mega_without_its_networks_rejected():
    mega = GpuPool(name="a3mega", instance_type="a3-megagpu-8g", nodes=2, zones=["us-central1-b"],
                   gpu_driver="provider")
    with pytest.raises(DynamoIacError) as e:
        gcp_stack([mega], gpudirect=False)
    (p,) = e.value.problems
    assert (p.path, p.message) == ("pools[0]", "a3-megagpu-8g (gpudirect-tcpxo) needs its 8 extra networks but "
                                   "gpudirect=False creates none")
    assert p.fix == ("leave gpudirect on, pass pool_networks for this pool, or choose a machine type without "
                     "GPUDirect networking")


def test_operator_driver_and_aks_driver_mixed_rejected():
    keep = GpuPool(name="keep", instance_type="Standard_ND96isr_H100_v5", nodes=1, gpu_driver="provider")
    with pytest.raises(DynamoIacError) as e:
        azure_stack([ND, keep])
    assert "mutually exclusive" in str(e.value)


def test_gke_tcpx_and_tcpxo_pools_share_the_netdevice_vpcs():
    mega = GpuPool(name="mega", instance_type="a3-megagpu-8g", nodes=2, zones=["us-central1-b"], gpu_driver="provider")
    high = GpuPool(name="high", instance_type="a3-highgpu-8g", nodes=2, zones=["us-central1-b"], gpu_driver="provider")

    def program():
        from dynamo_iac.components.gcp import GcpGpuCluster
        GcpGpuCluster("gke", region="us-central1", project="p", pools=[high, mega])
    rec = run(program)                                # duplicate URNs would be rejected by the engine
    pools = {r.name: r.inputs for r in of(rec, "gcp:container/nodePool:NodePool")}
    nets = {k: [n["network"] for n in v["networkConfig"]["additionalNodeNetworkConfigs"]]
            for k, v in pools.items() if "networkConfig" in v}
    assert nets == {"gke-mega": [f"gke-vpc{i}" for i in range(1, 9)], "gke-high": [f"gke-vpc{i}" for i in range(1, 5)]}
    assert sorted(r.name for r in of(rec, "gcp:compute/network:Network")) == sorted(
        ["gke-vpc"] + [f"gke-vpc{i}" for i in range(1, 9)])

"""GKE fabrics end to end under the recording mock monitor: the NCCL RDMA installer DaemonSet that
GpuPlatform adds for RoCE pools (A3 Ultra / A4) only, and disaggregated KV transfer refused on
GPUDirect-TCPX / TCPXO pools (a3-highgpu-8g / a3-megagpu-8g), where NIXL has no RDMA path."""
from __future__ import annotations

import pytest

from dynamo_iac import patterns, versions
from dynamo_iac.errors import DynamoIacError
from dynamo_iac.graph import Model, ModelCache, Parallelism, Worker
from dynamo_iac.hardware.pool import GpuPool
from dynamo_iac.preview.engine import run_program

pytestmark = pytest.mark.mocks
DISAGG = patterns.disaggregated("qwen3-32b", Model("Qwen/Qwen3-32B", cache=ModelCache()),
                                prefill=Worker(parallelism=Parallelism(tp=4)),
                                decode=Worker(parallelism=Parallelism(tp=4)))
AGG = patterns.aggregated("qwen3-32b", Model("Qwen/Qwen3-32B", cache=ModelCache()), tp=8)
DAEMONSET = "kubernetes:apps/v1:DaemonSet"
ZONE = ["us-central1-b"]
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def pool(name: str, machine: str, **kw) -> GpuPool:
    return GpuPool(name=name, instance_type=machine, nodes=2, zones=ZONE, gpu_driver="provider", **kw)


def gke(pools, graph=None, deploy_on=None):
    def program():
        from dynamo_iac.components.deployment import DynamoDeployment
        from dynamo_iac.components.gcp import GcpGpuCluster
        from dynamo_iac.components.platform import GpuPlatform

        c = GcpGpuCluster("gke", region="us-central1", project="p", pools=pools)
        p = GpuPlatform("platform", cluster=c, graphs=[graph] if graph else [])
        if graph is not None:
            DynamoDeployment("qwen3", graph=graph, platform=p, pool=deploy_on or pools[0])
    return run_program(program, project="t", stack="t")


def installers(rec):
    return [r for r in rec.resources if r.type == DAEMONSET and r.inputs["metadata"]["name"] == "nccl-rdma-installer"]


def test_installer_on_an_a3_ultra_pool_exactly():
    rec = gke([pool("a3ultra", "a3-ultragpu-8g")], DISAGG)
    (ds,) = installers(rec)
    (platform,) = [r for r in rec.resources if r.type == "dynamo:k8s:GpuPlatform"]
    (provider,) = [r for r in rec.resources if r.type == "pulumi:providers:kubernetes"]
    assert ds.parent == platform.urn and ds.provider.startswith(provider.urn)
    assert ds.inputs["metadata"] == {"name": "nccl-rdma-installer", "namespace": "kube-system",
                                     "labels": {"k8s-app": "nccl-rdma-installer"}}
    spec = ds.inputs["spec"]["template"]["spec"]
    assert spec["affinity"] == {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "dynamo-iac/pool", "operator": "In", "values": ["a3ultra"]},
            {"key": "cloud.google.com/gke-accelerator", "operator": "In", "values": ["nvidia-h200-141gb"]}]}]}}}
    assert spec["tolerations"] == [GPU_TOLERATION]          # exactly the pool's taints, not upstream's "Exists"
    assert "nodeSelector" not in spec
    assert spec["priorityClassName"] == "system-node-critical" and spec["hostNetwork"] and spec["hostPID"]
    # every image pinned in versions.yaml; the installer fills the host paths the roce overlay mounts
    init = {c["name"]: c for c in spec["initContainers"]}
    assert init["nccl-rdma-installer"]["image"] == versions.image("nccl-rdma-installer").ref
    assert init["disable-log-martian"]["image"] == versions.image("nccl-rdma-installer-sysctl").ref
    assert [c["image"] for c in spec["containers"]] == [versions.image("nccl-rdma-installer-pause").ref]
    hosts = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"]}
    assert hosts == {"library-dir-host": "/home/kubernetes/bin/nvidia/lib64", "gib": "/home/kubernetes/bin/gib"}
    from dynamo_iac.targets.k8s.fabrics.roce import HOST_LIBS
    assert {h for _, h, _ in HOST_LIBS} == {"/home/kubernetes/bin/gib", "/home/kubernetes/bin/nvidia"}
    # the workers wait for it (their hostPath volumes are what it installs)
    (dgd,) = [r for r in rec.resources if r.type.endswith(":DynamoGraphDeployment")]
    assert ds.urn in dgd.dependencies


def test_installer_pins_carry_their_source():
    for name in ("nccl-rdma-installer", "nccl-rdma-installer-pause", "nccl-rdma-installer-sysctl"):
        pin = versions.image(name)
        assert pin.source.startswith("https://github.com/GoogleCloudPlatform/container-engine-accelerators/blob/")
        commit = pin.source.split("/blob/", 1)[1].split("/", 1)[0]
        assert len(commit) == 40 and int(commit, 16) >= 0
        assert ":" in pin.ref and not pin.ref.endswith(":latest")
    with pytest.raises(DynamoIacError) as e:
        versions.image("nope")
    assert e.value.problems[0].path == "images.nope"


def test_one_installer_for_a3_ultra_and_a4_pools_and_none_for_the_others():
    rec = gke([pool("a4", "a4-highgpu-8g"), pool("a3ultra", "a3-ultragpu-8g"),
               pool("a3high", "a3-highgpu-8g"), GpuPool(name="a2", instance_type="a2-ultragpu-8g", nodes=1,
                                                        zones=ZONE, gpu_driver="provider")])
    (ds,) = installers(rec)
    terms = ds.inputs["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [
        {"key": "dynamo-iac/pool", "operator": "In", "values": ["a3ultra", "a4"]},
        {"key": "cloud.google.com/gke-accelerator", "operator": "In", "values": ["nvidia-b200", "nvidia-h200-141gb"]}]}]


@pytest.mark.parametrize("machine", ["a3-highgpu-8g", "a3-megagpu-8g", "a2-ultragpu-8g"])
def test_no_installer_without_a_roce_pool(machine):
    rec = gke([pool("gpu", machine)])
    assert installers(rec) == [] and [r for r in rec.resources if r.type == DAEMONSET] == []


def test_installer_tolerates_exactly_untainted_pools():
    rec = gke([pool("a3ultra", "a3-ultragpu-8g", taint_gpu=False)])
    (ds,) = installers(rec)
    assert ds.inputs["spec"]["template"]["spec"]["tolerations"] == []


@pytest.mark.parametrize("machine,kind", [("a3-highgpu-8g", "TCPX"), ("a3-megagpu-8g", "TCPXO")])
def test_disaggregated_kv_over_tcpx_is_refused(machine, kind):
    with pytest.raises(DynamoIacError) as e:
        gke([pool("gpu", machine)], DISAGG)
    probs = e.value.problems
    assert [p.path for p in probs] == ["deployment.pool", "deployment.pool"]
    assert sorted(p.message.split(" ", 1)[0] for p in probs) == ["DecodeWorker", "PrefillWorker"]
    for p in probs:
        assert f"pool 'gpu' ({machine}" in p.message and f"GPUDirect-{kind} carries NCCL" in p.message
        assert "a3-ultragpu-8g" in p.fix and "aggregated" in p.fix


def test_aggregated_on_tcpxo_renders_without_an_overlay():
    rec = gke([pool("mega", "a3-megagpu-8g")], AGG)
    (dgd,) = [r for r in rec.resources if r.type.endswith(":DynamoGraphDeployment")]
    (worker,) = [c for c in dgd.inputs["spec"]["components"] if c["name"] != "Frontend"]
    spec = worker["podTemplate"]["spec"]
    assert spec["nodeSelector"] == {"dynamo-iac/pool": "mega"} and spec["tolerations"] == [GPU_TOLERATION]
    assert "networking.gke.io/interfaces" not in (worker["podTemplate"].get("metadata") or {}).get("annotations", {})
    limits = spec["containers"][0]["resources"]["limits"]
    assert not [k for k in limits if k.startswith("networking.gke.io")]


def test_kv_workers_split_between_roce_and_tcpx_are_refused():
    """Pinning one KV worker onto a TCPX pool is refused even when the other sits on RoCE."""
    ultra, high = pool("ultra", "a3-ultragpu-8g"), pool("high", "a3-highgpu-8g")

    def program():
        from dynamo_iac.components.deployment import DynamoDeployment
        from dynamo_iac.components.gcp import GcpGpuCluster
        from dynamo_iac.components.platform import GpuPlatform

        c = GcpGpuCluster("gke", region="us-central1", project="p", pools=[ultra, high])
        p = GpuPlatform("platform", cluster=c)
        DynamoDeployment("qwen3", graph=DISAGG, platform=p, pool=ultra, placement={"DecodeWorker": "high"})
    with pytest.raises(DynamoIacError) as e:
        run_program(program, project="t", stack="t")
    assert [p.message.split(" ", 1)[0] for p in e.value.problems] == ["DecodeWorker"]

"""AWS components under the recording mock monitor: the p5.48xlarge disaggregated stack's resource
tree asserted on recorded inputs, and bad input rejected before any resource is registered."""
from __future__ import annotations

import pytest

from dynamo_iac import patterns, versions
from dynamo_iac.errors import DynamoIacError
from dynamo_iac.graph import Model, ModelCache, Parallelism, Worker
from dynamo_iac.hardware.catalog import load
from dynamo_iac.hardware.pool import GpuPool
from dynamo_iac.preview.engine import run_program

pytestmark = pytest.mark.mocks
GRAPH = patterns.disaggregated("qwen3-32b", Model("Qwen/Qwen3-32B", cache=ModelCache()),
                               prefill=Worker(parallelism=Parallelism(tp=4)),
                               decode=Worker(parallelism=Parallelism(tp=4)))


def stack(pools, graph=GRAPH, **cluster_kw):
    def program():
        import pulumi

        from dynamo_iac.components.aws import AwsGpuCluster
        from dynamo_iac.components.deployment import DynamoDeployment
        from dynamo_iac.components.platform import GpuPlatform

        cluster = AwsGpuCluster("prod", region="us-east-1", pools=pools, **cluster_kw)
        platform = GpuPlatform("platform", cluster=cluster, graphs=[graph],
                               hf_token=pulumi.Output.secret("hf_sentinel"))
        DynamoDeployment("qwen3", graph=graph, platform=platform, pool=pools[0])
    return run_program(program, project="t", stack="t")


def by_type(record, t):
    return [r for r in record.resources if r.type == t]


P5 = GpuPool(name="h100", instance_type="p5.48xlarge", nodes=2, max_nodes=4, zones=["us-east-1a"])


def test_p5_node_group_and_launch_template():
    rec = stack([P5])
    ng = {r.name: r for r in by_type(rec, "aws:eks/nodeGroup:NodeGroup")}["prod-h100"]
    i = ng.inputs
    assert i["instanceTypes"] == ["p5.48xlarge"] and i["amiType"] == "AL2023_x86_64_NVIDIA"
    assert i["capacityType"] == "ON_DEMAND"
    assert i["taints"] == [{"effect": "NO_SCHEDULE", "key": "nvidia.com/gpu", "value": "present"}]
    assert i["labels"]["dynamo-iac/pool"] == "h100"
    assert i["scalingConfig"] == {"desiredSize": 2, "maxSize": 4, "minSize": 2}
    (lt,) = [r for r in by_type(rec, "aws:ec2/launchTemplate:LaunchTemplate") if r.name == "prod-h100"]
    enis = lt.inputs["networkInterfaces"]
    assert len(enis) == load().get("p5.48xlarge").fabric.devices == 32
    assert all(e["interfaceType"] == "efa" for e in enis)
    assert [e["networkCardIndex"] for e in enis] == list(range(32))
    assert lt.inputs["placement"]["groupName"]
    assert len(by_type(rec, "aws:ec2/placementGroup:PlacementGroup")) == 1
    sg = [r for r in by_type(rec, "aws:ec2/securityGroup:SecurityGroup") if r.name.endswith("-efa")][0]
    assert {"fromPort": 0, "protocol": "-1", "self": True, "toPort": 0} in sg.inputs["ingress"]


def test_capacity_block_has_no_placement_group():
    cb = GpuPool(name="h100", instance_type="p5.48xlarge", nodes=2, zones=["us-east-1a"],
                 purchase_option="capacity-block", capacity_reservation_id="cr-0123456789abcdef0")
    rec = stack([cb])
    assert by_type(rec, "aws:ec2/placementGroup:PlacementGroup") == []
    (lt,) = [r for r in by_type(rec, "aws:ec2/launchTemplate:LaunchTemplate") if r.name == "prod-h100"]
    assert lt.inputs["instanceMarketOptions"] == {"marketType": "capacity-block"}
    assert lt.inputs["capacityReservationSpecification"]["capacityReservationTarget"]["capacityReservationId"] == \
        "cr-0123456789abcdef0"
    ng = [r for r in by_type(rec, "aws:eks/nodeGroup:NodeGroup") if r.name == "prod-h100"][0]
    assert ng.inputs["capacityType"] == "CAPACITY_BLOCK"


def test_charts_pinned_and_secrets_marked():
    rec = stack([P5])
    rel = {r.inputs["chart"]: r.inputs for r in by_type(rec, "kubernetes:helm.sh/v3:Release")}
    assert rel["dynamo-platform"]["version"] == versions.release().chart_version
    assert rel["gpu-operator"]["version"] == versions.chart("gpu-operator").version
    assert rel["aws-efa-k8s-device-plugin"]["version"] == versions.chart("aws-efa-k8s-device-plugin").version
    assert rel["gpu-operator"]["values"]["driver"] == {"enabled": False}     # AL2023 NVIDIA AMI has the driver
    (sec,) = by_type(rec, "kubernetes:core/v1:Secret")
    assert sec.inputs["stringData"] == {"HF_TOKEN": "[secret]"} and sec.secret_paths
    (prov,) = by_type(rec, "pulumi:providers:kubernetes")
    assert prov.inputs["kubeconfig"] == "[secret]"
    fs = by_type(rec, "aws:efs/fileSystem:FileSystem")[0]
    assert fs.protect and fs.retain_on_delete


def test_dgd_carries_the_efa_overlay_and_replaces_on_immutable_change():
    rec = stack([P5])
    (dgd,) = by_type(rec, "kubernetes:nvidia.com/v1beta1:DynamoGraphDeployment")
    comps = {c["name"]: c for c in dgd.inputs["spec"]["components"]}
    main = comps["DecodeWorker"]["podTemplate"]["spec"]["containers"][0]
    assert main["resources"]["limits"]["vpc.amazonaws.com/efa"] == "16"
    assert {"name": "FI_PROVIDER", "value": "efa"} in main["env"]
    assert main["image"].endswith("vllm-runtime:1.2.0-efa")
    assert dgd.replace_on_changes == ['metadata.annotations["dynamo-iac.nvidia.com/immutable-shape"]']
    assert dgd.delete_before_replace


@pytest.mark.parametrize("pool,expect", [
    (GpuPool(name="h100", instance_type="p5.48xlarge", nodes=2, zones=["us-east-1a", "us-east-1b"]),
     "EFA only connects instances of one AZ"),
    (GpuPool(name="h100", instance_type="p5.48xlarge", nodes=2, zones=["us-east-1a"], purchase_option="capacity-block"),
     "needs the reservation / block id"),
    (GpuPool(name="h100", instance_type="p5.48xlarge", nodes=1, max_nodes=1, zones=["us-east-1a"]),
     "raise max_nodes to 2"),
])
def test_bad_input_fails_before_any_resource(pool, expect):
    registered = []

    def program():
        from dynamo_iac.components.aws import AwsGpuCluster
        from dynamo_iac.components.deployment import DynamoDeployment
        from dynamo_iac.components.platform import GpuPlatform
        from dynamo_iac.plan import plan

        plan(GRAPH, [pool])                          # the stack program plans first, as stacks/program.py does
        cluster = AwsGpuCluster("prod", region="us-east-1", pools=[pool])
        registered.append(cluster)
        DynamoDeployment("q", graph=GRAPH, platform=GpuPlatform("p", cluster=cluster), pool=pool)

    with pytest.raises(DynamoIacError) as e:
        run_program(program, project="t", stack="t")
    assert expect in str(e.value)
    assert registered == []

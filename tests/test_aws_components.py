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


P6 = GpuPool(name="b200", instance_type="p6-b200.48xlarge", nodes=2, zones=["us-east-1a"])


@pytest.mark.parametrize("pool,expect,path", [
    (GpuPool(name="h100", instance_type="p5.48xlarge", nodes=2, zones=["us-east-1a", "us-east-1b"]),
     "EFA only connects instances of one AZ", "pools[0].zones"),
    (GpuPool(name="h100", instance_type="p5.48xlarge", nodes=2, zones=["us-east-1a"], purchase_option="capacity-block"),
     "needs the reservation / block id", "pools[0].capacity_reservation_id"),
    (GpuPool(name="h100", instance_type="p5.48xlarge", nodes=1, max_nodes=1, zones=["us-east-1a"]),
     "allows at most 1", "max_nodes"),
    (P6, "EFA interface count of p6-b200.48xlarge is unknown", "pools[0].instance_type"),
    (GpuPool(name="h100", instance_type="p5.48xlarge", nodes=2, zones=["us-east-1a"],
             labels={"node-role.kubernetes.io/gpu": "true"}), "prefix EKS reserves", "pools[0].labels"),
])
def test_bad_input_fails_before_any_resource(pool, expect, path, monkeypatch):
    """Components composed directly (no stack program planning first): the cluster validates its
    pools and plans the graphs it is given before it registers anything."""
    import pulumi

    registered: list[str] = []
    orig = pulumi.Resource.__init__

    def counting(self, t, name, *a, **k):
        registered.append(f"{t}::{name}")
        return orig(self, t, name, *a, **k)
    monkeypatch.setattr(pulumi.Resource, "__init__", counting)

    def program():
        from dynamo_iac.components.aws import AwsGpuCluster
        from dynamo_iac.components.deployment import DynamoDeployment
        from dynamo_iac.components.platform import GpuPlatform

        cluster = AwsGpuCluster("prod", region="us-east-1", pools=[pool], graphs=[GRAPH])
        DynamoDeployment("q", graph=GRAPH, platform=GpuPlatform("p", cluster=cluster), pool=pool)

    with pytest.raises(DynamoIacError) as e:
        run_program(program, project="t", stack="t")
    assert expect in str(e.value)
    assert any(path in p.path for p in e.value.problems), [p.path for p in e.value.problems]
    assert [r for r in registered if not r.startswith("pulumi:pulumi:Stack")] == []


def test_no_reserved_label_on_any_node_group():
    from dynamo_iac.components.aws import reserved_label

    rec = stack([P5])
    groups = by_type(rec, "aws:eks/nodeGroup:NodeGroup")
    assert {g.name for g in groups} == {"prod-system", "prod-h100"}
    for g in groups:
        assert not [k for k in g.inputs["labels"] if reserved_label(k)], g.inputs["labels"]
    gpu = [g for g in groups if g.name == "prod-h100"][0]
    assert gpu.inputs["labels"] == {"dynamo-iac/pool": "h100", "nvidia.com/gpu.present": "true"}
    assert reserved_label("node.kubernetes.io/instance-type") and reserved_label("eks.amazonaws.com/x")
    assert not reserved_label("nvidia.com/gpu.present") and not reserved_label("example.com/k8s.io-like")


def test_subnets_derived_from_vpc_cidr():
    import ipaddress

    rec = stack([P5], vpc_cidr="172.31.0.0/16")
    subnets = {r.name: r.inputs["cidrBlock"] for r in by_type(rec, "aws:ec2/subnet:Subnet")}
    assert subnets == {"prod-public-us-east-1a": "172.31.0.0/20", "prod-public-us-east-1b": "172.31.16.0/20",
                       "prod-private-us-east-1a": "172.31.128.0/19", "prod-private-us-east-1b": "172.31.160.0/19"}
    vpc = ipaddress.ip_network("172.31.0.0/16")
    nets = [ipaddress.ip_network(c) for c in subnets.values()]
    assert all(n.subnet_of(vpc) for n in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])


def test_existing_vpc_subnets_by_zone():
    rec = stack([P5], vpc_id="vpc-0abc", subnet_ids={"us-east-1b": "subnet-b", "us-east-1a": "subnet-a"})
    assert by_type(rec, "aws:ec2/vpc:Vpc") == [] and by_type(rec, "aws:ec2/subnet:Subnet") == []
    ng = {r.name: r.inputs for r in by_type(rec, "aws:eks/nodeGroup:NodeGroup")}
    assert ng["prod-h100"]["subnetIds"] == ["subnet-a"]                   # the pool's AZ, not list position
    assert ng["prod-system"]["subnetIds"] == ["subnet-b", "subnet-a"]
    (eks,) = by_type(rec, "aws:eks/cluster:Cluster")
    assert eks.inputs["vpcConfig"]["subnetIds"] == ["subnet-b", "subnet-a"]
    with pytest.raises(DynamoIacError) as e:
        stack([P5], vpc_id="vpc-0abc", subnet_ids={"us-east-1b": "subnet-b"})
    assert "pools[0].zones" in str(e.value) and "us-east-1a" in str(e.value)


def test_desired_size_from_the_plans_provisioned_count():
    # nodes not given: the plan decides (EFA: prefill and decode on separate nodes → 2)
    pool = GpuPool(name="h100", instance_type="p5.48xlarge", min_nodes=0, max_nodes=4, zones=["us-east-1a"])
    from dynamo_iac.plan import plan

    provisioned = {p.pool.name: p.provisioned for p in plan(GRAPH, [pool]).pools}["h100"]
    assert provisioned == 2

    def program():
        from dynamo_iac.components.aws import AwsGpuCluster
        AwsGpuCluster("prod", region="us-east-1", pools=[pool], graphs=[GRAPH])
    rec = run_program(program, project="t", stack="t")
    (ng,) = [r for r in by_type(rec, "aws:eks/nodeGroup:NodeGroup") if r.name == "prod-h100"]
    assert ng.inputs["scalingConfig"] == {"desiredSize": 2, "maxSize": 4, "minSize": 0}

    def without_graphs():
        from dynamo_iac.components.aws import AwsGpuCluster
        AwsGpuCluster("prod", region="us-east-1", pools=[pool])
    rec = run_program(without_graphs, project="t", stack="t")
    (ng,) = [r for r in by_type(rec, "aws:eks/nodeGroup:NodeGroup") if r.name == "prod-h100"]
    assert ng.inputs["scalingConfig"]["desiredSize"] == 1                 # the pool's own count


def test_fsx_lustre_is_complete():
    rec = stack([P5], storage="fsx-lustre")
    (fs,) = by_type(rec, "aws:fsx/lustreFileSystem:LustreFileSystem")
    assert fs.protect and fs.retain_on_delete
    assert fs.inputs["subnetIds"] == "(known after apply)" or isinstance(fs.inputs["subnetIds"], str)
    assert fs.inputs["storageCapacity"] == 1200 and fs.inputs["deploymentType"] == "PERSISTENT_2"
    (addon,) = by_type(rec, "aws:eks/addon:Addon")
    assert addon.inputs["addonName"] == "aws-fsx-csi-driver"
    (sc,) = by_type(rec, "kubernetes:storage.k8s.io/v1:StorageClass")
    assert sc.inputs["metadata"]["name"] == "fsx-model-cache" and sc.inputs["provisioner"] == "fsx.csi.aws.com"
    (pv,) = by_type(rec, "kubernetes:core/v1:PersistentVolume")
    spec = pv.inputs["spec"]
    assert spec["storageClassName"] == "fsx-model-cache" and spec["persistentVolumeReclaimPolicy"] == "Retain"
    assert spec["csi"]["driver"] == "fsx.csi.aws.com" and set(spec["csi"]["volumeAttributes"]) == {"dnsname",
                                                                                                   "mountname"}
    (pvc,) = by_type(rec, "kubernetes:core/v1:PersistentVolumeClaim")
    assert pvc.inputs["spec"]["storageClassName"] == "fsx-model-cache"
    assert pvc.inputs["spec"]["resources"]["requests"]["storage"]


def test_fsx_subnet_is_one_string_for_the_sdk():
    """pulumi_aws 7 types LustreFileSystem.subnet_ids as Input[str]; a list fails at registration."""
    import inspect

    import pulumi_aws as aws

    ann = str(inspect.signature(aws.fsx.LustreFileSystem._internal_init).parameters["subnet_ids"].annotation)
    assert "str" in ann and "Sequence" not in ann


def test_efa_pool_on_a_release_without_efa_images_rejected():
    """Dynamo 1.0.2 publishes no -efa runtime images: FI_PROVIDER=efa on the plain one would fail."""
    old = GRAPH.model_copy(update={"dynamo_version": "1.0.2"})
    assert not versions.release("1.0.2").has_efa_image("vllm")
    def program():
        from dynamo_iac.components.aws import AwsGpuCluster
        AwsGpuCluster("prod", region="us-east-1", pools=[P5], graphs=[old])
    with pytest.raises(DynamoIacError) as e:
        run_program(program, project="t", stack="t")
    (p,) = e.value.problems
    assert p.path == "graphs[0].dynamo_version" and "publishes no EFA vllm runtime image" in p.message


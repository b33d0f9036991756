"""AwsGpuCluster: VPC (or an existing one), EKS with a pinned Kubernetes version, a system node
group, and GPU node groups from GpuPool specs — with EFA wired from the catalog: a launch template
with one interface per EFA device, the self-referencing EFA security group, an optional cluster
placement group (off with reservations / capacity blocks), every EFA pool in one AZ.

Built from plain pulumi_aws resources (launch template + aws.eks.NodeGroup), not plugin-backed
components: their children are invisible offline and their EFA option cannot be combined with
capacity blocks. pulumi_aws is imported here only, so other clouds' stacks never load it.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

import pulumi

from ..errors import ConfigError, Problem
from ..hardware.model import InstanceType
from ..hardware.pool import GpuPool
from .common import POOL_LABEL, PlatformHints, component_type

CLOUD = "aws"
MIN_KUBERNETES = (1, 30)
AMI = {"x86_64": "AL2023_x86_64_NVIDIA", "arm64": "AL2023_ARM_64_NVIDIA"}
CAPACITY_TYPE = {"on-demand": "ON_DEMAND", "spot": "SPOT", "capacity-block": "CAPACITY_BLOCK",
                 "reservation": "ON_DEMAND"}
RESERVED = ("capacity-block", "reservation")
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly",
                 "service-role/AmazonEFSCSIDriverPolicy")


def validate(pools: Sequence[GpuPool], region: str, kubernetes_version: str, catalog: Any = None
             ) -> list[tuple[GpuPool, InstanceType]]:
    """Every input problem, before any resource exists."""
    from ..hardware.catalog import load

    cat = catalog or load()
    problems: list[Problem] = []
    try:
        major, minor = (int(x) for x in kubernetes_version.split(".")[:2])
        if (major, minor) < MIN_KUBERNETES:
            problems.append(Problem("kubernetes_version", f"{kubernetes_version} is older than the dynamo-platform "
                                    "chart's minimum 1.30", "use 1.30 or newer"))
    except ValueError:
        problems.append(Problem("kubernetes_version", f"{kubernetes_version!r} is not MAJOR.MINOR", "e.g. 1.31"))
    out = []
    names = set()
    for i, p in enumerate(pools):
        path = f"pools[{i}]"
        if p.name in names:
            problems.append(Problem(f"{path}.name", f"pool {p.name!r} appears twice", "give each pool a unique name"))
        names.add(p.name)
        try:
            inst = cat.get(p.instance_type)
        except ConfigError as e:
            problems += [Problem(f"{path}.instance_type", q.message, q.fix) for q in e.problems]
            continue
        if inst.cloud != CLOUD:
            problems.append(Problem(f"{path}.instance_type", f"{inst.name} is an {inst.cloud} type",
                                    "pick an AWS instance type (`dynamo-iac catalog --cloud aws`)"))
            continue
        for z in p.zones:
            if not z.startswith(region):
                problems.append(Problem(f"{path}.zones", f"zone {z!r} is not in region {region}",
                                        f"use zones of {region}, e.g. {region}a"))
        if inst.fabric.kind == "efa" and len(p.zones) != 1:
            problems.append(Problem(f"{path}.zones", f"EFA pool {p.name!r} spans {len(p.zones)} AZs "
                                    f"({', '.join(p.zones) or 'none given'}); EFA only connects instances of one AZ",
                                    f"set exactly one zone, e.g. zones=['{(p.zones or [region + 'a'])[0]}']"))
        if p.purchase_option in RESERVED and not p.capacity_reservation_id:
            problems.append(Problem(f"{path}.capacity_reservation_id",
                                    f"purchase option {p.purchase_option!r} needs the reservation / block id",
                                    "set capacity_reservation_id='cr-…'"))
        if p.purchase_option in RESERVED and p.placement_group:
            problems.append(Problem(f"{path}.placement_group", "a cluster placement group cannot be combined with "
                                    "a capacity reservation or capacity block", "set placement_group=False"))
        if p.capacity_reservation_id and p.purchase_option not in RESERVED:
            problems.append(Problem(f"{path}.purchase_option", "capacity_reservation_id is set but the purchase "
                                    f"option is {p.purchase_option!r}", "use 'reservation' or 'capacity-block'"))
        out.append((p, inst))
    if problems:
        raise ConfigError(problems)
    return out


def efa_interfaces(inst: InstanceType, security_groups: list[Any]) -> list[dict[str, Any]]:
    """One EFA interface per network card: device 0 on card 0 is the primary, the rest device 1."""
    return [{"device_index": 0 if i == 0 else 1, "network_card_index": i, "interface_type": "efa",
             "delete_on_termination": "true", "security_groups": security_groups}
            for i in range(inst.fabric.devices or 0)]


def _kubeconfig(name: str, endpoint: str, ca: str, region: str) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "users": [{"name": name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", name, "--region", region]}}}]}, sort_keys=True)


class AwsGpuCluster(pulumi.ComponentResource):
    """Outputs: kubeconfig (secret), cluster_name, pools, instances, provider (k8s), cloud, storage,
    platform (PlatformHints for GpuPlatform), node_groups, launch_templates."""

    def __init__(self, name: str, *, region: str, pools: Sequence[GpuPool], kubernetes_version: str = "1.31",
                 vpc_id: str | None = None, subnet_ids: Sequence[str] | None = None, vpc_cidr: str = "10.0.0.0/16",
                 system_instance_type: str | None = None, system_nodes: int = 2, storage: str | None = "efs",
                 catalog: Any = None, opts: pulumi.ResourceOptions | None = None) -> None:
        planned = validate(pools, region, kubernetes_version, catalog)
        if vpc_id and not subnet_ids:
            raise ConfigError("an existing VPC needs its subnet ids", "cluster.subnet_ids",
                              "set subnet_ids (private subnets, one per AZ the pools use)")
        if storage not in (None, "none", "efs", "fsx-lustre"):
            raise ConfigError(f"storage {storage!r} is not available on AWS", "storage.kind",
                              "use efs, fsx-lustre or none")
        super().__init__(component_type(CLOUD, "GpuCluster"), name, None, opts)
        import pulumi_aws as aws
        import pulumi_kubernetes as k8s

        co = pulumi.ResourceOptions(parent=self)
        self.cloud = CLOUD
        self.pools = [p for p, _ in planned]
        self.instances = {p.name: i for p, i in planned}
        tags = {"dynamo-iac/cluster": name}
        zones = sorted({z for p, _ in planned for z in p.zones})
        for extra in ("a", "b", "c"):
            if len(zones) >= 2:
                break
            if f"{region}{extra}" not in zones:
                zones.append(f"{region}{extra}")
        # ---- network
        if vpc_id:
            self.vpc_id = pulumi.Output.from_input(vpc_id)
            private = {z: s for z, s in zip(zones, subnet_ids or [])}
            cidr: Any = vpc_cidr
        else:
            vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=vpc_cidr, enable_dns_hostnames=True, enable_dns_support=True,
                              tags={**tags, "Name": f"{name}-vpc"}, opts=co)
            self.vpc_id = vpc.id
            cidr = vpc_cidr
            igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags, opts=co)
            public_rt = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc.id,
                                           routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}], tags=tags, opts=co)
            public, private = {}, {}
            base = int(vpc_cidr.split(".")[1])
            for k, z in enumerate(zones):
                public[z] = aws.ec2.Subnet(f"{name}-public-{z}", vpc_id=vpc.id, availability_zone=z,
                                           cidr_block=f"10.{base}.{k * 16}.0/20", map_public_ip_on_launch=True,
                                           tags={**tags, "kubernetes.io/role/elb": "1"}, opts=co)
                aws.ec2.RouteTableAssociation(f"{name}-public-{z}", subnet_id=public[z].id,
                                              route_table_id=public_rt.id, opts=co)
            eip = aws.ec2.Eip(f"{name}-nat", domain="vpc", tags=tags, opts=co)
            nat = aws.ec2.NatGateway(f"{name}-nat", allocation_id=eip.id, subnet_id=public[zones[0]].id, tags=tags,
                                     opts=co)
            private_rt = aws.ec2.RouteTable(f"{name}-private", vpc_id=vpc.id,
                                            routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}], tags=tags,
                                            opts=co)
            for k, z in enumerate(zones):
                sn = aws.ec2.Subnet(f"{name}-private-{z}", vpc_id=vpc.id, availability_zone=z,
                                    cidr_block=f"10.{base}.{128 + k * 32}.0/19",
                                    tags={**tags, "kubernetes.io/role/internal-elb": "1"}, opts=co)
                aws.ec2.RouteTableAssociation(f"{name}-private-{z}", subnet_id=sn.id, route_table_id=private_rt.id,
                                              opts=co)
                private[z] = sn.id
        private_ids = [private[z] for z in zones if z in private]
        # ---- IAM
        assume = lambda svc: json.dumps({"Version": "2012-10-17", "Statement": [{  # noqa: E731
            "Effect": "Allow", "Principal": {"Service": svc}, "Action": "sts:AssumeRole"}]})
        cluster_role = aws.iam.Role(f"{name}-cluster", assume_role_policy=assume("eks.amazonaws.com"), tags=tags,
                                    opts=co)
        aws.iam.RolePolicyAttachment(f"{name}-cluster-policy", role=cluster_role.name,
                                     policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy", opts=co)
        node_role = aws.iam.Role(f"{name}-node", assume_role_policy=assume("ec2.amazonaws.com"), tags=tags, opts=co)
        attachments = [aws.iam.RolePolicyAttachment(f"{name}-node-{p.split('/')[-1]}", role=node_role.name,
                                                    policy_arn=f"arn:aws:iam::aws:policy/{p}", opts=co)
                       for p in NODE_POLICIES]
        # ---- control plane
        self.cluster = aws.eks.Cluster(
            f"{name}-eks", name=name, role_arn=cluster_role.arn, version=kubernetes_version,
            vpc_config={"subnet_ids": private_ids, "endpoint_public_access": True, "endpoint_private_access": True},
            access_config={"authentication_mode": "API_AND_CONFIG_MAP",
                           "bootstrap_cluster_creator_admin_permissions": True},
            tags=tags, opts=co)
        self.cluster_name = self.cluster.name
        cluster_sg = self.cluster.vpc_config.cluster_security_group_id
        self.node_groups: dict[str, Any] = {}
        system = aws.eks.NodeGroup(
            f"{name}-system", cluster_name=self.cluster.name, node_group_name="system", node_role_arn=node_role.arn,
            subnet_ids=private_ids, instance_types=[system_instance_type or "m7i.2xlarge"],
            ami_type="AL2023_x86_64_STANDARD", capacity_type="ON_DEMAND",
            scaling_config={"desired_size": system_nodes, "min_size": 1, "max_size": max(system_nodes, 3)},
            labels={POOL_LABEL: "system"}, tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments))
        self.node_groups["system"] = system
        # ---- GPU pools
        self.launch_templates: dict[str, Any] = {}
        self.placement_groups: dict[str, Any] = {}
        for pool, inst in planned:
            efa = inst.fabric.kind == "efa" and bool(inst.fabric.devices)
            zone = pool.zone
            lt_args: dict[str, Any] = {
                "block_device_mappings": [{"device_name": "/dev/xvda", "ebs": {
                    "volume_size": 500, "volume_type": "gp3", "delete_on_termination": "true", "encrypted": "true"}}],
                "metadata_options": {"http_tokens": "required", "http_put_response_hop_limit": 2},
                "tag_specifications": [{"resource_type": "instance", "tags": {**tags, "dynamo-iac/pool": pool.name}}],
            }
            if efa:
                efa_sg = aws.ec2.SecurityGroup(
                    f"{name}-{pool.name}-efa", vpc_id=self.vpc_id,
                    description=f"EFA traffic between the nodes of pool {pool.name}",
                    ingress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "self": True}],
                    egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "self": True},
                            {"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"]}],
                    tags=tags, opts=co)
                lt_args["network_interfaces"] = efa_interfaces(inst, [efa_sg.id, cluster_sg])
            use_pg = pool.placement_group if pool.placement_group is not None else \
                (efa and pool.purchase_option not in RESERVED)
            if use_pg:
                pg = aws.ec2.PlacementGroup(f"{name}-{pool.name}", strategy="cluster", tags=tags, opts=co)
                self.placement_groups[pool.name] = pg
                lt_args["placement"] = {"group_name": pg.name}
            if pool.purchase_option == "capacity-block":
                lt_args["instance_market_options"] = {"market_type": "capacity-block"}
            if pool.capacity_reservation_id:
                lt_args["capacity_reservation_specification"] = {
                    "capacity_reservation_target": {"capacity_reservation_id": pool.capacity_reservation_id}}
            lt = aws.ec2.LaunchTemplate(f"{name}-{pool.name}", **lt_args, tags=tags, opts=co)
            self.launch_templates[pool.name] = lt
            subnets = [private[zone]] if zone and zone in private else private_ids
            labels = {POOL_LABEL: pool.name, "nvidia.com/gpu.present": "true",
                      "node.kubernetes.io/instance-type": inst.name, **pool.labels}
            self.node_groups[pool.name] = aws.eks.NodeGroup(
                f"{name}-{pool.name}", cluster_name=self.cluster.name, node_group_name=pool.name,
                node_role_arn=node_role.arn, subnet_ids=subnets, instance_types=[inst.name],
                ami_type=AMI[inst.arch], capacity_type=CAPACITY_TYPE[pool.purchase_option],
                scaling_config={"desired_size": pool.nodes, "min_size": pool.min, "max_size": max(pool.max, 1)},
                labels=labels,
                taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}] if pool.taint_gpu else None,
                launch_template={"id": lt.id, "version": lt.latest_version.apply(str)},
                tags=tags, opts=pulumi.ResourceOptions(parent=self, depends_on=attachments))
        # ---- access
        ca = self.cluster.certificate_authority.apply(lambda c: c.data if c else "")
        self.kubeconfig = pulumi.Output.secret(pulumi.Output.all(self.cluster.name, self.cluster.endpoint, ca).apply(
            lambda a: _kubeconfig(a[0], a[1], a[2], region)))
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig,
                                     opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.node_groups.values())))
        # ---- model cache storage
        self.storage = None
        if storage == "efs":
            self.storage = self._efs(aws, k8s, name, tags, private, zones, cidr, co)
        elif storage == "fsx-lustre":
            self.storage = self._fsx(aws, name, tags, private_ids, cidr, co)
        # the AL2023 NVIDIA AMIs ship the driver and the container toolkit: the GPU Operator must not
        self.platform = PlatformHints(gpu_operator_values={"driver": {"enabled": False},
                                                           "toolkit": {"enabled": False}},
                                      depends_on=tuple(self.node_groups.values()))
        self.register_outputs({"cluster_name": self.cluster_name, "kubeconfig": self.kubeconfig})

    def _efs(self, aws: Any, k8s: Any, name: str, tags: dict, private: dict, zones: list[str], cidr: str,
             co: pulumi.ResourceOptions) -> dict[str, Any]:
        keep = pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True)
        fs = aws.efs.FileSystem(f"{name}-model-cache", encrypted=True, performance_mode="generalPurpose",
                                throughput_mode="elastic", tags={**tags, "Name": f"{name}-model-cache"}, opts=keep)
        sg = aws.ec2.SecurityGroup(f"{name}-efs", vpc_id=self.vpc_id, description="NFS from the cluster VPC",
                                   ingress=[{"protocol": "tcp", "from_port": 2049, "to_port": 2049,
                                             "cidr_blocks": [cidr]}], tags=tags, opts=co)
        for z in zones:
            if z in private:
                aws.efs.MountTarget(f"{name}-efs-{z}", file_system_id=fs.id, subnet_id=private[z],
                                    security_groups=[sg.id], opts=co)
        addon = aws.eks.Addon(f"{name}-efs-csi", cluster_name=self.cluster.name, addon_name="aws-efs-csi-driver",
                              opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.node_groups.values())))
        sc = k8s.storage.v1.StorageClass(
            f"{name}-model-cache", metadata={"name": "efs-model-cache"}, provisioner="efs.csi.aws.com",
            reclaim_policy="Retain", volume_binding_mode="Immediate",
            parameters={"provisioningMode": "efs-ap", "fileSystemId": fs.id, "directoryPerms": "700"},
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[addon],
                                        retain_on_delete=True))
        self.file_system = fs
        return {"kind": "efs", "storage_class": "efs-model-cache", "access_mode": "ReadWriteMany",
                "file_system_id": fs.id, "storage_class_resource": sc}

    def _fsx(self, aws: Any, name: str, tags: dict, private_ids: list, cidr: str,
             co: pulumi.ResourceOptions) -> dict[str, Any]:
        sg = aws.ec2.SecurityGroup(f"{name}-fsx", vpc_id=self.vpc_id, description="Lustre from the cluster VPC",
                                   ingress=[{"protocol": "tcp", "from_port": 988, "to_port": 1023,
                                             "cidr_blocks": [cidr]}], tags=tags, opts=co)
        fs = aws.fsx.LustreFileSystem(f"{name}-model-cache", storage_capacity=1200, subnet_ids=private_ids[:1],
                                      deployment_type="PERSISTENT_2", per_unit_storage_throughput=250,
                                      security_group_ids=[sg.id], tags=tags,
                                      opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True))
        self.file_system = fs
        return {"kind": "fsx-lustre", "storage_class": "fsx-model-cache", "access_mode": "ReadWriteMany",
                "file_system_id": fs.id}

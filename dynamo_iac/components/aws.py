"""AwsGpuCluster: VPC (or an existing one), EKS with a pinned Kubernetes version, a system node
group, and GPU node groups from GpuPool specs — with EFA wired from the catalog: a launch template
with one interface per EFA device, the self-referencing EFA security group, an optional cluster
placement group (off with reservations / capacity blocks), every EFA pool in one AZ.

Built from plain pulumi_aws resources (launch template + aws.eks.NodeGroup), not plugin-backed
components: their children are invisible offline and their EFA option cannot be combined with
capacity blocks. pulumi_aws is imported here only, so other clouds' stacks never load it.
"""
from __future__ import annotations

import ipaddress
import json
from typing import Any, Mapping, Sequence

import pulumi

from ..errors import ConfigError, Problem
from ..hardware.model import InstanceType
from ..hardware.pool import GpuPool
from .common import POOL_LABEL, PlatformHints, component_type, pool_taints
from .common import label_problems
from .composition import desired_nodes, plan_graphs

CLOUD = "aws"
MIN_KUBERNETES = (1, 30)
AMI = {"x86_64": "AL2023_x86_64_NVIDIA", "arm64": "AL2023_ARM_64_NVIDIA"}
CAPACITY_TYPE = {"on-demand": "ON_DEMAND", "spot": "SPOT", "capacity-block": "CAPACITY_BLOCK",
                 "reservation": "ON_DEMAND"}
RESERVED = ("capacity-block", "reservation")
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly",
                 "service-role/AmazonEFSCSIDriverPolicy")
# The managed node group API rejects label keys whose prefix contains these domains
# ("Label cannot contain reserved prefixes [kubernetes.io/, k8s.io/, eks.amazonaws.com/]",
# eksctl-io/eksctl#4007); the kubelet sets node.kubernetes.io/instance-type itself.
EKS_RESERVED_LABEL_DOMAINS = ("kubernetes.io", "k8s.io", "eks.amazonaws.com")
TAINT_EFFECT = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}
# Defaults, overridable per cluster: the system node type (CPU-only pods: the frontend, the
# operators' controllers) and the GPU nodes' root volume (container images of 20-30 GB each,
# several runtime tags cached per node).
SYSTEM_INSTANCE_TYPE = "m7i.2xlarge"
GPU_ROOT_VOLUME_GIB = 500
# FSx for Lustre PERSISTENT_2: capacity is 1200 GiB or a multiple of 2400 GiB (FSx API docs)
FSX_MIN_GIB = 1200
MAX_ZONES = 4                       # subnet layout below: 4 /20 public and 4 /19 private blocks


def reserved_label(key: str) -> bool:
    prefix = key.split("/", 1)[0] if "/" in key else ""
    return any(prefix == d or prefix.endswith("." + d) for d in EKS_RESERVED_LABEL_DOMAINS)


def subnet_layout(vpc_cidr: str, zones: Sequence[str]) -> dict[str, tuple[str, str]]:
    """zone → (public /+4, private /+3) CIDRs inside the VPC: publics from the bottom sixteenth
    blocks, privates (where the nodes live, so twice the size) from the upper half."""
    net = ipaddress.ip_network(vpc_cidr)
    public = list(net.subnets(new_prefix=net.prefixlen + 4))
    private = list(net.subnets(new_prefix=net.prefixlen + 3))
    return {z: (str(public[k]), str(private[4 + k])) for k, z in enumerate(zones)}


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
        problems += label_problems(p.labels, f"{path}.labels")
        for key in sorted(k for k in p.labels if reserved_label(k)):
            problems.append(Problem(f"{path}.labels", f"label {key!r} uses a prefix EKS reserves "
                                    f"({', '.join(d + '/' for d in EKS_RESERVED_LABEL_DOMAINS)}); the managed node "
                                    "group API rejects it", "use your own prefix, e.g. "
                                    f"'example.com/{key.split('/', 1)[-1]}' (the kubelet sets the "
                                    "kubernetes.io labels itself)"))
        if inst.fabric.kind == "efa" and not inst.fabric.devices:
            problems.append(Problem(f"{path}.instance_type", f"the EFA interface count of {inst.name} is unknown "
                                    "(catalog fabric.devices is null), so its launch template cannot be built",
                                    f"set fabric.devices for {inst.name} in the catalog from the EC2 docs, or pick "
                                    "an instance type whose EFA count is known"))
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
                 vpc_id: str | None = None, subnet_ids: Mapping[str, str] | Sequence[str] | None = None,
                 vpc_cidr: str = "10.0.0.0/16", system_instance_type: str | None = None, system_nodes: int = 2,
                 storage: str | None = "efs", graphs: Sequence[Any] = (), root_volume_gib: int = GPU_ROOT_VOLUME_GIB,
                 fsx_capacity_gib: int = FSX_MIN_GIB, placement: Mapping[str, Any] | None = None,
                 catalog: Any = None, opts: pulumi.ResourceOptions | None = None) -> None:
        """`graphs` (+ `placement`: graph name → pool name, or worker → pool name): planned here,
        before anything is registered; node groups run the plan's counts and DynamoDeployment
        follows the same plan (composition.py). Without them a later bad input fails after the
        cluster exists."""
        from ..hardware.catalog import load

        cat = catalog or load()
        planned = validate(pools, region, kubernetes_version, cat)
        problems: list[Problem] = []
        if system_nodes < 1:
            problems.append(Problem("cluster.system_nodes", f"{system_nodes} system nodes: the frontend and the "
                                    "operators' controllers need at least one (the node group's min_size is 1)",
                                    "set system_nodes to 1 or more"))
        if root_volume_gib < 20:
            problems.append(Problem("cluster.root_volume_gib", f"a {root_volume_gib} GiB root volume cannot hold the "
                                    "AMI and the runtime images (20-30 GB each)",
                                    f"leave the default {GPU_ROOT_VOLUME_GIB} or set at least 100"))
        if vpc_id and not subnet_ids:
            problems.append(Problem("cluster.subnet_ids", "an existing VPC needs its subnet ids",
                                    "set subnet_ids (private subnets, one per AZ the pools use)"))
        if not vpc_id:
            try:
                net = ipaddress.ip_network(vpc_cidr)
                if net.version != 4 or net.prefixlen > 20:
                    raise ValueError("an IPv4 /16 … /20 is needed")
            except ValueError as e:
                problems.append(Problem("cluster.vpc_cidr", f"{vpc_cidr!r} cannot hold the cluster's subnets ({e})",
                                        "use an IPv4 block of /16 … /20, e.g. 10.0.0.0/16"))
        if storage not in (None, "none", "efs", "fsx-lustre"):
            problems.append(Problem("storage.kind", f"storage {storage!r} is not available on AWS",
                                    "use efs, fsx-lustre or none"))
        if storage == "fsx-lustre" and (fsx_capacity_gib != FSX_MIN_GIB and fsx_capacity_gib % 2400):
            problems.append(Problem("storage.size", f"{fsx_capacity_gib} GiB is not a valid FSx for Lustre "
                                    "PERSISTENT_2 capacity", "use 1200 GiB or a multiple of 2400 GiB"))
        given_zones = isinstance(subnet_ids, Mapping)
        for i, p in enumerate(p for p, _ in planned):
            if vpc_id and given_zones and p.zone and p.zone not in subnet_ids:  # type: ignore[operator]
                problems.append(Problem(f"pools[{i}].zones", f"pool {p.name!r} is in {p.zone} but subnet_ids has no "
                                        f"subnet for it (zones: {sorted(subnet_ids)})",  # type: ignore[arg-type]
                                        f"add '{p.zone}: subnet-…' to subnet_ids"))
        # EKS needs subnets in two AZs at least: the pools' zones, topped up from the region's
        zones = sorted({z for p, _ in planned for z in p.zones})
        for extra in ("a", "b", "c"):
            if len(zones) >= 2:
                break
            if f"{region}{extra}" not in zones:
                zones.append(f"{region}{extra}")
        if not vpc_id and len(zones) > MAX_ZONES:
            problems.append(Problem("pools[*].zones", f"the pools use {len(zones)} zones, the VPC layout holds "
                                    f"{MAX_ZONES}", f"use at most {MAX_ZONES} zones"))
        if problems:
            raise ConfigError(problems)
        # the graphs' capacity plans, before anything exists (a pool too small fails here)
        self.plans = plan_graphs(graphs, [p for p, _ in planned], cat, {p.name: i for p, i in planned},
                                 region=region, placement=placement)
        desired = {p.name: desired_nodes(p, self.plans) for p, _ in planned}
        super().__init__(component_type(CLOUD, "GpuCluster"), name, None, opts)
        import pulumi_aws as aws
        import pulumi_kubernetes as k8s

        co = pulumi.ResourceOptions(parent=self)
        self.cloud = CLOUD
        self.pools = [p for p, _ in planned]
        self.instances = {p.name: i for p, i in planned}
        tags = {"dynamo-iac/cluster": name}
        # ---- network
        lookups: list[tuple[str, Any]] = []            # (subnet id, its AZ as an Output), existing VPC
        if vpc_id:
            self.vpc_id = pulumi.Output.from_input(vpc_id)
            # the EFS security group admits NFS from the existing VPC's own block
            cidr: Any = aws.ec2.get_vpc_output(id=vpc_id).cidr_block
            if isinstance(subnet_ids, Mapping):
                private = dict(subnet_ids)
            else:
                # a plain list: each subnet's AZ is looked up, never guessed from list order
                lookups = [(sid, aws.ec2.get_subnet_output(id=sid).availability_zone) for sid in subnet_ids or []]
                private = {}
            private_ids: list[Any] = list(private.values()) or [sid for sid, _ in lookups]
        else:
            vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=vpc_cidr, enable_dns_hostnames=True, enable_dns_support=True,
                              tags={**tags, "Name": f"{name}-vpc"}, opts=co)
            self.vpc_id = vpc.id
            cidr = vpc_cidr
            layout = subnet_layout(vpc_cidr, zones)
            igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags, opts=co)
            public_rt = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc.id,
                                           routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}], tags=tags, opts=co)
            public, private = {}, {}
            for z in zones:
                public[z] = aws.ec2.Subnet(f"{name}-public-{z}", vpc_id=vpc.id, availability_zone=z,
                                           cidr_block=layout[z][0], map_public_ip_on_launch=True,
                                           tags={**tags, "kubernetes.io/role/elb": "1"}, opts=co)
                aws.ec2.RouteTableAssociation(f"{name}-public-{z}", subnet_id=public[z].id,
                                              route_table_id=public_rt.id, opts=co)
            eip = aws.ec2.Eip(f"{name}-nat", domain="vpc", tags=tags, opts=co)
            nat = aws.ec2.NatGateway(f"{name}-nat", allocation_id=eip.id, subnet_id=public[zones[0]].id, tags=tags,
                                     opts=co)
            private_rt = aws.ec2.RouteTable(f"{name}-private", vpc_id=vpc.id,
                                            routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}], tags=tags,
                                            opts=co)
            for z in zones:
                sn = aws.ec2.Subnet(f"{name}-private-{z}", vpc_id=vpc.id, availability_zone=z,
                                    cidr_block=layout[z][1],
                                    tags={**tags, "kubernetes.io/role/internal-elb": "1"}, opts=co)
                aws.ec2.RouteTableAssociation(f"{name}-private-{z}", subnet_id=sn.id, route_table_id=private_rt.id,
                                              opts=co)
                private[z] = sn.id
            private_ids = [private[z] for z in zones]

        def subnets_of(zone: str | None) -> Any:
            """The private subnet(s) a pool's nodes go to: its zone's, or all of them."""
            if not zone:
                return private_ids
            if zone in private:
                return [private[zone]]
            if lookups:
                ids = [sid for sid, _ in lookups]

                def pick(azs: list[str | None]) -> list[str]:
                    hit = [sid for sid, az in zip(ids, azs) if az == zone]
                    if not hit and all(azs):
                        raise ConfigError(f"none of subnet_ids {ids} is in {zone}", "cluster.subnet_ids",
                                          f"add a private subnet of {zone}")
                    return hit or ids
                return pulumi.Output.all(*[az for _, az in lookups]).apply(pick)
            return private_ids
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
            subnet_ids=private_ids, instance_types=[system_instance_type or SYSTEM_INSTANCE_TYPE],
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
                    "volume_size": root_volume_gib, "volume_type": "gp3", "delete_on_termination": "true", "encrypted": "true"}}],
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
            # no kubernetes.io labels: EKS rejects them and the kubelet sets instance-type itself
            labels = {**pool.labels, POOL_LABEL: pool.name, "nvidia.com/gpu.present": "true"}
            taints = [{"key": t["key"], "value": t["value"], "effect": TAINT_EFFECT[t["effect"]]}
                      for t in pool_taints(CLOUD, pool, inst)]
            self.node_groups[pool.name] = aws.eks.NodeGroup(
                f"{name}-{pool.name}", cluster_name=self.cluster.name, node_group_name=pool.name,
                node_role_arn=node_role.arn, subnet_ids=subnets_of(zone), instance_types=[inst.name],
                ami_type=AMI[inst.arch], capacity_type=CAPACITY_TYPE[pool.purchase_option],
                scaling_config={"desired_size": desired[pool.name], "min_size": pool.min,
                                "max_size": max(pool.max, 1)},
                labels=dict(sorted(labels.items())), taints=taints or None,
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
            self.storage = self._efs(aws, k8s, name, tags, private or {sid: sid for sid, _ in lookups}, cidr, co)
        elif storage == "fsx-lustre":
            self.storage = self._fsx(aws, k8s, name, tags, subnets_of(planned[0][0].zone), cidr, fsx_capacity_gib,
                                     co)
        # the AL2023 NVIDIA AMIs ship the driver and the container toolkit: the GPU Operator must not
        self.platform = PlatformHints(gpu_operator_values={"driver": {"enabled": False},
                                                           "toolkit": {"enabled": False}},
                                      depends_on=tuple(self.node_groups.values()))
        self.register_outputs({"cluster_name": self.cluster_name, "kubeconfig": self.kubeconfig,
                               "pools": [p.name for p in self.pools]})

    def _efs(self, aws: Any, k8s: Any, name: str, tags: dict, private: dict, cidr: Any,
             co: pulumi.ResourceOptions) -> dict[str, Any]:
        """EFS with one mount target per private subnet (`private`: key → subnet id; one per AZ)."""
        keep = pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True)
        fs = aws.efs.FileSystem(f"{name}-model-cache", encrypted=True, performance_mode="generalPurpose",
                                throughput_mode="elastic", tags={**tags, "Name": f"{name}-model-cache"}, opts=keep)
        sg = aws.ec2.SecurityGroup(f"{name}-efs", vpc_id=self.vpc_id, description="NFS from the cluster VPC",
                                   ingress=[{"protocol": "tcp", "from_port": 2049, "to_port": 2049,
                                             "cidr_blocks": [cidr]}], tags=tags, opts=co)
        for key, subnet in sorted(private.items()):
            aws.efs.MountTarget(f"{name}-efs-{key}", file_system_id=fs.id, subnet_id=subnet,
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

    def _fsx(self, aws: Any, k8s: Any, name: str, tags: dict, subnets: Any, cidr: Any, capacity_gib: int,
             co: pulumi.ResourceOptions) -> dict[str, Any]:
        """FSx for Lustre in the first GPU pool's subnet, the FSx CSI driver add-on, and a static PV
        on the retained file system that the model-cache PVC binds to by its class."""
        sg = aws.ec2.SecurityGroup(f"{name}-fsx", vpc_id=self.vpc_id, description="Lustre from the cluster VPC",
                                   ingress=[{"protocol": "tcp", "from_port": 988, "to_port": 988,
                                             "cidr_blocks": [cidr]},
                                            {"protocol": "tcp", "from_port": 1018, "to_port": 1023,
                                             "cidr_blocks": [cidr]}], tags=tags, opts=co)
        # a single-AZ file system takes exactly one subnet id (a string in pulumi_aws 7)
        subnet = pulumi.Output.from_input(subnets).apply(lambda ids: ids[0])
        fs = aws.fsx.LustreFileSystem(f"{name}-model-cache", storage_capacity=capacity_gib, subnet_ids=subnet,
                                      deployment_type="PERSISTENT_2", per_unit_storage_throughput=250,
                                      security_group_ids=[sg.id], tags={**tags, "Name": f"{name}-model-cache"},
                                      opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True))
        addon = aws.eks.Addon(f"{name}-fsx-csi", cluster_name=self.cluster.name, addon_name="aws-fsx-csi-driver",
                              opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.node_groups.values())))
        kept = pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[addon], retain_on_delete=True)
        sc = k8s.storage.v1.StorageClass(
            f"{name}-model-cache", metadata={"name": "fsx-model-cache"}, provisioner="fsx.csi.aws.com",
            reclaim_policy="Retain", volume_binding_mode="Immediate", opts=kept)
        k8s.core.v1.PersistentVolume(
            f"{name}-model-cache-pv", metadata={"name": f"fsx-model-cache-{name}"},
            spec={"capacity": {"storage": f"{capacity_gib}Gi"}, "access_modes": ["ReadWriteMany"],
                  "persistent_volume_reclaim_policy": "Retain", "storage_class_name": "fsx-model-cache",
                  "mount_options": ["flock"],
                  "csi": {"driver": "fsx.csi.aws.com", "volume_handle": fs.id,
                          "volume_attributes": {"dnsname": fs.dns_name, "mountname": fs.mount_name}}},
            opts=pulumi.ResourceOptions.merge(kept, pulumi.ResourceOptions(depends_on=[sc])))
        self.file_system = fs
        return {"kind": "fsx-lustre", "storage_class": "fsx-model-cache", "access_mode": "ReadWriteMany",
                "file_system_id": fs.id, "size": f"{capacity_gib}Gi"}

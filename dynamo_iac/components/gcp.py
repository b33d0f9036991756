"""GcpGpuCluster: a GKE cluster with A2/A3/A4 GPU node pools, GPUDirect networks and a model cache.

Built from plain pulumi_gcp resources (compute, container, filestore) and Kubernetes
resources, so every child is visible under mocks and to CrossGuard. pulumi_gcp is imported
inside functions only: an AWS or Azure program never loads it.

What the pool's catalog entry decides (never a table here):
  - machine type, `guest_accelerators` (type = catalog extra `accelerator_type`, count = GPUs),
    the driver installation mode (GKE driver `LATEST` on COS when GpuPool.gpu_driver ==
    "provider"; `INSTALLATION_DISABLED` on Ubuntu when the GPU Operator installs it);
  - the extra NICs per machine type and how Kubernetes sees them (multi-networking, Dataplane V2):
      gpudirect-tcpx  (a3-highgpu-8g):  fabric.networks VPCs → GKE Networks vpc1…vpcN (NetDevice)
      gpudirect-tcpxo (a3-megagpu-8g):  fabric.networks VPCs → vpc1…vpcN (NetDevice)
      roce (a3-ultragpu-8g, a4):        extra gVNIC VPC(s) → gvnic-1… (NetDevice) and one RoCE VPC
                                        (network profile <zone>-vpc-roce) with fabric.networks
                                        subnets → rdma-0…rdma-N-1 (RDMA); names shared with the
                                        roce overlay (targets/k8s/fabrics/roce.py);
  - compact placement for fabric pools unless they consume a reservation; reservation affinity.
Validation runs before anything is registered; bad input raises ConfigError naming the field.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import pulumi
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import versions
from ..errors import ConfigError, Problem
from ..hardware.model import InstanceType
from ..hardware.pool import GpuPool
from ..targets.k8s.fabrics import roce
from .common import POOL_LABEL, PROVIDER_TAINTS, PlatformHints, cidr_problems, label_problems, pool_taints
from .composition import desired_nodes, plan_graphs

CLOUD = "gcp"
NETWORKED = ("gpudirect-tcpx", "gpudirect-tcpxo", "roce")      # fabric kinds that need extra NICs
MIN_KUBERNETES = (1, 30)
# a GKE cluster name (≤ 40); it also prefixes GCE network names (≤ 63 with suffixes like -rdma-sub-7)
CLUSTER_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")
GKE_POOL_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")
# an autoscaled pool's sizes that must not be diffed: initialNodeCount is ForceNew (pulumi_gcp
# NodePool docs: "Changing this will force recreation"), nodeCount is the autoscaler's
AUTOSCALED_IGNORE = ["initialNodeCount", "nodeCount"]
TAINT_EFFECT = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}
# GKE's own device plugin must stay off where the GPU Operator runs its own (NVIDIA GKE guide)
NO_GKE_DEVICE_PLUGIN = {"gke-no-default-nvidia-gpu-device-plugin": "true"}
# GKE admits pods of the system-node-critical / system-cluster-critical PriorityClasses outside
# kube-system only in a namespace whose ResourceQuota matches them; the GPU Operator's pods use
# both (NVIDIA GPU Operator docs "Google GKE": gpu-operator-quota, pods: 100; NVIDIA/gpu-operator#660,
# NVIDIA/aicr#915: "insufficient quota to match these scopes")
CRITICAL_PODS_QUOTA = {"hard": {"pods": "100"}, "scopeSelector": {"matchExpressions": [{
    "operator": "In", "scopeName": "PriorityClass", "values": ["system-node-critical", "system-cluster-critical"]}]}}
FILESTORE_MIN_GB = {"BASIC_HDD": 1024, "BASIC_SSD": 2560, "ZONAL": 1024, "REGIONAL": 1024, "ENTERPRISE": 1024}


class NetworkRef(BaseModel):
    """An existing VPC network + subnetwork to attach as an extra node NIC."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    network: str
    subnetwork: str


class GcpModelCache(BaseModel):
    """Shared (ReadWriteMany) storage for model weights, retained when the stack is destroyed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["filestore", "lustre"] = "filestore"
    zone: str | None = Field(None, description="default: the zone of the first GPU pool")
    filestore_tier: Literal["BASIC_HDD", "BASIC_SSD", "ZONAL", "REGIONAL", "ENTERPRISE"] = "ZONAL"
    capacity_gb: int = Field(1024, ge=1024, description="Filestore share size (GB)")
    storage_class: str = Field("dynamo-model-cache", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


STORAGE_KINDS = {"filestore": "filestore", "lustre": "lustre", "gcp-lustre": "lustre", "managed-lustre": "lustre"}


def model_cache_of(storage: "GcpModelCache | dict | str | None") -> "GcpModelCache | None":
    """`storage` as given to GcpGpuCluster: a kind name, a dict of GcpModelCache fields or one."""
    if storage is None or storage == "none" or isinstance(storage, GcpModelCache):
        return storage or None
    if isinstance(storage, str):
        if storage not in STORAGE_KINDS:
            raise ConfigError(f"unknown GCP model-cache storage {storage!r}", "storage",
                              f"use one of {sorted(STORAGE_KINDS) + ['none']}")
        return GcpModelCache(kind=STORAGE_KINDS[storage])
    try:
        return GcpModelCache(**storage)
    except ValidationError as e:
        raise ConfigError([Problem("storage." + ".".join(str(x) for x in err["loc"]), err["msg"],
                                   "see GcpModelCache") for err in e.errors()]) from None


@dataclass(frozen=True)
class _Pool:
    pool: GpuPool
    instance: InstanceType
    kind: str                   # fabric kind
    networks: int               # extra fabric networks/NICs (0 when none)


def _catalog(catalog: Any) -> Any:
    if catalog is not None:
        return catalog
    from ..hardware import catalog as hw_catalog
    return hw_catalog.load()


def _k8s_version_ok(v: str) -> bool:
    m = re.match(r"^(\d+)\.(\d+)", v)
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= MIN_KUBERNETES


def _region_of(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def validate(pools: Sequence[GpuPool], *, region: str, catalog: Any = None, kubernetes_version: str = "1.33",
             pool_networks: dict[str, list[NetworkRef]] | None = None, gpudirect: bool = True,
             model_cache: GcpModelCache | None = None) -> list[_Pool]:
    """Check pools against the catalog and GKE rules; raise ConfigError with every problem."""
    cat = _catalog(catalog)
    pool_networks = pool_networks or {}
    problems: list[Problem] = []
    out: list[_Pool] = []
    if not _k8s_version_ok(kubernetes_version):
        problems.append(Problem("kubernetes_version", f"{kubernetes_version!r} is not a Kubernetes version ≥ 1.30",
                                "use e.g. '1.33' (the Dynamo platform chart needs Kubernetes ≥ 1.30)"))
    if not pools:
        problems.append(Problem("pools", "no GPU pool given", "pass at least one GpuPool"))
    names = [p.name for p in pools]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(Problem("pools", f"pool name {dup!r} is used twice", "give every pool its own name"))
    for unknown in sorted(set(pool_networks) - set(names)):
        problems.append(Problem(f"pool_networks[{unknown}]", "no pool has this name", f"use one of {names}"))
    for i, pool in enumerate(pools):
        where = f"pools[{i}]"
        problems += label_problems(pool.labels, f"{where}.labels")
        if not GKE_POOL_NAME.match(pool.name):
            problems.append(Problem(f"{where}.name", f"{pool.name!r} is not a valid GKE node pool name",
                                    "use lowercase letters, digits and hyphens, ≤ 40 characters"))
        try:
            inst = cat.get(pool.instance_type)
        except ConfigError as e:
            problems += [Problem(f"{where}.instance_type", p.message, p.fix) for p in e.problems]
            continue
        if inst.cloud not in (CLOUD, "any"):
            problems.append(Problem(f"{where}.instance_type", f"{inst.name} is a {inst.cloud} instance type, "
                                    "not a GCE machine type", "use a machine type such as a3-ultragpu-8g"))
            continue
        kind = inst.fabric.kind
        nets = 0
        if kind in NETWORKED:
            nets = inst.fabric.networks or 0
            if not nets:
                problems.append(Problem(f"catalog[{inst.name}].fabric.networks", f"{inst.name} uses {kind} but the "
                                        "catalog does not say how many extra networks it needs",
                                        "set fabric.networks in the catalog"))
        if inst.gpus and not inst.extra.get("accelerator_type"):
            problems.append(Problem(f"catalog[{inst.name}].extra.accelerator_type", "the GKE accelerator type of "
                                    f"{inst.name} is unknown", "set extra.accelerator_type in the catalog "
                                    "(e.g. nvidia-h200-141gb)"))
        if pool.purchase_option == "capacity-block":
            problems.append(Problem(f"{where}.purchase_option", "capacity blocks are an AWS purchase option",
                                    "use 'on-demand', 'spot' or 'reservation' on GCP"))
        if pool.purchase_option == "reservation" and not pool.capacity_reservation_id:
            problems.append(Problem(f"{where}.capacity_reservation_id", "a reservation pool needs the reservation "
                                    "name", "set capacity_reservation_id to the Compute Engine reservation name"))
        if pool.capacity_reservation_id and pool.purchase_option == "spot":
            problems.append(Problem(f"{where}.capacity_reservation_id", "spot VMs do not consume reservations",
                                    "drop capacity_reservation_id or use purchase_option='reservation'"))
        for z in pool.zones:
            if _region_of(z) != region:
                problems.append(Problem(f"{where}.zones", f"zone {z!r} is not in region {region!r}",
                                        f"use a zone of {region}, e.g. {region}-a"))
        if (kind in NETWORKED or pool.placement_group) and len(pool.zones) != 1:
            problems.append(Problem(f"{where}.zones", f"pool {pool.name!r} ({kind}"
                                    f"{', compact placement' if pool.placement_group else ''}) must sit in exactly "
                                    f"one zone, got {pool.zones or 'none'}",
                                    "give the pool one zone, e.g. zones=['us-central1-b']"))
        if kind in NETWORKED and pool.gpu_driver == "operator":
            problems.append(Problem(f"{where}.gpu_driver", f"{kind} on {inst.name} needs GKE's GPU driver on "
                                    "Container-Optimized OS (the GPUDirect stack and the pods' /home/kubernetes/bin/"
                                    "nvidia mount come from it); the GPU Operator cannot install drivers on COS",
                                    "set gpu_driver='provider' on this pool"))
        given = pool_networks.get(pool.name)
        if kind in NETWORKED and nets:
            if given is not None and len(given) != nets:
                problems.append(Problem(f"pool_networks[{pool.name}]", f"{inst.name} ({kind}) needs its {nets} extra "
                                        f"networks, got {len(given)}", f"pass exactly {nets} NetworkRef entries, or "
                                        "leave pool_networks unset to create them"))
            elif given is None and not gpudirect:
                problems.append(Problem(f"pools[{i}]", f"{inst.name} ({kind}) needs its {nets} extra networks but "
                                        "gpudirect=False creates none", "leave gpudirect on, pass pool_networks for "
                                        "this pool, or choose a machine type without GPUDirect networking"))
        elif given:
            problems.append(Problem(f"pool_networks[{pool.name}]", f"{inst.name} has no GPUDirect networking to attach "
                                    "networks to", "remove the entry"))
        out.append(_Pool(pool, inst, kind, nets))
    # one RDMA VPC (zonal network profile) and one set of cluster-wide GKE Network names per kind
    for kind in NETWORKED:
        zones = sorted({p.pool.zones[0] for p in out if p.kind == kind and len(p.pool.zones) == 1
                        and p.pool.name not in pool_networks})
        if len(zones) > 1:
            problems.append(Problem("pools[*].zones", f"{kind} pools sit in zones {zones}; their extra networks "
                                    "(GKE Network objects and, for RoCE, the zonal RoCE VPC) are shared by the cluster",
                                    "put every pool of this kind in one zone, or pass pool_networks for the others"))
    gpu_pools = [p for p in out if p.instance.gpus]
    if len({p.pool.gpu_driver for p in gpu_pools}) > 1:
        op = sorted(p.pool.name for p in gpu_pools if p.pool.gpu_driver == "operator")
        keep = sorted(p.pool.name for p in gpu_pools if p.pool.gpu_driver == "provider")
        problems.append(Problem("pools[*].gpu_driver",
                                f"the GPU Operator would install the NVIDIA driver for pool(s) {op} while pool(s) "
                                f"{keep} keep GKE's driver and device plugin",
                                "set the same gpu_driver on every GPU pool of the cluster, or use separate clusters"))
    if model_cache is not None and model_cache.kind == "filestore":
        low = FILESTORE_MIN_GB[model_cache.filestore_tier]
        if model_cache.capacity_gb < low:
            problems.append(Problem("storage.capacity_gb", f"{model_cache.filestore_tier} Filestore shares are at "
                                    f"least {low} GB", f"set capacity_gb ≥ {low} or another tier"))
    if model_cache is not None and model_cache.kind == "lustre":
        # GKE "Managed Lustre CSI driver": the instance is reached over private services access
        # (servicenetworking peering range + connection + a firewall rule) and mounted on COS nodes
        # only; this component creates neither the peering nor guarantees COS (operator-driver pools
        # run Ubuntu), so the PV would never mount
        problems.append(Problem("storage.kind", "Managed Lustre needs private services access on the VPC and "
                                "Container-Optimized OS nodes, which this component does not set up",
                                "use storage 'filestore', or create the Lustre instance yourself and set the graph's "
                                "model.cache.storage_class to its StorageClass"))
    if model_cache is not None and model_cache.zone and _region_of(model_cache.zone) != region:
        problems.append(Problem("storage.zone", f"zone {model_cache.zone!r} is not in region {region!r}",
                                f"use a zone of {region}"))
    if problems:
        raise ConfigError(problems)
    return out


def extra_network_names(kind: str, count: int, gvnics: int = 0) -> list[tuple[str, str]]:
    """(GKE Network name, device mode) of every extra NIC of a node of this fabric kind, in NIC order."""
    if kind in ("gpudirect-tcpx", "gpudirect-tcpxo"):
        return [(f"vpc{i}", "NetDevice") for i in range(1, count + 1)]
    if kind == "roce":
        return ([(roce.gvnic_network_name(i), "NetDevice") for i in range(1, gvnics + 1)]
                + [(roce.rdma_network_name(i), "RDMA") for i in range(count)])
    return []


def node_pool_args(p: GpuPool, inst: InstanceType, *, additional_networks: Sequence[dict] = (),
                   count: int | None = None) -> dict[str, Any]:
    """The NodePool inputs that the pool and its catalog entry decide (no Pulumi objects)."""
    count = p.nodes if count is None else count
    kind = inst.fabric.kind
    provider_driver = p.gpu_driver == "provider"
    labels = {**p.labels, POOL_LABEL: p.name}
    if inst.gpus and not provider_driver:
        labels.update(NO_GKE_DEVICE_PLUGIN)
    node_config: dict[str, Any] = {
        "machine_type": inst.name,
        # the GPU Operator installs drivers on Ubuntu only; GKE's driver and GPUDirect need COS
        "image_type": "COS_CONTAINERD" if provider_driver or not inst.gpus else "UBUNTU_CONTAINERD",
        "labels": dict(sorted(labels.items())),
        "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
        "disk_size_gb": 200,
    }
    if inst.gpus:
        node_config["guest_accelerators"] = [{
            "type": str(inst.extra["accelerator_type"]), "count": inst.gpus,
            "gpu_driver_installation_config": {
                "gpu_driver_version": "LATEST" if provider_driver else "INSTALLATION_DISABLED"}}]
    # the taints we set; GKE adds the Arm one (kubernetes.io/arch=arm64) itself
    taints = [{"key": t["key"], "value": t["value"], "effect": TAINT_EFFECT[t["effect"]]}
              for t in pool_taints(CLOUD, p, inst) if t not in PROVIDER_TAINTS.values()]
    if taints:
        node_config["taints"] = taints
    if kind in NETWORKED:
        node_config["gvnic"] = {"enabled": True}
    if p.purchase_option == "spot":
        node_config["spot"] = True
    if p.capacity_reservation_id:
        node_config["reservation_affinity"] = {"consume_reservation_type": "SPECIFIC_RESERVATION",
                                               "key": "compute.googleapis.com/reservation-name",
                                               "values": [p.capacity_reservation_id]}
    args: dict[str, Any] = {"node_config": node_config}
    if p.zones:
        args["node_locations"] = list(p.zones)
    if p.min != p.max:
        # the autoscaler owns the size; initial_node_count forces a new pool when it changes, so
        # it is set once and then ignored (GcpGpuCluster: ignore_changes=AUTOSCALED_IGNORE)
        args["autoscaling"] = {"min_node_count": p.min, "max_node_count": p.max}
        args["initial_node_count"] = count
    else:
        args["node_count"] = count
    compact = p.placement_group if p.placement_group is not None else (
        kind in NETWORKED and not p.capacity_reservation_id)
    if compact:
        args["placement_policy"] = {"type": "COMPACT"}
    if additional_networks:
        args["network_config"] = {"additional_node_network_configs": list(additional_networks)}
    return args


def _kubeconfig(args: list) -> str:
    name, endpoint, ca = args
    return f"""apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: https://{endpoint}
  name: {name}
contexts:
- context:
    cluster: {name}
    user: {name}
  name: {name}
current-context: {name}
users:
- name: {name}
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: gke-gcloud-auth-plugin
      installHint: Install gke-gcloud-auth-plugin for kubectl (gcloud components install gke-gcloud-auth-plugin)
      provideClusterInfo: true
"""


class GcpGpuCluster(pulumi.ComponentResource):
    """VPC + GKE (Dataplane V2, multi-networking when needed) + one node pool per GpuPool.

    Outputs: kubeconfig (secret), cluster_name, pools, provider (k8s Provider), cloud, storage,
    platform (PlatformHints for GpuPlatform).
    """

    def __init__(self, name: str, *, region: str, pools: Sequence[GpuPool], project: str | None = None,
                 kubernetes_version: str = "1.33", release_channel: Literal["RAPID", "REGULAR", "STABLE"] = "REGULAR",
                 system_machine_type: str = "e2-standard-8", system_nodes: int = 1,
                 node_cidr: str = "10.0.0.0/20", pods_cidr: str = "10.4.0.0/14", services_cidr: str = "10.0.32.0/20",
                 gpudirect: bool = True, pool_networks: dict[str, list[NetworkRef | dict]] | None = None,
                 storage: GcpModelCache | dict | str | None = None, deletion_protection: bool = True,
                 graphs: Sequence[Any] = (), placement: dict[str, Any] | None = None, catalog: Any = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """`graphs` (+ `placement`: graph name → pool name, or worker → pool name) are planned here
        before anything is registered; node pools run the plan's counts and DynamoDeployment follows
        the same plan (composition.py)."""
        model_cache = model_cache_of(storage)
        try:
            nets_in = {k: [n if isinstance(n, NetworkRef) else NetworkRef(**n) for n in v]
                       for k, v in (pool_networks or {}).items()}
        except ValidationError as e:
            raise ConfigError([Problem(".".join(str(x) for x in err["loc"]), err["msg"],
                                       "see NetworkRef") for err in e.errors()]) from None
        if not CLUSTER_NAME.match(name):
            raise ConfigError(f"{name!r} cannot name a GKE cluster and its VPCs", "name",
                              "use 1-40 lowercase letters, digits and hyphens, starting with a letter")
        catalog = _catalog(catalog)
        bad = cidr_problems({"node_cidr": node_cidr, "pods_cidr": pods_cidr, "services_cidr": services_cidr})
        if system_nodes < 1:
            bad.append(Problem("system_nodes", f"{system_nodes} system nodes: the CPU-only pods (frontend, "
                               "controllers) need one", "set system_nodes to 1 or more"))
        if bad:
            raise ConfigError(bad)
        planned = validate(pools, region=region, catalog=catalog, kubernetes_version=kubernetes_version,
                           pool_networks=nets_in, gpudirect=gpudirect, model_cache=model_cache)
        # before anything is registered
        self.plans = plan_graphs(graphs, [p.pool for p in planned], catalog, {p.pool.name: p.instance for p in planned},
                                 region=region, placement=placement)
        desired = {p.pool.name: desired_nodes(p.pool, self.plans) for p in planned}
        project = project or pulumi.Config("gcp").get("project")
        if project is None and any(p.kind == "roce" and p.pool.name not in nets_in for p in planned):
            raise ConfigError("the project is unknown, and the RoCE VPC's network profile is named after it", "project",
                              "pass project= or set gcp:project in the stack config")
        super().__init__("dynamo:gcp:GpuCluster", name, None, opts)

        from pulumi_gcp import compute, container
        import pulumi_kubernetes as k8s

        self.cloud = CLOUD
        self.pools = [p.pool for p in planned]
        self.instances = {p.pool.name: p.instance for p in planned}
        child = pulumi.ResourceOptions(parent=self)
        common = {"project": project} if project else {}

        vpc = compute.Network(f"{name}-vpc", name=f"{name}-vpc", auto_create_subnetworks=False, **common, opts=child)
        subnet = compute.Subnetwork(
            f"{name}-nodes", name=f"{name}-nodes", network=vpc.id, region=region, ip_cidr_range=node_cidr, private_ip_google_access=True,
            secondary_ip_ranges=[{"range_name": "pods", "ip_cidr_range": pods_cidr},
                                 {"range_name": "services", "ip_cidr_range": services_cidr}], **common, opts=child)

        # extra networks, created once and shared: TCPX and TCPXO pools attach the same NetDevice
        # VPCs (vpc1…vpcN, as many as the largest pool needs), RoCE pools the gVNIC + RoCE VPCs
        attach: dict[str, list[dict]] = {}
        group = {"gpudirect-tcpx": "netdevice", "gpudirect-tcpxo": "netdevice", "roce": "roce"}
        need: dict[str, tuple[int, int, str]] = {}          # group → (networks, gvnics, zone)
        for p in planned:
            if p.networks and p.pool.name not in nets_in:
                g = group[p.kind]
                gv = roce.gvnic_networks(p.instance) if p.kind == "roce" else 0
                n0, gv0, z0 = need.get(g, (0, 0, p.pool.zones[0]))
                need[g] = (max(n0, p.networks), max(gv0, gv), z0)
        created = {g: self._fabric_networks(name, "roce" if g == "roce" else "gpudirect-tcpx", n, gv, region, zone,
                                            project, common)
                   for g, (n, gv, zone) in sorted(need.items())}
        k8s_networks = [n for g in sorted(created) for n in created[g]]
        for p in planned:
            if not p.networks:
                continue
            if p.pool.name in nets_in:
                attach[p.pool.name] = [{"network": n.network, "subnetwork": n.subnetwork} for n in nets_in[p.pool.name]]
                continue
            nets = created[group[p.kind]]
            plain = [n for n in nets if n[1] == "NetDevice"]
            if p.kind == "roce":                     # its gVNIC(s), then one RDMA NIC per network
                mine = plain[:roce.gvnic_networks(p.instance)] + [n for n in nets if n[1] == "RDMA"][:p.networks]
            else:
                mine = plain[:p.networks]
            attach[p.pool.name] = [{"network": v.name, "subnetwork": s.name} for _, _, v, s in mine]
        multi_networking = any(p.networks for p in planned)

        addons: dict[str, Any] = {}
        if model_cache is not None:
            addons = {"gcp_filestore_csi_driver_config": {"enabled": True}}
        cluster = container.Cluster(
            f"{name}-gke", name=name, location=region, network=vpc.id, subnetwork=subnet.id,
            remove_default_node_pool=True, initial_node_count=1,
            datapath_provider="ADVANCED_DATAPATH",                  # Dataplane V2 (multi-networking needs it)
            enable_multi_networking=multi_networking or None,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy={"cluster_secondary_range_name": "pods", "services_secondary_range_name": "services"},
            release_channel={"channel": release_channel}, min_master_version=kubernetes_version,
            addons_config=addons or None, deletion_protection=deletion_protection,
            workload_identity_config={"workload_pool": f"{project}.svc.id.goog"} if project else None,
            **common, opts=child)
        self.cluster = cluster
        self.cluster_name = cluster.name

        gpu_zones = sorted({z for p in planned for z in p.pool.zones})
        container.NodePool(
            f"{name}-system", name="system", cluster=cluster.name, location=region, node_count=system_nodes,
            node_locations=gpu_zones[:1] or None,
            node_config={"machine_type": system_machine_type, "image_type": "COS_CONTAINERD",
                         "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                         "labels": {POOL_LABEL: "system"}},
            **common, opts=child)
        self.node_pools: dict[str, Any] = {}
        for p in planned:
            args = node_pool_args(p.pool, p.instance, additional_networks=attach.get(p.pool.name, ()),
                                  count=desired[p.pool.name])
            ignore = AUTOSCALED_IGNORE if "autoscaling" in args else []
            self.node_pools[p.pool.name] = container.NodePool(
                f"{name}-{p.pool.name}", name=p.pool.name, cluster=cluster.name, location=region, **args, **common,
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignore))

        self.kubeconfig = pulumi.Output.secret(pulumi.Output.all(
            cluster.name, cluster.endpoint, cluster.master_auth.apply(
                lambda a: (a.cluster_ca_certificate if a else "") or "")).apply(_kubeconfig))
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig,
                                     opts=pulumi.ResourceOptions(parent=self,
                                                                 depends_on=list(self.node_pools.values())))
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.provider)

        for gke_name, mode, v, s in sorted(k8s_networks, key=lambda n: n[0]):
            params = k8s.apiextensions.CustomResource(
                f"{name}-gnp-{gke_name}", api_version="networking.gke.io/v1", kind="GKENetworkParamSet",
                metadata={"name": gke_name}, spec={"vpc": v.name, "vpcSubnet": s.name, "deviceMode": mode},
                opts=k8s_opts)
            k8s.apiextensions.CustomResource(
                f"{name}-net-{gke_name}", api_version="networking.gke.io/v1", kind="Network",
                metadata={"name": gke_name},
                spec={"type": "Device", "parametersRef": {"group": "networking.gke.io", "kind": "GKENetworkParamSet",
                                                          "name": gke_name}},
                opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[params])))

        gpu_values: dict[str, Any] = {}
        gpu_pools = [p for p in planned if p.instance.gpus]
        if gpu_pools and all(p.pool.gpu_driver == "provider" for p in gpu_pools):
            # GKE installs the driver, configures containerd and runs the device plugin (NVIDIA AICR
            # "gke-default" profile): the GPU Operator must not do any of the three
            gpu_values = {"driver": {"enabled": False}, "toolkit": {"enabled": False},
                          "devicePlugin": {"enabled": False}}
        self.platform = PlatformHints(
            gpu_operator_values=gpu_values,
            namespace_quotas={versions.chart("gpu-operator").namespace: CRITICAL_PODS_QUOTA},
            operator_driver_pools=tuple(p.pool.name for p in gpu_pools if p.pool.gpu_driver == "operator"))

        self.storage: dict[str, Any] | None = None
        if model_cache is not None:
            zone = model_cache.zone or (gpu_zones[0] if gpu_zones else f"{region}-a")
            self.storage = self._model_cache(name, model_cache, zone, vpc, common, k8s_opts)

        self.register_outputs({"cluster_name": self.cluster_name, "kubeconfig": self.kubeconfig,
                               "pools": [p.name for p in self.pools]})

    # ------------------------------------------------------------------------------ networks
    def _fabric_networks(self, name: str, kind: str, count: int, gvnics: int, region: str, zone: str,
                         project: str | None, common: dict) -> list[tuple[str, str, Any, Any]]:
        """VPCs/subnets of one fabric kind; GCE names are explicit so that node pools and GKE
        Network objects refer to them by name. Pod-visible ranges never overlap in a cluster."""
        from pulumi_gcp import compute

        child = pulumi.ResourceOptions(parent=self)
        out: list[tuple[str, str, Any, Any]] = []
        base = {"gpudirect-tcpx": 0, "gpudirect-tcpxo": 0, "roce": 16}[kind]
        names = extra_network_names(kind, count, gvnics)
        plain = [n for n in names if n[1] == "NetDevice"]
        for idx, (gke_name, mode) in enumerate(plain):
            cidr = f"192.168.{base + idx + 1}.0/24"
            vpc = compute.Network(f"{name}-{gke_name}", name=f"{name}-{gke_name}", auto_create_subnetworks=False,
                                  mtu=8244, **common, opts=child)
            sub = compute.Subnetwork(f"{name}-{gke_name}", name=f"{name}-{gke_name}", network=vpc.id, region=region,
                                     ip_cidr_range=cidr, **common, opts=child)
            compute.Firewall(f"{name}-{gke_name}-internal", name=f"{name}-{gke_name}-internal", network=vpc.name,
                             source_ranges=[cidr],
                             allows=[{"protocol": "tcp"}, {"protocol": "udp"}, {"protocol": "icmp"}],
                             **common, opts=child)
            out.append((gke_name, mode, vpc, sub))
        rdma = [n for n in names if n[1] == "RDMA"]
        if rdma:
            # RoCE VPCs are zonal, allow all traffic implicitly and take no VPC firewall rules
            vpc = compute.Network(f"{name}-rdma", name=f"{name}-rdma", auto_create_subnetworks=False, mtu=8896,
                                  network_profile=f"projects/{project}/global/networkProfiles/{zone}-vpc-roce",
                                  **common, opts=child)
            for i, (gke_name, mode) in enumerate(rdma):
                sub = compute.Subnetwork(f"{name}-rdma-sub-{i}", name=f"{name}-rdma-sub-{i}", network=vpc.id,
                                         region=region, ip_cidr_range=f"192.168.{64 + i}.0/24", **common, opts=child)
                out.append((gke_name, mode, vpc, sub))
        return out

    # ------------------------------------------------------------------------------ model cache
    def _model_cache(self, name: str, mc: GcpModelCache, zone: str, vpc: Any, common: dict,
                     k8s_opts: pulumi.ResourceOptions) -> dict[str, Any]:
        import pulumi_kubernetes as k8s

        keep = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        kept_k8s = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(retain_on_delete=True))
        k8s.storage.v1.StorageClass(
            f"{name}-model-cache-sc", metadata={"name": mc.storage_class},
            provisioner="kubernetes.io/no-provisioner", reclaim_policy="Retain", volume_binding_mode="Immediate",
            opts=kept_k8s)
        from pulumi_gcp import filestore

        fs = filestore.Instance(
            f"{name}-model-cache", name=f"{name}-models", location=zone, tier=mc.filestore_tier,
            file_shares={"name": "models", "capacity_gb": mc.capacity_gb},
            networks=[{"network": vpc.name, "modes": ["MODE_IPV4"], "connect_mode": "DIRECT_PEERING"}],
            **common, opts=keep)
        ip = fs.networks.apply(lambda n: (n[0].ip_addresses or [""])[0] if n else "")
        handle = pulumi.Output.all(fs.name).apply(lambda n: f"modeInstance/{zone}/{n[0] or ''}/models")
        attrs: dict[str, Any] = {"ip": ip, "volume": "models"}
        driver, size = "filestore.csi.storage.gke.io", f"{mc.capacity_gb}G"
        # a static PV on the retained file system; the model-cache PVC binds to it by class
        k8s.core.v1.PersistentVolume(
            f"{name}-model-cache-pv", metadata={"name": f"{mc.storage_class}-{name}"},
            spec={"capacity": {"storage": size}, "access_modes": ["ReadWriteMany"],
                  "persistent_volume_reclaim_policy": "Retain", "storage_class_name": mc.storage_class,
                  "csi": {"driver": driver, "volume_handle": handle, "volume_attributes": attrs}},
            opts=kept_k8s)
        return {"kind": mc.kind, "storage_class": mc.storage_class, "access_mode": "ReadWriteMany",
                "size": size, "filesystem": fs}

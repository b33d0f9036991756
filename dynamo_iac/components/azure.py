"""AzureGpuCluster: an AKS cluster with ND-series GPU agent pools, InfiniBand and a model cache.

Built from plain azure-native resources (resources / network / containerservice / storage) and
Kubernetes resources, so that every child is visible under mocks and to CrossGuard.
pulumi_azure_native is imported inside functions only: a program that builds an AWS or GCP
stack never loads it.

What the pool's catalog entry decides (never a table here):
  - GPU pools: vm_size, the NVIDIA GPU taint, `gpu_profile.driver` = None when the GPU Operator
    installs the driver (GpuPool.gpu_driver == "operator"), Install when AKS keeps its own;
  - InfiniBand pools (fabric.kind == "infiniband"): Ubuntu nodes, one zone at most (IB only links
    VMs of one scale set), and the NVIDIA Network Operator with a NicClusterPolicy (DOCA/MOFED
    driver + RDMA shared device plugin exposing the catalog's resource, rdma/shared_ib), its
    namespace labelled privileged;
  - spot pools: Spot priority, eviction policy, max price -1 (pay up to on-demand).
Validation runs before anything is registered; bad input raises ConfigError naming the field.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import pulumi
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import versions
from ..errors import ConfigError, Problem
from ..hardware.model import InstanceType
from ..hardware.pool import GpuPool
from .common import POOL_LABEL, PROVIDER_TAINTS, PlatformHints, cidr_problems, label_problems, pool_taints
from .composition import desired_nodes, plan_graphs

CLOUD = "azure"
PRIVILEGED = {"pod-security.kubernetes.io/enforce": "privileged"}
AKS_POOL_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")      # Linux agent pool names
MIN_KUBERNETES = (1, 30)                                    # dynamo-platform chart kubeVersion
MELLANOX_VENDOR = "15b3"                                    # PCI vendor id of NVIDIA/Mellanox NICs
# the overlay network's pod and service ranges (must not overlap the VNet) and the DNS service IP
POD_CIDR, SERVICE_CIDR, DNS_SERVICE_IP = "192.168.0.0/16", "10.0.0.0/16", "10.0.0.10"
# storage account names: 3-24 lowercase letters and digits, unique across Azure
ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")


STORAGE_KINDS = {"azure-files": "azure-files", "azure-lustre": "lustre", "lustre": "lustre"}


class AzureModelCache(BaseModel):
    """Shared (ReadWriteMany) storage for model weights, retained when the stack is destroyed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["azure-files", "lustre"] = Field(
        "azure-files", description="azure-files: Premium SMB share (CSI driver ships with AKS); "
        "lustre: refused (Azure Managed Lustre needs the azurelustre CSI driver, not installed here)")
    size_gib: int = Field(1024, ge=100, le=102_400, description="Azure Files share quota")
    storage_class: str = Field("dynamo-model-cache", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def model_cache_of(storage: "AzureModelCache | dict | str | None") -> "AzureModelCache | None":
    """`storage` as given to AzureGpuCluster: a kind name, a dict of AzureModelCache fields or one."""
    if storage is None or storage == "none" or isinstance(storage, AzureModelCache):
        return storage or None
    if isinstance(storage, str):
        if storage not in STORAGE_KINDS:
            raise ConfigError(f"unknown Azure model-cache storage {storage!r}", "storage",
                              f"use one of {sorted(STORAGE_KINDS) + ['none']}")
        return AzureModelCache(kind=STORAGE_KINDS[storage])
    try:
        return AzureModelCache(**storage)
    except ValidationError as e:
        raise ConfigError([Problem("storage." + ".".join(str(x) for x in err["loc"]), err["msg"],
                                   "see AzureModelCache") for err in e.errors()]) from None


@dataclass(frozen=True)
class _Pool:
    pool: GpuPool
    instance: InstanceType
    ib: bool


def _k8s_version_ok(v: str) -> bool:
    m = re.match(r"^(\d+)\.(\d+)(\.\d+)?$", v)
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= MIN_KUBERNETES


def _catalog(catalog: Any) -> Any:
    if catalog is not None:
        return catalog
    from ..hardware import catalog as hw_catalog
    return hw_catalog.load()


def validate(pools: Sequence[GpuPool], *, catalog: Any = None, kubernetes_version: str = "1.33",
             model_cache: AzureModelCache | None = None) -> list[_Pool]:
    """Check pools against the catalog and AKS rules; raise ConfigError with every problem."""
    cat = _catalog(catalog)
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
    for i, pool in enumerate(pools):
        where = f"pools[{i}]"
        problems += label_problems(pool.labels, f"{where}.labels")
        if not AKS_POOL_NAME.match(pool.name):
            problems.append(Problem(f"{where}.name", f"{pool.name!r} is not a valid AKS agent pool name "
                                    "(1-12 lowercase letters and digits, starting with a letter)",
                                    f"rename the pool, e.g. {re.sub(r'[^a-z0-9]', '', pool.name)[:12]!r}"))
        try:
            inst = cat.get(pool.instance_type)
        except ConfigError as e:
            problems += [Problem(f"{where}.instance_type", p.message, p.fix) for p in e.problems]
            continue
        if inst.cloud not in (CLOUD, "any"):
            problems.append(Problem(f"{where}.instance_type", f"{inst.name} is a {inst.cloud} instance type, "
                                    "not an Azure VM size", "use an Azure VM size such as Standard_ND96isr_H100_v5"))
            continue
        ib = inst.fabric.kind == "infiniband"
        if pool.purchase_option == "capacity-block":
            problems.append(Problem(f"{where}.purchase_option", "capacity blocks are an AWS purchase option",
                                    "use 'on-demand', 'spot' or 'reservation' (a capacity reservation group) on Azure"))
        if pool.purchase_option == "reservation" and not pool.capacity_reservation_id:
            problems.append(Problem(f"{where}.capacity_reservation_id", "a reservation pool needs the capacity "
                                    "reservation group's resource id", "set capacity_reservation_id to "
                                    "/subscriptions/…/resourceGroups/…/providers/Microsoft.Compute/capacityReservationGroups/…"))
        if pool.capacity_reservation_id and pool.purchase_option == "spot":
            problems.append(Problem(f"{where}.capacity_reservation_id", "spot VMs cannot consume a capacity reservation",
                                    "drop capacity_reservation_id or use purchase_option='reservation'"))
        bad_zones = [z for z in pool.zones if not re.fullmatch(r"[1-3]", z)]
        if bad_zones:
            problems.append(Problem(f"{where}.zones", f"{bad_zones} are not Azure availability zones",
                                    "use '1', '2' or '3'"))
        if ib and len(pool.zones) > 1:
            problems.append(Problem(f"{where}.zones", f"InfiniBand pool {pool.name!r} spans zones {pool.zones}; IB "
                                    "only connects VMs of one scale set in one zone",
                                    "give the pool one zone (or none)"))
        if ib:
            problems += nic_cluster_policy_problems(inst)
        out.append(_Pool(pool, inst, ib))
    gpu_pools = [p for p in out if p.instance.gpus]
    modes = {p.pool.gpu_driver for p in gpu_pools}
    if len(modes) > 1:
        op = sorted(p.pool.name for p in gpu_pools if p.pool.gpu_driver == "operator")
        keep = sorted(p.pool.name for p in gpu_pools if p.pool.gpu_driver == "provider")
        problems.append(Problem("pools[*].gpu_driver",
                                f"the GPU Operator would install the NVIDIA driver for pool(s) {op} on every GPU node, "
                                f"including pool(s) {keep} that keep the AKS driver; the two are mutually exclusive on "
                                "a node (GPU Operator over AKS drivers breaks containerd)",
                                "set the same gpu_driver on every GPU pool of the cluster ('operator' skips the AKS "
                                "driver with gpu_profile.driver=None), or put the pools in separate clusters"))
    for p in gpu_pools:
        if p.ib and p.pool.gpu_driver == "provider":
            problems.append(Problem(f"pools[{names.index(p.pool.name)}].gpu_driver",
                                    f"InfiniBand pool {p.pool.name!r} keeps the AKS driver, which lacks nvidia_peermem "
                                    "for GPUDirect RDMA on ND-series hosts",
                                    "set gpu_driver='operator' (the GPU Operator builds nvidia_peermem with "
                                    "driver.rdma.enabled=true)"))
    if model_cache is not None and model_cache.kind == "lustre":
        # the azurelustre.csi.azure.com driver is no AKS add-on (kubernetes-sigs/azurelustre-csi-driver
        # is installed by a script) and this component does not install it: the PVC would stay Pending
        problems.append(Problem("storage.kind", "Azure Managed Lustre needs the azurelustre CSI driver, which AKS "
                                "does not ship and this component does not install",
                                "use storage 'azure-files', or install the driver and the file system yourself and "
                                "set the graph's model.cache.storage_class to its StorageClass"))
    if problems:
        raise ConfigError(problems)
    return out


def agent_pool_args(p: GpuPool, inst: InstanceType, *, spot_eviction_policy: str = "Delete",
                    count: int | None = None) -> dict[str, Any]:
    """The AgentPool inputs that the pool and its catalog entry decide (no Pulumi objects)."""
    labels = {**p.labels, POOL_LABEL: p.name}
    args: dict[str, Any] = {
        "vm_size": inst.name,
        "mode": "User",
        "os_type": "Linux",
        "os_sku": "Ubuntu",          # IB (DOCA driver) and the GPU Operator driver need Ubuntu
        "count": p.nodes if count is None else count,
        "node_labels": dict(sorted(labels.items())),
    }
    if p.min != p.max:
        args.update(enable_auto_scaling=True, min_count=p.min, max_count=p.max)
    if p.zones:
        args["availability_zones"] = list(p.zones)
    if inst.gpus:
        args["gpu_profile"] = {"driver": "None" if p.gpu_driver == "operator" else "Install"}
    # the taints we set; AKS adds the Spot one (kubernetes.azure.com/scalesetpriority) itself
    added_by_aks = list(PROVIDER_TAINTS.values())
    taints = [f"{t['key']}={t['value']}:{t['effect']}" for t in pool_taints(CLOUD, p, inst) if t not in added_by_aks]
    if taints:
        args["node_taints"] = taints
    if p.purchase_option == "spot":
        args.update(scale_set_priority="Spot", scale_set_eviction_policy=spot_eviction_policy, spot_max_price=-1)
    if p.capacity_reservation_id:
        args["capacity_reservation_group_id"] = p.capacity_reservation_id
    return args


def network_operator_images() -> dict[str, dict[str, str]]:
    """NicClusterPolicy component images, pinned beside the network-operator chart in
    data/versions.yaml (the images a chart release ships go with that release)."""
    pin = versions.chart("network-operator")
    images = versions.chart_images("network-operator")
    out = {}
    fields = ("repository", "image", "version")
    for key in ("ofedDriver", "rdmaSharedDevicePlugin"):
        img = images.get(key) or {}
        if not all(img.get(f) for f in fields):
            raise ConfigError(f"no {key} image pinned for network-operator {pin.version}",
                              f"versions.charts.network-operator.images.{key}",
                              "add repository / image / version to dynamo_iac/data/versions.yaml")
        out[key] = {f: img[f] for f in fields}
    return out


def nic_cluster_policy_problems(instance: InstanceType) -> list[Problem]:
    fab, where = instance.fabric, f"catalog[{instance.name}].fabric"
    problems = []
    if not (fab.resource or "").startswith("rdma/"):
        problems.append(Problem(f"{where}.resource", f"the RDMA shared device plugin exposes rdma/<name>, the "
                                f"catalog says {fab.resource!r}", "set fabric.resource to rdma/shared_ib"))
    if not fab.resource_per_node:
        problems.append(Problem(f"{where}.resource_per_node", "how many pods may share a node's HCAs "
                                "(the plugin's rdmaHcaMax) is unknown", "set fabric.resource_per_node in the catalog"))
    return problems


def nic_cluster_policy_spec(instance: InstanceType) -> dict[str, Any]:
    """NicClusterPolicy for ND-series IB nodes: DOCA driver + RDMA shared device plugin.

    The plugin's resource name is the catalog's fabric.resource without the `rdma/` prefix the
    plugin adds, so pods request exactly what the infiniband overlay asks for; rdmaHcaMax (how
    many pods may hold the resource on one node) is the catalog's resource_per_node."""
    problems = nic_cluster_policy_problems(instance)
    if problems:
        raise ConfigError(problems)
    images = network_operator_images()
    plugin_config = {"configList": [{
        "resourceName": (instance.fabric.resource or "").removeprefix("rdma/"),
        "rdmaHcaMax": instance.fabric.resource_per_node,
        "selectors": {"vendors": [MELLANOX_VENDOR], "linkTypes": ["infiniband"]},
    }]}
    return {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
            "matchExpressions": [{"key": f"feature.node.kubernetes.io/pci-{MELLANOX_VENDOR}.present",
                                  "operator": "In", "values": ["true"]}]}]}},
        "ofedDriver": {**images["ofedDriver"],
                       # upstream workaround for a module-load race (Mellanox/doca-driver-build#52)
                       "env": [{"name": "OFED_BLACKLIST_MODULES_FILE",
                                "value": "/host/etc/modprobe.d/blacklist-ofed-modules.conf"}],
                       "upgradePolicy": {"autoUpgrade": True, "maxParallelUpgrades": 1,
                                         "drain": {"enable": True, "force": True, "deleteEmptyDir": True,
                                                   "timeoutSeconds": 300}}},
        "rdmaSharedDevicePlugin": {**images["rdmaSharedDevicePlugin"], "config": json.dumps(plugin_config, sort_keys=True)},
    }


def storage_account_name(name: str, project: str, stack: str) -> str:
    """A valid, deterministic storage account name: the cluster name's letters and digits (≤ 14)
    and a hash of project/stack/name, so two stacks never collide on the global namespace."""
    digest = hashlib.sha256(f"{project}/{stack}/{name}".encode()).hexdigest()[:8]
    stem = re.sub(r"[^a-z0-9]", "", name.lower())[:14] or "dynamo"
    out = f"{stem}{digest}"
    assert ACCOUNT_NAME.match(out), out
    return out


def _join(sep: str, *parts: Any) -> pulumi.Output[str]:
    return pulumi.Output.all(*parts).apply(lambda xs: sep.join(str(x or "") for x in xs))


def _decode_kubeconfig(result: Any) -> str:
    kcs = getattr(result, "kubeconfigs", None) or []
    return base64.b64decode(kcs[0].value).decode() if kcs and kcs[0].value else ""


class AzureGpuCluster(pulumi.ComponentResource):
    """AKS cluster + system pool + one agent pool per GpuPool (+ Network Operator on IB pools).

    Outputs: kubeconfig (secret), cluster_name, pools, provider (k8s Provider), cloud, storage,
    platform (PlatformHints for GpuPlatform), resource_group_name.
    """

    def __init__(self, name: str, *, location: str, pools: Sequence[GpuPool],
                 resource_group_name: str | None = None,
                 kubernetes_version: str = "1.33",
                 system_vm_size: str = "Standard_D8s_v5", system_nodes: int = 2,
                 vnet_cidr: str = "10.224.0.0/12", node_subnet_cidr: str = "10.224.0.0/16",
                 sku_tier: Literal["Free", "Standard", "Premium"] = "Standard",
                 spot_eviction_policy: Literal["Delete", "Deallocate"] = "Delete",
                 network_operator: bool | None = None,
                 storage: AzureModelCache | dict | str | None = None, graphs: Sequence[Any] = (),
                 placement: dict[str, Any] | None = None, catalog: Any = None, tags: dict[str, str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """`graphs` (+ `placement`: graph name → pool name, or worker → pool name) are planned here
        before anything is registered; agent pools run the plan's counts and DynamoDeployment
        follows the same plan (composition.py)."""
        model_cache = model_cache_of(storage)
        catalog = _catalog(catalog)
        bad = cidr_problems({"vnet_cidr": vnet_cidr, "node_subnet_cidr": node_subnet_cidr,
                             "service_cidr": SERVICE_CIDR, "pod_cidr": POD_CIDR},
                            inside={"node_subnet_cidr": "vnet_cidr"})
        if system_nodes < 1:
            bad.append(Problem("system_nodes", f"{system_nodes} system nodes: AKS needs at least one node in "
                               "its System pool", "set system_nodes to 1 or more"))
        if bad:
            raise ConfigError(bad)
        planned = validate(pools, catalog=catalog, kubernetes_version=kubernetes_version, model_cache=model_cache)
        # before anything is registered
        self.plans = plan_graphs(graphs, [p.pool for p in planned], catalog, {p.pool.name: p.instance for p in planned},
                                 region=location, placement=placement)
        desired = {p.pool.name: desired_nodes(p.pool, self.plans) for p in planned}
        ib_pools = [p for p in planned if p.ib]
        if network_operator is False and ib_pools:
            raise ConfigError(f"network_operator=False but pool(s) {[p.pool.name for p in ib_pools]} use InfiniBand",
                              "network_operator", "leave network_operator unset (it is installed for IB pools) or "
                              "install the Network Operator and NicClusterPolicy yourself and use a non-IB catalog entry")
        super().__init__("dynamo:azure:GpuCluster", name, None, opts)

        from pulumi_azure_native import containerservice, network, resources
        import pulumi_kubernetes as k8s

        self.cloud = CLOUD
        self.pools = [p.pool for p in planned]
        self.instances = {p.pool.name: p.instance for p in planned}
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(sorted((tags or {"managed-by": "dynamo-iac"}).items()))

        if resource_group_name is None:
            rg = resources.ResourceGroup(f"{name}-rg", location=location, tags=tags, opts=child)
            rg_name: pulumi.Input[str] = rg.name
        else:
            rg_name = resource_group_name
        self.resource_group_name = pulumi.Output.from_input(rg_name)

        vnet = network.VirtualNetwork(f"{name}-vnet", resource_group_name=rg_name, location=location,
                                      address_space={"address_prefixes": [vnet_cidr]}, tags=tags,
                                      opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]))
        nodes_subnet = network.Subnet(f"{name}-nodes", resource_group_name=rg_name,
                                      virtual_network_name=vnet.name, address_prefix=node_subnet_cidr, opts=child)

        # untainted: the CPU-only pods (frontend, operator controllers, the model download Job)
        # run here; every GPU pool is tainted, so nothing else lands on the system pool by accident
        system_pool = {
            "name": "system", "mode": "System", "vm_size": system_vm_size, "count": system_nodes,
            "os_type": "Linux", "os_sku": "Ubuntu", "vnet_subnet_id": nodes_subnet.id,
        }
        cluster = containerservice.ManagedCluster(
            f"{name}-aks", resource_group_name=rg_name, location=location, dns_prefix=name,
            kubernetes_version=kubernetes_version, identity={"type": "SystemAssigned"},
            sku={"name": "Base", "tier": sku_tier}, enable_rbac=True,
            agent_pool_profiles=[system_pool],
            network_profile={"network_plugin": "azure", "network_plugin_mode": "overlay",
                             "network_dataplane": "cilium", "network_policy": "cilium",
                             "pod_cidr": POD_CIDR, "service_cidr": SERVICE_CIDR,
                             "dns_service_ip": DNS_SERVICE_IP, "load_balancer_sku": "standard"},
            storage_profile={"file_csi_driver": {"enabled": True}, "disk_csi_driver": {"enabled": True}},
            tags=tags,
            # GPU pools are separate AgentPool resources; the profile list only holds the system pool
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["agentPoolProfiles"]))
        self.cluster = cluster
        self.cluster_name = cluster.name

        self.agent_pools: dict[str, Any] = {}
        for p in planned:
            args = agent_pool_args(p.pool, p.instance, spot_eviction_policy=spot_eviction_policy,
                                   count=desired[p.pool.name])
            ignore = ["count"] if args.get("enable_auto_scaling") else []
            self.agent_pools[p.pool.name] = containerservice.AgentPool(
                f"{name}-{p.pool.name}", resource_group_name=rg_name, resource_name_=cluster.name,
                agent_pool_name=p.pool.name, vnet_subnet_id=nodes_subnet.id, tags=tags, **args,
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignore))

        creds = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=rg_name, resource_name=cluster.name)
        self.kubeconfig = pulumi.Output.secret(creds.apply(_decode_kubeconfig))
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig,
                                     opts=pulumi.ResourceOptions(parent=self,
                                                                 depends_on=list(self.agent_pools.values())))
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.provider)

        gpu_values: dict[str, Any] = {}
        ns_labels: dict[str, dict[str, str]] = {}
        depends: list[pulumi.Resource] = []
        if any(p.instance.gpus for p in planned) and all(p.pool.gpu_driver == "provider"
                                                         for p in planned if p.instance.gpus):
            gpu_values["driver"] = {"enabled": False}
        if ib_pools:
            depends += self._network_operator(name, ib_pools[0].instance, k8s_opts)
            # Network Operator ships NFD; the GPU Operator builds nvidia_peermem against its MOFED
            gpu_values = {"nfd": {"enabled": False}, "driver": {"rdma": {"enabled": True}}}
            ns_labels = {"gpu-operator": dict(PRIVILEGED), "network-operator": dict(PRIVILEGED)}
        self.platform = PlatformHints(
            gpu_operator_values=gpu_values, namespace_labels=ns_labels, depends_on=tuple(depends),
            operator_driver_pools=tuple(p.pool.name for p in planned
                                        if p.instance.gpus and p.pool.gpu_driver == "operator"))

        self.storage: dict[str, Any] | None = None
        if model_cache is not None:
            self.storage = self._model_cache(name, model_cache, rg_name, location, tags, k8s_opts)

        self.register_outputs({"cluster_name": self.cluster_name, "kubeconfig": self.kubeconfig,
                               "resource_group_name": self.resource_group_name,
                               "pools": [p.name for p in self.pools]})

    # ------------------------------------------------------------------------------ InfiniBand
    def _network_operator(self, name: str, instance: InstanceType, k8s_opts: pulumi.ResourceOptions) -> list:
        import pulumi_kubernetes as k8s

        pin = versions.chart("network-operator")
        ns = k8s.core.v1.Namespace(f"{name}-network-operator-ns",
                                   metadata={"name": pin.namespace, "labels": dict(PRIVILEGED)}, opts=k8s_opts)
        release = k8s.helm.v3.Release(
            f"{name}-network-operator", name="network-operator", chart=pin.chart, version=pin.version,
            repository_opts={"repo": pin.repo}, namespace=pin.namespace, atomic=True, timeout=900,
            values={
                # NFD labels the IB nodes (pci-15b3) the NicClusterPolicy selects; the node
                # feature rules of the chart are not needed on AKS (Azure/aks-rdma-infiniband)
                "nfd": {"enabled": True, "deployNodeFeatureRules": False},
                "node-feature-discovery": {"worker": {"affinity": {"nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
                        "matchExpressions": [{"key": "kubernetes.azure.com/mode", "operator": "NotIn",
                                              "values": ["system"]}]}]}}}}},
            },
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[ns])))
        policy = k8s.apiextensions.CustomResource(
            f"{name}-nic-cluster-policy", api_version="mellanox.com/v1alpha1", kind="NicClusterPolicy",
            metadata={"name": "nic-cluster-policy"}, spec=nic_cluster_policy_spec(instance),
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[release])))
        pulumi.log.info("InfiniBand on AKS needs the subscription feature Microsoft.ContainerService/"
                        "AKSInfinibandSupport registered (az feature register …) before the pool is created",
                        resource=self)
        return [release, policy]

    # ------------------------------------------------------------------------------ model cache
    def _model_cache(self, name: str, mc: AzureModelCache, rg_name: Any, location: str,
                     tags: dict[str, str], k8s_opts: pulumi.ResourceOptions) -> dict[str, Any]:
        import pulumi_kubernetes as k8s

        keep = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        storage_class_opts = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(retain_on_delete=True))

        from pulumi_azure_native import storage

        account = storage.StorageAccount(
            f"{name}-models", account_name=storage_account_name(name, pulumi.get_project(), pulumi.get_stack()),
            resource_group_name=rg_name, location=location, kind="FileStorage",
            sku={"name": "Premium_LRS"}, minimum_tls_version="TLS1_2", allow_blob_public_access=False,
            enable_https_traffic_only=True, tags=tags, opts=keep)
        share = storage.FileShare(f"{name}-model-cache", resource_group_name=rg_name, account_name=account.name,
                                  share_name="model-cache", share_quota=mc.size_gib, enabled_protocols="SMB",
                                  opts=keep)
        keys = storage.list_storage_account_keys_output(resource_group_name=rg_name, account_name=account.name)
        key = pulumi.Output.secret(keys.apply(lambda k: k.keys[0].value if k.keys else ""))
        secret = k8s.core.v1.Secret(
            f"{name}-model-cache-key", metadata={"name": "azure-files-model-cache", "namespace": "kube-system"},
            string_data={"azurestorageaccountname": account.name, "azurestorageaccountkey": key}, opts=k8s_opts)
        k8s.storage.v1.StorageClass(
            f"{name}-model-cache-sc", metadata={"name": mc.storage_class},
            provisioner="kubernetes.io/no-provisioner", reclaim_policy="Retain", volume_binding_mode="Immediate",
            opts=storage_class_opts)
        # a static PV on the retained share: the PVC that DynamoDeployment creates binds to it by class
        k8s.core.v1.PersistentVolume(
            f"{name}-model-cache-pv", metadata={"name": f"{mc.storage_class}-{name}"},
            spec={"capacity": {"storage": f"{mc.size_gib}Gi"}, "access_modes": ["ReadWriteMany"],
                  "persistent_volume_reclaim_policy": "Retain", "storage_class_name": mc.storage_class,
                  "mount_options": ["dir_mode=0777", "file_mode=0777", "mfsymlinks", "cache=strict",
                                    "nosharesock", "actimeo=30"],
                  "csi": {"driver": "file.csi.azure.com",
                          "volume_handle": _join("#", account.name, share.name),
                          "volume_attributes": {"shareName": share.name},
                          "node_stage_secret_ref": {"name": "azure-files-model-cache", "namespace": "kube-system"}}},
            opts=pulumi.ResourceOptions.merge(storage_class_opts, pulumi.ResourceOptions(depends_on=[secret])))
        return {"kind": "azure-files", "storage_class": mc.storage_class, "access_mode": "ReadWriteMany",
                "size": f"{mc.size_gib}Gi", "account": account, "share": share}

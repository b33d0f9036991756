"""GPU node pools as the cloud resources declare them (EKS NodeGroup, AKS AgentPool, GKE NodePool),
in one shape: name, instance type, labels (explicit and the ones the cloud adds), taints (explicit
and implicit), size bounds, zones, purchase option and who installs the NVIDIA driver.

Hardware facts (GPUs, fabric, prices) are not here: rules look the instance type up in the
catalog (dynamo_iac.hardware.catalog) through Context.catalog.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .model import Resource, StackView
from .values import Obj, as_arr, as_obj

AWS_NODEGROUP = "aws:eks/nodeGroup:NodeGroup"
AWS_LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
AWS_PLACEMENT_GROUP = "aws:ec2/placementGroup:PlacementGroup"
AWS_CLUSTER = "aws:eks/cluster:Cluster"
AZURE_AGENTPOOL_PREFIX = "azure-native:containerservice"
GCP_NODEPOOL = "gcp:container/nodePool:NodePool"
GCP_CLUSTER = "gcp:container/cluster:Cluster"
POOL_LABEL = "dynamo-iac/pool"          # the label our components put on every GPU pool's nodes
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
ZONE_LABEL = "topology.kubernetes.io/zone"
GPU_TAINT_KEY = "nvidia.com/gpu"

_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule",
            "NoSchedule": "NoSchedule", "NoExecute": "NoExecute", "PreferNoSchedule": "PreferNoSchedule"}


def is_azure_agent_pool(t: str) -> bool:
    return t.startswith(AZURE_AGENTPOOL_PREFIX) and t.endswith(":AgentPool")


def is_azure_cluster(t: str) -> bool:
    return t.startswith(AZURE_AGENTPOOL_PREFIX) and t.endswith(":ManagedCluster")


POOL_TYPES = (AWS_NODEGROUP, GCP_NODEPOOL, "azure-native:containerservice:AgentPool",
              "azure-native:containerservice/v20250801:AgentPool")


@dataclass(frozen=True)
class Taint:
    key: str
    value: str | None
    effect: str          # NoSchedule | NoExecute | PreferNoSchedule
    implicit: bool = False   # added by the cloud, not declared

    def __str__(self) -> str:
        return f"{self.key}{'=' + self.value if self.value else ''}:{self.effect}"


@dataclass
class Pool:
    resource: Resource | None        # None: a pool the stack config describes (existing nodes, byo)
    cloud: str
    name: str
    instance_type: str | None
    labels: dict[str, str]
    taints: list[Taint]
    min: int | None
    max: int | None
    desired: int | None
    zones: list[str] | None          # None: not declared on the pool resource
    purchase: str | None             # on-demand | spot | capacity-block | reservation
    provider_driver: bool | None     # the cloud installs the NVIDIA driver (None = unknown)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def urn(self) -> str:
        return self.resource.urn if self.resource is not None else ""

    def matches(self, selector: dict[str, str]) -> bool:
        return all(self.labels.get(k) == v for k, v in selector.items())

    def has_gpu_taint(self) -> bool:
        return any(t.key == GPU_TAINT_KEY and t.effect in ("NoSchedule", "NoExecute") for t in self.taints)


def _int(v: Any) -> int | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return int(v)


def _str_map(o: Any) -> dict[str, str]:
    o = as_obj(o)
    return {k: v for k, v in ((k, o.peek(k)) for k in o) if isinstance(v, str)}


def _taint_objs(arr: Any) -> list[Taint]:
    out = []
    for t in as_arr(arr).known():
        if isinstance(t, Obj) and isinstance(t.peek("key"), str):
            eff = _EFFECTS.get(str(t.peek("effect") or ""), str(t.peek("effect")))
            val = t.peek("value")
            out.append(Taint(t.peek("key"), val if isinstance(val, str) else None, eff))
    return out


def _aws(r: Resource, stack: StackView | None) -> Pool:
    p = r.props
    labels = _str_map(p.peek("labels"))
    types = [t for t in as_arr(p.peek("instanceTypes")).known() if isinstance(t, str)]
    it = types[0] if types else None
    lt = launch_template_of(r, stack) if stack else None
    if it is None and lt is not None:
        v = lt.props.peek("instanceType")
        it = v if isinstance(v, str) else None
    ng_name = p.peek("nodeGroupName")
    name = labels.get(POOL_LABEL) or (ng_name if isinstance(ng_name, str) else r.name)
    if isinstance(ng_name, str):
        labels.setdefault("eks.amazonaws.com/nodegroup", ng_name)
    if it:
        labels.setdefault(INSTANCE_TYPE_LABEL, it)
    cap = p.peek("capacityType")
    purchase = {"ON_DEMAND": "on-demand", "SPOT": "spot", "CAPACITY_BLOCK": "capacity-block"}.get(str(cap), None)
    if cap is None:
        purchase = "on-demand"
    if lt is not None and as_obj(lt.props.peek("capacityReservationSpecification")).dig(
            "capacityReservationTarget", "capacityReservationId") is not None and purchase == "on-demand":
        purchase = "reservation"
    sc = as_obj(p.peek("scalingConfig"))
    ami = p.peek("amiType")
    driver = None
    if isinstance(ami, str):
        # EKS accelerated AMIs (AL2023 *_NVIDIA, Bottlerocket *_NVIDIA, AL2 *_GPU) ship the driver
        driver = "NVIDIA" in ami or ami.endswith("_GPU")
    zone = labels.get(ZONE_LABEL)
    return Pool(r, "aws", name, it, labels, _taint_objs(p.peek("taints")), _int(sc.peek("minSize")),
                _int(sc.peek("maxSize")), _int(sc.peek("desiredSize")), [zone] if zone else None, purchase, driver,
                {"launch_template": lt})


def _azure(r: Resource) -> Pool:
    p = r.props
    labels = _str_map(p.peek("nodeLabels"))
    name = p.peek("agentPoolName")
    name = name if isinstance(name, str) else r.name
    vm = p.peek("vmSize")
    it = vm if isinstance(vm, str) else None
    labels.setdefault("kubernetes.azure.com/agentpool", name)
    if it:
        labels.setdefault(INSTANCE_TYPE_LABEL, it)
    taints = []
    for t in as_arr(p.peek("nodeTaints")).known():
        if isinstance(t, str) and ":" in t:
            kv, eff = t.rsplit(":", 1)
            k, _, v = kv.partition("=")
            taints.append(Taint(k, v or None, _EFFECTS.get(eff, eff)))
    spot = str(p.peek("scaleSetPriority") or "").lower() == "spot"
    if spot and not any(t.key == "kubernetes.azure.com/scalesetpriority" for t in taints):
        # AKS taints every Spot node (docs: kubernetes.azure.com/scalesetpriority=spot:NoSchedule)
        taints.append(Taint("kubernetes.azure.com/scalesetpriority", "spot", "NoSchedule", implicit=True))
    zones = [z for z in as_arr(p.peek("availabilityZones")).known() if isinstance(z, str)]
    count = _int(p.peek("count"))
    auto = p.peek("enableAutoScaling") is True
    drv = as_obj(p.peek("gpuProfile")).peek("driver")
    driver = None if drv is None and it is None else (str(drv).lower() != "none")
    return Pool(r, "azure", labels.get(POOL_LABEL, name), it, labels, taints,
                _int(p.peek("minCount")) if auto else count, _int(p.peek("maxCount")) if auto else count, count,
                zones or None, "spot" if spot else "on-demand", driver)


def _gcp(r: Resource) -> Pool:
    p = r.props
    nc = as_obj(p.peek("nodeConfig"))
    labels = _str_map(nc.peek("labels"))
    name = p.peek("name")
    name = name if isinstance(name, str) else r.name
    mt = nc.peek("machineType")
    it = mt if isinstance(mt, str) else None
    labels.setdefault("cloud.google.com/gke-nodepool", name)
    if it:
        labels.setdefault(INSTANCE_TYPE_LABEL, it)
    taints = _taint_objs(nc.peek("taints"))
    accels = [a for a in as_arr(nc.peek("guestAccelerators")).known() if isinstance(a, Obj)]
    driver = None
    for a in accels:
        v = as_obj(a.peek("gpuDriverInstallationConfig")).peek("gpuDriverVersion")
        if isinstance(v, str):
            driver = v != "INSTALLATION_DISABLED"
    auto = as_obj(p.peek("autoscaling"))
    zones = [z for z in as_arr(p.peek("nodeLocations")).known() if isinstance(z, str)]
    per_zone = max(len(zones), 1)
    lo, hi = _int(auto.peek("totalMinNodeCount")), _int(auto.peek("totalMaxNodeCount"))
    if hi is None and _int(auto.peek("maxNodeCount")) is not None:
        hi = _int(auto.peek("maxNodeCount")) * per_zone          # per-zone limits
        lo = (_int(auto.peek("minNodeCount")) or 0) * per_zone
    count = _int(p.peek("nodeCount"))
    if count is None:
        count = _int(p.peek("initialNodeCount"))
    if count is not None:
        count *= per_zone
    if hi is None:
        lo = hi = count
    if accels and not any(t.key == GPU_TAINT_KEY for t in taints):
        # GKE taints GPU nodes itself when the cluster has non-GPU pools (ours has a system pool)
        taints.append(Taint(GPU_TAINT_KEY, "present", "NoSchedule", implicit=True))
    spot = nc.peek("spot") is True or nc.peek("preemptible") is True
    purchase = "spot" if spot else ("reservation" if as_obj(nc.peek("reservationAffinity")).peek(
        "consumeReservationType") == "SPECIFIC_RESERVATION" else "on-demand")
    return Pool(r, "gcp", labels.get(POOL_LABEL, name), it, labels, taints, lo, hi, count, zones or None,
                purchase, driver, {"accelerators": accels})


def launch_template_of(ng: Resource, stack: StackView | None) -> Resource | None:
    """The LaunchTemplate an EKS node group uses: the one its inputs name, else the one it depends on."""
    if stack is None:
        return None
    lts = stack.of_type(AWS_LAUNCH_TEMPLATE)
    if not lts:
        return None
    ref = as_obj(ng.props.peek("launchTemplate"))
    name = ref.peek("name")
    for lt in lts:
        if isinstance(name, str) and lt.props.peek("name") == name:
            return lt
    deps = set(ng.dependencies)
    for lt in lts:
        if lt.urn in deps:
            return lt
    return None


def pool_of(r: Resource, stack: StackView | None = None) -> Pool | None:
    if r.type == AWS_NODEGROUP:
        return _aws(r, stack)
    if is_azure_agent_pool(r.type):
        return _azure(r)
    if r.type == GCP_NODEPOOL:
        return _gcp(r)
    return None


def pools(stack: StackView) -> list[Pool]:
    """The stack's node pools; with none declared as resources (an existing cluster), the pools the
    stack config describes (`dynamo-iac:pools`)."""
    out = []
    for r in stack.resources:
        p = pool_of(r, stack)
        if p is not None:
            out.append(p)
    if not out and stack.config is not None:
        out = declared_pools(stack.config.get("dynamo-iac:pools"))
    return out


def declared_pools(raw: Any) -> list[Pool]:
    """Pools from the stack config (GpuPool fields); malformed entries are skipped (the stack
    config's own validation reports them)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return []
    out = []
    for d in raw if isinstance(raw, list) else []:
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not isinstance(d.get("instance_type"), str):
            continue
        labels = {str(k): str(v) for k, v in (d.get("labels") or {}).items()}
        labels.setdefault(POOL_LABEL, d["name"])
        labels.setdefault(INSTANCE_TYPE_LABEL, d["instance_type"])
        taints = [Taint(GPU_TAINT_KEY, "present", "NoSchedule")] if d.get("taint_gpu", True) else []
        nodes = _int(d.get("nodes", 1))
        out.append(Pool(None, "config", d["name"], d["instance_type"], labels, taints,
                        _int(d["min_nodes"]) if d.get("min_nodes") is not None else nodes,
                        _int(d["max_nodes"]) if d.get("max_nodes") is not None else nodes, nodes,
                        list(d.get("zones") or []) or None, d.get("purchase_option", "on-demand"),
                        d.get("gpu_driver") == "provider" if d.get("gpu_driver") else None))
    return out


def gpu_pools(stack: StackView, catalog: Any) -> list[tuple[Pool, Any]]:
    """(pool, catalog entry) of every pool whose instance type has GPUs."""
    out = []
    for p in pools(stack):
        inst = catalog.get(p.instance_type)
        if inst is not None and inst.gpus > 0:
            out.append((p, inst))
    return out


def candidate_pools(selector: dict[str, str], gpu: list[tuple[Pool, Any]]) -> list[tuple[Pool, Any]]:
    """The GPU pools a pod with this nodeSelector can land on (all of them when it selects none)."""
    return [(p, i) for p, i in gpu if p.matches(selector)]


def tolerates(tolerations: list[Obj], taint: Taint) -> bool:
    """Kubernetes toleration matching (operator Exists / Equal, empty key = everything)."""
    for t in tolerations:
        key, op = t.peek("key"), t.peek("operator") or "Equal"
        eff = t.peek("effect")
        if eff not in (None, "", taint.effect):
            continue
        if not key:
            if op == "Exists":
                return True
            continue
        if key != taint.key:
            continue
        if op == "Exists" or (t.peek("value") or None) == (taint.value or None):
            return True
    return False

"""Rules that relate the graph to the node pools it runs on: GPUs per node, fabric, taints,
zones, placement. Every hardware fact comes from the catalog entry of the pool's instance type."""
from __future__ import annotations

from typing import Any, Iterator

from ..dgd import Component, Dgd
from ..facts import ZONE_KEY
from ..model import Context, Finding, NotApplicable, Rule, StackView
from ..pools import (AWS_LAUNCH_TEMPLATE, AWS_PLACEMENT_GROUP, GCP_NODEPOOL, Pool, candidate_pools, gpu_pools,
                     launch_template_of, pools, tolerates)
from ..values import as_arr, as_obj
from .common import dgds, rdma_fabrics, short, where

RDMA_KINDS = ("efa", "infiniband", "roce")


def _placement(stack: StackView, ctx: Context) -> tuple[list[tuple[Pool, Any]], list[tuple[Dgd, Component, list]]]:
    """GPU pools, and for each GPU component of each DGD the GPU pools it can land on."""
    gpu = gpu_pools(stack, ctx.catalog)
    out = []
    for d in dgds(stack):
        for c in d.components:
            if c.gpus > 0:
                out.append((d, c, candidate_pools(c.node_selector(), gpu)))
    return gpu, out


def _pool_desc(p: Pool, inst: Any) -> str:
    return f"{p.name} ({inst.name}, {inst.gpus} GPUs/node)"


# ------------------------------------------------------------------------------------ fit
def check_fit(stack: StackView, ctx: Context) -> Iterator[Finding]:
    gpu, placed = _placement(stack, ctx)
    if not gpu:
        raise NotApplicable("no GPU pool of a catalog instance type in this stack")
    for d, c, cands in placed:
        sel = c.node_selector()
        if not cands:
            yield Finding(f"{where(d, c)} selects nodes {sel or '{}'} that no GPU pool of the stack matches "
                          f"({', '.join(p.name for p, _ in gpu)}): its pods stay Pending",
                          "pin the worker to a pool (DynamoDeployment(pool=…)) or fix its nodeSelector", d.urn)
            continue
        if not any(c.gpus <= inst.gpus for _, inst in cands):
            where_ = ", ".join(_pool_desc(p, i) for p, i in cands)
            yield Finding(f"{where(d, c)} requests {c.gpus} GPUs per pod but its node pool(s) {where_} have "
                          f"fewer: the pods never schedule",
                          "split the worker over nodes (multinode) so each pod asks for at most the node's GPUs, "
                          "or use a bigger instance type", d.urn)


FIT = Rule(
    "worker-gpus-fit-node",
    "Each GPU worker lands on a GPU pool of the stack, and its GPUs per pod fit that pool's nodes.",
    "mandatory", "stack", check_fit, refs=("hardware catalog gpus",))


# ------------------------------------------------------------------------------------ RDMA
def check_disagg_rdma(stack: StackView, ctx: Context) -> Iterator[Finding]:
    _, placed = _placement(stack, ctx)
    for d, c, cands in placed:
        if not d.is_disaggregated or c.type not in ("prefill", "decode"):
            continue
        fabrics = {inst.fabric.kind: inst for _, inst in cands if inst.fabric.kind in RDMA_KINDS}
        if not fabrics:
            continue
        have = set(rdma_fabrics(c))
        for kind, inst in sorted(fabrics.items()):
            if kind in have:
                continue
            res = inst.fabric.resource or {"efa": "vpc.amazonaws.com/efa", "roce": "networking.gke.io.networks/rdma-N",
                                           "infiniband": "rdma/…"}[kind]
            pools_ = ", ".join(p.name for p, i in cands if i.fabric.kind == kind)
            yield Finding(f"{where(d, c)} runs on {pools_} ({inst.name}, {kind}) but requests no {res}: KV cache "
                          f"between prefill and decode falls back to TCP (~100 s TTFT)",
                          f"request {res} (the {kind} overlay of DynamoDeployment on this pool adds it)", d.urn)


DISAGG_RDMA = Rule(
    "disagg-requests-rdma",
    "Disaggregated workers on an RDMA pool (EFA / InfiniBand / RoCE) request the pool's RDMA resource.",
    "mandatory", "stack", check_disagg_rdma, refs=("policy-catalog #1", "hardware catalog fabric"))


def check_aks_single_pool(stack: StackView, ctx: Context) -> Iterator[Finding]:
    _, placed = _placement(stack, ctx)
    by_dgd: dict[str, list[tuple[Dgd, Component, list]]] = {}
    for d, c, cands in placed:
        if "infiniband" not in rdma_fabrics(c):
            continue
        ib = [(p, i) for p, i in cands if p.cloud == "azure" and i.fabric.kind == "infiniband"]
        if ib:
            by_dgd.setdefault(d.urn, []).append((d, c, ib))
    for rows in by_dgd.values():
        d = rows[0][0]
        for _, c, ib in rows:
            if len(ib) > 1:
                yield Finding(f"{where(d, c)} can land on InfiniBand pools {', '.join(p.name for p, _ in ib)}: IB "
                              f"only connects VMs of one scale set (one AKS pool)",
                              "pin the RDMA workers to one pool with a nodeSelector on kubernetes.azure.com/agentpool "
                              "(or dynamo-iac/pool)", d.urn)
        targets = {p.name for _, _, ib in rows for p, _ in ib}
        if len(targets) > 1 and all(len(ib) == 1 for _, _, ib in rows):
            detail = ", ".join(f"{c.name} → {ib[0][0].name}" for _, c, ib in rows)
            yield Finding(f"{where(d)} places its RDMA workers on different InfiniBand pools ({detail}): KV "
                          f"transfer between scale sets has no IB path",
                          "put prefill and decode on one AKS pool", d.urn)


AKS_SINGLE_POOL = Rule(
    "aks-rdma-single-pool",
    "On AKS, the InfiniBand workers of a graph share one node pool (IB links VMs of one scale set only).",
    "mandatory", "stack", check_aks_single_pool, refs=("pulumi-and-clouds §6.6", "deploy-facts §4.6"))


def check_gke_networks(stack: StackView, ctx: Context) -> Iterator[Finding]:
    for p in pools(stack):
        if p.resource is None or p.resource.type != GCP_NODEPOOL:
            continue
        inst = ctx.catalog.get(p.instance_type)
        if inst is None or inst.fabric.kind not in ("roce", "gpudirect-tcpx", "gpudirect-tcpxo"):
            continue
        want = (inst.fabric.networks or 0) + int(inst.extra.get("gvnic_networks", 0) or 0)
        if not want:
            continue
        nets = as_arr(as_obj(p.resource.props.peek("networkConfig")).peek("additionalNodeNetworkConfigs"))
        have = len(nets)
        if have < want:
            yield Finding(f"GKE pool {p.name} ({inst.name}, {inst.fabric.kind}) attaches {have} additional node "
                          f"network(s); the machine type's GPUDirect NICs need {want}",
                          "attach one extra VPC per NIC (GcpGpuCluster creates them when gpudirect=True)", p.urn)
        if (p.resource.props.peek("nodeConfig") is not None and
                as_obj(as_obj(p.resource.props.peek("nodeConfig")).peek("gvnic")).peek("enabled") is not True):
            yield Finding(f"GKE pool {p.name} ({inst.name}) runs without gVNIC, which multi-NIC GPUDirect needs",
                          "set nodeConfig.gvnic.enabled=true", p.urn)


GKE_NETWORKS = Rule(
    "gke-gpudirect-networks",
    "GKE A3/A4 pools attach the extra VPC networks (and gVNIC) their GPUDirect NICs need.",
    "mandatory", "stack", check_gke_networks, refs=("pulumi-and-clouds §6.5", "hardware catalog fabric.networks"))


# ------------------------------------------------------------------------------------ zones / placement
def _zone_affinity(c: Component) -> bool:
    aff = as_obj(as_obj(c.pod_spec.peek("affinity")).peek("podAffinity"))
    return any(as_obj(t).peek("topologyKey") == ZONE_KEY
               for t in as_arr(aff.peek("requiredDuringSchedulingIgnoredDuringExecution")).known())


def _aws_zones(p: Pool, stack: StackView) -> list[str] | None:
    """The AZs an EKS node group can use: its zone label, the AZs of the subnets it is created in,
    else its launch template's placement (a cluster placement group lives in one AZ)."""
    if p.zones:
        return p.zones
    if p.resource is None:
        return None
    subnet_ids = [s for s in as_arr(p.resource.props.peek("subnetIds")).known() if isinstance(s, str)]
    azs = set()
    deps = set(p.resource.dependencies)
    for s in stack.of_type("aws:ec2/subnet:Subnet"):
        if s.urn in deps or s.name in subnet_ids:
            az = s.props.peek("availabilityZone")
            if isinstance(az, str):
                azs.add(az)
    if azs:
        return sorted(azs)
    lt = launch_template_of(p.resource, stack)
    if lt is not None:
        placement = as_obj(lt.props.peek("placement"))
        az = placement.peek("availabilityZone")
        if isinstance(az, str) and az:
            return [az]
        if placement.raw.get("groupName") is not None:
            for pg in stack.of_type(AWS_PLACEMENT_GROUP):
                if pg.urn in lt.dependencies and pg.props.peek("strategy") == "cluster":
                    return ["(the cluster placement group's AZ)"]
    return None


def check_efa_az(stack: StackView, ctx: Context) -> Iterator[Finding]:
    efa = [(p, i) for p, i in gpu_pools(stack, ctx.catalog) if i.fabric.kind == "efa"]
    if not efa:
        return
    efa_workers = [(d, c) for d in dgds(stack) for c in d.workers() if "efa" in rdma_fabrics(c)]
    for p, inst in efa:
        zones = _aws_zones(p, stack) if p.cloud == "aws" else p.zones
        if zones is not None and len(zones) == 1:
            continue
        on_pool = [(d, c) for d, c in efa_workers if p.matches(c.node_selector())]
        if on_pool and all(_zone_affinity(c) for _, c in on_pool):
            continue          # the pods keep themselves in one zone
        what = f"spans zones {', '.join(zones)}" if zones else "does not pin one availability zone"
        yield Finding(f"EFA pool {p.name} ({inst.name}) {what}: EFA does not cross AZs, so KV transfers between "
                      f"workers in different zones fail", "give the pool exactly one zone (GpuPool(zones=[…]))",
                      p.urn)


EFA_AZ = Rule(
    "efa-single-az",
    "EFA pools sit in one availability zone (or their workers carry a required zone affinity).",
    "mandatory", "stack", check_efa_az, refs=("policy-catalog #5", "deploy-facts §4.1"))


def check_placement_reservation(stack: StackView, ctx: Context) -> Iterator[Finding]:
    seen = set()
    for p in pools(stack):
        if p.cloud == "aws" and p.resource is not None:
            lt = launch_template_of(p.resource, stack)
            # a group name known only after apply (the PlacementGroup's output) still names a group
            pg = as_obj(lt.props.peek("placement")).raw.get("groupName") if lt is not None else None
            if pg is not None and p.purchase in ("capacity-block", "reservation"):
                seen.add(lt.urn)
                yield Finding(f"EKS pool {p.name} uses {p.purchase.replace('-', ' ')} capacity and its launch template "
                              f"{short(lt.urn)} also places nodes in a placement group: the reserved instances "
                              f"cannot be launched into it",
                              "drop the placement group for reserved capacity (GpuPool(placement_group=False)); "
                              "reservations are already co-located", p.urn)
        elif p.cloud == "gcp" and p.resource is not None:
            compact = as_obj(p.resource.props.peek("placementPolicy")).peek("type") == "COMPACT"
            if compact and p.purchase == "reservation":
                yield Finding(f"GKE pool {p.name} consumes a specific reservation and asks for COMPACT placement: "
                              f"the reserved VMs keep the reservation's placement",
                              "drop placementPolicy on reservation pools", p.urn)
    for lt in stack.of_type(AWS_LAUNCH_TEMPLATE):
        if lt.urn in seen:
            continue
        pg = as_obj(lt.props.peek("placement")).raw.get("groupName")
        cr = as_obj(as_obj(lt.props.peek("capacityReservationSpecification")).peek("capacityReservationTarget"))
        if pg is not None and (cr.raw.get("capacityReservationId") is not None or
                               cr.raw.get("capacityReservationResourceGroupArn") is not None):
            yield Finding(f"launch template {short(lt.urn)} targets a capacity reservation and a placement group at "
                          f"once", "remove placement.groupName", lt.urn)


PLACEMENT = Rule(
    "placement-group-without-reservation",
    "Pools on reserved capacity (ODCR / capacity block / GCE reservation) do not also request a placement group.",
    "mandatory", "stack", check_placement_reservation, refs=("hardware/pool.py placement_group",))


# ------------------------------------------------------------------------------------ taints
def check_pools_tainted(stack: StackView, ctx: Context) -> Iterator[Finding]:
    for p, inst in gpu_pools(stack, ctx.catalog):
        if p.resource is None:
            continue
        if not p.has_gpu_taint():
            yield Finding(f"GPU pool {p.name} ({inst.name}) carries no nvidia.com/gpu NoSchedule taint: CPU pods "
                          f"fill the GPU nodes and block workers", "taint the pool (GpuPool(taint_gpu=True))", p.urn)


POOLS_TAINTED = Rule(
    "gpu-pools-tainted",
    "GPU node pools carry the nvidia.com/gpu:NoSchedule taint, so only GPU pods land there.",
    "mandatory", "stack", check_pools_tainted, refs=("policy-catalog #24",))


def check_tolerations(stack: StackView, ctx: Context) -> Iterator[Finding]:
    _, placed = _placement(stack, ctx)
    for d, c, cands in placed:
        if not cands:
            continue          # worker-gpus-fit-node reports it
        blocked = []
        for p, _ in cands:
            missing = [t for t in p.taints
                       if t.effect in ("NoSchedule", "NoExecute") and not tolerates(c.tolerations(), t)]
            if not missing:
                break
            blocked.append((p, missing))
        else:
            detail = "; ".join(f"{p.name}: {', '.join(str(t) for t in m)}" for p, m in blocked)
            yield Finding(f"{where(d, c)} tolerates none of its pools' taints ({detail}): its pods stay Pending",
                          "add the tolerations to the component (DynamoDeployment adds the GPU and spot ones)", d.urn)


TOLERATIONS = Rule(
    "gpu-pods-tolerate-taints",
    "GPU pods tolerate the taints of the pool they run on (the GPU taint, the AKS spot taint, …).",
    "mandatory", "stack", check_tolerations, refs=("policy-catalog #23, #24",))


RULES = [FIT, DISAGG_RDMA, AKS_SINGLE_POOL, GKE_NETWORKS, EFA_AZ, PLACEMENT, POOLS_TAINTED, TOLERATIONS]

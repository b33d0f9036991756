"""Rules on the GPU platform: the dynamo-platform chart and its values, the other charts, the
Kubernetes version, and how they fit the DGDs of the stack."""
from __future__ import annotations

import re
from typing import Any, Iterator

from ... import versions
from ..facts import (ENABLE_GROVE_ANNOTATION, FAILOVER_MIN_K8S, GROVE_KEYS, KAI_DEFAULT_QUEUES, KAI_KEYS,
                     KAI_QUEUE_ANNOTATION, KAI_QUEUE_TYPE, KPS_NIL_USES_HELM, LWS_KEYS, PROMETHEUS_ENDPOINT,
                     REMOVED_PLATFORM_KEYS, VOLCANO_KEYS)
from ..k8s import RELEASE, chart_name, chart_version, releases, value_at
from ..model import Context, Finding, NotApplicable, Resource, Rule, StackView
from ..pools import AWS_CLUSTER, GCP_CLUSTER, gpu_pools, is_azure_cluster
from ..values import as_obj, split_image, truthy, version_of_tag
from .common import dgds, short, where

PLATFORM_CHART = "dynamo-platform"


def _platform_releases(stack: StackView) -> list[Resource]:
    return releases(stack, PLATFORM_CHART)


def _any_on(r: Resource, keys: tuple[str, ...]) -> bool:
    return any(truthy(value_at(r, k)) for k in keys)


# ------------------------------------------------------------------------------------ chart ↔ API
def _release_for_chart(chart: str) -> versions.Release | None:
    for v in versions.known_versions():
        rel = versions.release(v)
        if rel.chart_version == chart:
            return rel
    return None


def check_chart_api(stack: StackView, ctx: Context) -> Iterator[Finding]:
    plats = _platform_releases(stack)
    graphs = dgds(stack)
    if not plats or not graphs:
        raise NotApplicable("no dynamo-platform release or no DGD in this stack")
    for p in plats:
        chart = chart_version(p)
        if chart is None:
            yield Finding(f"dynamo-platform release {short(p.urn)} pins no chart version",
                          "pin the chart version (one Dynamo release drives chart, operator and images)", p.urn)
            continue
        rel = _release_for_chart(chart)
        if rel is None:
            yield Finding(f"dynamo-platform chart {chart} is not a release this SDK knows "
                          f"({', '.join(versions.known_versions())}): its DGD API versions are unknown",
                          "use a known release or add it to dynamo_iac/data/versions.yaml", p.urn)
            continue
        for d in graphs:
            if d.api not in rel.dgd_api:
                yield Finding(f"{where(d)} uses nvidia.com/{d.api}, which the dynamo-platform {chart} operator does "
                              f"not serve (it serves {', '.join(rel.dgd_api)})",
                              f"render the DGD as {rel.dgd_api[-1]} or upgrade the platform chart", d.urn)


CHART_API = Rule(
    "platform-chart-supports-dgd-api",
    "The dynamo-platform chart version serves the DGD API version (v1alpha1 / v1beta1) the stack uses.",
    "mandatory", "stack", check_chart_api, refs=("dynamo_iac/data/versions.yaml dgd_api", "crds-and-chart §1"))


# ------------------------------------------------------------------------------------ chart values
def check_kai_volcano(r: Resource, ctx: Context) -> Iterator[Finding]:
    if chart_name(r) != PLATFORM_CHART:
        return
    if _any_on(r, KAI_KEYS) and _any_on(r, VOLCANO_KEYS):
        yield Finding(f"dynamo-platform release {short(r.urn)} enables both the KAI scheduler "
                      f"({' / '.join(KAI_KEYS)}) and Volcano ({VOLCANO_KEYS[0]}); the chart fails on that",
                      "enable one gang scheduler: KAI (with Grove) or Volcano (with LWS)")


KAI_VOLCANO = Rule(
    "kai-volcano-exclusive",
    "The platform chart does not enable both the KAI scheduler and Volcano.",
    "mandatory", "resource", check_kai_volcano, (RELEASE,), refs=("crds-and-chart §2.2 validate-values",))


def check_platform_values(r: Resource, ctx: Context) -> Iterator[Finding]:
    if chart_name(r) != PLATFORM_CHART:
        return
    for k in REMOVED_PLATFORM_KEYS:
        if value_at(r, k) is not None:
            yield Finding(f"dynamo-platform release {short(r.urn)} sets values.{k}, which the chart removed and "
                          f"rejects", f"use values.global.{k.split('.')[0]}.install instead")
    backend = value_at(r, "dynamo-operator.discoveryBackend")
    if backend is not None and backend not in ("kubernetes", "etcd"):
        yield Finding(f"dynamo-platform release {short(r.urn)} sets discoveryBackend={backend!r}; the chart accepts "
                      f"kubernetes or etcd", "use kubernetes (the default)")
    if truthy(value_at(r, "dynamo-operator.namespaceRestriction.enabled")) and \
            truthy(value_at(r, "dynamo-operator.upgradeCRD") if value_at(r, "dynamo-operator.upgradeCRD")
                   is not None else True):
        yield Finding(f"dynamo-platform release {short(r.urn)} restricts the operator to a namespace but leaves "
                      f"upgradeCRD on; the chart requires upgradeCRD=false in that mode",
                      "set dynamo-operator.upgradeCRD=false (and prefer the cluster-wide operator)")


PLATFORM_VALUES = Rule(
    "platform-values-valid",
    "The platform chart's values pass its own guard-rails (no removed keys, a known discovery backend, "
    "upgradeCRD off in namespace-restricted mode).",
    "mandatory", "resource", check_platform_values, (RELEASE,), refs=("crds-and-chart §2.2",))


# ------------------------------------------------------------------------------------ multinode
def check_multinode(stack: StackView, ctx: Context) -> Iterator[Finding]:
    plats = _platform_releases(stack)
    multi = [(d, c) for d in dgds(stack) for c in d.components if c.node_count > 1]
    if not multi:
        return
    if not plats:
        raise NotApplicable("the dynamo-platform chart is not part of this stack")
    lws_release = any(chart_name(r) in ("lws", "leaderworkerset") for r in stack.of_type(RELEASE))
    grove = any(_any_on(p, GROVE_KEYS) for p in plats)
    lws = lws_release or any(_any_on(p, LWS_KEYS) for p in plats)
    for d, c in multi:
        no_grove = str(d.annotations.get(ENABLE_GROVE_ANNOTATION, "")).lower() == "false"
        if no_grove and not lws:
            yield Finding(f"{where(d, c)} spans {c.node_count} nodes and the DGD opts out of Grove "
                          f"({ENABLE_GROVE_ANNOTATION}: \"false\"), but LWS is not installed: the operator "
                          f"rejects multinode workers", "install LeaderWorkerSet (chart lws) or drop the annotation",
                          d.urn)
        elif not no_grove and not (grove or lws):
            yield Finding(f"{where(d, c)} spans {c.node_count} nodes but the dynamo-platform release enables "
                          f"neither Grove nor LWS: the operator rejects multinode workers",
                          "set values.global.grove.install=true on the platform (GpuPlatform(grove=True))", d.urn)


MULTINODE = Rule(
    "multinode-needs-grove-or-lws",
    "Workers that span nodes (multinode.nodeCount > 1) have Grove or LWS enabled on the platform.",
    "mandatory", "stack", check_multinode, refs=("policy-catalog #11", "deploy-facts §3.1"))


# ------------------------------------------------------------------------------------ Kubernetes
def _kv(v: Any) -> tuple[int, int] | None:
    if not isinstance(v, str):
        return None
    m = re.match(r"^v?(\d+)\.(\d+)", v.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def cluster_versions(stack: StackView) -> list[tuple[Resource, tuple[int, int], str]]:
    out = []
    for r in stack.resources:
        key = ("version" if r.type == AWS_CLUSTER else "kubernetesVersion" if is_azure_cluster(r.type)
               else "minMasterVersion" if r.type == GCP_CLUSTER else None)
        if key is None:
            continue
        raw = r.props.peek(key)
        v = _kv(raw)
        if v is not None:
            out.append((r, v, raw))
    return out


def check_k8s_version(stack: StackView, ctx: Context) -> Iterator[Finding]:
    clusters = cluster_versions(stack)
    if not clusters:
        raise NotApplicable("no cluster with a declared Kubernetes version in this stack")
    need: list[tuple[tuple[int, int], str]] = []
    if _platform_releases(stack):
        need.append((_kv(versions.platform_chart()["kube_version_min"]) or (1, 30),
                     f"the dynamo-platform chart (kubeVersion >= {versions.platform_chart()['kube_version_min']})"))
    for d in dgds(stack):
        for c in d.components:
            if as_obj(as_obj(c.raw.peek("experimental")).peek("failover")).raw or c.raw.peek("failover"):
                need.append((_kv(FAILOVER_MIN_K8S) or (1, 34), f"shadow-engine failover of {where(d, c)} "
                             f"(Kubernetes >= {FAILOVER_MIN_K8S} with DRA)"))
    for r, v, raw in clusters:
        for want, why in need:
            if v < want:
                yield Finding(f"cluster {short(r.urn)} runs Kubernetes {raw}, below {want[0]}.{want[1]} needed by "
                              f"{why}",
                              f"set the cluster's Kubernetes version to {want[0]}.{want[1]} or newer", r.urn)


K8S_VERSION = Rule(
    "kubernetes-version-min",
    "The cluster's Kubernetes version meets the platform chart's minimum (and 1.34 for shadow failover).",
    "mandatory", "stack", check_k8s_version, refs=("versions.yaml chart.kube_version_min", "policy-catalog #45"))


# ------------------------------------------------------------------------------------ observability
def check_planner_prometheus(stack: StackView, ctx: Context) -> Iterator[Finding]:
    planners = [(d, c) for d in dgds(stack) for c in d.components if c.type == "planner"]
    if not planners:
        return
    plats = _platform_releases(stack)
    if not plats:
        raise NotApplicable("the dynamo-platform chart is not part of this stack")
    if any(isinstance(value_at(p, PROMETHEUS_ENDPOINT), str) and value_at(p, PROMETHEUS_ENDPOINT) for p in plats):
        return
    for d, c in planners:
        yield Finding(f"{where(d, c)} is a Planner, but the platform sets no {PROMETHEUS_ENDPOINT}: the Planner "
                      f"(SLA mode) and HPA/KEDA scaling read metrics from Prometheus",
                      "install Prometheus (GpuPlatform(prometheus=True)) and set the platform's prometheusEndpoint",
                      d.urn)


PLANNER_PROMETHEUS = Rule(
    "planner-needs-prometheus",
    "A graph with a Planner has Prometheus wired into the platform (prometheusEndpoint).",
    "advisory", "stack", check_planner_prometheus, refs=("policy-catalog #19",))


def check_podmonitors(r: Resource, ctx: Context) -> Iterator[Finding]:
    if chart_name(r) != "kube-prometheus-stack":
        return
    v = value_at(r, KPS_NIL_USES_HELM)
    if v is None or truthy(v):
        yield Finding(f"kube-prometheus-stack release {short(r.urn)} leaves {KPS_NIL_USES_HELM} at true: Prometheus "
                      f"ignores the PodMonitors Dynamo creates", f"set values.{KPS_NIL_USES_HELM}=false")


PODMONITORS = Rule(
    "prometheus-selects-podmonitors",
    "kube-prometheus-stack selects every PodMonitor (podMonitorSelectorNilUsesHelmValues=false).",
    "mandatory", "resource", check_podmonitors, (RELEASE,), refs=("policy-catalog #20",))


# ------------------------------------------------------------------------------------ GPU driver
def check_one_driver(stack: StackView, ctx: Context) -> Iterator[Finding]:
    ops = releases(stack, "gpu-operator")
    if not ops:
        return
    provider = [p for p, _ in gpu_pools(stack, ctx.catalog) if p.provider_driver]
    for op in ops:
        drv = value_at(op, "driver.enabled")
        if drv is not None and not truthy(drv):
            continue
        for p in provider:
            yield Finding(f"GPU pool {p.name} gets the NVIDIA driver from the cloud ({p.cloud}) and the GPU Operator "
                          f"release {short(op.urn)} installs its own (driver.enabled is not false): two drivers on "
                          f"one node break the container runtime",
                          "set the GPU Operator's driver.enabled=false, or let the pool skip the cloud driver "
                          "(GpuPool.gpu_driver='operator')", p.urn)


ONE_DRIVER = Rule(
    "one-gpu-driver",
    "A GPU node gets its NVIDIA driver from either the cloud or the GPU Operator, never both.",
    "mandatory", "stack", check_one_driver, refs=("policy-catalog #21",))


# ------------------------------------------------------------------------------------ versions
def check_versions(stack: StackView, ctx: Context) -> Iterator[Finding]:
    plats = _platform_releases(stack)
    if not plats:
        raise NotApplicable("the dynamo-platform chart is not part of this stack")
    chart = chart_version(plats[0])
    if chart is None:
        return
    rel = _release_for_chart(chart)
    want = rel.version if rel else chart
    op_tag = value_at(plats[0], "dynamo-operator.controllerManager.manager.image.tag")
    if isinstance(op_tag, str) and op_tag and version_of_tag(op_tag) != want:
        yield Finding(f"the operator image tag {op_tag} differs from the platform chart's Dynamo {want}",
                      "leave the operator tag unset (the chart's appVersion) or move both together", plats[0].urn)
    for d in dgds(stack):
        for c in d.components:
            image = c.main.peek("image")
            if not isinstance(image, str) or not image.startswith("nvcr.io/nvidia/ai-dynamo/"):
                continue
            v = version_of_tag(split_image(image)[2])
            if v and v != want:
                yield Finding(f"{where(d, c)} runs {image} (Dynamo {v}) on a Dynamo {want} platform",
                              "use one dynamo_version for the platform and the graph's images", d.urn)


VERSIONS = Rule(
    "dynamo-versions-coherent",
    "One Dynamo release drives the platform chart, the operator image and the NGC runtime images.",
    "advisory", "stack", check_versions, refs=("policy-catalog #42",))


# ------------------------------------------------------------------------------------ KAI queue
def check_kai_queue(stack: StackView, ctx: Context) -> Iterator[Finding]:
    declared = {as_obj(r.props.peek("metadata")).peek("name") for r in stack.of_type(KAI_QUEUE_TYPE)}
    for d in dgds(stack):
        q = d.annotations.get(KAI_QUEUE_ANNOTATION)
        if isinstance(q, str) and q not in KAI_DEFAULT_QUEUES and q not in declared:
            yield Finding(f"{where(d)} asks for KAI queue {q!r}, which the stack does not create (the platform "
                          f"creates only {', '.join(KAI_DEFAULT_QUEUES)}): its pods stay Pending",
                          f"create the scheduling.run.ai/v2 Queue {q!r} in the stack, or use the dynamo queue", d.urn)


KAI_QUEUE = Rule(
    "kai-queue-exists",
    "A DGD's KAI scheduler queue (nvidia.com/kai-scheduler-queue) exists.",
    "mandatory", "stack", check_kai_queue, refs=("policy-catalog #12",))


RULES = [CHART_API, KAI_VOLCANO, PLATFORM_VALUES, MULTINODE, K8S_VERSION, PLANNER_PROMETHEUS, PODMONITORS,
         ONE_DRIVER, VERSIONS, KAI_QUEUE]

"""Platform rules (charts, values, Kubernetes version, versions): a passing and a failing fixture
per rule, asserted on the exact violation."""
from __future__ import annotations

import pytest

from test_policies_support import (agg, comp, dgd, dgd_urn, disagg, render, res, run, skipped, urn, with_planner)

pytestmark = pytest.mark.policy
RELEASE = "kubernetes:helm.sh/v3:Release"
PLATFORM = "dynamo:index:GpuPlatform"


def release(name: str, chart: str, version: str, values: dict | None = None):
    return res(RELEASE, name, {"chart": chart, "version": version, "values": values or {}}, parent_type=PLATFORM)


def release_urn(name: str) -> str:
    return urn(RELEASE, name, PLATFORM)


def platform(version: str = "1.2.0", **values):
    return release("platform-dynamo", "dynamo-platform", version, values)


def test_platform_chart_supports_dgd_api() -> None:
    beta = render(disagg(), "v1beta1")
    assert run("platform-chart-supports-dgd-api", platform("1.2.0"), dgd(beta)) == []
    assert run("platform-chart-supports-dgd-api", platform("1.0.2"), dgd(render(disagg(), "v1alpha1"))) == []
    assert run("platform-chart-supports-dgd-api", platform("1.0.2"), dgd(beta)) == [(
        "platform-chart-supports-dgd-api", dgd_urn(beta),
        "DGD qwen uses nvidia.com/v1beta1, which the dynamo-platform 1.0.2 operator does not serve (it serves "
        "v1alpha1)")]
    assert run("platform-chart-supports-dgd-api", platform("0.9.0"), dgd(beta)) == [(
        "platform-chart-supports-dgd-api", release_urn("platform-dynamo"),
        "dynamo-platform chart 0.9.0 is not a release this SDK knows (1.0.2, 1.1.1, 1.2.0): its DGD API versions "
        "are unknown")]
    # the chart as a versioned NGC tarball URL counts too
    tgz = release("platform-dynamo", "https://helm.ngc.nvidia.com/nvidia/ai-dynamo/charts/dynamo-platform-1.0.2.tgz", "")
    assert [m for _, _, m in run("platform-chart-supports-dgd-api", tgz, dgd(beta))] == [
        "DGD qwen uses nvidia.com/v1beta1, which the dynamo-platform 1.0.2 operator does not serve (it serves "
        "v1alpha1)"]
    assert skipped("platform-chart-supports-dgd-api", dgd(beta)) == [
        "no dynamo-platform release or no DGD in this stack"]


def test_kai_volcano_exclusive() -> None:
    kai = {"global": {"kai-scheduler": {"install": True}, "grove": {"install": True}}}
    assert run("kai-volcano-exclusive", platform(**kai)) == []
    both = {"global": {"kai-scheduler": {"enabled": "true"}, "volcano-scheduler": {"enabled": True}}}
    assert run("kai-volcano-exclusive", platform(**both)) == [(
        "kai-volcano-exclusive", release_urn("platform-dynamo"),
        "dynamo-platform release platform-dynamo enables both the KAI scheduler (global.kai-scheduler.install / "
        "global.kai-scheduler.enabled) and Volcano (global.volcano-scheduler.enabled); the chart fails on that")]
    # another chart with the same keys is not the platform
    assert run("kai-volcano-exclusive", release("other", "something-else", "1.0.0", both)) == []


def test_platform_values_valid() -> None:
    ok = {"global": {"grove": {"install": True}}, "dynamo-operator": {"discoveryBackend": "kubernetes"}}
    assert run("platform-values-valid", platform(**ok)) == []
    bad = {"grove": {"enabled": True}, "dynamo-operator": {"discoveryBackend": "consul",
                                                            "namespaceRestriction": {"enabled": True}}}
    u = release_urn("platform-dynamo")
    assert run("platform-values-valid", platform(**bad)) == [
        ("platform-values-valid", u, "dynamo-platform release platform-dynamo restricts the operator to a namespace "
                                     "but leaves upgradeCRD on; the chart requires upgradeCRD=false in that mode"),
        ("platform-values-valid", u, "dynamo-platform release platform-dynamo sets discoveryBackend='consul'; the "
                                     "chart accepts kubernetes or etcd"),
        ("platform-values-valid", u, "dynamo-platform release platform-dynamo sets values.grove.enabled, which the "
                                     "chart removed and rejects")]


def test_multinode_needs_grove_or_lws() -> None:
    doc = render(disagg(tp=16), "v1beta1")              # 16 GPUs per replica on 8-GPU nodes: 2 nodes each
    grove = platform(**{"global": {"grove": {"install": True}}})
    assert run("multinode-needs-grove-or-lws", grove, dgd(doc)) == []
    assert run("multinode-needs-grove-or-lws", platform(), dgd(render(disagg(tp=4), "v1beta1"))) == []
    assert run("multinode-needs-grove-or-lws", platform(), dgd(doc)) == [
        ("multinode-needs-grove-or-lws", dgd_urn(doc),
         f"DGD qwen component {w} spans 2 nodes but the dynamo-platform release enables neither Grove nor LWS: the "
         f"operator rejects multinode workers") for w in ("DecodeWorker", "PrefillWorker")]
    doc["metadata"]["annotations"] = {"nvidia.com/enable-grove": "false"}
    assert [m for _, _, m in run("multinode-needs-grove-or-lws", grove, dgd(doc))][:1] == [
        "DGD qwen component DecodeWorker spans 2 nodes and the DGD opts out of Grove (nvidia.com/enable-grove: "
        "\"false\"), but LWS is not installed: the operator rejects multinode workers"]
    lws = release("lws", "oci://registry.k8s.io/lws/charts/lws", "0.7.0")
    assert run("multinode-needs-grove-or-lws", grove, lws, dgd(doc)) == []


def test_kubernetes_version_min() -> None:
    eks = lambda v: res("aws:eks/cluster:Cluster", "prod-eks", {"version": v}, parent_type="dynamo:aws:GpuCluster")
    eks_urn = urn("aws:eks/cluster:Cluster", "prod-eks", "dynamo:aws:GpuCluster")
    assert run("kubernetes-version-min", eks("1.31"), platform()) == []
    assert run("kubernetes-version-min", eks("1.29"), platform()) == [(
        "kubernetes-version-min", eks_urn,
        "cluster prod-eks runs Kubernetes 1.29, below 1.30 needed by the dynamo-platform chart (kubeVersion >= 1.30)")]
    # shadow-engine failover raises the bar to 1.34
    doc = render(agg(), "v1beta1")
    comp(doc, "Worker")["experimental"] = {"failover": {"mode": "IntraPod", "numShadows": 1}}
    gke = res("gcp:container/cluster:Cluster", "gke", {"minMasterVersion": "1.33.2-gke.100"})
    assert run("kubernetes-version-min", gke, dgd(doc)) == [(
        "kubernetes-version-min", urn("gcp:container/cluster:Cluster", "gke"),
        "cluster gke runs Kubernetes 1.33.2-gke.100, below 1.34 needed by shadow-engine failover of DGD small "
        "component Worker (Kubernetes >= 1.34 with DRA)")]
    assert skipped("kubernetes-version-min", platform()) == [
        "no cluster with a declared Kubernetes version in this stack"]


def test_planner_needs_prometheus() -> None:
    doc = render(with_planner(disagg()), "v1beta1")
    wired = platform(**{"dynamo-operator": {"dynamo": {"metrics": {
        "prometheusEndpoint": "http://prometheus-kube-prometheus-prometheus.monitoring.svc.cluster.local:9090"}}}})
    assert run("planner-needs-prometheus", wired, dgd(doc)) == []
    assert run("planner-needs-prometheus", platform(), dgd(doc)) == [(
        "planner-needs-prometheus", dgd_urn(doc),
        "DGD qwen component Planner is a Planner, but the platform sets no "
        "dynamo-operator.dynamo.metrics.prometheusEndpoint: the Planner (SLA mode) and HPA/KEDA scaling read metrics "
        "from Prometheus")]


def test_prometheus_selects_podmonitors() -> None:
    good = {"prometheus": {"prometheusSpec": {"podMonitorSelectorNilUsesHelmValues": False}}}
    assert run("prometheus-selects-podmonitors", release("kps", "kube-prometheus-stack", "79.5.0", good)) == []
    assert run("prometheus-selects-podmonitors", release("kps", "kube-prometheus-stack", "79.5.0")) == [(
        "prometheus-selects-podmonitors", release_urn("kps"),
        "kube-prometheus-stack release kps leaves prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues at "
        "true: Prometheus ignores the PodMonitors Dynamo creates")]


def test_dynamo_versions_coherent() -> None:
    doc = render(agg(), "v1beta1")                      # images of the default release, 1.2.0
    assert run("dynamo-versions-coherent", platform("1.2.0"), dgd(doc)) == []
    old = platform("1.1.1", **{"dynamo-operator": {"controllerManager": {"manager": {"image": {"tag": "1.0.2"}}}}})
    assert run("dynamo-versions-coherent", old, dgd(doc)) == [
        ("dynamo-versions-coherent", dgd_urn(doc, "small"),
         "DGD small component Frontend runs nvcr.io/nvidia/ai-dynamo/dynamo-frontend:1.2.0 (Dynamo 1.2.0) on a Dynamo "
         "1.1.1 platform"),
        ("dynamo-versions-coherent", dgd_urn(doc, "small"),
         "DGD small component Worker runs nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.2.0 (Dynamo 1.2.0) on a Dynamo "
         "1.1.1 platform"),
        ("dynamo-versions-coherent", release_urn("platform-dynamo"),
         "the operator image tag 1.0.2 differs from the platform chart's Dynamo 1.1.1")]


def test_kai_queue_exists() -> None:
    doc = render(agg(), "v1beta1")
    doc["metadata"]["annotations"] = {"nvidia.com/kai-scheduler-queue": "dynamo"}
    assert run("kai-queue-exists", dgd(doc)) == []
    doc["metadata"]["annotations"] = {"nvidia.com/kai-scheduler-queue": "team-a"}
    assert run("kai-queue-exists", dgd(doc)) == [(
        "kai-queue-exists", dgd_urn(doc, "small"),
        "DGD small asks for KAI queue 'team-a', which the stack does not create (the platform creates only dynamo, "
        "dynamo-default): its pods stay Pending")]
    queue = res("kubernetes:scheduling.run.ai/v2:Queue", "team-a", {"metadata": {"name": "team-a"}, "spec": {}})
    assert run("kai-queue-exists", queue, dgd(doc)) == []

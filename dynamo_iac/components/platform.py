"""GpuPlatform: the cloud-neutral GPU platform on any cluster — NVIDIA GPU Operator, the EFA device
plugin where pools have EFA, GKE's NCCL RDMA installer where pools have GKE RoCE (gke_rdma.py), the
`dynamo-platform` chart (Grove / KAI / Volcano toggles, Prometheus endpoint), optional
kube-prometheus-stack, the workload namespace and the HF token Secret.

Every chart version comes from dynamo_iac/data/versions.yaml (one Dynamo release drives the
platform chart). helm.v3.Release, because the charts rely on hooks (KAI queues, CRD apply).
"""
from __future__ import annotations

from typing import Any, Sequence

import pulumi

from .. import versions
from ..errors import ConfigError, Problem
from ..hardware.pool import GpuPool
from . import gke_rdma
from .common import component_type
from .composition import LATE

PROMETHEUS_URL = "http://prometheus-kube-prometheus-prometheus.monitoring.svc.cluster.local:9090"
HF_SECRET = "hf-token-secret"


def multinode_workers(graphs: Sequence[Any], gpus_per_node: int | None) -> list[str]:
    return [f"{g.name}/{w.name}" for g in graphs for w in g.workers if w.nodes_for(gpus_per_node) > 1]


class GpuPlatform(pulumi.ComponentResource):
    """Outputs: provider, namespace (platform), workload_namespace, hf_token_secret (name or None),
    grove, cloud, pools, instances, storage (from the cluster)."""

    def __init__(self, name: str, *, cluster: Any = None, provider: Any = None, graphs: Sequence[Any] = (),
                 namespace: str = "dynamo-system", gpu_operator: bool = True, grove: bool | None = None,
                 kai: bool = False, volcano: bool = False, lws: bool = False, prometheus: bool = False,
                 hf_token: Any = None, hf_token_namespace: str = "dynamo", dynamo_version: str | None = None,
                 pools: Sequence[GpuPool] = (), catalog: Any = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        from ..hardware.catalog import load

        if cluster is None and provider is None:
            raise ConfigError("GpuPlatform needs a cluster or a Kubernetes provider", "cluster",
                              "pass cluster=AwsGpuCluster(...) (or Azure/Gcp) or provider=k8s.Provider(...)")
        pools = list(getattr(cluster, "pools", None) or pools)
        cat = catalog or load()
        instances = dict(getattr(cluster, "instances", None) or {p.name: cat.get(p.instance_type) for p in pools})
        problems: list[Problem] = []
        if kai and volcano:
            problems.append(Problem("kai", "KAI and Volcano are mutually exclusive (the platform chart fails)",
                                    "enable one of them"))
        gpn = max((i.gpus for i in instances.values()), default=None) or None
        multi = multinode_workers(graphs, gpn)
        if multi and grove is False and not lws:
            problems.append(Problem("grove", f"multinode workers {multi} need Grove or LWS, and both are off",
                                    f"set grove=True (or lws=True with LWS installed); {LATE}"))
        driverless = sorted(getattr(getattr(cluster, "platform", None), "operator_driver_pools", ()) or ())
        if driverless and not gpu_operator:
            problems.append(Problem("gpu_operator", f"pool(s) {driverless} leave the NVIDIA driver to the GPU "
                                    "Operator (gpu_driver='operator'), but gpu_operator=False: their nodes would "
                                    "have no driver", f"set gpu_operator=True, or gpu_driver='provider' on the pools; {LATE}"))
        if problems:
            raise ConfigError(problems)
        grove_on = bool(grove) or (grove is None and bool(multi) and not lws)
        release = versions.release(dynamo_version)
        super().__init__(component_type("k8s", "GpuPlatform"), name, None, opts)
        import pulumi_kubernetes as k8s

        provider = provider if provider is not None else cluster.provider
        self.provider = provider
        self.cluster = cluster
        self.cloud = getattr(cluster, "cloud", "byo")
        self.pools = pools
        self.instances = instances
        self.storage = getattr(cluster, "storage", None)
        self.grove = grove_on
        self.kai = kai
        self.namespace = namespace
        self.workload_namespace = hf_token_namespace
        hints = getattr(cluster, "platform", None)
        labels = dict(getattr(hints, "namespace_labels", {}) or {})
        quotas = dict(getattr(hints, "namespace_quotas", {}) or {})
        depends = list(getattr(hints, "depends_on", ()) or ())
        kopts = pulumi.ResourceOptions(parent=self, provider=provider)

        labelled: dict[str, Any] = {}

        def release_of(rname: str, pin: versions.ChartPin, values: dict, deps: list | None = None,
                       chart: str | None = None, version: str | None = None, ns: str | None = None) -> Any:
            ns = ns or pin.namespace
            deps = list(deps or [])
            # Helm's create_namespace makes a bare namespace: where the cluster needs labels on it
            # (privileged pod security for the operators' DaemonSets) or a ResourceQuota in it (GKE's
            # admission of system-*-critical pods), we create it ourselves, the quota before the chart
            if (ns in labels or ns in quotas) and ns != hf_token_namespace:
                if ns not in labelled:
                    meta = {"name": ns, "labels": labels[ns]} if ns in labels else {"name": ns}
                    labelled[ns] = k8s.core.v1.Namespace(f"{name}-{ns}", metadata=meta, opts=kopts)
                    if ns in quotas:
                        labelled[ns] = k8s.core.v1.ResourceQuota(
                            f"{name}-{ns}-critical-pods", metadata={"name": "critical-pods", "namespace": ns},
                            spec=quotas[ns], opts=pulumi.ResourceOptions.merge(kopts, pulumi.ResourceOptions(
                                depends_on=[labelled[ns]])))
                deps.append(labelled[ns])
            # the Pulumi name carries the component's (two platforms in one program must not share a
            # URN); the Helm release keeps the chart's name in the cluster; the alias keeps stacks
            # created before the prefix from replacing their releases
            return k8s.helm.v3.Release(
                f"{name}-{rname}", name=rname, chart=chart or pin.chart, version=version or pin.version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=pin.repo),
                namespace=ns, create_namespace=ns not in labelled, values=values, atomic=True,
                cleanup_on_fail=True, timeout=1200,
                opts=pulumi.ResourceOptions.merge(kopts, pulumi.ResourceOptions(
                    depends_on=deps, aliases=[pulumi.Alias(name=rname)])))

        self.releases: dict[str, Any] = {}
        if gpu_operator:
            values: dict[str, Any] = {"cdi": {"enabled": True}, "dcgmExporter": {"enabled": True}}
            for k, v in (getattr(hints, "gpu_operator_values", {}) or {}).items():
                values[k] = {**values.get(k, {}), **v} if isinstance(v, dict) else v
            self.releases["gpu-operator"] = release_of("gpu-operator", versions.chart("gpu-operator"), values, depends)
        if any(i.fabric.kind == "efa" for i in instances.values()):
            pin = versions.chart("aws-efa-k8s-device-plugin")
            self.releases["aws-efa-k8s-device-plugin"] = release_of(
                "aws-efa-k8s-device-plugin", pin,
                {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}, depends)
        # GKE RoCE nodes (A3 Ultra / A4): the gIB NCCL plugin the roce overlay mounts from the host
        self.addons: dict[str, Any] = {}
        rdma = gke_rdma.rdma_pools(pools, instances)
        if rdma:
            ds = gke_rdma.daemonset(rdma, instances)
            self.addons[gke_rdma.NAME] = k8s.apps.v1.DaemonSet(
                f"{name}-{gke_rdma.NAME}", metadata=ds["metadata"], spec=ds["spec"],
                opts=pulumi.ResourceOptions.merge(kopts, pulumi.ResourceOptions(depends_on=depends)))
        if prometheus:
            self.releases["kube-prometheus-stack"] = release_of(
                "prometheus", versions.chart("kube-prometheus-stack"),
                {"prometheus": {"prometheusSpec": {"podMonitorSelectorNilUsesHelmValues": False,
                                                   "podMonitorNamespaceSelector": {}, "probeNamespaceSelector": {}}}})
        chart = versions.platform_chart()
        platform_values: dict[str, Any] = {
            "global": {"grove": {"install": grove_on}, "kai-scheduler": {"install": kai},
                       "volcano-scheduler": {"enabled": volcano}},
            "dynamo-operator": {"discoveryBackend": "kubernetes",
                                "dynamo": {"metrics": {"prometheusEndpoint": PROMETHEUS_URL if prometheus else ""}}},
        }
        pin = versions.ChartPin("dynamo-platform", chart["repo"], chart["name"], release.chart_version,
                                chart["namespace"])
        before = [r for k, r in self.releases.items() if k != "kube-prometheus-stack"]
        if "kube-prometheus-stack" in self.releases:
            before.append(self.releases["kube-prometheus-stack"])
        self.dynamo_platform = release_of(chart["release"], pin, platform_values, before, ns=namespace)
        self.releases["dynamo-platform"] = self.dynamo_platform
        self.chart_version = release.chart_version
        # the workload namespace and the HF token (a Pulumi secret → a Kubernetes Secret, never plain)
        ns_labels = labels.get(hf_token_namespace, {})
        self.workload_ns = k8s.core.v1.Namespace(
            f"{name}-{hf_token_namespace}", metadata={"name": hf_token_namespace, "labels": ns_labels} if ns_labels
            else {"name": hf_token_namespace}, opts=kopts)
        self.hf_token_secret = None
        if hf_token is not None:
            k8s.core.v1.Secret(
                f"{name}-hf-token", metadata={"name": HF_SECRET, "namespace": hf_token_namespace},
                type="Opaque", string_data={"HF_TOKEN": pulumi.Output.secret(hf_token)},
                opts=pulumi.ResourceOptions.merge(kopts, pulumi.ResourceOptions(depends_on=[self.workload_ns])))
            self.hf_token_secret = HF_SECRET
        self.register_outputs({"namespace": namespace, "workload_namespace": hf_token_namespace,
                               "grove": grove_on, "chart_version": release.chart_version})

"""DynamoDeployment: a DynamoGraph on a platform and a pool — the model-cache PVC, an optional
model-download Job, and the DynamoGraphDeployment (apiextensions.CustomResource) with the fabric
overlay of the pool's instance type applied by the renderer.

What the operator's webhook refuses to change after creation (the component set, the backend
framework, single-node ↔ multinode) is hashed into an annotation that the DGD replaces on, so a
`pulumi up` that changes it replaces the DGD instead of failing at admission.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import pulumi

from ..errors import ConfigError, DynamoIacError, PlanError, Problem
from ..hardware.pool import GpuPool
from ..targets.k8s.overlay import RenderTarget
from .common import component_type
from .composition import LATE, GraphPlan, normalise_pin, plan_graph, resolve_pool

IMMUTABLE_ANNOTATION = "dynamo-iac.nvidia.com/immutable-shape"
# Pulumi awaits a Job's completion for 10 minutes by default; a large model takes longer
DOWNLOAD_TIMEOUT = "2h"


def immutable_shape(dgd: dict) -> str:
    """Hash of what the webhook treats as immutable: names, backend, multinode per component."""
    spec = dgd["spec"]
    if "components" in spec:
        comps = sorted((c["name"], bool(c.get("multinode"))) for c in spec["components"])
    else:
        comps = sorted((n, bool(s.get("multinode"))) for n, s in spec["services"].items())
    doc = {"components": comps, "backendFramework": spec.get("backendFramework")}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


class DynamoDeployment(pulumi.ComponentResource):
    """Outputs: dgd (the CustomResource), manifest (the rendered dict), capacity (the plan)."""

    def __init__(self, name: str, *, graph: Any, platform: Any, pool: GpuPool | str | None = None,
                 placement: dict[str, str] | None = None, namespace: str | None = None, api: str = "v1beta1",
                 model_download: bool = False, download_timeout: str = DOWNLOAD_TIMEOUT, catalog: Any = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """Follows the plan the cluster sized its node groups from (the cluster's `graphs=`, see
        composition.py): each GPU worker's nodeSelector is the pool the plan put it on.
        `pool` / `placement` (worker name → pool name) pin workers; when the cluster planned the
        graph they must be the pins it was given (its `placement=`), else the node groups would be
        sized for another placement. Without a cluster plan the graph is planned here on every
        pool of the cluster — after the cluster exists, so its errors say what to pass instead.
        `namespace`: the platform's workload namespace (where its HF token Secret is), the default.
        `model_download`: a Job fills the model-cache PVC before the DGD is created (the DGD
        waits for it: Pulumi awaits a Job's completion, up to `download_timeout`)."""
        from ..hardware.catalog import load

        graph.check()
        if model_download:
            self._download_checks(graph, api)
        cat = catalog or load()
        pools = list(getattr(platform, "pools", []) or [])
        namespace = self._namespace(namespace or graph.namespace, platform)
        target = None
        capacity = None
        if pools:
            known = getattr(platform, "instances", {}) or {}
            instances = {p.name: known.get(p.name) or cat.get(p.instance_type) for p in pools}
            gp = self._graph_plan(graph, platform, pools, instances, cat, pool, placement)
            capacity, where = gp.capacity, gp.where
            cloud = getattr(platform, "cloud", "") or ""
            by_name = {p.name: p for p in pools}
            targets = {n: RenderTarget.for_pool(p, instances[n], cloud=cloud) for n, p in by_name.items()}
            # the pool of the first placed worker carries the DGD's default target
            home = next(iter(where.values()), pools[0].name)
            target = replace(targets[home], components=tuple(
                (w, targets[p]) for w, p in sorted(where.items()) if p != home))
        cache = graph.model.cache if graph.model else None
        # a v1beta1 DGD cannot create a PVC (v1alpha1 pvcs[].create can): for cache.create on
        # v1beta1 this component creates it, and tells the renderer the claim is managed outside
        ours = cache is not None and (not cache.create or api == "v1beta1")
        if cache is not None and cache.create and ours:
            target = replace(target or RenderTarget(), model_cache_external=True)
        dgd = graph.to_dgd(api, target)
        dgd["metadata"]["namespace"] = namespace
        dgd["metadata"].setdefault("annotations", {})[IMMUTABLE_ANNOTATION] = immutable_shape(dgd)
        super().__init__(component_type("k8s", "DynamoDeployment"), name, None, opts)
        import pulumi_kubernetes as k8s

        provider = platform.provider
        kopts = pulumi.ResourceOptions(parent=self, provider=provider)
        # the platform's node add-ons too (GKE's gIB installer fills the host paths workers mount)
        after_platform = [r for r in (getattr(platform, "dynamo_platform", None),
                                      getattr(platform, "workload_ns", None),
                                      *(getattr(platform, "addons", None) or {}).values()) if r is not None]
        self.manifest = dgd
        self.capacity = capacity
        deps: list[Any] = list(after_platform)
        storage = getattr(platform, "storage", None) or {}
        if ours:
            sc = cache.storage_class or (storage.get("storage_class") if isinstance(storage, dict) else None)
            spec: dict[str, Any] = {"accessModes": [cache.access_mode], "resources": {"requests": {"storage": cache.size}}}
            if sc:
                spec["storageClassName"] = sc
            # a cached model must survive a refactor of the program: never deleted by a diff
            pvc = k8s.core.v1.PersistentVolumeClaim(
                f"{name}-model-cache", metadata={"name": cache.pvc, "namespace": namespace}, spec=spec,
                opts=pulumi.ResourceOptions.merge(kopts, pulumi.ResourceOptions(
                    depends_on=after_platform, retain_on_delete=True, protect=True)))
            deps.append(pvc)
            if model_download:
                deps.append(self._download_job(k8s, name, graph, cache, namespace, platform,
                                               download_opts(kopts, pvc, download_timeout)))
        self.dgd = k8s.apiextensions.CustomResource(
            f"{name}-dgd", api_version=dgd["apiVersion"], kind=dgd["kind"], metadata=dgd["metadata"],
            spec=dgd["spec"],
            opts=pulumi.ResourceOptions.merge(kopts, pulumi.ResourceOptions(
                depends_on=deps, delete_before_replace=True,
                replace_on_changes=[f'metadata.annotations["{IMMUTABLE_ANNOTATION}"]'])))
        self.register_outputs({"name": dgd["metadata"]["name"], "namespace": namespace, "api": api})

    @staticmethod
    def _namespace(namespace: str | None, platform: Any) -> str:
        """The DGD's namespace: the platform's workload namespace, which the platform creates and
        puts the HF token Secret in; another one would exist nowhere (and have no Secret)."""
        ours = getattr(platform, "workload_namespace", None)
        if ours is None:
            return namespace or "default"
        if namespace and namespace != ours:
            raise ConfigError(f"namespace {namespace!r} is not the platform's workload namespace {ours!r}: nothing "
                              f"creates it, and the HF token Secret is in {ours!r}", "namespace",
                              f"create the platform with hf_token_namespace={namespace!r} (it creates the namespace "
                              f"and its Secret), or deploy into {ours!r}")
        return ours

    @staticmethod
    def _graph_plan(graph: Any, platform: Any, pools: list[GpuPool], instances: dict[str, Any], cat: Any,
                    pool: GpuPool | str | None, placement: dict[str, str] | None) -> GraphPlan:
        """The cluster's plan of this graph when it made one, else one made here (after the cluster
        exists: errors then name the cluster argument that catches them up front)."""
        cluster = getattr(platform, "cluster", None)
        if pool is not None:
            pool = resolve_pool(pool, pools, "pool").name
        pin: Any = pool
        if placement:
            names = [n for w, n in zip(graph.workers, graph.worker_names()) if w.gpu_count]
            pin = {**({n: pool for n in names} if pool else {}), **placement}
        plans = getattr(cluster, "plans", None) or {}
        planned = plans.get(graph.name)
        if planned is not None:
            if pin is not None and normalise_pin(pin, pools, "placement") != planned.pin:
                raise ConfigError(f"the cluster sized its node groups for {graph.name} with placement "
                                  f"{planned.pin or 'chosen by the plan'}, this deployment pins {pin}",
                                  "placement" if placement else "pool",
                                  f"pass the same pins to the cluster (placement={{{graph.name!r}: {pin!r}}}) "
                                  "and none here, or drop them here")
            return planned
        if plans:
            raise ConfigError(f"the cluster planned (and sized its node groups for) graphs {sorted(plans)}, not "
                              f"{graph.name}", "graph", f"add it to the cluster's graphs=; {LATE}")
        late = (lambda fix: f"{fix}; {LATE}") if cluster is not None else (lambda fix: fix)
        try:
            gp = plan_graph(graph, pools, instances, catalog=cat, pin=pin)
        except DynamoIacError as e:
            raise type(e)([Problem(q.path, q.message, late(q.fix)) for q in e.problems]) from None
        # no plan sized the node groups: they run the pools' own counts, which must hold the graph
        short = [pp for pp in gp.capacity.pools if pp.needed > pp.pool.nodes and cluster is not None]
        if short:
            raise PlanError([Problem(f"pools[{pp.pool.name}].nodes", f"{graph.name} needs {pp.needed} node(s) of "
                                     f"pool {pp.pool.name!r}, whose node group runs nodes={pp.pool.nodes} (the "
                                     "cluster was given no graphs= to size it)", late(f"set nodes: {pp.needed}"))
                             for pp in short])
        return gp

    @staticmethod
    def _download_checks(graph: Any, api: str) -> None:
        cache = graph.model.cache if graph.model else None
        if cache is None or (cache.create and api != "v1beta1"):
            raise ConfigError("model_download needs a model-cache PVC that this component creates (a v1alpha1 "
                              "DGD that creates its own PVC does so only after the download Job would run)",
                              "model.cache", "set model.cache=ModelCache(create=False) (the component creates "
                              "and keeps the PVC), render api='v1beta1', or drop model_download")
        if graph.model.id.startswith(("/", ".")):
            raise ConfigError(f"model {graph.model.id!r} is a local path, there is nothing to download",
                              "model.id", "use a Hugging Face id such as Qwen/Qwen3-32B, or drop model_download")

    @staticmethod
    def _download_job(k8s: Any, name: str, graph: Any, cache: Any, namespace: str, platform: Any,
                      opts: pulumi.ResourceOptions) -> Any:
        """A CPU-only Job (no GPU toleration: it lands on the untainted system pool) that downloads
        the model into the cache as the upstream model-download recipe does (`hf download`), with
        the runtime image the workers run (it ships huggingface_hub) instead of a pip install."""
        secret = getattr(platform, "hf_token_secret", None) or graph.hf_token_secret
        container: dict[str, Any] = {
            "name": "download", "image": graph.runtime_image(),
            "command": ["hf", "download", graph.model.id]
            + (["--revision", graph.model.revision] if graph.model.revision else []),
            "env": [{"name": "HF_HOME", "value": cache.mount_path}],
            "volumeMounts": [{"name": cache.pvc, "mountPath": cache.mount_path}],
            "resources": {"requests": {"cpu": "2", "memory": "4Gi"}},
        }
        if secret:
            container["envFrom"] = [{"secretRef": {"name": secret}}]      # the token never in plain text
        return k8s.batch.v1.Job(
            f"{name}-model-download", metadata={"name": f"{graph.name}-model-download", "namespace": namespace},
            spec={"backoffLimit": 3, "template": {"spec": {
                "restartPolicy": "Never", "containers": [container],
                "volumes": [{"name": cache.pvc, "persistentVolumeClaim": {"claimName": cache.pvc}}]}}},
            opts=opts)


def download_opts(kopts: pulumi.ResourceOptions, pvc: Any, timeout: str) -> pulumi.ResourceOptions:
    """After the PVC; awaited (by the DGD that depends on it) up to `timeout`."""
    return pulumi.ResourceOptions.merge(kopts, pulumi.ResourceOptions(
        depends_on=[pvc], custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout)))

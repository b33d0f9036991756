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

from ..errors import ConfigError, DynamoIacError, Problem
from ..hardware.pool import GpuPool
from ..plan import plan as plan_graph
from ..targets.k8s.overlay import RenderTarget
from .common import component_type

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
        """`pool`: plan on this pool only (default: every pool of the cluster, the planner picks);
        `placement`: worker name → pool name, to pin workers yourself (checked like the plan's);
        `model_download`: a Job fills the model-cache PVC before the DGD is created (the DGD
        waits for it: Pulumi awaits a Job's completion, up to `download_timeout`)."""
        from ..hardware.catalog import load

        graph.check()
        if model_download:
            self._download_checks(graph)
        cat = catalog or load()
        pools = list(getattr(platform, "pools", []) or [])
        by_name = {p.name: p for p in pools}
        if isinstance(pool, str):
            if pool not in by_name:
                raise ConfigError(f"no pool {pool!r} on this cluster", "pool",
                                  f"use one of {', '.join(by_name) or '(none)'}")
            pool = by_name[pool]
        namespace = namespace or graph.namespace or getattr(platform, "workload_namespace", "default")
        target = None
        capacity = None
        candidates = [pool] if pool is not None else pools
        if candidates:
            every = by_name | {p.name: p for p in candidates}
            known = getattr(platform, "instances", {}) or {}
            instances = {n: known.get(n) or cat.get(p.instance_type) for n, p in every.items()}
            capacity = plan_graph(graph, candidates, catalog=cat)          # PlanError before any resource
            where = self._placement(graph, capacity, placement, every)
            self._placement_checks(graph, where, every, instances)
            cloud = getattr(platform, "cloud", "") or ""
            targets = {n: RenderTarget.for_pool(p, instances[n], cloud=cloud) for n, p in every.items()}
            # the pool of the first placed worker carries the DGD's default target
            home = next(iter(where.values()), candidates[0].name)
            target = replace(targets[home], components=tuple(
                (w, targets[p]) for w, p in sorted(where.items()) if p != home))
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
        cache = graph.model.cache if graph.model else None
        storage = getattr(platform, "storage", None) or {}
        if cache is not None and not cache.create:
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
    def _placement(graph: Any, capacity: Any, placement: dict[str, str] | None, pools: dict[str, GpuPool]
                   ) -> dict[str, str]:
        """GPU worker name → pool: where the plan put its replicas, or where `placement` pins it."""
        where: dict[str, str] = {}
        for pp in capacity.pools:
            for node in pp.nodes:
                for label in node.slots.values():
                    where.setdefault(label.split("[", 1)[0], pp.pool.name)
        names = [n for w, n in zip(graph.workers, graph.worker_names()) if w.gpu_count]
        problems = []
        for w, p in sorted((placement or {}).items()):
            if w not in names:
                problems.append(Problem(f"placement[{w}]", f"{graph.name} has no GPU worker {w!r}",
                                        f"use one of {names}"))
            elif p not in pools:
                problems.append(Problem(f"placement[{w}]", f"no pool {p!r} on this cluster",
                                        f"use one of {sorted(pools)}"))
            else:
                where[w] = p
        if problems:
            raise DynamoIacError(problems)
        return {w: where[w] for w in names if w in where}

    @staticmethod
    def _placement_checks(graph: Any, where: dict[str, str], pools: dict[str, GpuPool], instances: dict[str, Any]
                          ) -> None:
        from ..targets.k8s import fabrics

        roles = {n: w.role for w, n in zip(graph.workers, graph.worker_names())}
        placed = [(w, roles[w], pools[p], instances[p]) for w, p in sorted(where.items())]
        problems = fabrics.placement_problems(placed)
        if problems:
            raise DynamoIacError(problems)

    @staticmethod
    def _download_checks(graph: Any) -> None:
        cache = graph.model.cache if graph.model else None
        if cache is None or cache.create:
            raise ConfigError("model_download needs a model-cache PVC that this component creates",
                              "model.cache", "set model.cache=ModelCache(create=False) (the component creates "
                              "and keeps the PVC), or drop model_download")
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

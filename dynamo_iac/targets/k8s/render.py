"""DynamoGraph → DynamoGraphDeployment (nvidia.com/v1beta1 or v1alpha1), byte-stable YAML.

One renderer for both API versions: each component is first rendered to an API-neutral
`_Parts` (main container, pod spec, pod metadata, GPUs, nodes), then shaped into the version's
layout, then the raw layers (imports, escape hatches) are merged on top — raw wins, typed lists
merge by name. The cluster's FabricOverlay (targets/k8s/fabrics) is applied to GPU workers here,
so a graph never carries cloud-specific fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from ... import versions
from ...errors import GraphError
from ...graph.commands import frontend_command, planner_command, worker_command
from ...graph.model import DynamoGraph, Frontend, Planner, Worker, _Component, _name, grove_name_problems
from .convert import convert_component, convert_spec
from .merge import merge, prune_nulls
from .overlay import FabricOverlay, RenderTarget

API_VERSIONS = ("v1beta1", "v1alpha1")
GROUP = "nvidia.com"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
COMPONENT_LABEL = "nvidia.com/dynamo-component"
DGD_LABEL = "nvidia.com/dynamo-graph-deployment-name"


@dataclass
class _Parts:
    name: str
    type: str                                   # v1beta1 type: frontend|worker|prefill|decode|planner
    comp: _Component
    container: dict[str, Any] = field(default_factory=dict)
    pod_spec: dict[str, Any] = field(default_factory=dict)
    pod_metadata: dict[str, Any] = field(default_factory=dict)
    gpus_per_pod: int = 0
    nodes: int = 1
    extra_resources: dict[str, str] = field(default_factory=dict)   # fabric, limits and requests
    resources: dict[str, dict[str, str]] = field(default_factory=dict)  # typed requests/limits (no GPU)
    secret: str | None = None                   # env-from Secret (HF token)


def _env_list(*envs: dict[str, str] | tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    merged: dict[str, str] = {}
    for e in envs:
        for k, v in (e.items() if isinstance(e, dict) else e):
            merged[k] = v
    return [{"name": k, "value": v} for k, v in merged.items()]


def _component_type(comp: _Component) -> str:
    if isinstance(comp, Frontend):
        return "frontend"
    if isinstance(comp, Planner):
        return "planner"
    assert isinstance(comp, Worker)
    return {"agg": "worker", "prefill": "prefill", "decode": "decode"}[comp.role]


def _image(graph: DynamoGraph, comp: _Component, overlay: FabricOverlay) -> str | None:
    if comp.image:
        return comp.image
    if "image" in comp.container or not comp.generate_command:
        return None              # the raw container carries it, or the import had none
    if isinstance(comp, Frontend):
        return graph.images.frontend or graph.release().image("frontend")
    if isinstance(comp, Planner):
        return graph.images.planner or graph.release().image("planner")
    efa = overlay.image_variant == "efa" and graph.release().has_efa_image(graph.backend)
    return graph.runtime_image(efa=efa)


def _parts(graph: DynamoGraph, comp: _Component, target: RenderTarget) -> _Parts:
    kind = _component_type(comp)
    name = _name(comp)
    target = target.for_component(name)        # the worker's own pool when the plan spread them
    is_worker = isinstance(comp, Worker)
    p = _Parts(name=name, type=kind, comp=comp)
    overlay = FabricOverlay()
    if isinstance(comp, Worker):
        p.nodes = comp.nodes_for(target.gpus_per_node)
        if comp.gpu_count % p.nodes:
            raise GraphError(f"{comp.gpu_count} GPUs cannot be split evenly over {p.nodes} nodes of "
                             f"{target.gpus_per_node} GPUs", f"workers[{name}].gpus",
                             "use a GPU count that is a multiple of the node's GPUs")
        if p.nodes > 1 and comp.nodes is None:      # derived here: the multinode name budget applies now
            index = next(i for i, w in enumerate(graph.workers) if w is comp)
            problems = grove_name_problems(f"workers[{index}]", name, multinode=True)
            if problems:
                raise GraphError(problems)
        p.gpus_per_pod = comp.gpu_count // p.nodes
        overlay = target.overlay_for(p.gpus_per_pod, comp.role, p.nodes)
    c: dict[str, Any] = {"name": "main"}
    image = _image(graph, comp, overlay)
    if image:
        c["image"] = image
    if isinstance(comp, Worker):
        command, args = worker_command(graph, comp, kv_backends=overlay.kv_backends)
    elif isinstance(comp, Frontend):
        command, args = frontend_command(comp)
    else:
        command, args = planner_command(graph, comp)
    if command:
        c["command"] = command
    if args:
        c["args"] = args
    generated = comp.generate_command
    env = dict(comp.env)
    cache = graph.model.cache if graph.model else None
    if cache is not None and generated:
        env.setdefault("HF_HOME", cache.mount_path)
        c["volumeMounts"] = [{"name": cache.pvc, "mountPath": cache.mount_path}]
        p.pod_spec["volumes"] = [{"name": cache.pvc, "persistentVolumeClaim": {"claimName": cache.pvc}}]
    env_entries = _env_list(overlay.env, env)
    if env_entries:
        c["env"] = env_entries
    if graph.hf_token_secret and (is_worker or isinstance(comp, Planner)) and generated:
        p.secret = graph.hf_token_secret
    sec: dict[str, Any] = {}
    if overlay.capabilities:
        sec["capabilities"] = {"add": list(overlay.capabilities)}
    if overlay.privileged:
        sec["privileged"] = True
    if overlay.run_as_user is not None:
        sec["runAsUser"] = overlay.run_as_user
    if sec:
        c["securityContext"] = sec
    if overlay.volume_mounts:
        c["volumeMounts"] = c.get("volumeMounts", []) + [dict(m) for m in overlay.volume_mounts]
    if overlay.volumes:
        p.pod_spec["volumes"] = p.pod_spec.get("volumes", []) + [dict(v) for v in overlay.volumes]
    p.resources = {k: dict(v) for k, v in (("requests", comp.resources.requests),
                                           ("limits", comp.resources.limits)) if v}
    if isinstance(comp, Worker):
        p.extra_resources = dict(overlay.resources)
        tolerations = list(overlay.tolerations)
        if target.gpu_toleration and p.gpus_per_pod and GPU_TOLERATION not in tolerations:
            tolerations.insert(0, dict(GPU_TOLERATION))
        if tolerations:
            p.pod_spec["tolerations"] = tolerations
        if target.node_selector:
            p.pod_spec["nodeSelector"] = dict(target.node_selector)
        if overlay.separate_prefill_decode_nodes and comp.role in ("prefill", "decode"):
            other = "decode" if comp.role == "prefill" else "prefill"
            others = sorted(n for w, n in zip(graph.workers, graph.worker_names()) if w.role == other)
            p.pod_spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                "topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchExpressions": [
                    {"key": DGD_LABEL, "operator": "In", "values": [graph.name]},
                    {"key": COMPONENT_LABEL, "operator": "In", "values": others}]}}]}}
        if overlay.image_pull_secrets:
            p.pod_spec["imagePullSecrets"] = [{"name": s} for s in overlay.image_pull_secrets]
        if overlay.pod_annotations:
            p.pod_metadata["annotations"] = dict(overlay.pod_annotations)
    if comp.node_selector:
        p.pod_spec["nodeSelector"] = {**p.pod_spec.get("nodeSelector", {}), **comp.node_selector}
    if comp.tolerations:
        p.pod_spec["tolerations"] = merge(p.pod_spec.get("tolerations", []), comp.tolerations, "tolerations")
    p.container = merge(c, comp.container)
    p.pod_spec = merge(p.pod_spec, comp.pod_spec)
    p.pod_metadata = merge(p.pod_metadata, comp.pod_metadata)
    return p


# ------------------------------------------------------------------------------------ v1beta1
def _v1beta1(graph: DynamoGraph, p: _Parts) -> dict[str, Any]:
    comp = p.comp
    out: dict[str, Any] = {"name": p.name, "type": p.type, "replicas": comp.replicas}
    if p.nodes > 1:
        out["multinode"] = {"nodeCount": p.nodes}
    if getattr(comp, "shared_memory", None):
        out["sharedMemorySize"] = comp.shared_memory
    if comp.runtime_version_override:
        out["runtimeVersionOverride"] = comp.runtime_version_override
    container = dict(p.container)
    res = {k: dict(v) for k, v in p.resources.items()}
    if p.gpus_per_pod:
        res.setdefault("limits", {})[GPU_RESOURCE] = str(p.gpus_per_pod)
    for k, v in p.extra_resources.items():
        res.setdefault("limits", {})[k] = v
        res.setdefault("requests", {})[k] = v
    if p.secret:
        ours = [{"secretRef": {"name": p.secret}}]
        container["envFrom"] = merge(ours, container["envFrom"]) if container.get("envFrom") else ours
    res = merge(res, container.get("resources", {}))
    if res:
        container["resources"] = res
    spec = {k: v for k, v in p.pod_spec.items() if k != "containers"}
    spec["containers"] = [container] + [c for c in p.pod_spec.get("containers", []) if c.get("name") != "main"]
    template: dict[str, Any] = {"spec": spec}
    if p.pod_metadata:
        template["metadata"] = p.pod_metadata
    out["podTemplate"] = template
    return out


# ------------------------------------------------------------------------------------ v1alpha1
def _v1alpha1(graph: DynamoGraph, p: _Parts) -> dict[str, Any]:
    comp = p.comp
    ctype = "worker" if p.type in ("prefill", "decode") else p.type
    out: dict[str, Any] = {"componentType": ctype, "replicas": comp.replicas}
    if p.type in ("prefill", "decode"):
        out["subComponentType"] = p.type
    if p.nodes > 1:
        out["multinode"] = {"nodeCount": p.nodes}
    if getattr(comp, "shared_memory", None):
        out["sharedMemory"] = {"size": comp.shared_memory}
    if comp.runtime_version_override:
        out["runtimeVersionOverride"] = comp.runtime_version_override
    container = dict(p.container)
    # v1alpha1 keeps typed resources and the secret on the service, not the container
    if p.secret:
        out["envFromSecret"] = p.secret
    resources: dict[str, Any] = {}
    for section in ("requests", "limits"):
        for k, v in p.resources.get(section, {}).items():
            if k in ("cpu", "memory"):
                resources.setdefault(section, {})[k] = v
            else:
                resources.setdefault(section, {}).setdefault("custom", {})[k] = v
    if p.gpus_per_pod:
        resources.setdefault("limits", {})["gpu"] = str(p.gpus_per_pod)
    for k, v in p.extra_resources.items():
        for section in ("limits", "requests"):
            resources.setdefault(section, {}).setdefault("custom", {})[k] = v
    if resources:
        out["resources"] = resources
    # the model cache is a spec-level pvc mounted by name on v1alpha1
    mounts = container.get("volumeMounts", [])
    cache = graph.model.cache if graph.model else None
    pod_spec = dict(p.pod_spec)
    if cache is not None and comp.generate_command:
        container["volumeMounts"] = [m for m in mounts if m.get("name") != cache.pvc]
        if not container["volumeMounts"]:
            del container["volumeMounts"]
        pod_spec["volumes"] = [v for v in pod_spec.get("volumes", []) if v.get("name") != cache.pvc]
        if not pod_spec["volumes"]:
            del pod_spec["volumes"]
        out["volumeMounts"] = [{"name": cache.pvc, "mountPoint": cache.mount_path}]
    extra_pod = {k: v for k, v in pod_spec.items() if k != "containers"}
    sidecars = [c for c in pod_spec.get("containers", []) if c.get("name") != "main"]
    if sidecars:
        extra_pod["containers"] = sidecars
    main = {k: v for k, v in container.items() if k != "name"}
    if main:
        extra_pod["mainContainer"] = main
    if extra_pod:
        out["extraPodSpec"] = extra_pod
    if p.pod_metadata:
        out["extraPodMetadata"] = p.pod_metadata
    return out


# ------------------------------------------------------------------------------------ raw layers
def _with_extra(out: dict[str, Any], comp: _Component, api: str, spec_adds: list[dict]) -> dict[str, Any]:
    """The rendered component with its raw layer, converted when it was kept in the other API."""
    frag = convert_component(comp.extra, comp.extra_api, api, f"{_path_of(comp)}.extra")
    if frag.spec:
        spec_adds.append(frag.spec)
    return merge(merge(frag.template, out), frag.component)


def _typed_gpus(out: dict[str, Any], api: str, p: _Parts) -> dict[str, Any]:
    """The worker's GPU count wins over the raw layers, in limits and (where one is set) requests:
    an edited import must not keep the old count in one of them."""
    if not p.gpus_per_pod:
        return out
    n = str(p.gpus_per_pod)
    if api == "v1beta1":
        containers = out.get("podTemplate", {}).get("spec", {}).get("containers", [])
        sections = [(c.setdefault("resources", {}), GPU_RESOURCE) for c in containers if c.get("name") == "main"]
    else:
        main = out.get("extraPodSpec", {}).get("mainContainer", {})
        sections = [(out.setdefault("resources", {}), "gpu")]
        if GPU_RESOURCE in str(main.get("resources", "")):
            sections.append((main["resources"], GPU_RESOURCE))
    for res, key in sections:
        res.setdefault("limits", {})[key] = n
        if key in (res.get("requests") or {}):
            res["requests"][key] = n
    return out


def _path_of(comp: _Component) -> str:
    if isinstance(comp, Worker):
        return f"workers[{comp.name}]"
    return "frontend" if isinstance(comp, Frontend) else "planner"


# ------------------------------------------------------------------------------------ whole graph
def render_dgd(graph: DynamoGraph, api: str = "v1beta1", target: RenderTarget | None = None) -> dict[str, Any]:
    if api not in API_VERSIONS:
        raise GraphError(f"unknown API version {api!r}", "api", "use 'v1beta1' or 'v1alpha1'")
    graph.check()
    served = graph.release().dgd_api
    if api not in served:
        raise GraphError(f"Dynamo {graph.dynamo_version}'s operator serves only {', '.join(served)}; it cannot run "
                         f"a {api} DynamoGraphDeployment", "dynamo_version",
                         f"render api={served[-1]!r}, or use a dynamo_version that serves {api} "
                         f"({', '.join(v for v in versions.known_versions() if api in versions.release(v).dgd_api)})")
    target = target or RenderTarget()
    cache = graph.model.cache if graph.model else None
    creates_pvc = cache is not None and cache.create and not target.model_cache_external
    if creates_pvc and api == "v1beta1":
        raise GraphError("a v1beta1 DynamoGraphDeployment cannot create a PVC (only v1alpha1 spec.pvcs can)",
                         "model.cache.create", "render api='v1alpha1', create the PVC yourself and set "
                         "create=False, or deploy with DynamoDeployment, which creates it")
    comps: list[_Component] = []
    if graph.frontend is not None:
        comps.append(graph.frontend)
    comps += graph.workers
    if graph.planner is not None:
        comps.append(graph.planner)
    parts = [_parts(graph, c, target) for c in comps]
    meta: dict[str, Any] = {"name": graph.name}
    if graph.namespace:
        meta["namespace"] = graph.namespace
    if graph.labels:
        meta["labels"] = dict(graph.labels)
    if graph.annotations:
        meta["annotations"] = dict(graph.annotations)
    meta = merge(meta, graph.metadata_extra)
    spec: dict[str, Any] = {}
    spec_adds: list[dict] = []
    if api == "v1beta1":
        spec["components"] = [_typed_gpus(_with_extra(_v1beta1(graph, p), p.comp, api, spec_adds), api, p)
                              for p in parts]
        for rc in graph.extra_components:
            spec["components"].append(_raw_component(rc, "v1beta1"))
        if graph.env:
            spec["env"] = _env_list(graph.env)
    else:
        services = {p.name: _typed_gpus(_with_extra(_v1alpha1(graph, p), p.comp, api, spec_adds), api, p)
                    for p in parts}
        for rc in graph.extra_components:
            services[rc.name] = _raw_component(rc, "v1alpha1")
        spec["services"] = services
        if graph.env:
            spec["envs"] = _env_list(graph.env)
        if cache is not None and any(c.generate_command for c in comps):
            pvc: dict[str, Any] = {"name": cache.pvc, "create": creates_pvc}
            if creates_pvc:
                pvc.update(size=cache.size, storageClass=cache.storage_class, volumeAccessMode=cache.access_mode)
            spec["pvcs"] = [pvc]
    if any(w.generate_command for w in graph.workers):   # imports keep theirs in spec_extra, if any
        spec["backendFramework"] = graph.backend
    for add in spec_adds:
        spec = merge(spec, add)
    spec = merge(spec, convert_spec(graph.spec_extra, graph.spec_extra_api, api))
    return prune_nulls({"apiVersion": f"{GROUP}/{api}", "kind": "DynamoGraphDeployment",
                        "metadata": meta, "spec": spec})


def _raw_component(rc: Any, api: str) -> dict[str, Any]:
    if rc.api == api:
        return ({"name": rc.name, **rc.spec} if api == "v1beta1" else dict(rc.spec))
    raise GraphError(f"component {rc.name!r} of type {rc.type!r} is kept raw in {rc.api} and cannot be "
                     f"converted to {api}", f"extra_components[{rc.name}]", f"render with api={rc.api!r}")


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def dump_yaml(obj: Any) -> str:
    """Deterministic YAML: sorted keys, block style, literal blocks for multi-line strings."""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=4096,
                     allow_unicode=True)


def dump_all(objs: list[Any]) -> str:
    return "---\n".join(dump_yaml(o) for o in objs)

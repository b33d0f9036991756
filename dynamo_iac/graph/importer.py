"""DynamoGraphDeployment manifest (v1beta1 or v1alpha1) → DynamoGraph, losslessly.

What the typed model covers (names, roles, replicas, images, command lines, GPU counts,
node counts, version overrides) is lifted into typed fields; everything else stays verbatim
in the raw layers (`container`, `pod_spec`, `pod_metadata`, `extra`, `spec_extra`,
`metadata_extra`, `extra_components`) and is emitted again by the renderer. Command lines are
kept as written (generate_command=False); parallelism and the model are read from them for
planning, never re-generated.
"""
from __future__ import annotations

import copy
from typing import Any

from ..errors import GraphError, Problem
from ..targets.k8s.merge import prune_nulls
from .shape import shape_problems as _shape_problems
from . import cmdline
from .cmdline import as_int as _int, flag as _flag
from .model import DynamoGraph, Frontend, Model, Parallelism, Planner, RawComponent, Worker

_V1BETA1_ROLE = {"worker": "agg", "prefill": "prefill", "decode": "decode"}


def _split_main(container: dict) -> tuple[dict, dict]:
    """Typed fields lifted out of a raw main container, and the rest."""
    raw = copy.deepcopy(container)
    raw.pop("name", None)
    typed: dict[str, Any] = {}
    for k in ("image", "command", "args"):
        if k in raw:
            typed[k] = raw.pop(k)
    return typed, raw


def _parallelism(tokens: list[str], env: dict[str, str], gpus: int) -> Parallelism | None:
    f = cmdline.parallel_flags(tokens, env)
    if "tp" not in f:
        return None
    dp_attention = "--enable-dp-attention" in tokens
    try:
        par = Parallelism(**{k: v or 1 for k, v in f.items()}, dp_attention=dp_attention)
    except GraphError:
        return None
    return par if par.gpus == gpus and (par.ep <= gpus) else None


# The shape of every field the importer reads, checked before it reads any: a malformed manifest
# is reported field by field (GraphError), never a traceback. (kind, children): dict children map
# keys, "*" any key; a one-element list is "a list of". Everything else is kept verbatim unread.
_STRS = [str]
_CONTAINER = (dict, {"name": str, "image": str, "command": _STRS, "args": _STRS,
                     "env": [(dict, {"name": str})], "resources": (dict, {"limits": dict, "requests": dict})})
_COMMON = {"replicas": int, "runtimeVersionOverride": str, "multinode": (dict, {"nodeCount": int})}
_SHAPES = {
    "v1beta1": (dict, {"components": [(dict, {"name": str, "type": str, **_COMMON, "podTemplate": (dict, {
        "metadata": dict, "spec": (dict, {"containers": [_CONTAINER]})})})], "backendFramework": str}),
    "v1alpha1": (dict, {"services": (dict, {"*": (dict, {
        "componentType": str, "subComponentType": str, **_COMMON, "resources": (dict, {"limits": dict}),
        "extraPodSpec": (dict, {"mainContainer": _CONTAINER, "containers": [_CONTAINER]}),
        "extraPodMetadata": dict})}), "backendFramework": str}),
}
_META_SHAPE = (dict, {"name": str, "namespace": str, "labels": dict, "annotations": dict})
class _Importer:
    def __init__(self, obj: dict):
        self.obj = obj
        self.api = obj["apiVersion"].split("/", 1)[1]
        self.models: list[tuple[str, str | None]] = []
        self.backends: list[str] = []

    # one component of either version, already split into neutral pieces
    def component(self, name: str, ctype: str, sub: str | None, main: dict, pod_spec: dict,
                  pod_meta: dict, extra: dict, gpus: int | None, nodes: int | None,
                  rvo: str | None, replicas: int | None, main_path: str = "") -> Any:
        typed, container = _split_main(main)
        common: dict[str, Any] = dict(name=name, container=container, pod_spec=pod_spec, pod_metadata=pod_meta,
                                      extra=extra, extra_api=self.api, generate_command=False,
                                      command=typed.get("command"), args=typed.get("args"),
                                      image=typed.get("image"), runtime_version_override=rvo)
        if replicas is None:
            extra["replicas"] = None          # absent in the source: the null removes the typed default
        else:
            common["replicas"] = replicas
        env = cmdline.env_values(main)
        tokens = cmdline.tokens(typed.get("command"), typed.get("args"), main_path)
        if ctype == "frontend":
            mode = _flag(tokens, ("--router-mode",), env) or env.get("DYN_ROUTER_MODE")
            port = _int(_flag(tokens, ("--http-port",), env))
            return Frontend(**common, **({"router_mode": mode} if mode in ("kv", "round-robin", "random") else {}),
                            **({"port": port} if port and port < 65536 else {}))
        if ctype == "planner":
            return Planner(**common)
        role = _V1BETA1_ROLE.get(sub or "", None) if ctype == "worker" and sub else _V1BETA1_ROLE.get(ctype)
        if role is None:
            return None
        for mod in ("dynamo.vllm", "dynamo.sglang", "dynamo.trtllm"):
            if mod in tokens or any(mod in t for t in tokens):
                self.backends.append(mod.split(".", 1)[1])
        model = _flag(tokens, cmdline.FLAG_MODEL, env)
        if model:
            self.models.append((model, _flag(tokens, ("--served-model-name",), env)))
        total = (gpus or 0) * (nodes or 1)
        return Worker(**common, role=role, gpus=total, nodes=nodes,
                      parallelism=_parallelism(tokens, env, total) if total else None)

    def v1beta1(self, c: dict) -> Any:
        c = copy.deepcopy(c)
        name, ctype = c.pop("name"), c.pop("type", None)
        template = c.pop("podTemplate", {}) or {}
        pod_spec = copy.deepcopy(template.get("spec", {}) or {})
        containers = pod_spec.pop("containers", []) or []
        mains = [k for k, x in enumerate(containers) if x.get("name") == "main"]
        if len(mains) > 1:   # a list-map keyed by name: the API server rejects it; never drop one
            raise GraphError(f"{len(mains)} containers are named 'main'", f"podTemplate.spec.containers[{mains[1]}].name",
                             "give each container a unique name (exactly one is `main`)")
        main = containers[mains[0]] if mains else None
        if main is None or ctype not in ("frontend", "worker", "prefill", "decode", "planner"):
            return RawComponent(name=name, type=str(ctype), spec={**({"type": ctype} if ctype else {}),
                                                                     "podTemplate": template, **c}, api="v1beta1")
        others = [x for x in containers if x.get("name") != "main"]
        if others:
            pod_spec["containers"] = others
        meta = {k: v for k, v in template.items() if k != "spec"}
        main = copy.deepcopy(main)
        gpus = None
        limits = (main.get("resources") or {}).get("limits") or {}
        if "nvidia.com/gpu" in limits:
            gpus = _int(str(limits.pop("nvidia.com/gpu")))
            if gpus is None:
                return RawComponent(name=name, type=ctype, spec={"type": ctype, "podTemplate": template, **c})
            if not limits:
                main["resources"].pop("limits")
            if not main["resources"]:
                main.pop("resources")
        nodes = (c.get("multinode") or {}).get("nodeCount")
        if nodes is not None:
            c["multinode"].pop("nodeCount")
            if not c["multinode"]:
                c.pop("multinode")
        return self.component(name, ctype, None, main, pod_spec, meta.get("metadata", {}) or {}, c,
                              gpus, nodes, c.pop("runtimeVersionOverride", None), c.pop("replicas", None),
                              f"podTemplate.spec.containers[{mains[0]}].")

    def v1alpha1(self, name: str, s: dict) -> Any:
        s = copy.deepcopy(s)
        ctype, sub = s.pop("componentType", None), s.pop("subComponentType", None)
        eps = copy.deepcopy(s.get("extraPodSpec") or {})
        main = eps.pop("mainContainer", None)
        known = ("frontend", "worker", "planner")
        if ctype not in known or (ctype == "worker" and sub not in (None, "prefill", "decode")):
            spec = {**({"componentType": ctype} if ctype else {}), **({"subComponentType": sub} if sub else {}), **s}
            return RawComponent(name=name, type=str(ctype), spec=spec, api="v1alpha1")
        s.pop("extraPodSpec", None)
        gpus = None
        limits = (s.get("resources") or {}).get("limits") or {}
        if "gpu" in limits:
            gpus = _int(str(limits["gpu"]))
            if gpus is not None:
                limits.pop("gpu")
                if not limits:
                    s["resources"].pop("limits")
                if not s["resources"]:
                    s.pop("resources")
        nodes = (s.get("multinode") or {}).get("nodeCount")
        if nodes is not None:
            s["multinode"].pop("nodeCount")
            if not s["multinode"]:
                s.pop("multinode")
        pod_meta = s.pop("extraPodMetadata", {}) or {}
        if main is None:
            main = {}
        return self.component(name, ctype, sub, main, eps, pod_meta, s, gpus, nodes,
                              s.pop("runtimeVersionOverride", None), s.pop("replicas", None),
                              "extraPodSpec.mainContainer.")


def _lone_roles_to_agg(workers: list[Worker], api: str) -> None:
    """Upstream aggregated examples type their only worker `decode`: that is an aggregated
    worker for planning, and its type is kept verbatim for rendering."""
    roles = {w.role for w in workers}
    if ("prefill" in roles) == ("decode" in roles):
        return
    for w in workers:
        if w.role in ("prefill", "decode"):
            keep = {"type": w.role} if api == "v1beta1" else {"subComponentType": w.role}
            w.extra = {**w.extra, **keep}
            w.role = "agg"


def from_dgd(obj: Any) -> DynamoGraph:
    if not isinstance(obj, dict):
        raise GraphError("a DynamoGraphDeployment must be a mapping", "", "pass the parsed YAML document")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if kind != "DynamoGraphDeployment":
        raise GraphError(f"kind {kind!r} is not a DynamoGraphDeployment", "kind",
                         "import DynamoGraphDeployment documents; validate other kinds with `dynamo-iac validate`")
    if api_version not in ("nvidia.com/v1beta1", "nvidia.com/v1alpha1"):
        raise GraphError(f"unsupported apiVersion {api_version!r}", "apiVersion",
                         "use nvidia.com/v1beta1 or nvidia.com/v1alpha1")
    obj = prune_nulls(obj)
    api = api_version.split("/", 1)[1]
    shape = _shape_problems(obj.get("metadata", {}), _META_SHAPE, "metadata") + \
        _shape_problems(obj.get("spec", {}), _SHAPES[api], "spec")
    if shape:
        raise GraphError(shape)
    imp = _Importer(obj)
    meta = copy.deepcopy(obj.get("metadata") or {})
    spec = copy.deepcopy(obj.get("spec") or {})
    name = meta.pop("name", None)
    if not name:
        raise GraphError("metadata.name is missing", "metadata.name", "name the DynamoGraphDeployment")
    frontend: Frontend | None = None
    workers: list[Worker] = []
    planner: Planner | None = None
    extras: list[RawComponent] = []
    sources: dict[str, tuple[str, dict]] = {}     # graph path of a component → (manifest path, body)
    if imp.api == "v1beta1":
        items = [(c.get("name"), c) for c in spec.pop("components", []) or []]
    else:
        items = list((spec.pop("services", {}) or {}).items())
    for i, (cname, body) in enumerate(items):
        where = f"spec.components[{i}]" if imp.api == "v1beta1" else f"spec.services.{cname}"
        if not isinstance(body, dict) or not cname:
            raise GraphError("component without a name or body", where, "every component needs a name and a spec")
        try:
            comp = imp.v1beta1(body) if imp.api == "v1beta1" else imp.v1alpha1(cname, body)
        except GraphError as e:
            raise GraphError([Problem(_manifest_path(imp.api, where, body, p.path), p.message, p.fix)
                              for p in e.problems]) from None
        if isinstance(comp, Frontend) and frontend is None:
            frontend = comp
            sources["frontend"] = (where, body)
        elif isinstance(comp, Planner) and planner is None:
            planner = comp
            sources["planner"] = (where, body)
        elif isinstance(comp, Worker):
            sources[f"workers[{len(workers)}]"] = (where, body)
            workers.append(comp)
        elif isinstance(comp, RawComponent):
            extras.append(comp)
        else:   # a second frontend/planner, or an unknown role: keep verbatim
            extras.append(RawComponent(name=cname, type=str(body.get("type") or body.get("componentType")),
                                       spec={k: v for k, v in body.items() if k != "name"}, api=imp.api))
    _lone_roles_to_agg(workers, imp.api)
    backend = spec.get("backendFramework") or (imp.backends[0] if imp.backends else "vllm")
    model = None
    if imp.models:
        mid, served = imp.models[0]
        if mid and not mid.startswith("$"):
            model = Model(id=mid, served_name=served if served and not served.startswith("$") else None)
    try:
        return DynamoGraph(
            name=name, namespace=meta.pop("namespace", None), backend=backend, model=model,
            frontend=frontend, workers=workers, planner=planner, extra_components=extras,
            hf_token_secret=None, labels=meta.pop("labels", {}) or {}, annotations=meta.pop("annotations", {}) or {},
            metadata_extra=meta, spec_extra=spec, spec_extra_api=imp.api, source_api=imp.api)
    except GraphError as e:
        raise GraphError([Problem(_graph_to_manifest(imp.api, sources, p.path), p.message, p.fix)
                          for p in e.problems]) from None


_GRAPH_LEVEL = {"name": "metadata.name", "namespace": "metadata.namespace", "labels": "metadata.labels",
                "annotations": "metadata.annotations", "backend": "spec.backendFramework"}


def _graph_to_manifest(api: str, sources: dict[str, tuple[str, dict]], path: str) -> str:
    """A graph field path of an import's error, as the manifest's own path (what the user can edit)."""
    head, dot, rest = path.partition(".")
    if head in sources:
        where, body = sources[head]
        return _manifest_path(api, where, body, rest)
    if path in _GRAPH_LEVEL:
        return _GRAPH_LEVEL[path]
    if head == "workers":
        return "spec.components" if api == "v1beta1" else "spec.services"
    return path


def _manifest_path(api: str, where: str, body: dict, field: str) -> str:
    """A component field of the typed model (name, image, env …) as the path in its manifest."""
    if api == "v1beta1":
        containers = (((body.get("podTemplate") or {}).get("spec") or {}).get("containers") or [])
        k = next((j for j, c in enumerate(containers) if isinstance(c, dict) and c.get("name") == "main"), 0)
        main, pod_spec, pod_meta = f"podTemplate.spec.containers[{k}]", "podTemplate.spec", "podTemplate.metadata"
        gpus = f"{main}.resources.limits.nvidia.com/gpu"
    else:
        main, pod_spec, pod_meta, gpus = "extraPodSpec.mainContainer", "extraPodSpec", "extraPodMetadata", \
            "resources.limits.gpu"
    head, dot, rest = field.partition(".")
    mapped = {"name": "name" if api == "v1beta1" else "", "replicas": "replicas", "gpus": gpus,
              "runtime_version_override": "runtimeVersionOverride", "nodes": "multinode.nodeCount",
              "image": f"{main}.image", "command": f"{main}.command", "args": f"{main}.args", "env": f"{main}.env",
              "parallelism": f"{main}.args", "container": main, "pod_spec": pod_spec, "pod_metadata": pod_meta,
              }.get(head.split("[", 1)[0])
    if mapped is None:
        return f"{where}.{field}".rstrip(".")
    tail = rest if head in ("container", "pod_spec", "pod_metadata") else ""
    return ".".join(x for x in (where, mapped, tail) if x)

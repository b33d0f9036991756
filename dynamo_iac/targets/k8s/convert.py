"""Raw DGD fields (kept verbatim by an import) converted between v1alpha1 and v1beta1.

The mapping follows the operator's conversion (api/v1alpha1/shared_spec_conversion.go, see
shared/notes/dynamo-crds-and-chart.md §3.4): the v1alpha1 service fields that v1beta1 folded into
the native pod template (envs, envFromSecret, resources, volumeMounts, probes, labels,
annotations) become fields of the `main` container / pod; renamed fields are renamed; enum
values change case. A field with no faithful equivalent raises GraphError naming it — nothing is
dropped silently.

Each converter returns a Fragment: `component` (in the destination layout, merged over the
rendered component, raw wins as for every raw layer), `template` (main-container / pod fields in
the destination layout, merged *under* the rendered component, so the explicit container wins
as in the operator), and `spec` (spec-level fields a component needs, e.g. a v1alpha1 pvcs entry).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ...errors import GraphError, Problem
from ...graph.shape import shape_problems
from .merge import merge

BOTH_COMPONENT = ("replicas", "multinode", "minAvailable", "modelRef", "globalDynamoNamespace",
                  "topologyConstraint", "providerOverride", "runtimeVersionOverride", "eppConfig")
BOTH_SPEC = ("annotations", "labels", "backendFramework", "experimental", "priorityClassName",
             "providerOverride", "restart")
GPU = "nvidia.com/gpu"


@dataclass
class Fragment:
    component: dict[str, Any] = field(default_factory=dict)
    template: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)

    def add(self, other: "Fragment") -> None:
        self.component = merge(self.component, other.component)
        self.template = merge(self.template, other.template)
        self.spec = merge(self.spec, other.spec)


# ------------------------------------------------------------------ layout helpers
def _main(dst: str, **fields: Any) -> dict:
    """A fragment holding fields of the main container, in dst's layout."""
    if dst == "v1beta1":
        return {"podTemplate": {"spec": {"containers": [{"name": "main", **fields}]}}}
    return {"extraPodSpec": {"mainContainer": fields}}


def _pod(dst: str, **fields: Any) -> dict:
    return {"podTemplate": {"spec": fields}} if dst == "v1beta1" else {"extraPodSpec": fields}


def _pod_meta(dst: str, **fields: Any) -> dict:
    return {"podTemplate": {"metadata": fields}} if dst == "v1beta1" else {"extraPodMetadata": fields}


def _case(mode: Any, upper: bool) -> Any:
    if not isinstance(mode, str) or not mode:
        return mode
    return (mode[0].upper() if upper else mode[0].lower()) + mode[1:]


def _moded(v: dict, upper: bool) -> dict:
    return {**v, "mode": _case(v["mode"], upper)} if "mode" in v else dict(v)


def _enabled_to_presence(key: str) -> Callable[[dict], "Fragment"]:
    """v1alpha1 {enabled: bool, …} → v1beta1 experimental.<key> whose presence enables it."""
    def conv(v: dict) -> Fragment:
        if not v.get("enabled"):
            return Fragment()
        rest = {k: x for k, x in _moded(v, True).items() if k != "enabled"}
        return Fragment({"experimental": {key: rest}})
    return conv


# ------------------------------------------------------------------ v1alpha1 → v1beta1
def _alpha_resources(v: dict) -> Fragment:
    res: dict[str, Any] = {}
    for section in ("requests", "limits"):
        items = dict(v.get(section) or {})
        gpu_name = items.pop("gpuType", None) or GPU
        out: dict[str, str] = {}
        for k in ("cpu", "memory"):
            if k in items:
                out[k] = items.pop(k)
        if "gpu" in items:
            out[gpu_name] = items.pop("gpu")
        out.update(items.pop("custom", None) or {})
        if items:
            raise GraphError(f"resources.{section}: {', '.join(sorted(items))} have no v1beta1 equivalent",
                             f"resources.{section}", "render with api='v1alpha1'")
        if out:
            res[section] = out
    if v.get("claims"):
        res["claims"] = v["claims"]
    return Fragment(template=_main("v1beta1", resources=res))


def _alpha_volume_mounts(v: list) -> Fragment:
    frag = Fragment()
    mounts, volumes = [], []
    for m in v:
        if m.get("useAsCompilationCache"):
            cc = {"pvcName": m["name"], **({"mountPath": m["mountPoint"]} if m.get("mountPoint") else {})}
            frag.component["compilationCache"] = cc
            continue
        if not m.get("mountPoint"):
            raise GraphError("is required unless useAsCompilationCache", f"volumeMounts[{v.index(m)}].mountPoint",
                             "set mountPoint")
        mounts.append({"name": m["name"], "mountPath": m["mountPoint"]})
        volumes.append({"name": m["name"], "persistentVolumeClaim": {"claimName": m["name"]}})
    if mounts:
        frag.template = merge(_main("v1beta1", volumeMounts=mounts), _pod("v1beta1", volumes=volumes))
    return frag


def _alpha_frontend_sidecar(v: dict) -> Fragment:
    """v1alpha1 describes the GAIE sidecar inline; v1beta1 names a podTemplate container (the
    operator's injected name is sidecar-frontend)."""
    name = "sidecar-frontend"
    c: dict[str, Any] = {"name": name, "image": v["image"]}
    if v.get("args"):
        c["args"] = v["args"]
    if v.get("envs"):
        c["env"] = v["envs"]
    if v.get("envFromSecret"):
        c["envFrom"] = [{"secretRef": {"name": v["envFromSecret"]}}]
    return Fragment({"frontendSidecar": name}, template=_pod("v1beta1", containers=[c]))


_ALPHA: dict[str, Callable[[Any], Fragment]] = {
    "frontendSidecar": _alpha_frontend_sidecar,
    "envs": lambda v: Fragment(template=_main("v1beta1", env=v)),
    "envFromSecret": lambda v: Fragment(template=_main("v1beta1", envFrom=[{"secretRef": {"name": v}}])),
    "resources": _alpha_resources,
    "volumeMounts": _alpha_volume_mounts,
    "livenessProbe": lambda v: Fragment(template=_main("v1beta1", livenessProbe=v)),
    "readinessProbe": lambda v: Fragment(template=_main("v1beta1", readinessProbe=v)),
    "annotations": lambda v: Fragment(template=_pod_meta("v1beta1", annotations=v)),
    "labels": lambda v: Fragment(template=_pod_meta("v1beta1", labels=v)),
    "sharedMemory": lambda v: Fragment({"sharedMemorySize": "0" if v.get("disabled") else v.get("size")}),
    "subComponentType": lambda v: Fragment({"type": v}),
    "scalingAdapter": lambda v: Fragment({"scalingAdapter": {}} if v.get("enabled") else {}),
    "gpuMemoryService": _enabled_to_presence("gpuMemoryService"),
    "failover": _enabled_to_presence("failover"),
    # v1beta1 requires `enabled`; v1alpha1's omitted bool is false
    "checkpoint": lambda v: Fragment({"experimental": {"checkpoint": {"enabled": False, **v}}}),
}


# ------------------------------------------------------------------ v1beta1 → v1alpha1
def _beta_experimental(v: dict) -> Fragment:
    out: dict[str, Any] = {}
    for k, x in v.items():
        if k in ("gpuMemoryService", "failover"):
            out[k] = {"enabled": True, **_moded(x, False)}
        elif k == "checkpoint":
            out[k] = x
        else:
            raise GraphError(f"experimental.{k} has no v1alpha1 equivalent", f"experimental.{k}",
                             "render with api='v1beta1'")
    return Fragment(out)


def _beta_compilation_cache(v: dict) -> Fragment:
    mount = {"name": v["pvcName"], "useAsCompilationCache": True,
             **({"mountPoint": v["mountPath"]} if v.get("mountPath") else {})}
    return Fragment({"volumeMounts": [mount]}, spec={"pvcs": [{"name": v["pvcName"], "create": False}]})


def _beta_type(v: Any) -> Fragment:
    if v in ("prefill", "decode"):
        return Fragment({"componentType": "worker", "subComponentType": v})
    raise GraphError(f"type {v!r} has no v1alpha1 equivalent here", "type", "render with api='v1beta1'")


def _beta_frontend_sidecar(v: Any) -> Fragment:
    raise GraphError(f"frontendSidecar {v!r} names a podTemplate container; v1alpha1 describes the sidecar "
                     "inline and this converter does not move containers", "frontendSidecar",
                     "render with api='v1beta1'")


_BETA: dict[str, Callable[[Any], Fragment]] = {
    "frontendSidecar": _beta_frontend_sidecar,
    "sharedMemorySize": lambda v: Fragment({"sharedMemory": {"disabled": True} if str(v) == "0" else {"size": v}}),
    "scalingAdapter": lambda v: Fragment({"scalingAdapter": {"enabled": True}}),
    "experimental": _beta_experimental,
    "compilationCache": _beta_compilation_cache,
    "type": _beta_type,
}


# the shape of what each converter reads, checked first (raw layers come from users and imports)
_ITEMS = (dict, {"cpu": str, "memory": str, "gpu": str, "gpuType": str, "custom": (dict, {"*": str})})
_MODED = (dict, {"mode": str})
_SHAPES = {
    "v1alpha1": {"envs": list, "envFromSecret": str, "resources": (dict, {"requests": _ITEMS, "limits": _ITEMS}),
                 "volumeMounts": [(dict, {"name": str, "mountPoint": str})], "sharedMemory": dict,
                 "subComponentType": str, "scalingAdapter": dict, "gpuMemoryService": _MODED, "failover": _MODED,
                 "checkpoint": dict, "frontendSidecar": (dict, {"image": str, "envFromSecret": str}),
                 "annotations": dict, "labels": dict},
    "v1beta1": {"experimental": (dict, {"gpuMemoryService": _MODED, "failover": _MODED, "checkpoint": dict}),
                "compilationCache": (dict, {"pvcName": str, "mountPath": str})},
}
_REQUIRED = {("v1alpha1", "volumeMounts"): ("name",), ("v1alpha1", "frontendSidecar"): ("image",),
             ("v1beta1", "compilationCache"): ("pvcName",)}


def _field_problems(k: str, v: Any, src: str, path: str) -> list[Problem]:
    shape = _SHAPES[src].get(k)
    out = shape_problems(v, shape, path) if shape is not None else []
    need = _REQUIRED.get((src, k), ())
    for i, item in enumerate(v if isinstance(v, list) else [v]):
        where = f"{path}[{i}]" if isinstance(v, list) else path
        out += [Problem(f"{where}.{n}", "is required", "set it") for n in need
                if isinstance(item, dict) and n not in item]
    return out


def convert_component(extra: dict[str, Any], src: str, dst: str, where: str) -> Fragment:
    """The raw fields of one component, from src's layout into dst's (GraphError names any that
    cannot be converted)."""
    frag = Fragment()
    if src == dst:
        frag.component = dict(extra)
        return frag
    table = _ALPHA if src == "v1alpha1" else _BETA
    bad: list[Problem] = []
    for k, v in extra.items():
        if k in BOTH_COMPONENT or v is None:
            frag.component[k] = v
        elif k in table:
            shape = _field_problems(k, v, src, f"{where}.{k}")
            if shape:
                bad += shape
                continue
            try:
                frag.add(table[k](v))
            except GraphError as e:
                bad += [Problem(f"{where}.{p.path}", p.message, p.fix) for p in e.problems]
        else:
            bad.append(_no_equivalent(f"{where}.{k}", src, dst))
    if bad:
        raise GraphError(bad)
    return frag


def convert_spec(extra: dict[str, Any], src: str, dst: str) -> dict[str, Any]:
    """The raw spec-level fields, from src's layout into dst's."""
    if src == dst:
        return dict(extra)
    out: dict[str, Any] = {}
    bad: list[Problem] = []
    for k, v in extra.items():
        if k in BOTH_SPEC:
            out[k] = v
        elif k in ("envs", "env"):
            out["env" if dst == "v1beta1" else "envs"] = v
        elif k == "topologyConstraint" and isinstance(v, dict):
            old, new = ("topologyProfile", "clusterTopologyName")[:: 1 if dst == "v1beta1" else -1]
            out[k] = {(new if x == old else x): y for x, y in v.items()}
        elif k == "pvcs" and dst == "v1beta1" and shape_problems(v, [dict], "spec.pvcs"):
            bad += shape_problems(v, [dict], "spec.pvcs")
        elif k == "pvcs" and dst == "v1beta1":
            # v1beta1 mounts PVCs as plain pod volumes (converted per component); it cannot create one
            for i, pvc in enumerate(v):
                if pvc.get("create"):
                    bad.append(Problem(f"spec.pvcs[{i}].create", "v1beta1 cannot create a PVC from the DGD",
                                       "create the PVC separately (create: false), or render with api='v1alpha1'"))
        else:
            bad.append(_no_equivalent(f"spec.{k}", src, dst))
    if bad:
        raise GraphError(bad)
    return out


def _no_equivalent(path: str, src: str, dst: str) -> Problem:
    return Problem(path, f"{src} field {path.rsplit('.', 1)[-1]!r} has no {dst} equivalent",
                   f"render with api={src!r}, or remove it")

"""The operator's admission rules that can be checked on one manifest at create time: the CRD's
x-kubernetes-validations (read from the CRD and evaluated by cel.py) and the validating webhook's
rules, hand-written here (deploy/operator/internal/webhook/validation, see
shared/notes/dynamo-crds-and-chart.md §4).

Not checkable on a single manifest, and so not checked here: update-only rules (immutable
component set, backendFramework, minAvailable), rules that need the cluster (Grove enabled, the
Grove name budget — it depends on the Grove pathway —, ClusterTopologyBinding domains,
InferencePool API, checkpointing enabled in the operator config).

The webhook rules read the manifest through `_obj`/`_arr`, which turn a value of the wrong shape
into an empty one: a malformed manifest gets its schema errors, never a traceback from here.
"""
from __future__ import annotations

from typing import Any

from ...errors import DynamoIacError, Problem
from ...graph import cmdline
from ...graph.model import SEMVER_TAG_RE, image_tag
from ...graph.quantity import parse_quantity
from .cel import cel_problems

POWER_LIMIT_ANNOTATION = "dynamo.nvidia.com/gpu-power-limit"
GMS_TYPES = ("worker", "prefill", "decode")

_ANNOTATION_VALUES = {
    "nvidia.com/vllm-distributed-executor-backend": ("mp", "ray"),
    "nvidia.com/grove-update-strategy": ("RollingRecreate", "OnDelete"),
    "nvidia.com/dynamo-kube-discovery-mode": ("pod", "container"),
    "nvidia.com/workload-provider": ("component", "grove"),
}
_CEL_ANNOTATIONS = {"nvidia.com/vllm-distributed-executor-backend"}   # a CRD rule on podTemplate annotations


def _obj(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _arr(v: Any) -> list:
    return v if isinstance(v, list) else []


def _image_rule(path: str, image: Any, rvo: Any) -> list[Problem]:
    if not image or not isinstance(image, str):
        return [Problem(path, "the main container has no image (required on create)",
                        "set the image of the container named `main`")]
    tag = image_tag(image)
    if rvo is None and not (tag and SEMVER_TAG_RE.match(tag)):
        what = f"tag {tag!r}" if tag else "no tag"
        return [Problem(path, f"image {image!r} has {what}, which is not semver; the operator rejects it without "
                              f"runtimeVersionOverride", "pin a release tag (e.g. :1.2.0) or set "
                                                         "runtimeVersionOverride: MAJOR.MINOR.PATCH")]
    return []


def _annotations(path: str, ann: Any, skip: set[str] = frozenset()) -> list[Problem]:
    out = []
    ann = _obj(ann)
    for key, allowed in _ANNOTATION_VALUES.items():
        if key in ann and key not in skip and str(ann[key]) not in allowed and str(ann[key]).lower() not in allowed:
            out.append(Problem(f"{path}.{key}", f"invalid value {ann[key]!r}", f"use one of {', '.join(allowed)}"))
    origin = ann.get("nvidia.com/dynamo-operator-origin-version")
    if origin is not None and not SEMVER_TAG_RE.match(str(origin)):
        out.append(Problem(f"{path}.nvidia.com/dynamo-operator-origin-version", f"{origin!r} is not semver",
                           "use MAJOR.MINOR.PATCH"))
    return out


def _component_rules(view: dict) -> list[Problem]:
    """The webhook's per-component rules on an API-neutral view of one component (paths are the
    manifest's own): GPU memory service, failover, elastic EP, the GPU power-limit annotation."""
    out: list[Problem] = []
    gms, failover = view["gms"], view["failover"]
    if gms is not None:
        mode, where = gms
        if mode.lower() == "interpod" and view["backend"] not in (None, "vllm"):
            out.append(Problem(where, f"InterPod GPU memory service needs the vLLM backend, not {view['backend']!r}",
                               "use mode IntraPod, or the vllm backend"))
        if view["type"] not in GMS_TYPES:
            out.append(Problem(where.rsplit(".", 1)[0], f"the GPU memory service runs only on worker, prefill or decode "
                               f"components, not {view['type']!r}", "remove it from this component"))
        elif (view["gpus"] or 0) < 1:
            out.append(Problem(where.rsplit(".", 1)[0], "the GPU memory service needs a GPU limit of at least 1 on "
                               "the main container", "set the main container's nvidia.com/gpu limit"))
    if failover is not None and gms is not None and failover[0].lower() != gms[0].lower():
        out.append(Problem(failover[1], f"failover mode {failover[0]!r} does not match the GPU memory service mode "
                           f"{gms[0]!r}", "use the same mode for both"))
    if "--enable-elastic-ep" in view["tokens"] and not view["explicit_command"]:
        out.append(Problem(f"{view['main']}.command", "vLLM elastic EP (--enable-elastic-ep, run with ray) needs an "
                           "explicit container command", "set the main container's command (e.g. python3 -m dynamo.vllm)"))
    if view["power_limit"] and view["claims"]:
        out.append(Problem(view["power_limit"], f"the {POWER_LIMIT_ANNOTATION} annotation cannot be combined with DRA "
                           f"resource claims ({view['claims']})", "remove the annotation or the resource claims"))
    return out


def _view(p: str, ctype: Any, main_path: str, main: dict, gpus: Any, gms: Any, failover: Any, enabled_flag: bool,
          pod_annotations: list[tuple[str, Any]], claims: list[str], backend: Any) -> dict:
    try:
        tokens = cmdline.tokens(_arr(main.get("command")) or None, _arr(main.get("args")) or None)
    except DynamoIacError:
        tokens = []          # an unparsable script: nothing to read flags from
    tokens = [t for t in tokens if isinstance(t, str)]
    module = next((tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t == "-m"), "")
    detected = module.split(".", 1)[1] if module.startswith("dynamo.") else None

    def mode(v: Any, field: str, default: str) -> tuple[str, str] | None:
        v = _obj(v) if isinstance(v, dict) else None
        if v is None or (enabled_flag and not v.get("enabled")):
            return None
        return str(v.get("mode") or default), f"{p}.{field}.mode"
    default = "intraPod" if enabled_flag else "IntraPod"
    prefix = "" if enabled_flag else "experimental."
    q = parse_quantity(gpus) if gpus is not None else None
    return {"type": ctype, "backend": backend if isinstance(backend, str) else detected,
            "gms": mode(gms, f"{prefix}gpuMemoryService", default),
            "failover": mode(failover, f"{prefix}failover", default),
            "gpus": q, "tokens": tokens, "explicit_command": bool(main.get("command")), "main": main_path,
            "power_limit": next((f"{where}.{POWER_LIMIT_ANNOTATION}" for where, ann in pod_annotations
                                 if POWER_LIMIT_ANNOTATION in _obj(ann)), None),
            "claims": ", ".join(claims)}


def _claims(path: str, pod_spec: dict, containers: list[tuple[str, dict]]) -> list[str]:
    out = [f"{path}.resourceClaims"] if _arr(pod_spec.get("resourceClaims")) else []
    return out + [f"{cp}.resources.claims" for cp, c in containers if _arr(_obj(c.get("resources")).get("claims"))]


def _v1beta1(spec: dict) -> list[Problem]:
    out: list[Problem] = []
    comps = _arr(spec.get("components"))
    if not comps:
        return [Problem("spec.components", "must have at least one component", "add a component")]
    any_topology = False
    for i, c in enumerate(comps):
        p = f"spec.components[{i}]"
        c = _obj(c)
        template = _obj(c.get("podTemplate"))
        pod_spec = _obj(template.get("spec"))
        pod_annotations = _obj(template.get("metadata")).get("annotations")
        if c.get("type") == "epp":
            if not c.get("eppConfig"):
                out.append(Problem(f"{p}.eppConfig", "an epp component needs eppConfig", "set configMapRef or config"))
            if c.get("replicas", 1) != 1 or c.get("multinode"):
                out.append(Problem(p, "an epp component must have exactly 1 replica and not be multinode",
                                   "set replicas: 1 and remove multinode"))
        containers = [_obj(x) for x in _arr(pod_spec.get("containers"))]
        main = [k for k, ct in enumerate(containers) if ct.get("name") == "main"]
        if not main:
            out.append(Problem(f"{p}.podTemplate.spec.containers", "no container named `main`",
                               "add a container named main with the component's image"))
        else:
            k = main[0]
            out += _image_rule(f"{p}.podTemplate.spec.containers[{k}].image", containers[k].get("image"),
                               c.get("runtimeVersionOverride"))
        names = {ct.get("name") for ct in containers if isinstance(ct.get("name"), str)}
        sidecar = c.get("frontendSidecar")
        if sidecar is not None and sidecar not in names:
            out.append(Problem(f"{p}.frontendSidecar", f"{sidecar!r} names no container in podTemplate",
                               f"use one of {', '.join(sorted(names)) or '(none)'}"))
        out += _annotations(f"{p}.podTemplate.metadata.annotations", pod_annotations, skip=_CEL_ANNOTATIONS)
        any_topology = any_topology or bool(c.get("topologyConstraint"))
        k = main[0] if main else 0
        main_c = containers[k] if main else {}
        exp = _obj(c.get("experimental"))
        paths = [(f"{p}.podTemplate.spec.containers[{j}]", ct) for j, ct in enumerate(containers)]
        out += _component_rules(_view(
            p, c.get("type"), f"{p}.podTemplate.spec.containers[{k}]", main_c,
            _obj(_obj(main_c.get("resources")).get("limits")).get("nvidia.com/gpu"),
            exp.get("gpuMemoryService"), exp.get("failover"), False,
            [(f"{p}.podTemplate.metadata.annotations", pod_annotations)],
            _claims(f"{p}.podTemplate.spec", pod_spec, paths), spec.get("backendFramework")))
    if any_topology and not spec.get("topologyConstraint"):
        out.append(Problem("spec.topologyConstraint", "required when a component sets topologyConstraint",
                           "set spec.topologyConstraint (clusterTopologyName, packDomain)"))
    return out


def _quantities(path: str, resources: dict) -> list[Problem]:
    """v1alpha1 resources are plain strings in the CRD; the operator parses them as quantities."""
    out = []
    for section in ("requests", "limits"):
        sec = _obj(resources.get(section))
        values = [(k, sec.get(k)) for k in ("cpu", "memory", "gpu") if k in sec]
        values += [(f"custom.{k}", v) for k, v in _obj(sec.get("custom")).items()]
        for k, v in values:
            if parse_quantity(v) is None:
                out.append(Problem(f"{path}.{section}.{k}", f"{v!r} is not a Kubernetes quantity",
                                   "use a quantity such as '500m', '2' or '16Gi'"))
    return out


def _v1alpha1(spec: dict) -> list[Problem]:
    out: list[Problem] = []
    services = _obj(spec.get("services"))
    if not services:
        return [Problem("spec.services", "must have at least one component", "add a service")]
    any_topology = False
    for name, s in services.items():
        p = f"spec.services.{name}"
        s = _obj(s)
        eps, res = _obj(s.get("extraPodSpec")), _obj(s.get("resources"))
        main = _obj(eps.get("mainContainer"))
        out += _image_rule(f"{p}.extraPodSpec.mainContainer.image", main.get("image"), s.get("runtimeVersionOverride"))
        for j, vm in enumerate(_arr(s.get("volumeMounts"))):
            vm = _obj(vm)
            if not vm.get("useAsCompilationCache") and not vm.get("mountPoint"):
                out.append(Problem(f"{p}.volumeMounts[{j}].mountPoint", "is required unless useAsCompilationCache",
                                   "set mountPoint"))
        ing = _obj(s.get("ingress"))
        if ing.get("enabled") and not ing.get("host"):
            out.append(Problem(f"{p}.ingress.host", "is required when ingress is enabled", "set a host"))
        if s.get("componentType") != "epp" and s.get("eppConfig") is not None:
            out.append(Problem(f"{p}.eppConfig", "eppConfig is only allowed on an epp component", "remove it"))
        out += _annotations(f"{p}.annotations", s.get("annotations"))
        out += _quantities(f"{p}.resources", res)
        any_topology = any_topology or bool(s.get("topologyConstraint"))
        gpus = _obj(res.get("limits")).get("gpu") or _obj(_obj(main.get("resources")).get("limits")).get("nvidia.com/gpu")
        claims = ([f"{p}.resources.claims"] if _arr(res.get("claims")) else []) + _claims(
            f"{p}.extraPodSpec", eps, [(f"{p}.extraPodSpec.mainContainer", main)] +
            [(f"{p}.extraPodSpec.containers[{j}]", _obj(ct)) for j, ct in enumerate(_arr(eps.get("containers")))])
        out += _component_rules(_view(
            p, s.get("subComponentType") or s.get("componentType"), f"{p}.extraPodSpec.mainContainer", main, gpus,
            s.get("gpuMemoryService"), s.get("failover"), True,
            [(f"{p}.extraPodMetadata.annotations", _obj(s.get("extraPodMetadata")).get("annotations")),
             (f"{p}.annotations", s.get("annotations"))], claims, spec.get("backendFramework")))
    if any_topology and not spec.get("topologyConstraint"):
        out.append(Problem("spec.topologyConstraint", "required when a service sets topologyConstraint",
                           "set spec.topologyConstraint (topologyProfile, packDomain)"))
    return out


def admission_problems(obj: dict, schema: dict | None = None, notes: list[str] | None = None) -> list[Problem]:
    """Webhook rules, plus the CRD's CEL rules when its openAPIV3Schema is given."""
    out = cel_problems(obj, schema, notes) if schema is not None else []
    if obj.get("kind") != "DynamoGraphDeployment":
        return out
    spec = _obj(obj.get("spec"))
    out += _annotations("metadata.annotations", _obj(obj.get("metadata")).get("annotations"))
    out += _annotations("spec.annotations", spec.get("annotations"))
    out += _v1beta1(spec) if str(obj.get("apiVersion")).endswith("/v1beta1") else _v1alpha1(spec)
    return out

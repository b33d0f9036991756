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

from ...errors import Problem
from ...graph.model import SEMVER_TAG_RE, image_tag
from .cel import cel_problems

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
        if c.get("type") == "epp":
            if not c.get("eppConfig"):
                out.append(Problem(f"{p}.eppConfig", "an epp component needs eppConfig", "set configMapRef or config"))
            if c.get("replicas", 1) != 1 or c.get("multinode"):
                out.append(Problem(p, "an epp component must have exactly 1 replica and not be multinode",
                                   "set replicas: 1 and remove multinode"))
        containers = [_obj(x) for x in _arr(_obj(template.get("spec")).get("containers"))]
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
        out += _annotations(f"{p}.podTemplate.metadata.annotations", _obj(template.get("metadata")).get("annotations"),
                            skip=_CEL_ANNOTATIONS)
        any_topology = any_topology or bool(c.get("topologyConstraint"))
    if any_topology and not spec.get("topologyConstraint"):
        out.append(Problem("spec.topologyConstraint", "required when a component sets topologyConstraint",
                           "set spec.topologyConstraint (clusterTopologyName, packDomain)"))
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
        main = _obj(_obj(s.get("extraPodSpec")).get("mainContainer"))
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
        any_topology = any_topology or bool(s.get("topologyConstraint"))
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

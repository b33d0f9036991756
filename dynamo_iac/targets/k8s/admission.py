"""The operator's admission rules that can be checked on one manifest at create time: the CRD's
x-kubernetes-validations (hand-translated CEL) and the validating webhook's rules
(deploy/operator/internal/webhook/validation, see shared/notes/dynamo-crds-and-chart.md §4).

Not checkable on a single manifest, and so not checked here: update-only rules (immutable
component set, backendFramework, minAvailable), rules that need the cluster (Grove enabled, the
Grove name budget — it depends on the Grove pathway —, ClusterTopologyBinding domains,
InferencePool API, checkpointing enabled in the operator config).
"""
from __future__ import annotations

import re
from typing import Any

from ...errors import Problem

SEMVER_TAG = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
MAX_COMPONENTS = 25
_ANNOTATION_VALUES = {
    "nvidia.com/vllm-distributed-executor-backend": ("mp", "ray"),
    "nvidia.com/grove-update-strategy": ("RollingRecreate", "OnDelete"),
    "nvidia.com/dynamo-kube-discovery-mode": ("pod", "container"),
    "nvidia.com/workload-provider": ("component", "grove"),
}


def _tag(image: str) -> str | None:
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def _image_rule(path: str, image: Any, rvo: Any) -> list[Problem]:
    if not image or not isinstance(image, str):
        return [Problem(path, "the main container has no image (required on create)",
                        "set the image of the container named `main`")]
    tag = _tag(image)
    if rvo is None and not (tag and SEMVER_TAG.match(tag)):
        what = f"tag {tag!r}" if tag else "no tag"
        return [Problem(path, f"image {image!r} has {what}, which is not semver; the operator rejects it without "
                              f"runtimeVersionOverride", "pin a release tag (e.g. :1.2.0) or set "
                                                         "runtimeVersionOverride: MAJOR.MINOR.PATCH")]
    return []


def _annotations(path: str, ann: Any) -> list[Problem]:
    out = []
    if not isinstance(ann, dict):
        return out
    for key, allowed in _ANNOTATION_VALUES.items():
        if key in ann and str(ann[key]) not in allowed and str(ann[key]).lower() not in allowed:
            out.append(Problem(f"{path}.{key}", f"invalid value {ann[key]!r}", f"use one of {', '.join(allowed)}"))
    origin = ann.get("nvidia.com/dynamo-operator-origin-version")
    if origin is not None and not SEMVER_TAG.match(str(origin)):
        out.append(Problem(f"{path}.nvidia.com/dynamo-operator-origin-version", f"{origin!r} is not semver",
                           "use MAJOR.MINOR.PATCH"))
    return out


def _common_component(path: str, c: dict, replicas_path: str) -> list[Problem]:
    out = []
    reps = c.get("replicas")
    mina = c.get("minAvailable")
    if mina is not None and reps != 0 and mina > (reps if reps is not None else 1):
        out.append(Problem(f"{path}.minAvailable", f"minAvailable {mina} exceeds replicas {reps if reps is not None else 1}",
                           "lower minAvailable or raise replicas"))
    return out


def _v1beta1(spec: dict) -> list[Problem]:
    out: list[Problem] = []
    comps = spec.get("components") or []
    if not comps:
        return [Problem("spec.components", "must have at least one component", "add a component")]
    if len(comps) > MAX_COMPONENTS:
        out.append(Problem("spec.components", f"{len(comps)} components; at most {MAX_COMPONENTS} are allowed",
                           "merge components (raise replicas)"))
    seen: dict[str, int] = {}
    epps = 0
    any_topology = False
    for i, c in enumerate(comps):
        p = f"spec.components[{i}]"
        name = str(c.get("name", ""))
        if name.lower() in seen:
            out.append(Problem(f"{p}.name", f"{name!r} duplicates components[{seen[name.lower()]}] (names are "
                                            "case-insensitive)", "rename one of them"))
        seen.setdefault(name.lower(), i)
        ctype = c.get("type")
        if ctype == "epp":
            epps += 1
            if not c.get("eppConfig"):
                out.append(Problem(f"{p}.eppConfig", "an epp component needs eppConfig", "set configMapRef or config"))
            if c.get("replicas", 1) != 1 or c.get("multinode"):
                out.append(Problem(p, "an epp component must have exactly 1 replica and not be multinode",
                                   "set replicas: 1 and remove multinode"))
        elif c.get("eppConfig") is not None:
            out.append(Problem(f"{p}.eppConfig", "eppConfig is only allowed on type: epp", "remove it"))
        ec = c.get("eppConfig")
        if isinstance(ec, dict) and ("configMapRef" in ec) == ("config" in ec):
            out.append(Problem(f"{p}.eppConfig", "exactly one of configMapRef and config must be set", "keep one"))
        containers = ((c.get("podTemplate") or {}).get("spec") or {}).get("containers") or []
        main = [k for k, ct in enumerate(containers) if isinstance(ct, dict) and ct.get("name") == "main"]
        if not main:
            out.append(Problem(f"{p}.podTemplate.spec.containers", "no container named `main`",
                               "add a container named main with the component's image"))
        else:
            k = main[0]
            out += _image_rule(f"{p}.podTemplate.spec.containers[{k}].image", containers[k].get("image"),
                               c.get("runtimeVersionOverride"))
        names = {ct.get("name") for ct in containers if isinstance(ct, dict)}
        sidecar = c.get("frontendSidecar")
        if sidecar is not None and sidecar not in names:
            out.append(Problem(f"{p}.frontendSidecar", f"{sidecar!r} names no container in podTemplate",
                               f"use one of {', '.join(sorted(n for n in names if n))}"))
        out += _common_component(p, c, f"{p}.replicas")
        out += _annotations(f"{p}.podTemplate.metadata.annotations",
                            ((c.get("podTemplate") or {}).get("metadata") or {}).get("annotations"))
        any_topology = any_topology or bool(c.get("topologyConstraint"))
    if epps > 1:
        out.append(Problem("spec.components", f"{epps} epp components; at most one is allowed", "keep one epp"))
    if any_topology and not spec.get("topologyConstraint"):
        out.append(Problem("spec.topologyConstraint", "required when a component sets topologyConstraint",
                           "set spec.topologyConstraint (clusterTopologyName, packDomain)"))
    return out


def _v1alpha1(spec: dict) -> list[Problem]:
    out: list[Problem] = []
    services = spec.get("services") or {}
    if not services:
        return [Problem("spec.services", "must have at least one component", "add a service")]
    if len(services) > MAX_COMPONENTS:
        out.append(Problem("spec.services", f"{len(services)} services; at most {MAX_COMPONENTS} are allowed",
                           "merge services (raise replicas)"))
    for i, pvc in enumerate(spec.get("pvcs") or []):
        if not pvc.get("name"):
            out.append(Problem(f"spec.pvcs[{i}].name", "is required", "name the PVC"))
        if pvc.get("create") and not all(pvc.get(k) for k in ("size", "storageClass", "volumeAccessMode")):
            out.append(Problem(f"spec.pvcs[{i}]", "create: true needs size, storageClass and volumeAccessMode",
                               "set all three, or create: false for an existing PVC"))
    any_topology = False
    for name, s in services.items():
        p = f"spec.services.{name}"
        main = (s.get("extraPodSpec") or {}).get("mainContainer") or {}
        out += _image_rule(f"{p}.extraPodSpec.mainContainer.image", main.get("image"), s.get("runtimeVersionOverride"))
        for j, vm in enumerate(s.get("volumeMounts") or []):
            if not vm.get("useAsCompilationCache") and not vm.get("mountPoint"):
                out.append(Problem(f"{p}.volumeMounts[{j}].mountPoint", "is required unless useAsCompilationCache",
                                   "set mountPoint"))
        ing = s.get("ingress") or {}
        if ing.get("enabled") and not ing.get("host"):
            out.append(Problem(f"{p}.ingress.host", "is required when ingress is enabled", "set a host"))
        shm = s.get("sharedMemory")
        if isinstance(shm, dict) and not shm.get("disabled") and not shm.get("size"):
            out.append(Problem(f"{p}.sharedMemory.size", "is required unless disabled", "set a size such as 8Gi"))
        if s.get("componentType") != "epp" and s.get("eppConfig") is not None:
            out.append(Problem(f"{p}.eppConfig", "eppConfig is only allowed on an epp component", "remove it"))
        out += _common_component(p, s, f"{p}.replicas")
        out += _annotations(f"{p}.annotations", s.get("annotations"))
        any_topology = any_topology or bool(s.get("topologyConstraint"))
    if any_topology and not spec.get("topologyConstraint"):
        out.append(Problem("spec.topologyConstraint", "required when a service sets topologyConstraint",
                           "set spec.topologyConstraint (topologyProfile, packDomain)"))
    return out


def admission_problems(obj: dict) -> list[Problem]:
    if obj.get("kind") != "DynamoGraphDeployment":
        return []
    spec = obj.get("spec") or {}
    out: list[Problem] = []
    if spec.get("restart") is not None:
        out.append(Problem("spec.restart", "must be unset when the deployment is created",
                           "remove it; set restart.id later to trigger a restart"))
    out += _annotations("metadata.annotations", (obj.get("metadata") or {}).get("annotations"))
    out += _annotations("spec.annotations", spec.get("annotations"))
    if obj["apiVersion"].endswith("/v1beta1"):
        out += _v1beta1(spec)
    else:
        out += _v1alpha1(spec)
    return out

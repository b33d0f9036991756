"""Kubernetes objects other than the DGD: workloads (their pod templates), Helm releases, PVCs,
StorageClasses and Secrets, read from resource inputs."""
from __future__ import annotations

import re
from typing import Iterator

from .model import Resource, StackView
from .values import Obj, as_arr, as_obj

RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
NAMESPACE = "kubernetes:core/v1:Namespace"
# workload type → where its pod spec is
POD_SPEC_PATHS = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
}
WORKLOAD_TYPES = tuple(POD_SPEC_PATHS)


def pod_spec(r: Resource) -> Obj | None:
    path = POD_SPEC_PATHS.get(r.type)
    if path is None:
        return None
    spec = r.props.dig(*path)
    return spec if isinstance(spec, Obj) else None


def containers(spec: Obj) -> Iterator[Obj]:
    for key in ("initContainers", "containers"):
        for c in as_arr(spec.peek(key), f"{spec.path}.{key}").known():
            if isinstance(c, Obj):
                yield c


def metadata_name(r: Resource) -> str:
    n = as_obj(r.props.peek("metadata")).peek("name")
    return n if isinstance(n, str) else r.name


def namespace_of(r: Resource) -> str | None:
    ns = as_obj(r.props.peek("metadata")).peek("namespace")
    return ns if isinstance(ns, str) else None


# ------------------------------------------------------------------------------------ helm
_VERSIONED_TGZ = re.compile(r"^(?P<name>.+?)-v?\d+\.\d+\.\d+[^/]*\.tgz$")


def chart_name(r: Resource) -> str | None:
    """The chart's name: "dynamo-platform" for `dynamo-platform`, `repo/dynamo-platform`,
    `oci://…/dynamo-platform` or `https://…/dynamo-platform-1.2.0.tgz`."""
    c = r.props.peek("chart")
    if not isinstance(c, str) or not c:
        return None
    last = c.rstrip("/").rsplit("/", 1)[-1]
    m = _VERSIONED_TGZ.match(last)
    if m:
        return m.group("name")
    return last.removesuffix(".tgz")


def chart_version(r: Resource) -> str | None:
    v = r.props.peek("version")
    if isinstance(v, str) and v:
        return v.lstrip("v")
    c = r.props.peek("chart")
    if isinstance(c, str):
        m = re.search(r"-v?(\d+\.\d+\.\d+[^/]*)\.tgz$", c)
        if m:
            return m.group(1)
    return None


def values(r: Resource) -> Obj:
    return as_obj(r.props.peek("values"), "values")


def releases(stack: StackView, chart: str) -> list[Resource]:
    return [r for r in stack.of_type(RELEASE) if chart_name(r) == chart]


def value_at(r: Resource, dotted: str) -> object:
    """A Helm value by dotted path ("global.grove.install"); None when unset or unknown."""
    cur: object = values(r)
    for part in dotted.split("."):
        if not isinstance(cur, Obj):
            return None
        cur = cur.peek(part)
    return cur

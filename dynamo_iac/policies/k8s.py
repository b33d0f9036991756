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


# ------------------------------------------------------------------------------------ Helm values images
# keys whose string value is a whole image reference: `image`, and `cleanupImage`-style names
_IMAGE_KEY = re.compile(r"^(image|[a-z][A-Za-z0-9]*Image)$")
CHART_DEFAULT_REPOSITORY = "<the chart's repository>"


def _scalar(v: object) -> str | None:
    """A tag-like value as a string (YAML reads `tag: 1.2` as a number); None when unset or unknown."""
    if isinstance(v, bool) or v is None or v == "":
        return None
    return str(v) if isinstance(v, (str, int, float)) else None


def _image_map(o: dict, key: str | None) -> tuple[str, bool] | None:
    """(reference, tag left to the chart) of a repository/tag map — `{repository, tag}` (Dynamo
    operator), `{repository, image, version}` (GPU / Network Operator), or an `image:` map that
    only overrides the tag — or None when `o` is not one."""
    repo = o.get("repository")
    tag = _scalar(o.get("tag")) or _scalar(o.get("version"))
    digest = _scalar(o.get("digest"))
    is_image_key = key is not None and _IMAGE_KEY.match(key) is not None
    if not (isinstance(repo, str) and repo) and not (is_image_key and (tag or digest)):
        return None
    parts = [p for p in (o.get("registry"), repo, o.get("image")) if isinstance(p, str) and p]
    ref = "/".join(parts) or CHART_DEFAULT_REPOSITORY
    last = ref.rsplit("/", 1)[-1]
    if tag:
        ref += f":{tag}"
    if digest:
        ref += f"@{digest}"
    return ref, not tag and not digest and ":" not in last


def helm_images(r: Resource) -> Iterator[tuple[str, str, bool]]:
    """(values path, image reference, tag left to the chart) of every image a release's values
    set: `image: repo:tag` strings and repository/tag maps. A map without a tag keeps the chart's
    default tag, which the chart version pins."""
    from .values import plain

    def walk(o: object, path: str, key: str | None) -> Iterator[tuple[str, str, bool]]:
        if isinstance(o, list):
            for i, v in enumerate(o):
                yield from walk(v, f"{path}[{i}]", None)
            return
        if not isinstance(o, dict):
            return
        spec = _image_map(o, key)
        if spec is not None:
            yield (path, *spec)
        for k in sorted(o, key=str):
            v = o[k]
            if isinstance(v, str) and v and spec is None and _IMAGE_KEY.match(str(k)):
                yield f"{path}.{k}", v, False
            else:
                yield from walk(v, f"{path}.{k}", str(k))

    yield from walk(plain(r.props.peek("values")), "values", None)

"""Helpers shared by the rule modules."""
from __future__ import annotations

import json
from typing import Any, Iterator

from ..dgd import DGD_TYPES, Component, Dgd, is_dgd, view
from ..k8s import WORKLOAD_TYPES, containers, pod_spec
from ..model import Resource, StackView
from ..values import Obj, flag_value
from ..facts import fabric_of_resource, is_rdma_resource

__all__ = ["DGD_TYPES", "WORKLOAD_TYPES", "dgds", "rdma_fabrics", "kv_backends", "where", "images_of",
           "short"]


def dgds(stack: StackView) -> list[Dgd]:
    return [view(r) for r in stack.resources if is_dgd(r)]


def rdma_fabrics(c: Component) -> dict[str, list[str]]:
    """fabric kind → the RDMA resources the component requests."""
    out: dict[str, list[str]] = {}
    for k in sorted(c.requested_resources()):
        if is_rdma_resource(k) and not k.endswith(".IP"):
            out.setdefault(fabric_of_resource(k) or "rdma", []).append(k)
    return out


def kv_backends(c: Component, engine: str | None) -> list[str] | None:
    """The NIXL backends the worker selects for KV transfer; None when it selects none (default UCX)."""
    from ..facts import NIXL_BACKEND_ENV

    if engine == "vllm":
        cfg = flag_value(c.tokens, "--kv-transfer-config")
        if cfg is None:
            return None
        try:
            doc = json.loads(cfg)
        except json.JSONDecodeError:
            return None
        backends = (doc.get("kv_connector_extra_config") or {}).get("backends") if isinstance(doc, dict) else None
        return [str(b).upper() for b in backends] if isinstance(backends, list) else None
    env = NIXL_BACKEND_ENV.get(engine or "")
    if env:
        v = c.env_literal(env)
        return [v.upper()] if v else None
    return None


def vllm_kv_config(c: Component) -> dict[str, Any] | None:
    cfg = flag_value(c.tokens, "--kv-transfer-config")
    if cfg is None:
        return None
    try:
        doc = json.loads(cfg)
    except json.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def where(d: Dgd, c: Component | None = None) -> str:
    return f"DGD {d.name}" + (f" component {c.name}" if c else "")


def images_of(r: Resource) -> Iterator[tuple[str, str, Any, Obj | None]]:
    """(who, path, image, component-raw or None) of every container image in a DGD or workload;
    the component is given for a DGD's main container (whose image the operator's webhook checks)."""
    from ..k8s import metadata_name

    if is_dgd(r):
        d = view(r)
        for c in d.components:
            for path, cont in c.containers:
                yield where(d, c), f"{path}.image", cont.peek("image"), (c.raw if cont is c.main else None)
    elif r.type in WORKLOAD_TYPES:
        spec = pod_spec(r)
        if spec is not None:
            kind = r.type.rsplit(":", 1)[-1]
            for cont in containers(spec):
                yield f"{kind} {metadata_name(r)}", f"{cont.path}.image", cont.peek("image"), None


def short(urn: str) -> str:
    """type::name of a URN, for messages."""
    parts = urn.split("::")
    return parts[-1] if parts else urn

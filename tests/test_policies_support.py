"""Builders shared by the policy tests (no tests here): resources as the offline engine records
them, DGDs rendered by the real renderer in either API version, and a one-rule runner."""
from __future__ import annotations

import copy
from typing import Any

from dynamo_iac.graph.model import DynamoGraph, Frontend, Model, ModelCache, Parallelism, Planner, Worker
from dynamo_iac.policies.model import Resource, StackView
from dynamo_iac.policies.rules import rule
from dynamo_iac.policies.runner import evaluate
from dynamo_iac.policies.settings import PolicySettings
from dynamo_iac.policies.values import Obj
from dynamo_iac.targets.k8s.overlay import FabricOverlay, RenderTarget

STACK, PROJECT = "test", "dynamo-iac"
POOL_SELECTOR = (("dynamo-iac/pool", "h100"),)
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}

# What a correct fabric overlay adds (test data; the product derives it from the catalog)
EFA = FabricOverlay(kind="efa", env=(("FI_PROVIDER", "efa"), ("FI_EFA_USE_DEVICE_RDMA", "1")),
                    kv_backends=("LIBFABRIC",), resources=(("vpc.amazonaws.com/efa", "16"),),
                    capabilities=("IPC_LOCK",), privileged=True, image_variant="efa",
                    separate_prefill_decode_nodes=True)
IB = FabricOverlay(kind="infiniband", env=(("UCX_NET_DEVICES", "mlx5_0:1,mlx5_1:1"), ("UCX_IB_GPU_DIRECT_RDMA", "yes")),
                   kv_backends=("UCX",), resources=(("rdma/shared_ib", "1"),), capabilities=("IPC_LOCK",),
                   volumes=({"name": "ib", "hostPath": {"path": "/dev/infiniband"}},),
                   volume_mounts=({"name": "ib", "mountPath": "/dev/infiniband"},))


def urn(type_: str, name: str, parent_type: str | None = None) -> str:
    t = f"{parent_type}${type_}" if parent_type else type_
    return f"urn:pulumi:{STACK}::{PROJECT}::{t}::{name}"


def res(type_: str, name: str, props: dict[str, Any], parent_type: str | None = None, **kw: Any) -> Resource:
    """A resource as the offline engine records it (retainOnDelete and secret inputs visible)."""
    kw.setdefault("retain_on_delete", False)
    kw.setdefault("secret_paths", ())
    return Resource(urn=urn(type_, name, parent_type), type=type_, name=name, props=Obj(props), **kw)


# ------------------------------------------------------------------------------------ graphs
def disagg(backend: str = "vllm", tp: int = 4, **kw: Any) -> DynamoGraph:
    return DynamoGraph(name=kw.pop("name", "qwen"), backend=backend, model=Model("Qwen/Qwen3-32B", cache=ModelCache()),
                       frontend=Frontend(router_mode="kv"),
                       workers=[Worker(role="prefill", parallelism=Parallelism(tp=tp)),
                                Worker(role="decode", parallelism=Parallelism(tp=tp))], **kw)


def agg(backend: str = "vllm", tp: int = 2, replicas: int = 2, **kw: Any) -> DynamoGraph:
    return DynamoGraph(name=kw.pop("name", "small"), backend=backend, model=Model("Qwen/Qwen3-8B", cache=ModelCache()),
                       workers=[Worker(role="agg", replicas=replicas, parallelism=Parallelism(tp=tp))], **kw)


def with_planner(g: DynamoGraph) -> DynamoGraph:
    return g.model_copy(update={"planner": Planner()})


def render(graph: DynamoGraph, api: str = "v1beta1", overlay: FabricOverlay | None = None, gpus_per_node: int = 8,
           shm: str | None = "16Gi") -> dict[str, Any]:
    """The graph's DGD as DynamoDeployment would render it on a pool (node selector, GPU
    toleration, fabric overlay), with the engine's shared memory set on GPU workers."""
    target = RenderTarget(gpus_per_node=gpus_per_node, overlay=overlay or FabricOverlay(),
                          node_selector=POOL_SELECTOR, gpu_toleration=True)
    doc = copy.deepcopy(graph.to_dgd(api, target))
    if shm:
        for name in worker_names(doc):
            c = comp(doc, name)
            if api == "v1beta1":
                c["sharedMemorySize"] = shm
            else:
                c["sharedMemory"] = {"size": shm}
    return doc


def api_of(doc: dict) -> str:
    return doc["apiVersion"].rsplit("/", 1)[-1]


def worker_names(doc: dict) -> list[str]:
    if api_of(doc) == "v1beta1":
        return [c["name"] for c in doc["spec"]["components"] if c["type"] in ("worker", "prefill", "decode")]
    return [n for n, s in doc["spec"]["services"].items() if s["componentType"] == "worker"]


def comp(doc: dict, name: str) -> dict:
    if api_of(doc) == "v1beta1":
        return next(c for c in doc["spec"]["components"] if c["name"] == name)
    return doc["spec"]["services"][name]


def pod(doc: dict, name: str) -> dict:
    c = comp(doc, name)
    if api_of(doc) == "v1beta1":
        return c.setdefault("podTemplate", {}).setdefault("spec", {})
    return c.setdefault("extraPodSpec", {})


def main(doc: dict, name: str) -> dict:
    if api_of(doc) == "v1beta1":
        return next(c for c in pod(doc, name)["containers"] if c["name"] == "main")
    return pod(doc, name).setdefault("mainContainer", {})


def set_env(doc: dict, name: str, key: str, value: str | None) -> None:
    """Set (or with None remove) one env var of a component's main container."""
    env = main(doc, name).setdefault("env", [])
    env[:] = [e for e in env if e["name"] != key]
    if value is not None:
        env.append({"name": key, "value": value})


def set_limit(doc: dict, name: str, key: str, value: str | None) -> None:
    """Set (or remove) a resource limit+request of a component, in the API's own layout."""
    if api_of(doc) == "v1beta1":
        r = main(doc, name).setdefault("resources", {})
        for sec in ("limits", "requests"):
            d = r.setdefault(sec, {})
            d.pop(key, None) if value is None else d.__setitem__(key, value)
    else:
        r = comp(doc, name).setdefault("resources", {})
        for sec in ("limits", "requests"):
            d = r.setdefault(sec, {})
            if key == "nvidia.com/gpu":
                d.pop("gpu", None) if value is None else d.__setitem__("gpu", value)
            else:
                cu = d.setdefault("custom", {})
                cu.pop(key, None) if value is None else cu.__setitem__(key, value)


def dgd(doc: dict, name: str | None = None) -> Resource:
    api = api_of(doc)
    return res(f"kubernetes:nvidia.com/{api}:DynamoGraphDeployment", name or doc["metadata"]["name"], doc,
               parent_type="dynamo:index:DynamoDeployment")


def dgd_urn(doc: dict, name: str | None = None) -> str:
    return urn(f"kubernetes:nvidia.com/{api_of(doc)}:DynamoGraphDeployment", name or doc["metadata"]["name"],
               "dynamo:index:DynamoDeployment")


# ------------------------------------------------------------------------------------ running
def run(rule_name: str, *resources: Resource, outputs: dict | None = None, config: dict | None = None,
        config_secure: frozenset[str] | None = None, settings: dict | None = None) -> list[tuple[str, str, str]]:
    """(rule, urn, message) of every violation of one rule over the given resources."""
    r = rule(rule_name)
    s = PolicySettings.parse({rule_name: settings} if settings else {}, "test", [r])
    report = evaluate(StackView(list(resources), outputs=outputs, config=config, config_secure=config_secure),
                      s, rules=[r])
    return [(v.rule, v.urn, v.message) for v in report.violations]


def skipped(rule_name: str, *resources: Resource, **kw: Any) -> list[str]:
    r = rule(rule_name)
    report = evaluate(StackView(list(resources), **kw), PolicySettings(), rules=[r])
    return [s.reason for s in report.skipped]

"""The upstream AWS p5 recipe's graph, written as a plain DynamoGraph (nothing AWS-specific),
rendered on a p5.48xlarge pool: every fabric-related resource, env var, volume and security
setting equals the upstream manifest."""
from __future__ import annotations

import json

import pytest
import yaml

from conftest import EXAMPLES, needs_shared
from dynamo_iac.graph import DynamoGraph, Frontend, Model, ModelCache, Parallelism, Worker
from dynamo_iac.hardware.catalog import load
from dynamo_iac.hardware.pool import GpuPool
from dynamo_iac.targets.k8s.overlay import RenderTarget

pytestmark = [pytest.mark.conformance, needs_shared]
RECIPE = "recipes__qwen3-32b__vllm__cloud-providers__deploy-aws-p5.48xlarge.yaml"
FABRIC_ENV = ("FI_", "DYN_KVBM_NIXL_", "UCX_", "NCCL_SOCKET_IFNAME", "NCCL_CROSS_NIC")


def qwen3_graph() -> DynamoGraph:
    """The recipe's serving graph, cloud-neutral."""
    return DynamoGraph(
        name="q32b-1p1d-cloud-provider", backend="vllm", dynamo_version="1.1.1",
        model=Model("Qwen/Qwen3-32B", dtype="bf16", params_b=32.8, cache=ModelCache(pvc="model-cache")),
        frontend=Frontend(router_mode="round-robin"),
        workers=[Worker(role="prefill", name="PrefillWorker", parallelism=Parallelism(tp=4)),
                 Worker(role="decode", name="DecodeWorker", parallelism=Parallelism(tp=4))])


def _view(main: dict, pod: dict, custom: dict, gpu: str | None) -> dict:
    env = {e["name"]: e["value"] for e in main.get("env", []) if e["name"].startswith(FABRIC_ENV)}
    kv = [e["value"] for e in main.get("env", []) if e["name"] == "KV_TRANSFER_CONFIG"]
    args = " ".join(main.get("args", []))
    if not kv and "--kv-transfer-config" in main.get("args", []):
        kv = [main["args"][main["args"].index("--kv-transfer-config") + 1]]
    backends = json.loads(kv[0]).get("kv_connector_extra_config", {}).get("backends") if kv else None
    # the whole securityContext: capabilities, privileged, runAsUser — every security setting
    return {"env": env, "backends": backends, "custom": custom, "security": main.get("securityContext", {}),
            "image": main["image"], "gpu": gpu, "hostpath_volumes": [v for v in pod.get("volumes", []) if "hostPath" in v],
            "args_present": bool(args)}


def fabric_view(service: dict) -> dict:
    """The fabric-related parts of a v1alpha1 worker service."""
    res = service.get("resources", {})
    custom = {s: {k: v for k, v in (res.get(s, {}).get("custom") or {}).items() if k != "ephemeral-storage"}
              for s in ("limits", "requests")}
    return _view(service["extraPodSpec"]["mainContainer"], service["extraPodSpec"], custom,
                 res.get("limits", {}).get("gpu"))


def fabric_view_v1beta1(component: dict) -> dict:
    """The same view of a v1beta1 component (podTemplate with plain Kubernetes resources)."""
    pod = component["podTemplate"]["spec"]
    main = pod["containers"][0]
    res = main.get("resources", {})
    custom = {s: {k: v for k, v in res.get(s, {}).items() if k not in ("nvidia.com/gpu", "ephemeral-storage")}
              for s in ("limits", "requests")}
    return _view(main, pod, custom, res.get("limits", {}).get("nvidia.com/gpu"))


def components(dgd: dict) -> dict:
    return {c["name"]: c for c in dgd["spec"]["components"]}


def test_aws_p5_overlay_equals_upstream_recipe():
    upstream = yaml.safe_load((EXAMPLES / RECIPE).read_text())
    pool = GpuPool(name="h100", instance_type="p5.48xlarge", nodes=2, zones=["us-east-1a"])
    ours = qwen3_graph().to_dgd("v1alpha1", target=RenderTarget.for_pool(pool, load().get("p5.48xlarge")))
    beta = components(qwen3_graph().to_dgd("v1beta1", target=RenderTarget.for_pool(pool, load().get("p5.48xlarge"),
                                                                                    cloud="aws")))
    for name in ("PrefillWorker", "DecodeWorker"):
        b = fabric_view(upstream["spec"]["services"][name])
        a = fabric_view(ours["spec"]["services"][name])
        assert a == b, name
        # v1beta1 (DynamoDeployment's default) carries the same fabric
        assert fabric_view_v1beta1(beta[name]) == b, name
        assert a["custom"]["limits"] == {"vpc.amazonaws.com/efa": "16"}
        assert a["backends"] == ["LIBFABRIC"]
        assert a["security"] == {"capabilities": {"add": ["IPC_LOCK", "SYS_PTRACE"]}, "privileged": True,
                                 "runAsUser": 0}
    # the frontend gets no fabric
    fe = ours["spec"]["services"]["Frontend"]
    assert "custom" not in fe.get("resources", {}).get("limits", {})
    assert "securityContext" not in fe["extraPodSpec"]["mainContainer"]


def test_aws_overlay_keeps_prefill_and_decode_apart_in_v1beta1():
    pool = GpuPool(name="h100", instance_type="p5.48xlarge", nodes=2, zones=["us-east-1a"])
    dgd = qwen3_graph().to_dgd("v1beta1", target=RenderTarget.for_pool(pool, load().get("p5.48xlarge")))
    comps = {c["name"]: c for c in dgd["spec"]["components"]}
    spec = comps["PrefillWorker"]["podTemplate"]["spec"]
    anti = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    assert {"key": "nvidia.com/dynamo-component", "operator": "In", "values": ["DecodeWorker"]} in \
        anti["labelSelector"]["matchExpressions"]
    assert spec["nodeSelector"] == {"dynamo-iac/pool": "h100"}
    main = spec["containers"][0]
    assert main["resources"]["limits"] == {"nvidia.com/gpu": "4", "vpc.amazonaws.com/efa": "16"}
    assert main["image"].endswith("vllm-runtime:1.1.1-efa-amd64")


def test_same_graph_without_fabric_has_no_overlay():
    pool = GpuPool(name="l40s", instance_type="g6e.12xlarge", nodes=2)
    dgd = qwen3_graph().to_dgd("v1beta1", target=RenderTarget.for_pool(pool, load().get("g6e.12xlarge")))
    main = dgd["spec"]["components"][1]["podTemplate"]["spec"]["containers"][0]
    assert main["resources"]["limits"] == {"nvidia.com/gpu": "4"}
    assert "securityContext" not in main and not any(e["name"].startswith("FI_") for e in main.get("env", []))

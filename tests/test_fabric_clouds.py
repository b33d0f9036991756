"""The one cloud-neutral graph of the AWS recipe, deployed on an ND96isr_H100_v5 pool and on an
a3-ultragpu-8g pool, renders DGDs equal to the upstream AKS-IB and GKE-RoCE manifests in every
fabric-related resource, env var, volume, annotation and security setting."""
from __future__ import annotations

import json

import pytest
import yaml

from conftest import EXAMPLES, needs_shared
from dynamo_iac.hardware.catalog import load
from dynamo_iac.hardware.pool import GpuPool
from dynamo_iac.targets.k8s.overlay import RenderTarget
from test_fabric_aws import fabric_view, qwen3_graph

pytestmark = [pytest.mark.conformance, needs_shared]
CASES = [
    ("Standard_ND96isr_H100_v5", "recipes__qwen3-32b__vllm__cloud-providers__deploy-aks-ib.yaml", []),
    ("a3-ultragpu-8g", "recipes__qwen3-32b__vllm__cloud-providers__deploy-gke-roce.yaml", ["us-central1-b"]),
]


def full_fabric_view(service: dict) -> dict:
    view = fabric_view(service)
    view.pop("image")        # upstream pins 1.1.1 plain images here; the release table decides ours
    # upstream's base recipe runs every provider's workers privileged; IB and RoCE need only IPC_LOCK
    # (the device plugin / GKE inject the RDMA devices), so that one is not a fabric setting here
    view.pop("privileged")
    pod = service["extraPodSpec"]
    view["tolerations"] = sorted(json.dumps(t, sort_keys=True) for t in pod.get("tolerations", []))
    view["mounts"] = sorted(m["mountPath"] for m in pod["mainContainer"].get("volumeMounts", [])
                            if m["name"] != "model-cache")
    ann = (service.get("extraPodMetadata") or {}).get("annotations", {})
    view["annotations"] = {k: v for k, v in ann.items() if k.startswith("networking.gke.io")}
    return view


@pytest.mark.parametrize("instance,recipe,zones", CASES)
def test_same_graph_matches_upstream_fabric(instance, recipe, zones):
    upstream = yaml.safe_load((EXAMPLES / recipe).read_text())
    pool = GpuPool(name="gpu", instance_type=instance, nodes=2, zones=zones)
    ours = qwen3_graph().to_dgd("v1alpha1", target=RenderTarget.for_pool(pool, load().get(instance)))
    for name in ("PrefillWorker", "DecodeWorker"):
        a = full_fabric_view(ours["spec"]["services"][name])
        b = full_fabric_view(upstream["spec"]["services"][name])
        assert a == b, name

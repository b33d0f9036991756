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
from test_fabric_aws import components, fabric_view, fabric_view_v1beta1, qwen3_graph

pytestmark = [pytest.mark.conformance, needs_shared]
CASES = [
    ("azure", "Standard_ND96isr_H100_v5", "recipes__qwen3-32b__vllm__cloud-providers__deploy-aks-ib.yaml", []),
    ("gcp", "a3-ultragpu-8g", "recipes__qwen3-32b__vllm__cloud-providers__deploy-gke-roce.yaml", ["us-central1-b"]),
]
RDMA_SECURITY = {"capabilities": {"add": ["IPC_LOCK", "SYS_PTRACE"]}, "privileged": True, "runAsUser": 0}


def _extra(view: dict, main: dict, pod: dict, annotations: dict) -> dict:
    view.pop("image")        # upstream pins 1.1.1 plain images here; the release table decides ours
    view["tolerations"] = sorted(json.dumps(t, sort_keys=True) for t in pod.get("tolerations", []))
    view["mounts"] = sorted(m["mountPath"] for m in main.get("volumeMounts", []) if m["name"] != "model-cache")
    view["annotations"] = {k: v for k, v in annotations.items() if k.startswith("networking.gke.io")}
    # Not compared: GKE upstream's imagePullSecrets [nvcr-pull-secret]. It is a registry credential
    # of the user's NGC account (the public nvcr.io Dynamo images need none), not a fact of the
    # RoCE fabric, so no fabric overlay sets it (FabricOverlay.image_pull_secrets stays empty).
    return view


def full_fabric_view(service: dict) -> dict:
    pod = service["extraPodSpec"]
    return _extra(fabric_view(service), pod["mainContainer"], pod,
                  (service.get("extraPodMetadata") or {}).get("annotations", {}))


def full_fabric_view_v1beta1(component: dict) -> dict:
    pod = component["podTemplate"]["spec"]
    return _extra(fabric_view_v1beta1(component), pod["containers"][0], pod,
                  (component["podTemplate"].get("metadata") or {}).get("annotations", {}))


@pytest.mark.parametrize("cloud,instance,recipe,zones", CASES)
def test_same_graph_matches_upstream_fabric(cloud, instance, recipe, zones):
    upstream = yaml.safe_load((EXAMPLES / recipe).read_text())
    pool = GpuPool(name="gpu", instance_type=instance, nodes=2, zones=zones)
    target = RenderTarget.for_pool(pool, load().get(instance), cloud=cloud)
    ours = qwen3_graph().to_dgd("v1alpha1", target=target)
    beta = components(qwen3_graph().to_dgd("v1beta1", target=target))
    for name in ("PrefillWorker", "DecodeWorker"):
        b = full_fabric_view(upstream["spec"]["services"][name])
        assert full_fabric_view(ours["spec"]["services"][name]) == b, name
        assert full_fabric_view_v1beta1(beta[name]) == b, name          # DynamoDeployment's default API
        assert b["security"] == RDMA_SECURITY
        assert "imagePullSecrets" not in beta[name]["podTemplate"]["spec"]


def test_aks_spot_pool_workers_tolerate_the_spot_taint():
    pool = GpuPool(name="spot", instance_type="Standard_ND96isr_H100_v5", nodes=2, purchase_option="spot")
    beta = components(qwen3_graph().to_dgd("v1beta1", target=RenderTarget.for_pool(
        pool, load().get("Standard_ND96isr_H100_v5"), cloud="azure")))
    assert beta["PrefillWorker"]["podTemplate"]["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
         "effect": "NoSchedule"}]
    assert "tolerations" not in beta["Frontend"]["podTemplate"]["spec"]

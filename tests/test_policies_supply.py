"""Images, secrets, model cache, download job, cost and capacity rules: a passing and a failing
fixture per rule, asserted on the exact violation."""
from __future__ import annotations

import pytest

from dynamo_iac.policies.model import StackView
from dynamo_iac.policies.runner import evaluate
from dynamo_iac.policies.settings import PolicySettings
from dynamo_iac.policies.values import Obj
from test_policies_support import (agg, comp, dgd, dgd_urn, main, render, res, rule, run, set_env, skipped, urn)

pytestmark = pytest.mark.policy
JOB = "kubernetes:batch/v1:Job"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
DEPLOYMENT = "dynamo:index:DynamoDeployment"


def job(name: str, container: dict) -> object:
    return res(JOB, name, {"metadata": {"name": name}, "spec": {"template": {"spec": {"containers": [container]}}}},
               parent_type=DEPLOYMENT)


def job_urn(name: str) -> str:
    return urn(JOB, name, DEPLOYMENT)


DOWNLOAD = {"name": "download", "image": "python:3.12-slim", "command": ["sh", "-c"],
            "args": ["pip install -q huggingface_hub hf_transfer && huggingface-cli download $MODEL_NAME"],
            "resources": {"requests": {"memory": "4Gi"}}}


# ------------------------------------------------------------------------------------ images
def test_image_pinned() -> None:
    doc = render(agg(), "v1beta1")
    assert run("image-pinned", dgd(doc), job("model-download", DOWNLOAD)) == []
    main(doc, "Frontend")["image"] = "nvcr.io/nvidia/ai-dynamo/dynamo-frontend:latest"
    main(doc, "Worker")["image"] = "nvcr.io/nvidia/ai-dynamo/vllm-runtime:my-tag"
    u = dgd_urn(doc, "small")
    assert run("image-pinned", dgd(doc), job("model-download", {**DOWNLOAD, "image": "busybox"})) == [
        ("image-pinned", job_urn("model-download"),
         "Job model-download (spec.template.spec.containers[0].image): image busybox is not pinned (no tag): every "
         "pull may run different code"),
        ("image-pinned", u, "DGD small component Frontend (spec.components[0].podTemplate.spec.containers[0].image): "
                            "image nvcr.io/nvidia/ai-dynamo/dynamo-frontend:latest is not pinned (latest): every pull "
                            "may run different code"),
        ("image-pinned", u, "DGD small component Worker (spec.components[1].podTemplate.spec.containers[0].image): "
                            "image nvcr.io/nvidia/ai-dynamo/vllm-runtime:my-tag carries the placeholder tag 'my-tag'")]


def test_image_pinned_semver_and_override() -> None:
    doc = render(agg(), "v1alpha1")
    main(doc, "Worker")["image"] = "nvcr.io/nvidia/ai-dynamo/vllm-runtime:main-a1b2c3"
    assert run("image-pinned", dgd(doc)) == [(
        "image-pinned", dgd_urn(doc, "small"),
        "DGD small component Worker (spec.services.Worker.extraPodSpec.mainContainer.image): image "
        "nvcr.io/nvidia/ai-dynamo/vllm-runtime:main-a1b2c3 has no semver tag; the Dynamo operator admits only "
        "semver tags unless runtimeVersionOverride is set")]
    comp(doc, "Worker")["runtimeVersionOverride"] = "1.2.0"
    assert run("image-pinned", dgd(doc)) == []


RELEASE = "kubernetes:helm.sh/v3:Release"
PLATFORM = "dynamo:k8s:GpuPlatform"
OPERATOR_IMAGE = "nvcr.io/nvidia/ai-dynamo/kubernetes-operator"


def release(name: str, chart: str, values: dict) -> object:
    return res(RELEASE, name, {"chart": chart, "version": "1.0.2", "values": values}, parent_type=PLATFORM)


def operator_values(image: dict, **checkpoint: str) -> dict:
    """dynamo-platform values: the operator image, and the checkpoint block (its cleanupImage)."""
    op: dict = {"controllerManager": {"manager": {"image": image}}}
    if checkpoint:
        op["checkpoint"] = checkpoint
    return {"dynamo-operator": op}


def test_image_pinned_in_helm_values() -> None:
    """Chart values overrides: repository/tag maps (Dynamo operator), repository/image/version
    (GPU Operator), `*Image` strings; a map without a tag keeps the chart's pinned default."""
    platform = release("platform-dynamo", "dynamo-platform", operator_values(
        {"repository": OPERATOR_IMAGE, "tag": "1.0.2", "pullPolicy": "IfNotPresent"}, cleanupImage="busybox:1.36"))
    gpu = release("gpu-operator", "gpu-operator", {
        "operator": {"repository": "nvcr.io/nvidia", "image": "gpu-operator", "version": "v25.3.0"},
        "driver": {"repository": "nvcr.io/nvidia"}})           # no tag: the chart's default
    mirror = release("platform-mirror", "dynamo-platform", operator_values({"repository": "my.registry/op"}))
    assert run("image-pinned", platform, gpu, mirror) == []

    latest = release("platform-dynamo", "dynamo-platform", operator_values(
        {"repository": OPERATOR_IMAGE, "tag": "latest"}, cleanupImage="busybox"))
    placeholder = release("gpu-operator", "gpu-operator", {
        "operator": {"repository": "nvcr.io/nvidia", "image": "gpu-operator", "version": "my-tag"}})
    tag_only = release("platform-mirror", "dynamo-platform", operator_values({"tag": "latest"}))
    fix = "or drop the override: the chart's default tag is pinned by the chart version"
    assert run("image-pinned", latest, placeholder, tag_only) == [
        ("image-pinned", urn(RELEASE, "gpu-operator", PLATFORM),
         "Helm release gpu-operator (values.operator): image nvcr.io/nvidia/gpu-operator:my-tag carries the "
         "placeholder tag 'my-tag'"),
        ("image-pinned", urn(RELEASE, "platform-dynamo", PLATFORM),
         "Helm release platform-dynamo (values.dynamo-operator.checkpoint.cleanupImage): image busybox is not "
         "pinned (no tag): every pull may run different code"),
        ("image-pinned", urn(RELEASE, "platform-dynamo", PLATFORM),
         f"Helm release platform-dynamo (values.dynamo-operator.controllerManager.manager.image): image "
         f"{OPERATOR_IMAGE}:latest is not pinned (latest): every pull may run different code"),
        ("image-pinned", urn(RELEASE, "platform-mirror", PLATFORM),
         "Helm release platform-mirror (values.dynamo-operator.controllerManager.manager.image): image "
         "<the chart's repository>:latest is not pinned (latest): every pull may run different code")]
    (v,) = evaluate(StackView([tag_only]), PolicySettings(), rules=[rule("image-pinned")]).violations
    assert v.fix == f"pin a release tag (or a digest), {fix}"


def test_image_registry_allowed() -> None:
    doc = render(agg(), "v1beta1")
    assert run("image-registry-allowed", dgd(doc), job("model-download", DOWNLOAD)) == []
    main(doc, "Worker")["image"] = "ghcr.io/acme/vllm-runtime:1.2.0"
    assert run("image-registry-allowed", dgd(doc)) == [(
        "image-registry-allowed", dgd_urn(doc, "small"),
        "DGD small component Worker (spec.components[1].podTemplate.spec.containers[0].image): image "
        "ghcr.io/acme/vllm-runtime:1.2.0 (ghcr.io/acme/vllm-runtime) is not from an allowed registry (nvcr.io/nvidia, "
        "registry.k8s.io, public.ecr.aws, docker.io/library, ghcr.io/ai-dynamo, ghcr.io/mellanox, "
        "us-docker.pkg.dev/gce-ai-infra, gke.gcr.io)")]
    assert run("image-registry-allowed", dgd(doc),
               settings={"allowedRegistries": ["nvcr.io/nvidia", "ghcr.io/acme"]}) == []
    # a prefix must end at a path boundary: ghcr.io/acme does not admit ghcr.io/acme-evil
    main(doc, "Worker")["image"] = "ghcr.io/acme-evil/vllm-runtime:1.2.0"
    assert len(run("image-registry-allowed", dgd(doc), settings={"allowedRegistries": ["nvcr.io/nvidia",
                                                                                        "ghcr.io/acme"]})) == 1


# ------------------------------------------------------------------------------------ secrets
def test_secrets_not_plaintext() -> None:
    doc = render(agg(), "v1beta1")
    cm = lambda data: res("kubernetes:core/v1:ConfigMap", "settings", {"metadata": {"name": "settings"}, "data": data})
    assert run("secrets-not-plaintext", dgd(doc), job("model-download", DOWNLOAD), cm({"MODEL": "Qwen/Qwen3-8B"})) == []
    set_env(doc, "Worker", "HF_TOKEN", "hf_abc123")
    leaky_job = job("model-download", {**DOWNLOAD, "env": [{"name": "NGC_API_KEY", "value": "nvapi-123"}]})
    assert run("secrets-not-plaintext", dgd(doc), leaky_job, cm({"HF_TOKEN": "hf_abc123"})) == [
        ("secrets-not-plaintext", job_urn("model-download"),
         "Job model-download: env NGC_API_KEY holds a literal value (spec.template.spec.containers[0].env[0]): the "
         "credential is stored in plain text in the object (and readable with kubectl get -o yaml)"),
        ("secrets-not-plaintext", dgd_urn(doc, "small"),
         "DGD small component Worker: env HF_TOKEN holds a literal value "
         "(spec.components[1].podTemplate.spec.containers[0].env[1]): the credential is stored in plain text in the "
         "object (and readable with kubectl get -o yaml)"),
        ("secrets-not-plaintext", urn("kubernetes:core/v1:ConfigMap", "settings"),
         "ConfigMap settings: data.HF_TOKEN holds a credential in plain text")]


def test_secrets_in_helm_values() -> None:
    rel = lambda secret_paths: res("kubernetes:helm.sh/v3:Release", "gpu-operator", {
        "chart": "gpu-operator", "version": "v26.7.0",
        "values": {"ngc": {"apiKey": "nvapi-123", "secretName": "ngc-secret"}}}, secret_paths=secret_paths)
    assert run("secrets-not-plaintext", rel(("values.ngc.apiKey",))) == []
    assert run("secrets-not-plaintext", rel(())) == [(
        "secrets-not-plaintext", urn("kubernetes:helm.sh/v3:Release", "gpu-operator"),
        "Helm release gpu-operator: values.ngc.apiKey looks like a credential (apiKey) and is not a Pulumi secret: it "
        "is stored in plain text in the stack state")]
    assert run("secrets-not-plaintext", rel(None)) == []   # CrossGuard: secrets are not visible, no false alarm


def test_config_secrets_encrypted() -> None:
    secure = frozenset({"dynamo-iac:hfToken"})
    assert run("config-secrets-encrypted", config={"dynamo-iac:hfToken": "[secret]", "aws:region": "us-east-1"},
               config_secure=secure) == []
    assert run("config-secrets-encrypted", config={"dynamo-iac:hfToken": "hf_abc", "aws:region": "us-east-1"},
               config_secure=frozenset()) == [(
        "config-secrets-encrypted", "",
        "stack config dynamo-iac:hfToken holds a credential in plain text in the stack file")]
    assert skipped("config-secrets-encrypted", config={"dynamo-iac:hfToken": "x"}) == [
        "which stack config values are encrypted is not visible here"]


def test_secret_references_exist() -> None:
    doc = render(agg(), "v1beta1")
    secret = lambda data: res("kubernetes:core/v1:Secret", "hf-token", {"metadata": {"name": "hf-token-secret"},
                                                                        "stringData": data})
    assert run("secret-references-exist", dgd(doc), secret({"HF_TOKEN": "[secret]"})) == []
    assert run("secret-references-exist", dgd(doc)) == [(
        "secret-references-exist", dgd_urn(doc, "small"),
        "DGD small component Worker reads Secret 'hf-token-secret', which this stack does not create: the pods fail "
        "with CreateContainerConfigError")]
    assert run("secret-references-exist", dgd(doc), settings={"externalSecrets": ["hf-token-secret"]}) == []
    assert run("secret-references-exist", dgd(doc), secret({"token": "[secret]"})) == [(
        "secret-references-exist", urn("kubernetes:core/v1:Secret", "hf-token"),
        "Secret 'hf-token-secret' has keys token but no HF_TOKEN: Hugging Face downloads of gated models fail")]


# ------------------------------------------------------------------------------------ model cache
def _cache(**kw):
    return res(PVC, "model-cache", {"metadata": {"name": "model-cache"},
                                    "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "efs-sc",
                                             "resources": {"requests": {"storage": "100Gi"}}}},
               parent_type=DEPLOYMENT, **kw)


def test_model_cache_retained() -> None:
    doc = render(agg(), "v1beta1")
    assert run("model-cache-retained", dgd(doc), _cache(retain_on_delete=True)) == []
    retain_sc = res("kubernetes:storage.k8s.io/v1:StorageClass", "efs-sc",
                    {"metadata": {"name": "efs-sc"}, "provisioner": "efs.csi.aws.com", "reclaimPolicy": "Retain"})
    assert run("model-cache-retained", dgd(doc), _cache(), retain_sc) == []
    efs = res("aws:efs/fileSystem:FileSystem", "models", {"encrypted": True}, parent_type="dynamo:aws:GpuCluster")
    assert run("model-cache-retained", dgd(doc), _cache(), efs) == [
        ("model-cache-retained", urn("aws:efs/fileSystem:FileSystem", "models", "dynamo:aws:GpuCluster"),
         "model-cache storage models (FileSystem) is destroyed with the stack: the weights are downloaded again (hours "
         "for large models)"),
        ("model-cache-retained", urn(PVC, "model-cache", DEPLOYMENT),
         "model cache PVC model-cache (mounted by small/Frontend, small/Worker) is deleted with the stack and nothing retains its data "
         "(no protect / retainOnDelete, and its StorageClass does not reclaim with Retain): a refactor or destroy "
         "throws away the downloaded weights")]
    # the real engine does not show retainOnDelete to CrossGuard: not evaluated rather than a false alarm
    assert skipped("model-cache-retained", dgd(doc), _cache(retain_on_delete=None)) == [
        "retainOnDelete is not visible here for model-cache"]


def test_model_cache_shared() -> None:
    doc = render(agg(replicas=2), "v1alpha1")
    assert run("model-cache-shared", dgd(doc), _cache()) == []
    rwo = _cache()
    rwo.props.raw["spec"]["accessModes"] = ["ReadWriteOnce"]
    assert run("model-cache-shared", dgd(doc), rwo) == [(
        "model-cache-shared", urn(PVC, "model-cache", DEPLOYMENT),
        "model cache PVC model-cache is mounted by 3 pods but its access modes are ReadWriteOnce: pods on other nodes "
        "cannot mount it")]


def test_download_job_memory() -> None:
    assert run("download-job-memory", job("model-download", DOWNLOAD)) == []
    no_mem = {k: v for k, v in DOWNLOAD.items() if k != "resources"}
    assert run("download-job-memory", job("model-download", no_mem)) == [(
        "download-job-memory", job_urn("model-download"),
        "model download Job model-download container download requests no memory: the download is OOMKilled on busy "
        "nodes")]
    assert run("download-job-memory", job("model-download", DOWNLOAD), settings={"minMemoryGi": 16}) == [(
        "download-job-memory", job_urn("model-download"),
        "model download Job model-download container download requests 4Gi memory, below 16Gi")]
    # a Job that downloads nothing is not a download job
    assert run("download-job-memory", job("migrate", {"name": "m", "image": "python:3.12", "args": ["-V"]})) == []


# ------------------------------------------------------------------------------------ cost / capacity
def _nodegroup(max_size: int):
    return res("aws:eks/nodeGroup:NodeGroup", "prod-h100", {
        "nodeGroupName": "h100", "instanceTypes": ["p5.48xlarge"], "labels": {"dynamo-iac/pool": "h100"},
        "scalingConfig": {"desiredSize": 2.0, "minSize": 2.0, "maxSize": float(max_size)}},
        parent_type="dynamo:aws:GpuCluster")


def test_cost_budget() -> None:
    out = {"cost_per_hour_usd": 98.32, "cost_per_month_usd": 71773.6}
    assert run("cost-budget", outputs=out, settings={"maxUsdPerHour": 100}) == []
    assert run("cost-budget", outputs=out, settings={"maxUsdPerHour": 50, "maxUsdPerMonth": 40000}) == [
        ("cost-budget", "", "the stack costs $71,774/month by the capacity plan, over the budget of $40,000/month"),
        ("cost-budget", "", "the stack costs $98.32/hour by the capacity plan, over the budget of $50.00/hour")]
    assert skipped("cost-budget", outputs=out) == ["no budget configured (maxUsdPerHour / maxUsdPerMonth / maxGpus)"]


def test_capacity_covers_plan() -> None:
    out = {"nodes": {"h100": 3}}
    assert run("capacity-covers-plan", _nodegroup(4), outputs=out) == []
    assert run("capacity-covers-plan", _nodegroup(2), outputs=out) == [(
        "capacity-covers-plan", urn("aws:eks/nodeGroup:NodeGroup", "prod-h100", "dynamo:aws:GpuCluster"),
        "pool h100 can grow to 2 node(s) but the capacity plan needs 3: the graph never fully schedules")]
    assert run("capacity-covers-plan", _nodegroup(4), outputs={"nodes": {"l40s": 1}}) == [(
        "capacity-covers-plan", "", "the capacity plan places 1 node(s) on pool l40s, which the stack does not "
                                    "create")]
    assert skipped("capacity-covers-plan", _nodegroup(4), outputs={}) == [
        "no capacity plan among the stack outputs (capacity_plan / nodes)"]
    assert isinstance(_nodegroup(1).props, Obj)


def test_capacity_covers_provisioned_nodes() -> None:
    """The plan's rows say what placement needs (nodes) and what the node group runs (provisioned)."""
    row = {"name": "h100", "nodes": 2, "provisioned": 4, "gpus_per_node": 8}
    out = {"capacity_plan": {"pools": [row]}}
    assert run("capacity-covers-plan", _nodegroup(4), outputs=out) == []
    assert run("capacity-covers-plan", _nodegroup(3), outputs=out) == [(
        "capacity-covers-plan", urn("aws:eks/nodeGroup:NodeGroup", "prod-h100", "dynamo:aws:GpuCluster"),
        "pool h100 can grow to 3 node(s) but the stack provisions 4 on it (min_nodes / nodes)")]
    # the GPU guard counts the provisioned nodes' GPUs (4 × 8), not what placement needs
    assert run("cost-budget", outputs=out, settings={"maxGpus": 16}) == [
        ("cost-budget", "", "the stack holds 32 GPUs, over the limit of 16")]

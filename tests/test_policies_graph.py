"""Rules that read one DGD: for every rule a passing and a failing fixture, asserted on the exact
violation (rule, resource URN, message), in both DGD API versions where the rule reads both."""
from __future__ import annotations

import dataclasses

import pytest

from test_policies_support import (EFA, IB, agg, comp, dgd, dgd_urn, disagg, main, pod, render, run, set_env,
                                   set_limit)

pytestmark = pytest.mark.policy
APIS = ("v1beta1", "v1alpha1")


def path(doc: dict, name: str) -> str:
    if doc["apiVersion"].endswith("v1beta1"):
        i = next(i for i, c in enumerate(doc["spec"]["components"]) if c["name"] == name)
        return f"spec.components[{i}]"
    return f"spec.services.{name}"


# ------------------------------------------------------------------------------------ parallelism
@pytest.mark.parametrize("api", APIS)
def test_parallelism_matches_gpus(api: str) -> None:
    doc = render(disagg(tp=4), api)
    assert run("parallelism-matches-gpus", dgd(doc)) == []
    set_limit(doc, "PrefillWorker", "nvidia.com/gpu", "8")
    assert run("parallelism-matches-gpus", dgd(doc)) == [(
        "parallelism-matches-gpus", dgd_urn(doc),
        "DGD qwen component PrefillWorker: the engine's parallelism needs tp 4 × pp 1 × dp 1 = 4 GPUs but the "
        f"component requests 8 GPU(s) per pod = 8 ({path(doc, 'PrefillWorker')})")]


def test_parallelism_reads_shell_scripts_and_multinode() -> None:
    """Recipes run the engine through `sh -c` with sizes in env vars; multinode multiplies the pods."""
    doc = render(disagg(backend="sglang", tp=16), "v1beta1")      # 16 GPUs over 2 nodes of 8
    assert comp(doc, "DecodeWorker")["multinode"] == {"nodeCount": 2}
    assert run("parallelism-matches-gpus", dgd(doc)) == []
    m = main(doc, "DecodeWorker")
    m["command"] = ["/bin/sh", "-c"]
    m["args"] = ["exec python3 -m dynamo.sglang --model-path Qwen/Qwen3-32B \\\n  --tp ${TP} --pp-size 2 "
                 "--disaggregation-mode decode"]
    set_env(doc, "DecodeWorker", "TP", "16")
    assert run("parallelism-matches-gpus", dgd(doc)) == [(
        "parallelism-matches-gpus", dgd_urn(doc),
        "DGD qwen component DecodeWorker: the engine's parallelism needs tp 16 × pp 2 × dp 1 = 32 GPUs but the "
        "component requests 8 GPU(s) per pod × 2 nodes = 16 (spec.components[2])")]


# ------------------------------------------------------------------------------------ shared memory
@pytest.mark.parametrize("api", APIS)
def test_shared_memory_size(api: str) -> None:
    assert run("shared-memory-size", dgd(render(disagg(), api, shm="16Gi"))) == []
    doc = render(disagg(), api, shm=None)
    shm = "sharedMemorySize" if api == "v1beta1" else "sharedMemory.size"
    assert run("shared-memory-size", dgd(doc)) == [
        ("shared-memory-size", dgd_urn(doc),
         f"DGD qwen component {w}: /dev/shm is the operator default 8Gi; vllm workers need at least 16Gi (NCCL and "
         f"the engine's IPC crash-loop otherwise) ({path(doc, w)}.{shm})") for w in ("DecodeWorker", "PrefillWorker")]


def test_shared_memory_disabled_for_trtllm_and_configurable() -> None:
    doc = render(agg(backend="trtllm"), "v1alpha1", shm="80Gi")
    assert run("shared-memory-size", dgd(doc)) == []
    comp(doc, "Worker")["sharedMemory"] = {"disabled": True}
    assert run("shared-memory-size", dgd(doc)) == [(
        "shared-memory-size", dgd_urn(doc, "small"),
        "DGD small component Worker: shared memory is disabled but trtllm needs at least 80Gi of /dev/shm "
        "(spec.services.Worker.sharedMemory.size)")]
    assert run("shared-memory-size", dgd(doc), settings={"minGiByEngine": {"vllm": 16}}) == []


# ------------------------------------------------------------------------------------ KV transfer
@pytest.mark.parametrize("api", APIS)
def test_nixl_backend_matches_fabric(api: str) -> None:
    assert run("nixl-backend-matches-fabric", dgd(render(disagg(), api, EFA))) == []
    assert run("nixl-backend-matches-fabric", dgd(render(disagg(), api, IB))) == []
    doc = render(disagg(), api, dataclasses.replace(EFA, kv_backends=None))
    assert run("nixl-backend-matches-fabric", dgd(doc)) == [
        ("nixl-backend-matches-fabric", dgd_urn(doc),
         f"DGD qwen component {w} requests EFA but selects NIXL backend none (NIXL defaults to UCX, which falls "
         f"back to TCP on EFA): KV transfers crawl over TCP (~100 s TTFT)") for w in ("DecodeWorker", "PrefillWorker")]
    doc = render(disagg(), api, dataclasses.replace(IB, kv_backends=("LIBFABRIC",)))
    assert run("nixl-backend-matches-fabric", dgd(doc)) == [
        ("nixl-backend-matches-fabric", dgd_urn(doc),
         f"DGD qwen component {w} requests infiniband RDMA but selects NIXL backend LIBFABRIC, which is for AWS EFA")
        for w in ("DecodeWorker", "PrefillWorker")]


def test_nixl_backend_env_for_sglang() -> None:
    doc = render(disagg(backend="sglang"), "v1beta1", EFA)
    for w in ("PrefillWorker", "DecodeWorker"):
        set_env(doc, w, "SGLANG_DISAGGREGATION_NIXL_BACKEND", "LIBFABRIC")
    assert run("nixl-backend-matches-fabric", dgd(doc)) == []
    set_env(doc, "DecodeWorker", "SGLANG_DISAGGREGATION_NIXL_BACKEND", "UCX")
    assert run("nixl-backend-matches-fabric", dgd(doc)) == [(
        "nixl-backend-matches-fabric", dgd_urn(doc),
        "DGD qwen component DecodeWorker requests EFA but selects NIXL backend UCX: KV transfers crawl over TCP "
        "(~100 s TTFT)")]


@pytest.mark.parametrize("api", APIS)
def test_disagg_without_rdma(api: str) -> None:
    assert run("disagg-without-rdma", dgd(render(disagg(), api, EFA))) == []
    assert run("disagg-without-rdma", dgd(render(agg(), api))) == []
    doc = render(disagg(), api)
    assert run("disagg-without-rdma", dgd(doc)) == [
        ("disagg-without-rdma", dgd_urn(doc),
         f"DGD qwen component {w} requests no RDMA resource: KV cache moves over TCP (+90–100 s TTFT measured in "
         f"the docs)") for w in ("DecodeWorker", "PrefillWorker")]
    # TCP on purpose: vLLM host-staged KV buffers
    for w in ("PrefillWorker", "DecodeWorker"):
        args = main(doc, w)["args"]
        i = args.index("--kv-transfer-config")
        args[i + 1] = '{"kv_connector":"NixlConnector","kv_role":"kv_both","kv_buffer_device":"cpu"}'
    assert run("disagg-without-rdma", dgd(doc)) == []


@pytest.mark.parametrize("api", APIS)
def test_rdma_ipc_lock(api: str) -> None:
    assert run("rdma-ipc-lock", dgd(render(disagg(), api, IB))) == []
    doc = render(disagg(), api, dataclasses.replace(IB, capabilities=()))
    expected = [("rdma-ipc-lock", dgd_urn(doc),
                 f"DGD qwen component {w} requests infiniband RDMA but its main container lacks the IPC_LOCK "
                 f"capability: pinning memory for RDMA (ibv_reg_mr / fi_mr_reg) fails with ENOMEM")
                for w in ("DecodeWorker", "PrefillWorker")]
    assert run("rdma-ipc-lock", dgd(doc)) == expected
    # nodes with unlimited memlock (AKS ib-node-config) need no IPC_LOCK for InfiniBand …
    assert run("rdma-ipc-lock", dgd(doc), settings={"hostMemlockUnlimited": True}) == []
    # … but EFA always does
    efa = render(disagg(), api, dataclasses.replace(EFA, capabilities=(), privileged=False))
    assert [m for _, _, m in run("rdma-ipc-lock", dgd(efa), settings={"hostMemlockUnlimited": True})] == [
        f"DGD qwen component {w} requests efa RDMA but its main container lacks the IPC_LOCK capability: pinning "
        f"memory for RDMA (ibv_reg_mr / fi_mr_reg) fails with ENOMEM" for w in ("DecodeWorker", "PrefillWorker")]


@pytest.mark.parametrize("api", APIS)
def test_efa_worker_settings(api: str) -> None:
    assert run("efa-worker-settings", dgd(render(disagg(), api, EFA))) == []
    doc = render(disagg(), api, dataclasses.replace(EFA, privileged=False, env=(("FI_PROVIDER", "efa"),)))
    assert run("efa-worker-settings", dgd(doc)) == [
        ("efa-worker-settings", dgd_urn(doc),
         f"DGD qwen component {w} requests EFA but lacks securityContext.privileged: true (fi_mr_reg of GPU memory "
         f"needs it); env FI_EFA_USE_DEVICE_RDMA=1") for w in ("DecodeWorker", "PrefillWorker")]


@pytest.mark.parametrize("api", APIS)
def test_efa_prefill_decode_separate_nodes(api: str) -> None:
    assert run("efa-prefill-decode-separate-nodes", dgd(render(disagg(), api, EFA))) == []
    doc = render(disagg(), api, dataclasses.replace(EFA, separate_prefill_decode_nodes=False))
    expected = [("efa-prefill-decode-separate-nodes", dgd_urn(doc),
                 "DGD qwen component PrefillWorker and decode DecodeWorker can share a node: EFA cannot move KV cache "
                 "between pods of one node (fi_read EAGAIN)")]
    assert run("efa-prefill-decode-separate-nodes", dgd(doc)) == expected
    # keyed on the wrong label (policy-catalog #39): still a violation, with the hint
    pod(doc, "DecodeWorker")["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "kubernetes.io/hostname",
         "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "PrefillWorker"}}}]}}
    assert run("efa-prefill-decode-separate-nodes", dgd(doc)) == [(
        *expected[0][:2], expected[0][2] + " (an anti-affinity keyed on app.kubernetes.io/component does not select "
                                           "Dynamo pods)")]
    # one side is enough when it selects the other by the Dynamo component label
    pod(doc, "DecodeWorker")["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0][
        "labelSelector"] = {"matchLabels": {"nvidia.com/dynamo-component": "PrefillWorker"}}
    assert run("efa-prefill-decode-separate-nodes", dgd(doc)) == []


@pytest.mark.parametrize("api", APIS)
def test_efa_image_variant(api: str) -> None:
    assert run("efa-image-variant", dgd(render(disagg(), api, EFA))) == []
    doc = render(disagg(), api, dataclasses.replace(EFA, image_variant=None))
    assert run("efa-image-variant", dgd(doc)) == [
        ("efa-image-variant", dgd_urn(doc),
         f"DGD qwen component {w} requests EFA but runs nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.2.0, which is not an "
         f"-efa image: images built without the AWS target have no EFA libfabric provider")
        for w in ("DecodeWorker", "PrefillWorker")]
    assert run("efa-image-variant", dgd(doc), settings={"efaImages": ["nvcr.io/nvidia/ai-dynamo/vllm-runtime"]}) == []


def test_ucx_tls_gpu_transports() -> None:
    doc = render(disagg(), "v1beta1", IB)
    set_env(doc, "DecodeWorker", "UCX_TLS", "rc_x,rc,cuda_copy,cuda_ipc")
    set_env(doc, "PrefillWorker", "UCX_TLS", "^cuda_ipc")          # upstream agentic recipes: still has cuda_copy
    assert run("ucx-tls-gpu-transports", dgd(doc)) == []
    set_env(doc, "DecodeWorker", "UCX_TLS", "rc,tcp")
    set_env(doc, "PrefillWorker", "UCX_TLS", "^cuda_copy,cuda_ipc")
    assert run("ucx-tls-gpu-transports", dgd(doc)) == [
        ("ucx-tls-gpu-transports", dgd_urn(doc),
         "DGD qwen component DecodeWorker: UCX_TLS=rc,tcp has neither cuda_copy nor cuda_ipc: UCX cannot move GPU "
         "buffers (spec.components[2].podTemplate.spec.containers[0].env[3])"),
        ("ucx-tls-gpu-transports", dgd_urn(doc),
         "DGD qwen component PrefillWorker: UCX_TLS=^cuda_copy,cuda_ipc excludes every CUDA transport: UCX cannot "
         "move GPU buffers (spec.components[1].podTemplate.spec.containers[0].env[3])")]


# ------------------------------------------------------------------------------------ topology
@pytest.mark.parametrize("api", APIS)
def test_topology_constraint_valid(api: str) -> None:
    profile = "clusterTopologyName" if api == "v1beta1" else "topologyProfile"
    doc = render(disagg(), api)
    doc["spec"]["topologyConstraint"] = {profile: "gb200-racks", "packDomain": "rack"}
    assert run("topology-constraint-valid", dgd(doc)) == []
    doc["spec"]["topologyConstraint"] = {"packDomain": "rack"}
    assert run("topology-constraint-valid", dgd(doc)) == [(
        "topology-constraint-valid", dgd_urn(doc),
        f"DGD qwen: spec.topologyConstraint has no {profile} (the webhook rejects it)")]
    del doc["spec"]["topologyConstraint"]
    comp(doc, "DecodeWorker")["topologyConstraint"] = {"packDomain": "host"}
    assert run("topology-constraint-valid", dgd(doc)) == [(
        "topology-constraint-valid", dgd_urn(doc),
        "DGD qwen: components DecodeWorker set topologyConstraint but spec.topologyConstraint is missing (the "
        "webhook rejects it)")]


def test_kv_transfer_policy_valid() -> None:
    doc = render(disagg(), "v1beta1", EFA)
    doc["spec"]["experimental"] = {"kvTransferPolicy": {"labelKey": "topology.kubernetes.io/zone", "domain": "zone",
                                                        "enforcement": "preferred", "preferredWeight": 0.5}}
    assert run("kv-transfer-policy-valid", dgd(doc)) == []
    del doc["spec"]["experimental"]["kvTransferPolicy"]["preferredWeight"]
    main(doc, "Frontend")["args"] = ["--http-port", "8000"]          # round-robin frontend
    assert run("kv-transfer-policy-valid", dgd(doc)) == [
        ("kv-transfer-policy-valid", dgd_urn(doc),
         "DGD qwen: spec.experimental.kvTransferPolicy needs KV-aware routing, but the frontend does not run with "
         "DYN_ROUTER_MODE=kv / --router-mode kv"),
        ("kv-transfer-policy-valid", dgd_urn(doc),
         "DGD qwen: spec.experimental.kvTransferPolicy.enforcement is preferred but preferredWeight is missing")]


def test_no_deprecated_autoscaling() -> None:
    doc = render(agg(), "v1alpha1")
    assert run("no-deprecated-autoscaling", dgd(doc)) == []
    comp(doc, "Worker")["autoscaling"] = {"enabled": True, "minReplicas": 1, "maxReplicas": 4}
    assert run("no-deprecated-autoscaling", dgd(doc)) == [(
        "no-deprecated-autoscaling", dgd_urn(doc, "small"),
        "DGD small component Worker uses the deprecated autoscaling block (spec.services.Worker.autoscaling)")]


@pytest.mark.parametrize("api", APIS)
def test_hf_home_on_model_cache(api: str) -> None:
    doc = render(agg(), api)
    assert run("hf-home-on-model-cache", dgd(doc)) == []
    set_env(doc, "Worker", "HF_HOME", "/home/dynamo/.cache/huggingface")
    assert run("hf-home-on-model-cache", dgd(doc)) == [(
        "hf-home-on-model-cache", dgd_urn(doc, "small"),
        "DGD small component Worker: HF_HOME=/home/dynamo/.cache/huggingface is outside the model cache mounted at "
        "/model-cache: every pod downloads the model again")]

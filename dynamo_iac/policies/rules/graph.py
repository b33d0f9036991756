"""Rules that read one DynamoGraphDeployment (either API version) on its own."""
from __future__ import annotations

from typing import Iterator

from pydantic import Field

from ..dgd import DGD_TYPES, Component, parallelism, view
from ..facts import COMPONENT_LABEL, EFA_REQUIRED_ENV, HOSTNAME_KEY, MIN_SHM_GI
from ..model import Context, Finding, Resource, Rule, RuleConfig
from ..values import as_arr, as_obj, gib, split_image, truthy
from .common import kv_backends, rdma_fabrics, vllm_kv_config, where


# ------------------------------------------------------------------------------------ parallelism
def check_parallelism(r: Resource, ctx: Context) -> Iterator[Finding]:
    d = view(r)
    for c in d.workers():
        par = parallelism(c)
        if par is None or c.gpus == 0:
            continue
        tp, pp, dp, dpa = par
        need = tp * pp * (1 if dpa else dp)
        have = c.gpus * c.node_count
        if need != have:
            formula = f"tp {tp} × pp {pp}" + ("" if dpa else f" × dp {dp}") + f" = {need}"
            got = f"{c.gpus} GPU(s) per pod" + (f" × {c.node_count} nodes" if c.node_count > 1 else "")
            yield Finding(f"{where(d, c)}: the engine's parallelism needs {formula} GPUs but the component "
                          f"requests {got} = {have} ({c.path})",
                          "make the GPU request (× multinode.nodeCount) equal tp × pp × dp, e.g. "
                          "Worker(parallelism=Parallelism(tp=…)) and let the renderer derive gpus")


PARALLELISM = Rule(
    "parallelism-matches-gpus",
    "Each worker's tensor × pipeline × data parallelism equals the GPUs it requests (per pod × nodes).",
    "mandatory", "resource", check_parallelism, DGD_TYPES, refs=("policy-catalog #10", "deploy-facts §3.2"))


# ------------------------------------------------------------------------------------ shared memory
class ShmConfig(RuleConfig):
    min_gi_by_engine: dict[str, float] = Field(default_factory=lambda: dict(MIN_SHM_GI),
                                               description="minimum /dev/shm (GiB) per engine")


def check_shm(r: Resource, ctx: Context) -> Iterator[Finding]:
    d = view(r)
    mins: dict[str, float] = ctx.config.min_gi_by_engine
    for c in d.gpu_workers():
        engine = c.engine or d.backend
        want = mins.get(engine or "")
        if not want:
            continue
        if c.shm_disabled:
            yield Finding(f"{where(d, c)}: shared memory is disabled but {engine} needs at least {want:g}Gi "
                          f"of /dev/shm ({c.shm_path})",
                          f"set {c.shm_path.rsplit('.', 1)[-1]} to {want:g}Gi or more")
            continue
        have = c.shm_bytes if c.shm_bytes is not None else 8 * 2**30
        if have < want * 2**30:
            what = gib(have) if c.shm_bytes is not None else "the operator default 8Gi"
            yield Finding(f"{where(d, c)}: /dev/shm is {what}; {engine} workers need at least {want:g}Gi "
                          f"(NCCL and the engine's IPC crash-loop otherwise) ({c.shm_path})",
                          f"set the component's shared memory to {want:g}Gi")


SHM = Rule(
    "shared-memory-size",
    "GPU workers get enough /dev/shm for their engine (vLLM >= 16Gi, TRT-LLM >= 80Gi).",
    "advisory", "resource", check_shm, DGD_TYPES, ShmConfig, refs=("policy-catalog #9", "deploy-facts §5.2"))


# ------------------------------------------------------------------------------------ KV transfer
def _disagg_workers(d) -> list[Component]:
    return [c for c in d.components if c.type in ("prefill", "decode")]


def check_nixl_backend(r: Resource, ctx: Context) -> Iterator[Finding]:
    d = view(r)
    if not d.is_disaggregated:
        return
    for c in _disagg_workers(d):
        fabrics = rdma_fabrics(c)
        engine = c.engine or d.backend
        backends = kv_backends(c, engine)
        if "efa" in fabrics:
            if not backends or "LIBFABRIC" not in backends:
                how = {"vllm": "--kv-transfer-config '{…\"kv_connector_extra_config\":{\"backends\":[\"LIBFABRIC\"]}}'",
                       "sglang": "env SGLANG_DISAGGREGATION_NIXL_BACKEND=LIBFABRIC",
                       "trtllm": "env TRTLLM_NIXL_KVCACHE_BACKEND=LIBFABRIC"}.get(engine or "", "the LIBFABRIC backend")
                got = ", ".join(backends) if backends else "none (NIXL defaults to UCX, which falls back to TCP on EFA)"
                yield Finding(f"{where(d, c)} requests EFA but selects NIXL backend {got}: KV transfers crawl "
                              f"over TCP (~100 s TTFT)", f"select LIBFABRIC: {how}")
        elif fabrics and backends and "LIBFABRIC" in backends and "UCX" not in backends:
            kind = ", ".join(sorted(fabrics))
            yield Finding(f"{where(d, c)} requests {kind} RDMA but selects NIXL backend LIBFABRIC, which is for "
                          f"AWS EFA", "use UCX (NIXL's default) on InfiniBand / RoCE")


NIXL_BACKEND = Rule(
    "nixl-backend-matches-fabric",
    "Disaggregated workers select the NIXL backend of their fabric: LIBFABRIC on EFA, UCX on InfiniBand/RoCE.",
    "mandatory", "resource", check_nixl_backend, DGD_TYPES,
    refs=("policy-catalog #3, #38", "deploy-facts §4.2 backend selection"))


def check_disagg_tcp(r: Resource, ctx: Context) -> Iterator[Finding]:
    d = view(r)
    if not d.is_disaggregated:
        return
    for c in _disagg_workers(d):
        if c.gpus == 0 or rdma_fabrics(c):
            continue
        engine = c.engine or d.backend
        if engine == "vllm":
            cfg = vllm_kv_config(c) or {}
            if cfg.get("kv_buffer_device") == "cpu":
                continue      # TCP on purpose: host-staged KV buffers, as the docs ask
        yield Finding(f"{where(d, c)} requests no RDMA resource: KV cache moves over TCP (+90–100 s TTFT "
                      f"measured in the docs)",
                      "run disaggregated graphs on an RDMA pool (EFA / InfiniBand / RoCE); to accept TCP, "
                      "set vLLM's kv_buffer_device to \"cpu\" or serve aggregated")


DISAGG_TCP = Rule(
    "disagg-without-rdma",
    "Disaggregated prefill/decode workers request an RDMA resource, or accept TCP explicitly.",
    "advisory", "resource", check_disagg_tcp, DGD_TYPES, refs=("policy-catalog #1", "deploy-facts §5.1"))


class IpcLockConfig(RuleConfig):
    host_memlock_unlimited: bool = Field(
        False, description="the nodes raise the memlock limit for containers (AKS ib-node-config); "
                           "then InfiniBand/RoCE workers do not need IPC_LOCK (EFA still does)")


def check_ipc_lock(r: Resource, ctx: Context) -> Iterator[Finding]:
    d = view(r)
    for c in d.workers():
        fabrics = rdma_fabrics(c)
        if ctx.config.host_memlock_unlimited:
            fabrics.pop("infiniband", None)
            fabrics.pop("roce", None)
        if not fabrics or "IPC_LOCK" in c.capabilities() or c.privileged():
            continue
        kind = ", ".join(sorted(fabrics))
        yield Finding(f"{where(d, c)} requests {kind} RDMA but its main container lacks the IPC_LOCK "
                      f"capability: pinning memory for RDMA (ibv_reg_mr / fi_mr_reg) fails with ENOMEM",
                      f"add IPC_LOCK to {c.main_path}.securityContext.capabilities.add (or, InfiniBand on "
                      f"nodes with unlimited memlock, set hostMemlockUnlimited)")


IPC_LOCK = Rule(
    "rdma-ipc-lock",
    "Workers that request RDMA devices (EFA, InfiniBand, RoCE) run with the IPC_LOCK capability.",
    "mandatory", "resource", check_ipc_lock, DGD_TYPES, IpcLockConfig, refs=("policy-catalog #2", "deploy-facts §5.2"))


def check_efa_settings(r: Resource, ctx: Context) -> Iterator[Finding]:
    d = view(r)
    for c in d.workers():
        if "efa" not in rdma_fabrics(c):
            continue
        missing = []
        if not c.privileged():
            missing.append("securityContext.privileged: true (fi_mr_reg of GPU memory needs it)")
        for k, v in EFA_REQUIRED_ENV.items():
            if c.env_literal(k) != v:
                missing.append(f"env {k}={v}")
        if missing:
            yield Finding(f"{where(d, c)} requests EFA but lacks {'; '.join(missing)}",
                          "apply the EFA overlay of the pool (DynamoDeployment on an EFA pool does it)")


EFA_SETTINGS = Rule(
    "efa-worker-settings",
    "EFA workers run privileged with FI_PROVIDER=efa and FI_EFA_USE_DEVICE_RDMA=1, as the EFA guide requires.",
    "advisory", "resource", check_efa_settings, DGD_TYPES, refs=("policy-catalog #2, #3", "deploy-facts §4.2"))


def _anti_affinity_terms(c: Component) -> list:
    aff = as_obj(as_obj(c.pod_spec.peek("affinity")).peek("podAntiAffinity"))
    return [t for t in as_arr(aff.peek("requiredDuringSchedulingIgnoredDuringExecution")).known()]


def _selects_component(term, names: set[str]) -> bool:
    """Does a pod (anti-)affinity term select pods of one of these Dynamo components?"""
    sel = as_obj(term.peek("labelSelector"))
    ml = as_obj(sel.peek("matchLabels"))
    if ml.peek(COMPONENT_LABEL) in names:
        return True
    for e in as_arr(sel.peek("matchExpressions")).known():
        e = as_obj(e)
        if e.peek("key") == COMPONENT_LABEL and e.peek("operator") == "In":
            if names & {v for v in as_arr(e.peek("values")).known() if isinstance(v, str)}:
                return True
    return False


def check_efa_separate_nodes(r: Resource, ctx: Context) -> Iterator[Finding]:
    d = view(r)
    if not d.is_disaggregated:
        return
    prefill = [c for c in d.components if c.type == "prefill" and "efa" in rdma_fabrics(c)]
    decode = [c for c in d.components if c.type == "decode" and "efa" in rdma_fabrics(c)]
    if not prefill or not decode:
        return
    for p in prefill:
        ok = any(_selects_component(t, {x.name for x in decode}) and as_obj(t).peek("topologyKey") == HOSTNAME_KEY
                 for t in _anti_affinity_terms(p))
        ok = ok or any(any(_selects_component(t, {p.name}) and as_obj(t).peek("topologyKey") == HOSTNAME_KEY
                           for t in _anti_affinity_terms(x)) for x in decode)
        if not ok:
            wrong = any(as_obj(as_obj(t).peek("labelSelector")).dig("matchLabels", "app.kubernetes.io/component")
                        for x in [p, *decode] for t in _anti_affinity_terms(x))
            hint = (" (an anti-affinity keyed on app.kubernetes.io/component does not select Dynamo pods)"
                    if wrong else "")
            yield Finding(f"{where(d, p)} and decode {', '.join(x.name for x in decode)} can share a node: EFA "
                          f"cannot move KV cache between pods of one node (fi_read EAGAIN){hint}",
                          f"add a required podAntiAffinity on {HOSTNAME_KEY} selecting "
                          f"{COMPONENT_LABEL} In [{', '.join(x.name for x in decode)}]")


EFA_SEPARATE = Rule(
    "efa-prefill-decode-separate-nodes",
    "On EFA, prefill and decode pods never share a node (required anti-affinity on the Dynamo component label).",
    "mandatory", "resource", check_efa_separate_nodes, DGD_TYPES, refs=("policy-catalog #4, #39", "deploy-facts §4.2"))


class EfaImageConfig(RuleConfig):
    efa_images: list[str] = Field(default_factory=list,
                                  description="extra image repositories (registry/path, no tag) built with EFA support")


def check_efa_image(r: Resource, ctx: Context) -> Iterator[Finding]:
    d = view(r)
    extra = {x.rstrip("/") for x in ctx.config.efa_images}
    for c in d.workers():
        if "efa" not in rdma_fabrics(c):
            continue
        image = c.main.peek("image")
        if not isinstance(image, str):
            continue
        registry, path, tag, _ = split_image(image)
        if f"{registry}/{path}" in extra:
            continue
        if not tag or "efa" not in tag.split("-")[1:]:
            yield Finding(f"{where(d, c)} requests EFA but runs {image}, which is not an -efa image: images built "
                          f"without the AWS target have no EFA libfabric provider",
                          "use the release's -efa runtime image (e.g. vllm-runtime:1.2.0-efa) or list your own "
                          "EFA image under efaImages")


EFA_IMAGE = Rule(
    "efa-image-variant",
    "EFA workers run an -efa runtime image (built with the AWS EFA libfabric provider).",
    "mandatory", "resource", check_efa_image, DGD_TYPES, EfaImageConfig,
    refs=("policy-catalog #36", "deploy-facts §4.2"))


def check_ucx_tls(r: Resource, ctx: Context) -> Iterator[Finding]:
    d = view(r)
    for c in d.components:
        tls = c.env_literal("UCX_TLS")
        if tls is None:
            continue
        text = tls.strip()
        parts = {p.strip() for p in text.lstrip("^").split(",")}
        if text.startswith("^"):
            # an exclusion list: GPU memory still moves unless every CUDA transport is excluded
            if "cuda" in parts or {"cuda_copy", "cuda_ipc"} <= parts:
                yield Finding(f"{where(d, c)}: UCX_TLS={tls} excludes every CUDA transport: UCX cannot move "
                              f"GPU buffers ({c.env_paths['UCX_TLS']})", "keep cuda_copy or cuda_ipc available")
        elif not parts & {"cuda_copy", "cuda_ipc", "cuda", "all"}:
            yield Finding(f"{where(d, c)}: UCX_TLS={tls} has neither cuda_copy nor cuda_ipc: UCX cannot move "
                          f"GPU buffers ({c.env_paths['UCX_TLS']})", "add cuda_copy,cuda_ipc to UCX_TLS")


UCX_TLS = Rule(
    "ucx-tls-gpu-transports",
    "When UCX_TLS is set it includes cuda_copy or cuda_ipc, so UCX can move GPU memory.",
    "mandatory", "resource", check_ucx_tls, DGD_TYPES, refs=("policy-catalog #7", "deploy-facts §5.2"))


# ------------------------------------------------------------------------------------ topology
def check_topology(r: Resource, ctx: Context) -> Iterator[Finding]:
    d = view(r)
    spec_tc = as_obj(d.spec.peek("topologyConstraint"))
    profile_key = "clusterTopologyName" if d.api == "v1beta1" else "topologyProfile"
    comp_tc = [(c, as_obj(c.raw.peek("topologyConstraint"))) for c in d.components if c.raw.peek("topologyConstraint")]
    if comp_tc and not spec_tc.raw:
        yield Finding(f"{where(d)}: components {', '.join(c.name for c, _ in comp_tc)} set topologyConstraint "
                      f"but spec.topologyConstraint is missing (the webhook rejects it)",
                      f"add spec.topologyConstraint.{profile_key} (the ClusterTopology name)")
        return
    if not spec_tc.raw:
        return
    if not spec_tc.peek(profile_key):
        yield Finding(f"{where(d)}: spec.topologyConstraint has no {profile_key} (the webhook rejects it)",
                      f"set spec.topologyConstraint.{profile_key} to the ClusterTopology's name")
    if not spec_tc.peek("packDomain") and not comp_tc:
        yield Finding(f"{where(d)}: spec.topologyConstraint has no packDomain and no component sets one",
                      "set spec.topologyConstraint.packDomain (e.g. rack) or per-component constraints")
    for c, tc in comp_tc:
        if not tc.peek("packDomain"):
            yield Finding(f"{where(d, c)}: topologyConstraint without packDomain ({c.path}.topologyConstraint)",
                          "set packDomain on the component's constraint")


TOPOLOGY = Rule(
    "topology-constraint-valid",
    "Topology-aware scheduling constraints name the ClusterTopology and a pack domain where the webhook requires.",
    "mandatory", "resource", check_topology, DGD_TYPES, refs=("policy-catalog #13", "deploy-facts §3.3"))


def check_kv_policy(r: Resource, ctx: Context) -> Iterator[Finding]:
    d = view(r)
    pol = as_obj(as_obj(d.spec.peek("experimental")).peek("kvTransferPolicy"))
    if not pol.raw:
        return
    base = "spec.experimental.kvTransferPolicy"
    enforcement = pol.peek("enforcement") or "required"
    weight = pol.peek("preferredWeight")
    if enforcement == "preferred":
        w = None
        try:
            w = float(weight) if weight is not None else None
        except (TypeError, ValueError):
            pass
        if w is None or not 0 <= w <= 1:
            yield Finding(f"{where(d)}: {base}.enforcement is preferred but preferredWeight is "
                          f"{'missing' if weight is None else repr(weight)}", "set preferredWeight between 0 and 1")
    elif weight is not None:
        yield Finding(f"{where(d)}: {base}.preferredWeight is set but enforcement is {enforcement}",
                      "remove preferredWeight or use enforcement: preferred")
    if not d.is_disaggregated:
        yield Finding(f"{where(d)}: {base} is set on a graph without prefill and decode workers",
                      "remove it, or serve disaggregated")
    fronts = [c for c in d.components if c.type == "frontend"]
    if fronts and not any(c.env_literal("DYN_ROUTER_MODE") == "kv" or "kv" == _flag(c, "--router-mode")
                          for c in fronts):
        yield Finding(f"{where(d)}: {base} needs KV-aware routing, but the frontend does not run with "
                      f"DYN_ROUTER_MODE=kv / --router-mode kv", "set the frontend's router mode to kv")


def _flag(c: Component, name: str) -> str | None:
    from ..values import flag_value

    return flag_value(c.tokens, name)


KV_POLICY = Rule(
    "kv-transfer-policy-valid",
    "Topology-aware KV transfer is well formed: preferredWeight only with preferred (0–1), disaggregated "
    "workers, and a KV-routing frontend.",
    "mandatory", "resource", check_kv_policy, DGD_TYPES, refs=("policy-catalog #14, #15", "deploy-facts §5.6"))


def check_autoscaling(r: Resource, ctx: Context) -> Iterator[Finding]:
    d = view(r)
    for c in d.components:
        a = c.raw.peek("autoscaling")
        switched_off = hasattr(a, "peek") and a.peek("enabled") is not None and not truthy(a.peek("enabled"))
        if a is not None and not switched_off:
            yield Finding(f"{where(d, c)} uses the deprecated autoscaling block ({c.path}.autoscaling)",
                          "remove it; scale with scalingAdapter + HPA/KEDA or the Planner")


AUTOSCALING = Rule(
    "no-deprecated-autoscaling",
    "Components do not use the deprecated services.*.autoscaling block.",
    "mandatory", "resource", check_autoscaling, DGD_TYPES, refs=("policy-catalog #17",))


def check_hf_home(r: Resource, ctx: Context) -> Iterator[Finding]:
    d = view(r)
    for c in d.components:
        hf_home = c.env_literal("HF_HOME")
        mounts = dict(c.mounts)
        cache_mounts = [p for n, p in c.mounts if "cache" in n or "model" in n]
        if hf_home is not None and cache_mounts and not any(
                hf_home == p or hf_home.startswith(p.rstrip("/") + "/") for p in cache_mounts):
            yield Finding(f"{where(d, c)}: HF_HOME={hf_home} is outside the model cache mounted at "
                          f"{', '.join(cache_mounts)}: every pod downloads the model again",
                          "set HF_HOME to the cache's mount path")
        root = as_obj(c.main.peek("securityContext")).peek("runAsUser") == 0 or \
            as_obj(c.pod_spec.peek("securityContext")).peek("runAsUser") == 0
        for n, p in mounts.items():
            if not root and (p == "/root" or p.startswith("/root/")) and ("cache" in n or "model" in n):
                yield Finding(f"{where(d, c)}: volume {n} is mounted under {p}; the runtime images do not run as "
                              f"root, so the cache is not writable (Permission denied)",
                              "mount the cache outside /root, e.g. /model-cache")


HF_HOME = Rule(
    "hf-home-on-model-cache",
    "Components that mount the model cache point HF_HOME into it, and do not mount it under /root.",
    "advisory", "resource", check_hf_home, DGD_TYPES, refs=("policy-catalog #26",))


RULES = [PARALLELISM, SHM, NIXL_BACKEND, DISAGG_TCP, IPC_LOCK, EFA_SETTINGS, EFA_SEPARATE, EFA_IMAGE, UCX_TLS,
         TOPOLOGY, KV_POLICY, AUTOSCALING, HF_HOME]

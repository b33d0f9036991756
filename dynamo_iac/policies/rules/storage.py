"""Rules on the model cache (the shared volume holding the weights) and the job that fills it."""
from __future__ import annotations

import re
from typing import Iterator

from pydantic import Field

from ..k8s import PVC, STORAGE_CLASS, containers, metadata_name, pod_spec
from ..model import Context, Finding, NotApplicable, Resource, Rule, RuleConfig, StackView
from ..values import as_arr, as_obj, command_tokens, gib, quantity
from .common import dgds, short

# cloud file systems that back a model cache (what the cluster components create)
FILESYSTEM_TYPES = ("aws:efs/fileSystem:FileSystem", "aws:fsx/lustreFileSystem:LustreFileSystem",
                    "azure-native:storage:FileShare", "azure-native:storage:StorageAccount",
                    "azure-native:storagecache:AmlFilesystem", "gcp:filestore/instance:Instance",
                    "gcp:lustre/instance:Instance")
PV = "kubernetes:core/v1:PersistentVolume"
JOB = "kubernetes:batch/v1:Job"


def _cache_claims(stack: StackView) -> dict[str, list]:
    """claim name → [(dgd, component)] that mount it."""
    out: dict[str, list] = {}
    for d in dgds(stack):
        pvcs = {as_obj(p).peek("name") for p in as_arr(d.spec.peek("pvcs")).known()}
        for c in d.components:
            names = set()
            for v in as_arr(c.pod_spec.peek("volumes")).known():
                claim = as_obj(as_obj(v).peek("persistentVolumeClaim")).peek("claimName")
                if isinstance(claim, str):
                    names.add(claim)
            names |= {n for n, _ in c.mounts if n in pvcs}
            for n in names:
                out.setdefault(n, []).append((d, c))
    return out


def _retained_by_class(pvc: Resource, stack: StackView) -> bool:
    """The data outlives the claim: its StorageClass or its static PV reclaims with Retain."""
    spec = as_obj(pvc.props.peek("spec"))
    sc_name, volume = spec.peek("storageClassName"), spec.peek("volumeName")
    for sc in stack.of_type(STORAGE_CLASS):
        if metadata_name(sc) == sc_name and sc.props.peek("reclaimPolicy") == "Retain":
            return True
    for pv in stack.of_type(PV):
        pspec = as_obj(pv.props.peek("spec"))
        if (metadata_name(pv) == volume or (sc_name and pspec.peek("storageClassName") == sc_name)) and \
                pspec.peek("persistentVolumeReclaimPolicy") == "Retain":
            return True
    return False


def check_cache_retained(stack: StackView, ctx: Context) -> Iterator[Finding]:
    findings, unknown = [], []
    claims = _cache_claims(stack)
    for pvc in stack.of_type(PVC):
        name = metadata_name(pvc)
        if name not in claims:
            continue
        if pvc.protect or pvc.retain_on_delete or _retained_by_class(pvc, stack):
            continue
        if pvc.retain_on_delete is None:
            unknown.append(name)
            continue
        users = ", ".join(sorted({f"{d.name}/{c.name}" for d, c in claims[name]}))
        findings.append(Finding(
            f"model cache PVC {name} (mounted by {users}) is deleted with the stack and nothing retains its data "
            f"(no protect / retainOnDelete, and its StorageClass does not reclaim with Retain): a refactor or "
            f"destroy throws away the downloaded weights",
            "set retain_on_delete=True on the PVC, or use a StorageClass with reclaimPolicy: Retain", pvc.urn))
    for fs in (r for r in stack.resources if r.type in FILESYSTEM_TYPES):
        if fs.protect or fs.retain_on_delete:
            continue
        if fs.type == "gcp:filestore/instance:Instance" and fs.props.peek("deletionProtectionEnabled") is True:
            continue
        if fs.retain_on_delete is None:
            unknown.append(short(fs.urn))
            continue
        findings.append(Finding(f"model-cache storage {short(fs.urn)} ({fs.type.split(':')[-1]}) is destroyed with "
                                f"the stack: the weights are downloaded again (hours for large models)",
                                "create it with retain_on_delete=True (or protect=True)", fs.urn))
    if not findings and unknown:
        raise NotApplicable(f"retainOnDelete is not visible here for {', '.join(sorted(unknown))}")
    yield from findings


CACHE_RETAINED = Rule(
    "model-cache-retained",
    "Model-cache storage (the PVC the workers mount, the cloud file system behind it) survives a destroy: "
    "protect / retainOnDelete, a Retain reclaim policy, or the provider's deletion protection. Under the Pulumi "
    "CLI retainOnDelete is not shown to policies: storage kept only by it is reported not evaluated there.",
    "mandatory", "stack", check_cache_retained, refs=("policy-catalog #25", "issue 7"))


def check_cache_shared(stack: StackView, ctx: Context) -> Iterator[Finding]:
    claims = _cache_claims(stack)
    pvcs = {metadata_name(p): p for p in stack.of_type(PVC)}
    for name, users in sorted(claims.items()):
        pvc = pvcs.get(name)
        if pvc is None:
            continue
        pods = 0
        for _, c in users:
            reps = c.replicas if isinstance(c.replicas, (int, float)) and not isinstance(c.replicas, bool) else 1
            pods += int(reps) * c.node_count
        modes = {m for m in as_arr(as_obj(pvc.props.peek("spec")).peek("accessModes")).known() if isinstance(m, str)}
        if pods > 1 and "ReadWriteMany" not in modes:
            yield Finding(f"model cache PVC {name} is mounted by {pods} pods but its access modes are "
                          f"{', '.join(sorted(modes)) or 'unset'}: pods on other nodes cannot mount it",
                          "use ReadWriteMany on an RWX storage class (EFS, Azure Files/Lustre, Filestore)", pvc.urn)


CACHE_SHARED = Rule(
    "model-cache-shared",
    "A model cache mounted by several pods is ReadWriteMany.",
    "advisory", "stack", check_cache_shared, refs=("policy-catalog #25",))


class DownloadJobConfig(RuleConfig):
    min_memory_gi: float = Field(4, ge=0, description="smallest memory request of a model download Job (GiB)")


_DOWNLOAD = re.compile(r"(huggingface-cli|hf)\s+download|snapshot_download|hf_transfer")


def check_download_job(r: Resource, ctx: Context) -> Iterator[Finding]:
    spec = pod_spec(r)
    if spec is None:
        return
    for c in containers(spec):
        parts = [p for p in [*as_arr(c.peek("command")).known(), *as_arr(c.peek("args")).known()] if isinstance(p, str)]
        text = " ".join(command_tokens(parts))
        if not _DOWNLOAD.search(text) and not _DOWNLOAD.search(" ".join(parts)):
            continue
        mem = quantity(as_obj(as_obj(c.peek("resources")).peek("requests")).peek("memory"))
        want = ctx.config.min_memory_gi * 2**30
        if mem is None:
            yield Finding(f"model download Job {metadata_name(r)} container {c.peek('name')} requests no memory: the "
                          f"download is OOMKilled on busy nodes", f"request at least {ctx.config.min_memory_gi:g}Gi "
                          f"(16Gi for very large models)")
        elif mem < want:
            yield Finding(f"model download Job {metadata_name(r)} container {c.peek('name')} requests {gib(mem)} "
                          f"memory, below {ctx.config.min_memory_gi:g}Gi", f"request at least "
                          f"{ctx.config.min_memory_gi:g}Gi")


DOWNLOAD_JOB = Rule(
    "download-job-memory",
    "The model download Job requests enough memory (4Gi; 16Gi for very large models).",
    "mandatory", "resource", check_download_job, (JOB,), DownloadJobConfig, refs=("policy-catalog #27",))


RULES = [CACHE_RETAINED, CACHE_SHARED, DOWNLOAD_JOB]

"""One view over a DynamoGraphDeployment in either API version, for the rules.

v1beta1: `spec.components[]` with `type`, `podTemplate.spec.containers[name=main]`, GPU as
`resources.limits["nvidia.com/gpu"]`, `spec.env`, `sharedMemorySize`.
v1alpha1: `spec.services{}` with `componentType`/`subComponentType`, `extraPodSpec.mainContainer`,
`resources.{limits,requests}.{gpu,custom}`, `envs`, `envFromSecret`, `volumeMounts[].mountPoint`,
`sharedMemory.{size,disabled}`, spec-level `pvcs`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from .model import Resource
from .values import Arr, Obj, as_arr, as_obj, command_tokens, flag_value, has_flag, quantity

DGD_KIND = "DynamoGraphDeployment"
DGD_TYPES = ("kubernetes:nvidia.com/v1beta1:DynamoGraphDeployment",
             "kubernetes:nvidia.com/v1alpha1:DynamoGraphDeployment")
GPU = "nvidia.com/gpu"
ENGINES = {"dynamo.vllm": "vllm", "dynamo.sglang": "sglang", "dynamo.trtllm": "trtllm"}
# Operator default for /dev/shm when a component sets nothing (v1beta1 CRD: sharedMemorySize)
OPERATOR_DEFAULT_SHM = 8 * 2**30


def is_dgd(r: Resource) -> bool:
    return r.type in DGD_TYPES or (r.type.startswith("kubernetes:nvidia.com/") and r.type.endswith(":" + DGD_KIND))


@dataclass
class Component:
    name: str
    type: str                      # frontend | worker | prefill | decode | planner | epp | …
    path: str                      # spec.components[1] | spec.services.DecodeWorker
    raw: Obj
    replicas: Any
    node_count: int
    limits: dict[str, Any]
    requests: dict[str, Any]
    env: dict[str, Obj]            # merged by name: spec-level < component < main container
    env_paths: dict[str, str]
    env_from_secrets: list[str]
    main: Obj                      # the main container (empty Obj when absent)
    main_path: str
    containers: list[tuple[str, Obj]]   # (path, container) incl. sidecars and init containers
    pod_spec: Obj
    pod_spec_path: str
    mounts: list[tuple[str, str]]  # (volume name, mount path)
    shm_bytes: float | None        # None = operator default
    shm_disabled: bool
    shm_path: str
    runtime_version_override: Any
    annotations: dict[str, Any] = field(default_factory=dict)

    @property
    def gpus(self) -> int:
        """GPUs per pod (per node of a multinode replica)."""
        q = quantity(self.limits.get(GPU, self.requests.get(GPU)))
        return int(q) if q else 0

    @property
    def is_worker(self) -> bool:
        return self.type in ("worker", "prefill", "decode")

    def env_literal(self, name: str) -> str | None:
        e = self.env.get(name)
        if e is None:
            return None
        v = e.peek("value")
        return v if isinstance(v, str) else (str(v) if v is not None and not isinstance(v, Obj) else None)

    def literal_env(self) -> dict[str, str]:
        out = {}
        for k in self.env:
            v = self.env_literal(k)
            if v is not None:
                out[k] = v
        return out

    @property
    def tokens(self) -> list[str]:
        """The main container's argv. Raises UnknownValue when the command line is known only
        after apply: a rule cannot judge an engine it cannot read."""
        parts: list[Any] = []
        for key in ("command", "args"):
            if key in self.main and self.main.raw[key] is not None:
                v = self.main[key]
                parts += [x for x in v] if isinstance(v, Arr) else [v]
        return command_tokens(parts, self.literal_env())

    @property
    def engine(self) -> str | None:
        toks = self.tokens
        for i, t in enumerate(toks):
            if t in ENGINES and i > 0 and toks[i - 1] == "-m":
                return ENGINES[t]
        return None

    def resource_amount(self, name: str) -> float:
        q = quantity(self.limits.get(name, self.requests.get(name)))
        return q or 0.0

    def requested_resources(self) -> set[str]:
        return {k for k in (*self.limits, *self.requests)}

    def tolerations(self) -> list[Obj]:
        return [t for t in as_arr(self.pod_spec.peek("tolerations")).known() if isinstance(t, Obj)]

    def node_selector(self) -> dict[str, str]:
        ns = as_obj(self.pod_spec.peek("nodeSelector"))
        return {k: v for k, v in ((k, ns.peek(k)) for k in ns) if isinstance(v, str)}

    def capabilities(self) -> set[str]:
        caps = as_arr(as_obj(as_obj(self.main.peek("securityContext")).peek("capabilities")).peek("add"))
        return {c for c in caps.known() if isinstance(c, str)}

    def privileged(self) -> bool:
        return as_obj(self.main.peek("securityContext")).peek("privileged") is True


@dataclass
class Dgd:
    resource: Resource
    api: str                       # v1beta1 | v1alpha1
    name: str
    spec: Obj
    annotations: dict[str, Any]
    components: list[Component]

    @property
    def urn(self) -> str:
        return self.resource.urn

    @property
    def is_disaggregated(self) -> bool:
        types = {c.type for c in self.components}
        return "prefill" in types and "decode" in types

    def workers(self) -> list[Component]:
        return [c for c in self.components if c.is_worker]

    def gpu_workers(self) -> list[Component]:
        return [c for c in self.components if c.is_worker and c.gpus > 0]

    @property
    def backend(self) -> str | None:
        b = self.spec.peek("backendFramework")
        if isinstance(b, str):
            return b
        for c in self.workers():
            if c.engine:
                return c.engine
        return None


def _env_entries(arr: Any, path: str) -> Iterator[tuple[str, Obj, str]]:
    a = as_arr(arr, path)
    for i, e in enumerate(a.raw):
        if isinstance(e, dict) and isinstance(e.get("name"), str):
            yield e["name"], Obj(e, f"{a.path}[{i}]"), f"{a.path}[{i}]"


def _main_v1beta1(spec: Obj, path: str) -> tuple[Obj, str, list[tuple[str, Obj]]]:
    containers = []
    main, main_path = Obj({}), f"{path}.containers[name=main]"
    for key in ("containers", "initContainers"):
        arr = as_arr(spec.peek(key), f"{spec.path}.{key}")
        for i, c in enumerate(arr.raw):
            if isinstance(c, dict):
                o = Obj(c, f"{arr.path}[{i}]")
                containers.append((o.path, o))
                if key == "containers" and c.get("name") == "main":
                    main, main_path = o, o.path
    return main, main_path, containers


def _component(raw: Obj, name: str, path: str, api: str, spec_env: list) -> Component:
    env: dict[str, Obj] = {}
    env_paths: dict[str, str] = {}
    for n, e, p in spec_env:
        env[n], env_paths[n] = e, p
    secrets: list[str] = []
    mounts: list[tuple[str, str]] = []
    limits: dict[str, Any] = {}
    requests: dict[str, Any] = {}
    shm_bytes, shm_disabled = None, False
    if api == "v1beta1":
        ctype = raw.peek("type") or "worker"
        pod = as_obj(as_obj(raw.peek("podTemplate")).peek("spec"), f"{path}.podTemplate.spec")
        main, main_path, containers = _main_v1beta1(pod, f"{path}.podTemplate.spec")
        res = as_obj(main.peek("resources"))
        limits = dict(as_obj(res.peek("limits")).raw)
        requests = dict(as_obj(res.peek("requests")).raw)
        shm = raw.peek("sharedMemorySize")
        shm_path = f"{path}.sharedMemorySize"
        if shm is not None:
            q = quantity(shm)
            shm_disabled = q == 0
            shm_bytes = q
    else:
        base = raw.peek("componentType") or "worker"
        sub = raw.peek("subComponentType")
        ctype = sub if base == "worker" and sub in ("prefill", "decode") else base
        extra = as_obj(raw.peek("extraPodSpec"), f"{path}.extraPodSpec")
        pod = extra
        main = as_obj(extra.peek("mainContainer"), f"{path}.extraPodSpec.mainContainer")
        main_path = main.path
        containers = [(main_path, main)] if main.raw else []
        for key in ("containers", "initContainers"):
            arr = as_arr(extra.peek(key), f"{extra.path}.{key}")
            containers += [(f"{arr.path}[{i}]", Obj(c, f"{arr.path}[{i}]")) for i, c in enumerate(arr.raw)
                           if isinstance(c, dict)]
        res = as_obj(raw.peek("resources"))
        for section, out in (("limits", limits), ("requests", requests)):
            sec = as_obj(res.peek(section))
            for k in sec:
                if k == "gpu":
                    out[GPU] = sec.peek(k)
                elif k == "custom":
                    out.update(as_obj(sec.peek("custom")).raw)
                else:
                    out[k] = sec.peek(k)
        for n, e, p in _env_entries(raw.peek("envs"), f"{path}.envs"):
            env[n], env_paths[n] = e, p
        s = raw.peek("envFromSecret")
        if isinstance(s, str):
            secrets.append(s)
        for m in as_arr(raw.peek("volumeMounts")).known():
            if isinstance(m, Obj) and isinstance(m.peek("name"), str) and isinstance(m.peek("mountPoint"), str):
                mounts.append((m.peek("name"), m.peek("mountPoint")))
        shm = as_obj(raw.peek("sharedMemory"))
        shm_path = f"{path}.sharedMemory.size"
        if shm.peek("disabled") is True:
            shm_disabled, shm_bytes = True, 0.0
        elif shm.peek("size") is not None:
            shm_bytes = quantity(shm.peek("size"))
    for n, e, p in _env_entries(main.peek("env"), f"{main_path}.env"):
        env[n], env_paths[n] = e, p
    for ef in as_arr(main.peek("envFrom")).known():
        if isinstance(ef, Obj):
            ref = as_obj(ef.peek("secretRef")).peek("name")
            if isinstance(ref, str):
                secrets.append(ref)
    for m in as_arr(main.peek("volumeMounts")).known():
        if isinstance(m, Obj) and isinstance(m.peek("name"), str) and isinstance(m.peek("mountPath"), str):
            mounts.append((m.peek("name"), m.peek("mountPath")))
    mn = as_obj(raw.peek("multinode"))
    nc = mn.peek("nodeCount")
    node_count = int(nc) if isinstance(nc, (int, float)) and not isinstance(nc, bool) and nc >= 1 else 1
    return Component(
        name=name, type=str(ctype), path=path, raw=raw, replicas=raw.peek("replicas"), node_count=node_count,
        limits=limits, requests=requests, env=env, env_paths=env_paths, env_from_secrets=secrets, main=main,
        main_path=main_path, containers=containers, pod_spec=pod, pod_spec_path=pod.path, mounts=mounts,
        shm_bytes=shm_bytes, shm_disabled=shm_disabled, shm_path=shm_path,
        runtime_version_override=raw.peek("runtimeVersionOverride"),
        annotations=dict(as_obj(raw.peek("annotations")).raw))


def view(r: Resource) -> Dgd:
    """The DGD inside a CustomResource's inputs (apiVersion, kind, metadata, spec)."""
    p = r.props
    api_version = p.peek("apiVersion") or r.type.split(":")[1]
    api = str(api_version).rsplit("/", 1)[-1]
    spec = as_obj(p.peek("spec"), "spec")
    meta = as_obj(p.peek("metadata"), "metadata")
    name = meta.peek("name") if isinstance(meta.peek("name"), str) else r.name
    comps: list[Component] = []
    if api == "v1beta1":
        spec_env = list(_env_entries(spec.peek("env"), "spec.env"))
        arr: Arr = as_arr(spec.peek("components"), "spec.components")
        for i, c in enumerate(arr.raw):
            if isinstance(c, dict):
                o = Obj(c, f"spec.components[{i}]")
                comps.append(_component(o, str(c.get("name", f"#{i}")), o.path, api, spec_env))
    else:
        spec_env = list(_env_entries(spec.peek("envs"), "spec.envs"))
        services = as_obj(spec.peek("services"), "spec.services")
        for n in sorted(services.raw):
            c = services.raw[n]
            if isinstance(c, dict):
                o = Obj(c, f"spec.services.{n}")
                comps.append(_component(o, n, o.path, api, spec_env))
    return Dgd(resource=r, api=api, name=name, spec=spec,
               annotations=dict(as_obj(meta.peek("annotations")).raw), components=comps)


# ------------------------------------------------------------------------------------ engines
def parallelism(c: Component) -> tuple[int, int, int, bool] | None:
    """(tp, pp, dp, dp_attention) from the engine's command line; None when the command is not a
    recognisable Dynamo engine or (TRT-LLM) the sizes live in a config file."""
    toks = c.tokens
    engine = c.engine
    if engine is None:
        return None

    def num(*names: str, default: int | None = 1) -> int | None:
        v = flag_value(toks, *names)
        if v is None:
            return default
        try:
            return int(v)
        except ValueError:
            return None      # unresolved ${VAR}: cannot tell

    if engine == "vllm":
        tp = num("--tensor-parallel-size", "-tp")
        pp = num("--pipeline-parallel-size", "-pp")
        dp = num("--data-parallel-size", "-dp")
        dpa = False
    elif engine == "sglang":
        tp = num("--tp", "--tp-size", "--tensor-parallel-size")
        pp = num("--pp", "--pp-size", "--pipeline-parallel-size")
        dp = num("--dp", "--dp-size", "--data-parallel-size")
        dpa = has_flag(toks, "--enable-dp-attention")
    else:
        tp = num("--tensor-parallel-size", "--tp-size", "--tp", default=None)
        if tp is None:
            return None
        pp = num("--pipeline-parallel-size", "--pp-size", "--pp")
        dp, dpa = 1, False
    if tp is None or pp is None or dp is None:
        return None
    return tp, pp, dp, dpa

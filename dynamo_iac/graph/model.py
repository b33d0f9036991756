"""The serving graph users write (L2): DynamoGraph, Frontend, Worker, Planner, Model.

Nothing here is cloud- or target-specific: a pool, a Slurm cluster or the local machine adds
what it knows (GPUs per node, fabric) when a target renders the graph.

Every invalid input raises GraphError naming the field path and the fix — at construction,
and again before rendering (fields can be assigned after construction).
"""
from __future__ import annotations

import math
import re
from contextvars import ContextVar
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import GraphError, Problem
from .. import versions
from .k8smeta import metadata_problems
from .quantity import parse_quantity

# A validator's ValueError carries its fix after this separator (see _problems_from).
FIX = "\x00fix:"

Backend = Literal["vllm", "sglang", "trtllm"]
Role = Literal["agg", "prefill", "decode"]
RouterMode = Literal["kv", "round-robin", "random"]
Dtype = Literal["auto", "bf16", "fp16", "fp8", "int8", "fp4", "int4"]

BYTES_PER_PARAM: dict[str, float] = {"auto": 2, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "fp4": 0.5, "int4": 0.5}

MAX_COMPONENTS = 25                    # CRD: spec.components maxItems / services maxProperties
# Operator webhook (Grove pathway): len(PodCliqueSet name) + len(lower(component)) [+ longest
# PodClique role name for multinode] <= 45. The DGD name is truncated with a hash down to 8
# characters, so what a user can actually trip is the component-name length.
GROVE_NAME_BUDGET = 45
GROVE_MIN_DGD_NAME = 8
GROVE_MULTINODE_ROLE = len("worker")   # longest PodClique role suffix of a multinode component
COMPONENT_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$")
DNS1123_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# What the operator's admission accepts as a semver image tag (1.4.0-efa, 1.1.1-efa-amd64 parse).
SEMVER_TAG_RE = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
VERSION_OVERRIDE_RE = re.compile(r"^\d{1,4}\.\d{1,4}\.\d{1,4}$")


def image_tag(image: str) -> str | None:
    """The tag of an image reference; None for a digest-only or untagged reference."""
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def is_semver_tag(image: str) -> bool:
    tag = image_tag(image)
    return bool(tag and SEMVER_TAG_RE.match(tag))


def grove_name_problems(base: str, name: str, multinode: bool) -> list[Problem]:
    """The Grove name budget of one component; checked at construction, and again at render time
    when the target's node size makes a worker multinode."""
    budget = GROVE_NAME_BUDGET - GROVE_MIN_DGD_NAME - (GROVE_MULTINODE_ROLE if multinode else 0)
    if len(name) <= budget:
        return []
    return [Problem(f"{base}.name", f"component name {name!r} is {len(name)} characters; the operator's Grove name "
                    f"limit leaves {budget}{' for a multinode worker' if multinode else ''}",
                    f"shorten it to at most {budget} characters")]


def _problems_from(e: ValidationError, prefix: str = "") -> list[Problem]:
    out = []
    for err in e.errors():
        loc = ""
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        path = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        msg = err["msg"].removeprefix("Value error, ")
        msg, _, fix = msg.partition(FIX)
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
            fix = _suggest_field(err)
        out.append(Problem(path, msg.strip(), fix.strip() or _generic_fix(err)))
    return out


def _generic_fix(err: dict) -> str:
    """The fix of pydantic's common error types, from the error's own context."""
    ctx = err.get("ctx") or {}
    kind = err["type"]
    given = err.get("input")
    fixes = {
        "greater_than_equal": f"use a value of at least {ctx.get('ge')}",
        "greater_than": f"use a value greater than {ctx.get('gt')}",
        "less_than_equal": f"use a value of at most {ctx.get('le')}",
        "less_than": f"use a value less than {ctx.get('lt')}",
        "int_parsing": "use a whole number", "int_type": "use a whole number",
        "int_from_float": "use a whole number",
        "float_parsing": "use a number", "float_type": "use a number",
        "bool_parsing": "use true or false", "bool_type": "use true or false",
        "string_type": "use a string (in YAML, quote it)",
        "dict_type": "use a mapping of key: value", "list_type": "use a list",
        "literal_error": f"use one of {ctx.get('expected')}",
        "missing": "set it",
        "string_pattern_mismatch": f"match the pattern {ctx.get('pattern')}",
        "string_too_short": f"use at least {ctx.get('min_length')} character(s)",
        "string_too_long": f"use at most {ctx.get('max_length')} characters",
        "model_type": "use a mapping of this object's fields",
    }
    fix = fixes.get(kind, "")
    if kind == "string_type" and isinstance(given, (bool, int, float)):
        fix = f"quote it: {given!r} is read as {type(given).__name__} (in YAML write \"{given}\")"
    return fix


def _string_env(v: Any) -> Any:
    """Environment values are strings: a YAML yes/1.10/null read as bool/float/None is an error
    (coercing it would render 'True', '1.1' or 'None'), with the quoted form as the fix."""
    if not isinstance(v, dict):
        return v
    bad = [(k, x) for k, x in v.items() if not isinstance(k, str) or not isinstance(x, str)]
    if bad:
        shown = ", ".join(f"{k}={x!r} ({type(x).__name__})" for k, x in bad)
        raise ValueError(f"env values must be strings, not {shown}{FIX} quote each value in YAML as you mean it "
                         f"(NAME: \"yes\", not NAME: yes; \"1.10\", not 1.10) and leave null ones out")
    return v


def _raise_metadata(problems: list[Problem]) -> None:
    if problems:
        first = problems[0]
        raise ValueError("; ".join(p.message for p in problems) + f"{FIX} {first.fix}")


def _suggest_field(err: dict) -> str:
    import difflib

    name = str(err["loc"][-1])
    model = err.get("ctx", {}).get("model_fields") if err.get("ctx") else None
    candidates = model or _ALL_FIELDS
    close = difflib.get_close_matches(name, candidates, n=1)
    return f"did you mean {close[0]!r}?" if close else "remove it"


# How many _Model constructions are running: pydantic calls the custom __init__ for nested
# models too, and only the outermost one turns ValidationError into GraphError, so nested errors
# keep their full location (workers[1].parallelism.tp) and every one of them is reported.
_CONSTRUCTING: ContextVar[int] = ContextVar("dynamo_iac_constructing", default=0)


class _Model(BaseModel):
    """Strict base: unknown keys are errors; pydantic errors become GraphError with paths."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    def __init__(self, *args: Any, **data: Any) -> None:
        if args:   # positional shorthand for the first field: Model("Qwen/Qwen3-32B")
            fields = list(type(self).model_fields)
            if len(args) > len(fields):
                raise GraphError(f"{type(self).__name__} takes at most {len(fields)} positional argument(s)",
                                 "", "pass the fields by name")
            for name, value in zip(fields, args):
                data.setdefault(name, value)
        token = _CONSTRUCTING.set(_CONSTRUCTING.get() + 1)
        try:
            super().__init__(**data)
        except ValidationError as e:
            if _CONSTRUCTING.get() > 1:
                raise               # nested: the outermost construction reports it with its full path
            raise GraphError(_problems_from(e)) from None
        finally:
            _CONSTRUCTING.reset(token)

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as e:
            raise GraphError(_problems_from(e, type(self).__name__)) from None

    @classmethod
    def from_dict(cls, data: dict) -> "_Model":
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise GraphError(_problems_from(e)) from None


class Parallelism(_Model):
    tp: int = Field(1, ge=1, le=1024, description="tensor parallel size")
    pp: int = Field(1, ge=1, le=256, description="pipeline parallel size")
    dp: int = Field(1, ge=1, le=1024, description="data parallel size")
    ep: int = Field(1, ge=1, le=1024, description="expert parallel size (1 = off)")
    dp_attention: bool = Field(False, description="SGLang DP attention: dp ranks live inside the tp group")

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * (1 if self.dp_attention else self.dp)


class ModelCache(_Model):
    pvc: str = Field("model-cache", description="PVC holding the Hugging Face cache")
    mount_path: str = "/model-cache"
    size: str = "100Gi"
    storage_class: str | None = None
    create: bool = False                 # the DGD creates the PVC (v1alpha1 pvcs[].create)
    access_mode: str = "ReadWriteMany"

    @model_validator(mode="after")
    def _creatable(self) -> "ModelCache":
        # CRD rule on v1alpha1 spec.pvcs[]: create needs size, storageClass and volumeAccessMode
        if self.create and not self.storage_class:
            raise ValueError("create=True needs storage_class (the operator creates the PVC with it); "
                             "set storage_class='…', or create=False for an existing PVC")
        return self


class Model(_Model):
    id: str = Field(min_length=1, description="Hugging Face id or local path, e.g. Qwen/Qwen3-32B")
    served_name: str | None = None
    revision: str | None = None
    dtype: Dtype = "auto"
    params_b: float | None = Field(None, gt=0, description="parameters in billions (for memory fit)")
    cache: ModelCache | None = None

    @property
    def name(self) -> str:
        return self.served_name or self.id

    def weight_bytes(self) -> float | None:
        return None if self.params_b is None else self.params_b * 1e9 * BYTES_PER_PARAM[self.dtype]


class Resources(_Model):
    """Non-GPU resources of a component's main container (GPUs come from Worker.gpus)."""

    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)

    @field_validator("requests", "limits", mode="before")
    @classmethod
    def _stringify(cls, v: Any) -> Any:
        # YAML numbers are quantities too (cpu: 2, cpu: 0.5); bools and nulls are not
        return {k: str(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x
                for k, x in v.items()} if isinstance(v, dict) else v

    @field_validator("requests", "limits")
    @classmethod
    def _quantities(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [f"{k}: {x!r}" for k, x in v.items() if parse_quantity(x) is None or not k]
        if bad:
            raise ValueError(f"not a Kubernetes quantity: {', '.join(bad)}{FIX} use a quantity such as '500m', '2', "
                             "'16Gi' (cpu in cores or millicores, memory in bytes with Ki/Mi/Gi)")
        return v


class _Component(_Model):
    """What every component has. The raw layers are the escape hatch (and keep imports lossless):
    the typed fields are rendered on top of them, merging lists of named things by name."""

    name: str | None = None
    replicas: int = Field(1, ge=0, le=10_000)
    image: str | None = Field(None, description="full image reference; default from the Dynamo release")
    runtime_version_override: str | None = Field(None, pattern=VERSION_OVERRIDE_RE.pattern)
    env: dict[str, str] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    command: list[str] | None = None       # explicit command; None = generated (or none when generate_command=False)
    args: list[str] | None = None
    generate_command: bool = True          # False: keep command/args exactly as given (imports)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    container: dict[str, Any] = Field(default_factory=dict, description="raw fields of the main container")
    pod_spec: dict[str, Any] = Field(default_factory=dict, description="raw PodSpec fields")
    pod_metadata: dict[str, Any] = Field(default_factory=dict, description="raw pod labels/annotations")
    extra: dict[str, Any] = Field(default_factory=dict,
                                  description="raw DGD component fields, in the API version `extra_api`")
    extra_api: Literal["v1beta1", "v1alpha1"] = "v1beta1"

    _env_strings = field_validator("env", mode="before")(lambda cls, v: _string_env(v))

    @field_validator("pod_metadata")
    @classmethod
    def _pod_metadata(cls, v: dict[str, Any]) -> dict[str, Any]:
        _raise_metadata(metadata_problems("pod_metadata", v.get("labels"), v.get("annotations")))
        return v

    @field_validator("pod_spec")
    @classmethod
    def _no_main_in_pod_spec(cls, v: dict[str, Any]) -> dict[str, Any]:
        containers = v.get("containers")
        if isinstance(containers, list) and any(isinstance(c, dict) and c.get("name") == "main" for c in containers):
            raise ValueError(f"pod_spec.containers holds a container named 'main'; it would be replaced by the "
                             f"rendered main container{FIX} put its fields in container={{...}} (image: image=...)")
        return v

    @field_validator("container")
    @classmethod
    def _main_name(cls, v: dict[str, Any]) -> dict[str, Any]:
        # v1beta1 admission needs a container named `main`; these are its raw fields
        if "name" in v and v["name"] != "main":
            raise ValueError(f"the main container is always named 'main', not {v['name']!r}; remove `name` "
                             "(sidecars go in pod_spec={'containers': [...]})")
        return v


class Frontend(_Component):
    router_mode: RouterMode = "round-robin"
    port: int = Field(8000, ge=1, le=65535)


class Planner(_Component):
    config: dict[str, Any] = Field(default_factory=dict,
                                   description="planner --config keys (optimization_target, adjustment intervals …); "
                                               "environment and backend are filled in")


class Worker(_Component):
    role: Role = "agg"
    parallelism: Parallelism | None = None
    gpus: int | None = Field(None, ge=0, le=4096, description="GPUs per replica (all nodes); derived from parallelism")
    nodes: int | None = Field(None, ge=1, le=512, description="nodes per replica; derived from the target's node size")
    engine_args: list[str] = Field(default_factory=list, description="extra engine CLI arguments, appended")
    shared_memory: str | None = Field(None, pattern=r"^[0-9]+(\.[0-9]+)?([KMGT]i?)?$",
                                      description="/dev/shm size, e.g. 16Gi (operator default 8Gi)")

    @field_validator("shared_memory")
    @classmethod
    def _shm_positive(cls, v: str | None) -> str | None:
        # CRD rule: sharedMemory.size > 0 unless disabled (a size of "0" is not how to disable it)
        q = parse_quantity(v) if v is not None else None
        if v is not None and (q is None or q <= 0):
            raise ValueError(f"shared_memory {v!r} must be a quantity greater than 0, e.g. '16Gi'")
        return v

    @field_validator("engine_args", mode="before")
    @classmethod
    def _args(cls, v: Any) -> Any:
        if isinstance(v, dict):   # {"max-model-len": 8192, "enforce-eager": True} → CLI form
            out: list[str] = []
            for k, x in v.items():
                flag = k if k.startswith("-") else f"--{k}"
                if x is True:
                    out.append(flag)
                elif x is not False and x is not None:
                    out += [flag, str(x)]
            return out
        return [str(x) for x in v] if isinstance(v, (list, tuple)) else v

    @property
    def gpu_count(self) -> int:
        """GPUs per replica, whether given or derived."""
        if self.gpus is not None:
            return self.gpus
        return self.parallelism.gpus if self.parallelism else 1

    @property
    def tp(self) -> int:
        return self.parallelism.tp if self.parallelism else max(self.gpu_count, 1)

    def nodes_for(self, gpus_per_node: int | None) -> int:
        """Nodes one replica spans on nodes of gpus_per_node GPUs (1 when unknown and not fixed)."""
        if self.nodes is not None:
            return self.nodes
        if not gpus_per_node or self.gpu_count <= gpus_per_node:
            return 1
        return math.ceil(self.gpu_count / gpus_per_node)


class RawComponent(_Model):
    """A component the typed model does not cover (epp, custom types): kept verbatim."""

    name: str
    type: str
    spec: dict[str, Any] = Field(default_factory=dict)     # the whole component/service spec
    api: Literal["v1beta1", "v1alpha1"] = "v1beta1"


class Images(_Model):
    """Image overrides; anything unset comes from the Dynamo release table (versions.yaml)."""

    runtime: str | None = None
    frontend: str | None = None
    planner: str | None = None


DEFAULT_NAMES = {"frontend": "Frontend", "planner": "Planner",
                 "agg": "Worker", "prefill": "PrefillWorker", "decode": "DecodeWorker"}


class DynamoGraph(_Model):
    name: str = Field(description="DGD name (DNS-1123 label)")
    namespace: str | None = None
    backend: Backend = "vllm"
    dynamo_version: str = Field(default_factory=versions.default_version)
    model: Model | None = None
    frontend: Frontend | None = Field(default_factory=Frontend)
    workers: list[Worker] = Field(default_factory=list)
    planner: Planner | None = None
    extra_components: list[RawComponent] = Field(default_factory=list)
    images: Images = Field(default_factory=Images)
    hf_token_secret: str | None = Field("hf-token-secret", description="k8s Secret exposed to workers as env")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict, description="env for every component")

    _env_strings = field_validator("env", mode="before")(lambda cls, v: _string_env(v))
    metadata_extra: dict[str, Any] = Field(default_factory=dict, description="raw metadata fields")
    spec_extra: dict[str, Any] = Field(default_factory=dict, description="raw DGD spec fields, API `spec_extra_api`")
    spec_extra_api: Literal["v1beta1", "v1alpha1"] = "v1beta1"
    source_api: Literal["v1beta1", "v1alpha1"] = "v1beta1"    # default API for to_dgd()

    def __init__(self, *args: Any, **data: Any) -> None:
        super().__init__(*args, **data)
        self.check()

    # ---------------------------------------------------------------- derived views
    @property
    def is_disaggregated(self) -> bool:
        roles = {w.role for w in self.workers}
        return "prefill" in roles and "decode" in roles

    def worker_names(self) -> list[str]:
        return [_name(w) for w in self.workers]

    def component_names(self) -> list[str]:
        names = []
        if self.frontend is not None:
            names.append(_name(self.frontend))
        names += self.worker_names()
        if self.planner is not None:
            names.append(_name(self.planner))
        names += [c.name for c in self.extra_components]
        return names

    def worker(self, name: str) -> Worker:
        for w, n in zip(self.workers, self.worker_names()):
            if n == name:
                return w
        raise GraphError(f"no worker named {name!r}", "workers",
                         f"use one of {', '.join(self.worker_names()) or '(none)'}")

    def total_gpus(self) -> int:
        return sum(w.gpu_count * w.replicas for w in self.workers)

    def release(self) -> versions.Release:
        return versions.release(self.dynamo_version)

    def runtime_image(self, efa: bool = False) -> str:
        if self.images.runtime:
            return self.images.runtime
        return self.release().image(self.backend, efa=efa)

    # ---------------------------------------------------------------- invariants
    def problems(self) -> list[Problem]:
        """All graph-level invariant violations (field-level ones are caught at construction)."""
        p: list[Problem] = []
        if not DNS1123_RE.match(self.name) or len(self.name) > 63:
            p.append(Problem("name", f"{self.name!r} is not a valid Kubernetes name",
                             "use lowercase letters, digits and '-', at most 63 characters"))
        if self.namespace is not None and (not DNS1123_RE.match(self.namespace) or len(self.namespace) > 63):
            p.append(Problem("namespace", f"{self.namespace!r} is not a valid namespace", "use a DNS-1123 label"))
        if self.dynamo_version not in versions.known_versions():
            p.append(Problem("dynamo_version", f"unknown Dynamo version {self.dynamo_version!r}",
                             f"use one of {', '.join(versions.known_versions())} or add it to versions.yaml"))
        roles = [w.role for w in self.workers]
        if "agg" in roles and ("prefill" in roles or "decode" in roles):
            p.append(Problem("workers", "aggregated and disaggregated workers are mixed",
                             "use either agg workers, or prefill and decode workers"))
        if ("prefill" in roles) != ("decode" in roles):
            have, miss = ("prefill", "decode") if "prefill" in roles else ("decode", "prefill")
            p.append(Problem("workers", f"a {have} worker needs a {miss} worker",
                             f"add Worker(role={miss!r}, ...) or make the {have} worker role='agg'"))
        names = self.component_names()
        seen: dict[str, int] = {}
        for i, n in enumerate(names):
            key = n.lower()
            if key in seen:
                p.append(Problem(self._component_path(n, i), f"component name {n!r} is used twice (names are case-insensitive)",
                                 "give each component a unique `name`"))
            seen[key] = i
            if not COMPONENT_NAME_RE.match(n) or len(n) > 63:
                p.append(Problem(self._component_path(n, i), f"invalid component name {n!r}",
                                 "use letters, digits and '-' (1-63 chars, alphanumeric at both ends)"))
        if len(names) > MAX_COMPONENTS:
            p.append(Problem("workers", f"{len(names)} components; the operator allows at most {MAX_COMPONENTS}",
                             "merge workers (raise replicas instead of adding components)"))
        for i, (w, n) in enumerate(zip(self.workers, self.worker_names())):
            base = f"workers[{i}]"
            if w.parallelism is not None and w.gpus is not None and w.parallelism.gpus != w.gpus:
                par = w.parallelism
                formula = f"tp×pp{'' if par.dp_attention else '×dp'} = {par.gpus}"
                p.append(Problem(f"{base}.gpus", f"gpus={w.gpus} but parallelism needs {formula}",
                                 f"set gpus={par.gpus} or change the parallelism"))
            if w.nodes is not None and w.gpu_count % w.nodes:
                p.append(Problem(f"{base}.nodes", f"{w.gpu_count} GPUs do not split evenly over {w.nodes} nodes",
                                 "choose nodes that divide the GPU count"))
            if w.parallelism is not None and w.parallelism.ep > 1 and w.parallelism.ep > w.gpu_count:
                p.append(Problem(f"{base}.parallelism.ep", f"ep={w.parallelism.ep} exceeds the worker's {w.gpu_count} GPUs",
                                 "ep must be at most tp×dp"))
            if w.gpu_count == 0 and w.generate_command:
                p.append(Problem(f"{base}.gpus", "a worker needs at least one GPU", "set gpus >= 1"))
            p += grove_name_problems(base, n, (w.nodes or 1) > 1)
        p += self._image_problems()
        p += self._verbatim_command_problems()
        p += metadata_problems("", self.labels, self.annotations)
        if not names:
            p.append(Problem("workers", "the graph has no components", "add a worker: workers=[Worker(...)]"))
        if self.model is None and any(c.generate_command and c.command is None and c.args is None
                                      for _, c in self._typed_components() if isinstance(c, Worker)):
            p.append(Problem("model", "workers need a model to build their command line",
                             "set model=Model('org/name') or give each worker command/args"))
        return p

    def check(self) -> "DynamoGraph":
        for _, comp in self._typed_components():      # resolve default names once, visibly
            if comp.name is None:
                comp.name = DEFAULT_NAMES[_kind(comp)]
        problems = self.problems()
        if problems:
            raise GraphError(problems)
        return self

    def _component_path(self, name: str, index: int) -> str:
        for path, comp in self._typed_components():
            if _name(comp) == name:
                return f"{path}.name"
        return f"components[{index}]"

    def _typed_components(self) -> list[tuple[str, _Component]]:
        out: list[tuple[str, _Component]] = []
        if self.frontend is not None:
            out.append(("frontend", self.frontend))
        out += [(f"workers[{i}]", w) for i, w in enumerate(self.workers)]
        if self.planner is not None:
            out.append(("planner", self.planner))
        return out

    def _image_problems(self) -> list[Problem]:
        """Non-semver tags, reported where the image was set: the component, or the graph's
        `images` default it inherits (once, however many components use it)."""
        p: dict[str, Problem] = {}
        for path, comp in self._typed_components():
            if not comp.generate_command:
                continue   # imported verbatim: `validate` reports the operator's admission rules
            where, image = f"{path}.image", comp.image
            if image is None and "image" in comp.container:
                where, image = f"{path}.container.image", comp.container["image"]
            if image is None:
                default = "planner" if path == "planner" else "frontend" if path == "frontend" else "runtime"
                where, image = f"images.{default}", getattr(self.images, default)
            if image is not None and not is_semver_tag(image) and comp.runtime_version_override is None:
                tag = image_tag(image)
                what = f"tag {tag!r}" if tag else "no tag"
                p.setdefault(where, Problem(where, f"image {image!r} has {what}; the operator admits only semver tags",
                                            "pin a release tag such as :1.2.0, or set runtime_version_override="
                                            "'1.2.0' on the component"))
        return list(p.values())

    def _verbatim_command_problems(self) -> list[Problem]:
        """An explicit command (an import's is kept verbatim) keeps its own parallelism flags; once the
        typed fields are edited they must still agree, or the pod runs another layout than it is sized for."""
        from . import cmdline

        p = []
        for i, w in enumerate(self.workers):
            if w.command is None and w.args is None:
                continue   # generated from the typed fields
            env = {**cmdline.env_values(w.container), **w.env}
            toks = cmdline.tokens(w.command, w.args)
            flags = cmdline.parallel_flags(toks, env)
            typed = w.parallelism.model_dump() if w.parallelism else {}
            said = {k: v for k, v in flags.items() if k in typed and typed[k] != v}
            if not typed and "tp" in flags:
                gpus = flags["tp"] * flags.get("pp", 1) * flags.get("dp", 1)
                if gpus != w.gpu_count and "--enable-dp-attention" not in toks:
                    said = {"gpus": gpus}
            if said:
                shown = ", ".join(f"{k}={v}" for k, v in said.items())
                have = ", ".join(f"{k}={typed.get(k, w.gpu_count)}" for k in said)
                p.append(Problem(f"workers[{i}].{'gpus' if 'gpus' in said else 'parallelism'}",
                                 f"the worker's command is used verbatim (as imported or given) and says {shown}, "
                                 f"but the graph says {have}",
                                 "edit the worker's command/args to match, or set command=None, args=None and "
                                 "generate_command=True to generate it from the typed fields"))
        return p

    # ---------------------------------------------------------------- targets
    def to_dgd(self, api: str | None = None, target: Any = None) -> dict:
        from ..targets.k8s.render import render_dgd

        return render_dgd(self, self.default_api() if api is None else api, target)

    def default_api(self) -> str:
        """The API to_dgd() renders when none is given: the imported file's, when the graph's Dynamo
        release serves it, else the newest one that release serves."""
        served = self.release().dgd_api
        return self.source_api if self.source_api in served else served[-1]

    def to_yaml(self, api: str | None = None, target: Any = None) -> str:
        from ..targets.k8s.render import dump_yaml

        return dump_yaml(self.to_dgd(api, target))

    @classmethod
    def from_dgd(cls, obj: dict) -> "DynamoGraph":
        from .importer import from_dgd

        return from_dgd(obj)

    def validate(self, crd_dir: Any = None, api: str | None = None, schema_only: bool = False,
                 target: Any = None) -> list[Problem]:
        """Render and check against the CRD schema and the operator's admission rules."""
        from ..targets.k8s.validate import validate_manifest

        return validate_manifest(self.to_dgd(api, target), crd_dir=crd_dir, schema_only=schema_only)

    def to_python(self, var: str = "graph") -> str:
        from .to_python import graph_to_python

        return graph_to_python(self, var)


def _name(comp: _Component) -> str:
    """A component's name: the default only when none was given ('' is a name, and invalid)."""
    return DEFAULT_NAMES[_kind(comp)] if comp.name is None else comp.name


def _kind(comp: _Component) -> str:
    if isinstance(comp, Worker):
        return comp.role
    return "frontend" if isinstance(comp, Frontend) else "planner"


_ALL_FIELDS = sorted({f for m in (DynamoGraph, Worker, Frontend, Planner, Model, ModelCache, Parallelism,
                                  Resources, Images) for f in m.model_fields})

"""Typed stack configuration (`stacks/Pulumi.<stack>.yaml`, keys under `dynamo-iac:`).

The same schema serves `pulumi up` (values read from the engine's config) and the offline
`dynamo-iac plan` (values read from the YAML file). Unknown keys are errors with the YAML path
and a suggestion; secrets (`dynamo-iac:hfToken`) are never read into this model.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .. import yamlio
from ..errors import ConfigError, DynamoIacError, GraphError, Problem
from ..hardware.pool import GpuPool

PROJECT = "dynamo-iac"
SECRET_KEYS = ("hfToken",)
# config names (after the namespace) that hold credentials: one predicate for the rule that
# flags them in plain text (config-secrets-encrypted) and for every report that masks them
_CREDENTIAL_NAME = re.compile(r"(token|password|passwd|secret|apikey|api_key|accesskey|privatekey|credential)",
                              re.I)


def is_secure(value: Any) -> bool:
    """A `secure:` (encrypted) config value."""
    return isinstance(value, dict) and set(value) == {"secure"}


def is_credential_key(key: str) -> bool:
    """`ns:name` whose name says it holds a credential (aws:secretKey, dynamo-iac:hfToken …)."""
    return bool(_CREDENTIAL_NAME.search(str(key).split(":", 1)[-1]))


# provider namespaces whose keys we pass through untouched (aws:region, kubernetes:context …)
FOREIGN_NAMESPACES = ("aws", "azure-native", "gcp", "kubernetes", "pulumi")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClusterConfig(_Strict):
    name: str | None = Field(None, description="cluster name (default: the stack name)")
    kubernetes_version: str = Field("1.31", pattern=r"^1\.\d+$")
    vpc_id: str | None = Field(None, description="AWS: existing VPC (else one is created)")
    subnet_ids: list[str] = Field(default_factory=list)
    vpc_cidr: str = "10.0.0.0/16"
    system_instance_type: str | None = None
    system_nodes: int = Field(2, ge=1, le=20)
    resource_group: str | None = Field(None, description="Azure: existing resource group")
    project: str | None = Field(None, description="GCP project")
    kubeconfig: str | None = Field(None, description="byo: path of a kubeconfig file (else $KUBECONFIG)")
    context: str | None = None


class PlatformConfig(_Strict):
    namespace: str = "dynamo-system"
    dynamo_version: str | None = None          # default: the graph's release
    gpu_operator: bool = True
    grove: bool | None = None                  # None: on when a worker is multinode
    kai: bool = False
    volcano: bool = False
    lws: bool = False
    prometheus: bool = False                   # install kube-prometheus-stack and wire the endpoint


class StorageConfig(_Strict):
    kind: Literal["efs", "fsx-lustre", "azure-files", "azure-lustre", "filestore", "none"] | None = None
    size: str | None = Field(None, pattern=r"^[1-9]\d*(Mi|Gi|Ti)$",
                             description="size of the model-cache claim (default: the graph's model.cache.size)")


class DeploymentConfig(_Strict):
    namespace: str = "dynamo"
    pool: str | None = Field(None, description="GPU pool every GPU worker is pinned to (default: none; the "
                             "capacity plan places each worker, the cluster sizes its node groups from that plan "
                             "and the deployment follows it)")
    api: Literal["v1beta1", "v1alpha1"] = "v1beta1"
    model_download: bool = False


class StackConfig(_Strict):
    cloud: Literal["aws", "azure", "gcp", "byo"]
    region: str | None = None
    graph: str = Field(description="python module:attr or a graph file (relative to the repo root)")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    pools: list[GpuPool] = Field(default_factory=list)
    platform: PlatformConfig = Field(default_factory=PlatformConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    deployment: DeploymentConfig = Field(default_factory=DeploymentConfig)
    policy: dict[str, Any] = Field(default_factory=dict, description="policy pack settings")

    @model_validator(mode="after")
    def _consistent(self) -> "StackConfig":
        # ConfigError, not ValueError: pydantic would report a ValueError at the model's root; each
        # of these names its own setting (parse() puts the stack file in front)
        problems: list[Problem] = []
        names = [p.name for p in self.pools]
        if self.cloud != "byo" and not self.pools:
            problems.append(Problem("pools", f"a {self.cloud} stack needs at least one GPU pool",
                                    "add one, e.g. - {name: gpu, instance_type: p5.48xlarge, zones: [us-east-1a]}"))
        if self.cloud != "byo" and not self.region:
            problems.append(Problem("region", f"is required for cloud {self.cloud!r}",
                                    f"set {PROJECT}:region (e.g. us-east-1)"))
        for i, n in enumerate(names):
            if n in names[:i]:
                problems.append(Problem(f"pools[{i}].name", f"pool name {n!r} is also pools[{names.index(n)}]'s",
                                        "give each pool a unique name"))
        if self.deployment.pool and self.pools and self.deployment.pool not in names:
            problems.append(Problem("deployment.pool", f"{self.deployment.pool!r} is not one of the pools {names}",
                                    f"use one of {', '.join(names)}, or remove it (the capacity plan then places "
                                    "each worker)"))
        problems += self._kubernetes_version_problems()
        if self.platform.kai and self.platform.volcano:
            problems.append(Problem("platform.volcano", "platform.kai and platform.volcano are mutually exclusive "
                                    "(the chart fails)", "turn one of them off"))
        if problems:
            raise ConfigError(problems)
        return self

    def _kubernetes_version_problems(self) -> list[Problem]:
        from ..versions import kubernetes_newest

        newest, _ = kubernetes_newest(self.cloud)
        version = self.cluster.kubernetes_version
        if newest is None or tuple(map(int, version.split("."))) <= tuple(map(int, newest.split("."))):
            return []
        return [Problem("cluster.kubernetes_version", f"{version} is newer than the newest Kubernetes version known "
                        f"for {self.cloud} ({newest}, with its source in dynamo_iac/data/versions.yaml)",
                        f"use {newest} or older")]

    @property
    def gpu_pool(self) -> GpuPool | None:
        if not self.pools:
            return None
        name = self.deployment.pool or self.pools[0].name
        return next(p for p in self.pools if p.name == name)


def _yaml_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else f"{PROJECT}:{part}")
    return out


def parse(values: dict[str, Any], source: str) -> StackConfig:
    """Validate config values (keys without the `dynamo-iac:` prefix) into a StackConfig."""
    problems: list[Problem] = []
    known = set(StackConfig.model_fields) | set(SECRET_KEYS)
    data = {}
    for key, value in values.items():
        if key in SECRET_KEYS:
            continue
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            problems.append(Problem(f"{source}: config.{PROJECT}:{key}", "unknown stack setting",
                                    f"did you mean {PROJECT}:{close[0]}?" if close else
                                    f"remove it; known settings: {', '.join(sorted(known))}"))
            continue
        data[key] = value
    if problems:
        raise ConfigError(problems)
    try:
        return StackConfig.model_validate(data)
    except ConfigError as e:          # cross-field problems, by setting
        raise ConfigError([Problem(f"{source}: config.{PROJECT}:{p.path}", p.message, p.fix)
                           for p in e.problems]) from None
    except ValidationError as e:
        errors = _merge_typos(e.errors())
        for err in errors:
            path = _yaml_path(err["loc"]) or f"{PROJECT}:"
            msg = err["msg"].removeprefix("Value error, ")
            fix = ""
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
                fix = _suggest(err["loc"])
            elif err["type"] == "missing":
                msg = "is required"
                fix = f"set config.{path} in {source}"
            problems.append(Problem(f"{source}: config.{path}", msg, fix))
        raise ConfigError(problems) from None


def _merge_typos(errors: list[dict]) -> list[dict]:
    """A misspelt required field gives two errors ("x is required", "y unknown field"): keep one,
    the unknown field, whose fix names the required one."""
    missing = {tuple(e["loc"]): e for e in errors if e["type"] == "missing"}
    drop = set()
    for e in errors:
        if e["type"] != "extra_forbidden":
            continue
        parent, name = tuple(e["loc"][:-1]), str(e["loc"][-1])
        siblings = [str(loc[-1]) for loc in missing if loc[:-1] == parent]
        close = difflib.get_close_matches(name, siblings, n=1)
        if close:
            drop.add(parent + (close[0],))
    return [e for e in errors if not (e["type"] == "missing" and tuple(e["loc"]) in drop)]


def _suggest(loc: tuple) -> str:
    model: type[BaseModel] = StackConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        sub = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)),
                   None)
        if sub is None:
            break
        model = sub
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f"did you mean {close[0]!r}?" if close else f"remove it; known: {', '.join(model.model_fields)}"


def stacks_dir(root: Path | None = None) -> Path:
    return (root or repo_root()) / "stacks"


def repo_root(near: Path | None = None) -> Path:
    """The project root: where Pulumi.yaml is (from `near` — a stack file — upwards, then the
    cwd upwards, then the package's checkout); graph paths in stack files are relative to it."""
    starts = [near.resolve().parent, *near.resolve().parent.parents] if near is not None else []
    for base in (*starts, Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[2]):
        if (base / "Pulumi.yaml").is_file() and (base / "stacks").is_dir():
            return base
    if near is not None:
        return near.resolve().parent
    raise ConfigError("cannot find the project (Pulumi.yaml with a stacks/ folder)", "--root",
                      "run from the dynamo-iac checkout or pass --root DIR")


def _is_path(stack: str) -> bool:
    return stack.endswith((".yaml", ".yml")) or "/" in stack


def stack_name(stack: str, path: Path) -> str:
    """The stack's name: as given, or from a stack file's name (Pulumi.<stack>.yaml)."""
    if not _is_path(stack):
        return stack
    stem = path.name.rsplit(".", 1)[0]
    return stem[len("Pulumi."):] if stem.startswith("Pulumi.") and len(stem) > len("Pulumi.") else stem


def available_stacks(root: Path | None = None) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in stacks_dir(root).glob("Pulumi.*.yaml"))


def read_stack_file(stack: str, root: Path | None = None) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """(our values, all raw config incl. foreign keys, file path) of a stack: a name
    (stacks/Pulumi.<stack>.yaml under root) or the path of a stack file anywhere."""
    if _is_path(stack):
        path = Path(stack).expanduser()
        if not path.is_file():
            raise ConfigError(f"stack file {stack} does not exist", "-s/--stack",
                              "pass a stack name (stacks/Pulumi.<stack>.yaml) or the path of a stack file")
    else:
        sdir = stacks_dir(root)
        if not sdir.is_dir():
            base = sdir.parent
            raise ConfigError(f"{base} does not exist" if not base.exists() else f"{base} has no stacks/ directory",
                              "--root", "pass the project directory (the one with Pulumi.yaml and stacks/), or "
                              "give -s the path of a stack file")
        path = sdir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        names = available_stacks(root)
        close = difflib.get_close_matches(stack, names, n=1)
        raise ConfigError(f"no stack {stack!r} ({path} does not exist)", "-s/--stack",
                          (f"did you mean {close[0]!r}? " if close else "") +
                          (f"available: {', '.join(names)}" if names else
                           f"{path.parent} holds no stack files (Pulumi.<stack>.yaml)"))
    try:
        doc = yamlio.load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML: {e}", str(path), "fix the YAML syntax") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"the file holds a {type(doc).__name__}, not a mapping", f"{path.name}: (top level)",
                          "write a mapping with a `config:` key, as stacks/Pulumi.aws-p5-disagg.yaml does")
    raw = doc.get("config") or {}
    if not isinstance(raw, dict):
        raise ConfigError("`config` must be a mapping", f"{path.name}: config", "see stacks/Pulumi.aws-p5-disagg.yaml")
    ours: dict[str, Any] = {}
    problems = []
    for key, value in raw.items():
        ns, _, name = str(key).partition(":")
        if ns == PROJECT:
            ours[name] = value
        elif ns not in FOREIGN_NAMESPACES or not name:
            close = difflib.get_close_matches(ns, [PROJECT, *FOREIGN_NAMESPACES], n=1)
            problems.append(Problem(f"{path.name}: config.{key}", "unknown config namespace",
                                    f"did you mean {close[0]}:{name or key}?" if close else
                                    f"use {PROJECT}:<setting>"))
    if problems:
        raise ConfigError(problems)
    return ours, raw, path


def load_stack(stack: str, root: Path | None = None) -> StackConfig:
    ours, _, path = read_stack_file(stack, root)
    return parse(ours, path.name)


# ------------------------------------------------------------------ errors in stack-file terms
# Which stack setting feeds each component / planner argument in the stack program
# (stacks/program.py): an error the program raises names the argument; users wrote the setting.
PROGRAM_ARGS = {
    "graph": "graph", "region": "region", "location": "region", "pools": "pools", "pool": "deployment.pool",
    "name": "cluster.name", "kubernetes_version": "cluster.kubernetes_version", "vpc_id": "cluster.vpc_id",
    "subnet_ids": "cluster.subnet_ids", "vpc_cidr": "cluster.vpc_cidr", "project": "cluster.project",
    "system_instance_type": "cluster.system_instance_type", "system_nodes": "cluster.system_nodes",
    "resource_group_name": "cluster.resource_group", "kubeconfig": "cluster.kubeconfig", "context": "cluster.context",
    "storage": "storage.kind", "dynamo_version": "platform.dynamo_version", "gpu_operator": "platform.gpu_operator",
    "grove": "platform.grove", "kai": "platform.kai", "volcano": "platform.volcano", "lws": "platform.lws",
    "prometheus": "platform.prometheus", "api": "deployment.api", "model_download": "deployment.model_download",
}
_HEAD = re.compile(r"^(?P<head>[A-Za-z_]\w*)(?:\[(?P<key>[^\]]+)\])?(?P<rest>.*)$")
_KWARG = re.compile(r"\b(?P<arg>[a-z_]+)=(?P<value>True|False|None|'[^']*'|\"[^\"]*\"|\[[^\]]*\]|-?\d+(?:\.\d+)?)")


def config_field(path: str, cfg: StackConfig | None, source: str) -> str | None:
    """The stack setting (e.g. `pools[0].zones`) a problem path names: a path already in
    `source: config.dynamo-iac:` terms, or a program argument (`pools[h100].zones`, `grove`);
    None for anything else (provider config, a graph file's own fields)."""
    prefix = f"{source}: config.{PROJECT}:"
    if path.startswith(prefix):
        return path[len(prefix):]
    m = _HEAD.match(path)
    if m is None or m["head"] not in PROGRAM_ARGS:
        return None
    field, key = PROGRAM_ARGS[m["head"]], m["key"]
    if key is not None and field == "pools":
        names = [p.name for p in cfg.pools] if cfg is not None else []
        key = str(names.index(key)) if key in names else key
    return field + (f"[{key}]" if key is not None else "") + m["rest"]


def _yaml_value(value: str) -> str:
    return {"True": "true", "False": "false", "None": "null"}.get(value, value.strip("'\""))


def relabel(e: DynamoIacError, cfg: StackConfig | None, source: str, path_of, name_of) -> DynamoIacError:
    """`e` told the way the user wrote the input (the stack file, or a component package's
    inputs): each problem's path by `path_of(field)`, an `arg=value` in its text by
    `name_of(field): value`."""
    def text(s: str) -> str:
        return _KWARG.sub(lambda m: (f"{name_of(PROGRAM_ARGS[m['arg']]) if m['arg'] in PROGRAM_ARGS else m['arg']}: "
                                     f"{_yaml_value(m['value'])}"), s)

    problems = []
    for p in e.problems:
        if isinstance(e, GraphError) and p.path != "graph":    # a field of the graph itself
            path = f"{path_of('graph')}: {p.path}" if p.path else path_of("graph")
        else:
            field = config_field(p.path, cfg, source)
            path = path_of(field) if field is not None else p.path
        problems.append(Problem(path, text(p.message), text(p.fix)))
    return type(e)(problems)


def in_stack_terms(e: DynamoIacError, cfg: StackConfig, source: str) -> DynamoIacError:
    """An error the stack program raised, at the stack-file paths that fed it."""
    return relabel(e, cfg, source, lambda field: f"{source}: config.{PROJECT}:{field}",
                   lambda field: f"{PROJECT}:{field}")

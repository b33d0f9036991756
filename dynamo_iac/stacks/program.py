"""The one Pulumi program: stack config → graph → capacity plan → cluster → platform → deployment.

Everything that can be wrong with the input (config, graph, instance types, capacity) is
checked before the first resource is registered, so a bad stack never half-creates.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import DynamoIacError, Problem
from .config import PROJECT, StackConfig, in_stack_terms, parse, repo_root

# An HF token from the environment, for runs that keep it out of the stack config (CI). Read
# here, by the program, so `pulumi up`, `pulumi preview` and the offline plan all see it alike.
HF_TOKEN_ENV = "DYNAMO_IAC_HF_TOKEN"

# Provider config the cloud SDKs read (their default providers), which must agree with ours:
# cloud → (key that must equal dynamo-iac:region, required?)
_PROVIDER_REGION = {"aws": ("aws:region", True), "azure": ("azure-native:location", False),
                    "gcp": ("gcp:region", False)}


def config_values() -> dict[str, Any]:
    """All `dynamo-iac:*` config values of the running stack (structured values decoded)."""
    from pulumi.runtime import config as rc

    raw: dict[str, Any] = {**rc.get_config_env(), **rc.CONFIG.get()}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        ns, _, name = key.partition(":")
        if ns != PROJECT or not name:
            continue
        if isinstance(value, str) and value[:1] in "[{":
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        out[name] = value
    return out


def prepare(cfg: StackConfig, root: Path, source: str = "stack config"):
    """Input-only work: graph, catalog facts, capacity plan. Raises before any resource exists;
    `source` (the stack file) prefixes the field paths of its errors."""
    from ..graph import load_graph
    from ..hardware import catalog as catalog_mod
    from ..components.composition import plan_graph

    graph = load_graph(cfg.graph, base_dir=root)
    if cfg.platform.dynamo_version and cfg.platform.dynamo_version != graph.dynamo_version:
        graph = graph.model_copy(update={"dynamo_version": cfg.platform.dynamo_version})
        graph.check()
    cache = graph.model.cache if graph.model else None
    if cache is not None and cfg.storage.size and cfg.storage.size != cache.size:
        graph = graph.model_copy(update={"model": graph.model.model_copy(update={
            "cache": cache.model_copy(update={"size": cfg.storage.size})})})
    if cache is not None and cfg.storage.kind == "none" and cfg.cloud != "byo" and not cache.storage_class:
        raise DynamoIacError("storage.kind none creates no file system, but the graph's model cache claim "
                             f"({cache.pvc}, {cache.access_mode}) then has no storage class: it never binds",
                             f"{PROJECT}:storage.kind",
                             "pick a storage kind (e.g. efs), set the graph's model.cache.storage_class to an "
                             "existing StorageClass, or remove model.cache from the graph")
    cat = catalog_mod.load()
    for i, pool in enumerate(cfg.pools):
        where = f"{source}: config.{PROJECT}:pools[{i}].instance_type"
        try:
            inst = cat.get(pool.instance_type)
        except DynamoIacError as e:               # the catalog's message and close matches, at our path
            raise DynamoIacError([Problem(where, p.message, p.fix) for p in e.problems]) from None
        if cfg.cloud != "byo" and inst.cloud not in (cfg.cloud, "any"):
            raise DynamoIacError(f"{pool.instance_type} is an {inst.cloud} instance type, not {cfg.cloud}",
                                 where,
                                 f"pick a {cfg.cloud} type: `dynamo-iac catalog --cloud {cfg.cloud}`")
    # the plan the cluster sizes its node groups from and the deployment follows (same inputs:
    # components/composition.py), pinned to dynamo-iac:deployment.pool when it is set
    capacity = None
    if cfg.pools:
        instances = {p.name: cat.get(p.instance_type) for p in cfg.pools}
        capacity = plan_graph(graph, cfg.pools, instances, catalog=cat, region=cfg.region,
                              pin=cfg.deployment.pool).capacity
    return graph, cat, capacity


def provider_problems(cfg: StackConfig, provider_config: dict[str, Any], source: str) -> list[Problem]:
    """The cloud SDK's provider config (aws:region …) against ours: resources that use the default
    provider would otherwise land in another region than the one the stack plans for."""
    problems: list[Problem] = []
    if cfg.cloud in _PROVIDER_REGION:
        key, required = _PROVIDER_REGION[cfg.cloud]
        theirs = provider_config.get(key)
        if theirs is None and required:
            problems.append(Problem(f"{source}: config.{key}", "is required: the AWS provider reads its region "
                                    "from it", f"set {key}: {cfg.region} (the same as {PROJECT}:region)"))
        elif theirs is not None and theirs != cfg.region:
            problems.append(Problem(f"{source}: config.{key}", f"is {theirs!r} but {PROJECT}:region is "
                                    f"{cfg.region!r}: resources would be split across regions",
                                    "set both to the same region"))
    if cfg.cloud == "gcp":
        theirs = provider_config.get("gcp:project")
        if theirs is not None and cfg.cluster.project is not None and theirs != cfg.cluster.project:
            problems.append(Problem(f"{source}: config.gcp:project", f"is {theirs!r} but {PROJECT}:cluster.project "
                                    f"is {cfg.cluster.project!r}", "set both to the same project (or drop one)"))
        if theirs is None and cfg.cluster.project is None:
            problems.append(Problem(f"{source}: config.gcp:project", "is required: GKE resources are created in a "
                                    "project", f"set gcp:project (or {PROJECT}:cluster.project)"))
    return problems


def run(cfg: StackConfig, stack: str, root: Path) -> dict[str, Any]:
    """The stack program proper (real and offline): provider config checked, then build()."""
    import pulumi

    source = f"Pulumi.{stack}.yaml"
    provider_config = {}
    for key in ("aws:region", "azure-native:location", "gcp:region", "gcp:project"):
        ns, _, name = key.partition(":")
        value = pulumi.Config(ns).get(name)
        if value is not None:
            provider_config[key] = value
    problems = provider_problems(cfg, provider_config, source)
    if problems:
        raise DynamoIacError(problems)
    try:
        return build(cfg, stack, root)
    except DynamoIacError as e:     # component / planner arguments → the stack settings that fed them
        raise in_stack_terms(e, cfg, source) from None


def stack_hf_token() -> Any:
    """The HF token of a stack: `dynamo-iac:hfToken` (a secret), else $DYNAMO_IAC_HF_TOKEN; None
    when neither is set (the graph then gets no token Secret)."""
    import pulumi

    token = pulumi.Config(PROJECT).get_secret("hfToken")
    if token is None and os.environ.get(HF_TOKEN_ENV):
        token = pulumi.Output.secret(os.environ[HF_TOKEN_ENV])
    return token


def build(cfg: StackConfig, stack: str, root: Path, *, parent: Any = None, export: bool = True,
          hf_token: Any = None, token_from_stack: bool = True, prefix: str = "",
          source: str | None = None) -> dict[str, Any]:
    """Register the stack's resources; returns the components (for tests and exports).
    `parent` nests everything under a component (the component package's ServingStack) and
    `prefix` keeps the children's names (so URNs) unique when a program holds several;
    `hf_token`: the HF token (an Input); when None and token_from_stack, the stack's own."""
    import pulumi

    from ..components.deployment import DynamoDeployment
    from ..components.platform import HF_SECRET, GpuPlatform

    graph, cat, capacity = prepare(cfg, root, source or f"Pulumi.{stack}.yaml")
    opts = pulumi.ResourceOptions(parent=parent) if parent is not None else None
    if hf_token is None and token_from_stack:
        hf_token = stack_hf_token()
    if hf_token is not None and graph.hf_token_secret is None:
        # the graph needs no token, but one was given: hand it to the workers all the same
        graph = graph.model_copy(update={"hf_token_secret": HF_SECRET})
    cluster_name = cfg.cluster.name or f"dynamo-{stack}"[:40]
    # the cluster plans the graph itself and sizes each GPU node group from the plan's
    # `provisioned` count (not the pool's own `nodes`), the same figure the cost is on
    pin = {graph.name: cfg.deployment.pool} if cfg.deployment.pool else None
    sized = {"graphs": [graph], "placement": pin, "catalog": cat}
    cluster: Any = None
    provider: Any = None
    if cfg.cloud == "aws":
        from ..components.aws import AwsGpuCluster

        cluster = AwsGpuCluster(cluster_name, region=cfg.region, pools=cfg.pools,
                                kubernetes_version=cfg.cluster.kubernetes_version, vpc_id=cfg.cluster.vpc_id,
                                subnet_ids=cfg.cluster.subnet_ids or None, vpc_cidr=cfg.cluster.vpc_cidr,
                                system_instance_type=cfg.cluster.system_instance_type,
                                system_nodes=cfg.cluster.system_nodes, storage=cfg.storage.kind or "efs", **sized,
                                opts=opts)
    elif cfg.cloud == "azure":
        from ..components.azure import AzureGpuCluster

        cluster = AzureGpuCluster(cluster_name, location=cfg.region, pools=cfg.pools,
                                  kubernetes_version=cfg.cluster.kubernetes_version,
                                  resource_group_name=cfg.cluster.resource_group,
                                  storage=cfg.storage.kind or "azure-files", **sized, opts=opts)
    elif cfg.cloud == "gcp":
        from ..components.gcp import GcpGpuCluster

        cluster = GcpGpuCluster(cluster_name, region=cfg.region, project=cfg.cluster.project, pools=cfg.pools,
                                kubernetes_version=cfg.cluster.kubernetes_version,
                                storage=cfg.storage.kind or "filestore", **sized, opts=opts)
    else:
        from ..components.common import provider_from_kubeconfig

        provider = provider_from_kubeconfig(f"{prefix}{stack}-k8s", cfg.cluster.kubeconfig, context=cfg.cluster.context,
                                            opts=opts)
    platform = GpuPlatform(f"{prefix}platform", cluster=cluster, provider=provider, graphs=[graph],
                           namespace=cfg.platform.namespace, gpu_operator=cfg.platform.gpu_operator,
                           grove=cfg.platform.grove, kai=cfg.platform.kai, volcano=cfg.platform.volcano,
                           lws=cfg.platform.lws, prometheus=cfg.platform.prometheus, hf_token=hf_token,
                           hf_token_namespace=cfg.deployment.namespace,
                           dynamo_version=graph.dynamo_version, pools=cfg.pools, opts=opts)
    # the deployment follows the cluster's plan (each worker on the pool the plan put it on); on an
    # existing cluster it plans itself with the same pin
    deployment = DynamoDeployment(f"{prefix}{graph.name}", graph=graph, platform=platform,
                                  pool=cfg.deployment.pool if cluster is None else None,
                                  namespace=cfg.deployment.namespace, api=cfg.deployment.api,
                                  model_download=cfg.deployment.model_download, opts=opts)
    if export:
        _export(graph, capacity, cluster, cfg)
    return {"graph": graph, "capacity": capacity, "cluster": cluster, "platform": platform,
            "deployment": deployment}


def export_capacity(capacity: Any) -> None:
    """The capacity plan's stack outputs (what the capacity and cost guards read)."""
    import pulumi

    pulumi.export("capacity_plan", capacity.to_dict())
    pulumi.export("cost_per_hour_usd", capacity.cost_per_hour())
    pulumi.export("cost_per_month_usd", capacity.cost_per_month())
    # nodes the node groups run (max of needed, min_nodes, nodes) — what is paid for
    pulumi.export("nodes", dict(sorted(capacity.provisioned_per_pool().items())))
    pulumi.export("nodes_needed", dict(sorted(capacity.nodes_per_pool().items())))


def _export(graph: Any, capacity: Any, cluster: Any, cfg: StackConfig) -> None:
    """Stack outputs: `pulumi preview` users see the capacity plan and the cost too."""
    import pulumi

    if capacity is not None:
        export_capacity(capacity)
    pulumi.export("graph", graph.name)
    pulumi.export("dgd_api", cfg.deployment.api)
    if cluster is not None:
        pulumi.export("cluster_name", cluster.cluster_name)
        pulumi.export("kubeconfig", pulumi.Output.secret(cluster.kubeconfig))


def main() -> None:
    """Entry point of stacks/__main__.py (real `pulumi up`)."""
    import pulumi

    stack = pulumi.get_stack()
    try:
        cfg = parse(config_values(), f"Pulumi.{stack}.yaml")
        run(cfg, stack, repo_root())
    except DynamoIacError as e:   # one readable error, no traceback, nothing registered
        raise pulumi.RunError(str(e)) from None

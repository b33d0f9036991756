"""The one Pulumi program: stack config → graph → capacity plan → cluster → platform → deployment.

Everything that can be wrong with the input (config, graph, instance types, capacity) is
checked before the first resource is registered, so a bad stack never half-creates.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import DynamoIacError
from .config import PROJECT, StackConfig, parse, repo_root


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


def prepare(cfg: StackConfig, root: Path):
    """Input-only work: graph, catalog facts, capacity plan. Raises before any resource exists."""
    from ..graph import load_graph
    from ..hardware import catalog as catalog_mod
    from ..plan import plan as plan_graph

    graph = load_graph(cfg.graph, base_dir=root)
    if cfg.platform.dynamo_version and cfg.platform.dynamo_version != graph.dynamo_version:
        graph = graph.model_copy(update={"dynamo_version": cfg.platform.dynamo_version})
        graph.check()
    cat = catalog_mod.load()
    for i, pool in enumerate(cfg.pools):
        inst = cat.get(pool.instance_type)        # ConfigError with close matches when unknown
        if cfg.cloud != "byo" and inst.cloud not in (cfg.cloud, "any"):
            raise DynamoIacError(f"{pool.instance_type} is an {inst.cloud} instance type, not {cfg.cloud}",
                                 f"{PROJECT}:pools[{i}].instance_type",
                                 f"pick a {cfg.cloud} type: `dynamo-iac catalog --cloud {cfg.cloud}`")
    capacity = plan_graph(graph, cfg.pools, catalog=cat) if cfg.pools else None
    return graph, cat, capacity


def build(cfg: StackConfig, stack: str, root: Path, *, parent: Any = None, export: bool = True) -> dict[str, Any]:
    """Register the stack's resources; returns the components (for tests and exports).
    `parent` nests everything under a component (the component package's ServingStack)."""
    import pulumi

    from ..components.deployment import DynamoDeployment
    from ..components.platform import GpuPlatform

    graph, cat, capacity = prepare(cfg, root)
    opts = pulumi.ResourceOptions(parent=parent) if parent is not None else None
    hf_token = pulumi.Config(PROJECT).get_secret("hfToken")
    cluster_name = cfg.cluster.name or f"dynamo-{stack}"[:40]
    cluster: Any = None
    provider: Any = None
    if cfg.cloud == "aws":
        from ..components.aws import AwsGpuCluster

        cluster = AwsGpuCluster(cluster_name, region=cfg.region, pools=cfg.pools,
                                kubernetes_version=cfg.cluster.kubernetes_version, vpc_id=cfg.cluster.vpc_id,
                                subnet_ids=cfg.cluster.subnet_ids or None, vpc_cidr=cfg.cluster.vpc_cidr,
                                system_instance_type=cfg.cluster.system_instance_type,
                                system_nodes=cfg.cluster.system_nodes, storage=cfg.storage.kind or "efs", opts=opts)
    elif cfg.cloud == "azure":
        from ..components.azure import AzureGpuCluster

        cluster = AzureGpuCluster(cluster_name, location=cfg.region, pools=cfg.pools,
                                  kubernetes_version=cfg.cluster.kubernetes_version,
                                  resource_group_name=cfg.cluster.resource_group,
                                  storage=cfg.storage.kind or "azure-files", opts=opts)
    elif cfg.cloud == "gcp":
        from ..components.gcp import GcpGpuCluster

        cluster = GcpGpuCluster(cluster_name, region=cfg.region, project=cfg.cluster.project, pools=cfg.pools,
                                kubernetes_version=cfg.cluster.kubernetes_version,
                                storage=cfg.storage.kind or "filestore", opts=opts)
    else:
        from ..components.common import provider_from_kubeconfig

        provider = provider_from_kubeconfig(f"{stack}-k8s", cfg.cluster.kubeconfig, context=cfg.cluster.context,
                                            opts=opts)
    platform = GpuPlatform("platform", cluster=cluster, provider=provider, graphs=[graph],
                           namespace=cfg.platform.namespace, gpu_operator=cfg.platform.gpu_operator,
                           grove=cfg.platform.grove, kai=cfg.platform.kai, volcano=cfg.platform.volcano,
                           lws=cfg.platform.lws, prometheus=cfg.platform.prometheus, hf_token=hf_token,
                           hf_token_namespace=cfg.deployment.namespace,
                           dynamo_version=graph.dynamo_version, pools=cfg.pools, opts=opts)
    deployment = DynamoDeployment(graph.name, graph=graph, platform=platform, pool=cfg.gpu_pool,
                                  namespace=cfg.deployment.namespace, api=cfg.deployment.api,
                                  model_download=cfg.deployment.model_download, opts=opts)
    if export:
        _export(graph, capacity, cluster, cfg)
    return {"graph": graph, "capacity": capacity, "cluster": cluster, "platform": platform,
            "deployment": deployment}


def _export(graph: Any, capacity: Any, cluster: Any, cfg: StackConfig) -> None:
    """Stack outputs: `pulumi preview` users see the capacity plan and the cost too."""
    import pulumi

    if capacity is not None:
        pulumi.export("capacity_plan", capacity.to_dict())
        pulumi.export("cost_per_hour_usd", capacity.cost_per_hour())
        pulumi.export("cost_per_month_usd", capacity.cost_per_month())
        pulumi.export("nodes", {p: n for p, n in sorted(capacity.nodes_per_pool().items())})
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
        build(cfg, stack, repo_root())
    except DynamoIacError as e:   # one readable error, no traceback, nothing registered
        raise pulumi.RunError(str(e)) from None

"""Components for non-Python Pulumi programs (`pulumi package add ./components`).

A component package can only take primitive-typed inputs, so these wrappers take strings,
numbers and lists, build the typed objects (StackConfig, DynamoGraph) from them, and then run
exactly the same code as the Python stack program — one path, not a second implementation.

Inputs that decide which resources exist (cloud, instance type, the graph …) must be plain
values when the component is constructed: one that arrives as an Output of another resource is
rejected with an error naming it. Only `hf_token` may be an Output (e.g. a config secret).
"""

from typing import Optional, TypedDict

import pulumi


class ServingStackArgs(TypedDict, total=False):
    cloud: pulumi.Input[str]
    """aws | azure | gcp | byo"""
    region: pulumi.Input[str]
    """AWS region, Azure location or GCP region (not for byo)"""
    graph_yaml: pulumi.Input[str]
    """The serving graph as YAML: DynamoGraph fields, or a DynamoGraphDeployment manifest"""
    instance_type: pulumi.Input[str]
    """GPU instance / VM / machine type from the catalog, e.g. p5.48xlarge"""
    nodes: pulumi.Input[int]
    """GPU nodes to run at least; default: the nodes the capacity plan needs (the node group runs
    the plan's provisioned count either way)"""
    max_nodes: pulumi.Input[int]
    """Maximum GPU nodes (autoscaling bound)"""
    zones: pulumi.Input[list[str]]
    """Zone(s) of the GPU pool; fabric pools need exactly one"""
    purchase_option: pulumi.Input[str]
    """on-demand | spot | capacity-block | reservation"""
    capacity_reservation_id: pulumi.Input[str]
    """Capacity reservation / block id (required for capacity-block)"""
    kubernetes_version: pulumi.Input[str]
    """Kubernetes minor version, e.g. 1.31"""
    kubeconfig: pulumi.Input[str]
    """byo: path of the kubeconfig of an existing cluster"""
    dgd_api: pulumi.Input[str]
    """v1beta1 (default) | v1alpha1"""
    project: pulumi.Input[str]
    """GCP project"""
    hf_token: pulumi.Input[str]
    """Hugging Face token for gated models; pass a secret (e.g. config.require_secret). Stored in a
    Kubernetes Secret the workers read; omit for public models"""


# the inputs, in schema order (the ServingStackArgs keys)
_INPUTS = tuple(ServingStackArgs.__annotations__)
_SECRET_INPUTS = ("hf_token",)


def plain_args(name: str, args: dict) -> dict:
    """The args as plain values; an Output among them is a clear error (it cannot shape the tree)."""
    from ..errors import DynamoIacError, Problem

    unknown = sorted(set(args) - set(_INPUTS))
    problems = [Problem(f"{name}.{k}", "unknown ServingStack input", f"known inputs: {', '.join(_INPUTS)}")
                for k in unknown]
    for key, value in sorted(args.items()):
        if key in _SECRET_INPUTS:
            continue
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, pulumi.Output) for v in values):
            problems.append(Problem(f"{name}.{key}", "is an Output of another resource, but it decides which "
                                    "resources the stack creates, so it must be known when the component is built",
                                    "pass a plain value (a literal or a plain config value)"))
    if problems:
        raise DynamoIacError(problems)
    return dict(args)


class ServingStack(pulumi.ComponentResource):
    """A whole Dynamo serving stack: GPU cluster, GPU platform and the DynamoGraphDeployment."""

    cluster_name: pulumi.Output[Optional[str]]
    kubeconfig: pulumi.Output[Optional[str]]
    cost_per_hour_usd: pulumi.Output[Optional[float]]
    capacity_plan_json: pulumi.Output[Optional[str]]

    def __init__(self, name: str, args: ServingStackArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("dynamo-iac:index:ServingStack", name, {}, opts)
        import json
        import tempfile
        from pathlib import Path

        from ..stacks.config import parse
        from ..stacks.program import build

        args = plain_args(name, dict(args))
        pool = {k: args[k] for k in ("instance_type", "nodes", "max_nodes", "zones", "purchase_option",
                                     "capacity_reservation_id") if args.get(k) is not None}
        values = {"cloud": args.get("cloud"), "graph": "graph.yaml",
                  "pools": [{"name": "gpu", **pool}] if pool.get("instance_type") else [],
                  "cluster": {k: v for k, v in (("kubernetes_version", args.get("kubernetes_version")),
                                                 ("kubeconfig", args.get("kubeconfig")),
                                                 ("project", args.get("project"))) if v is not None},
                  "deployment": {"api": args.get("dgd_api") or "v1beta1"}}
        if args.get("region"):
            values["region"] = args["region"]
        source = f"{name} (ServingStack args)"
        cfg = parse(values, source)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "graph.yaml").write_text(str(args.get("graph_yaml") or ""))
            built = build(cfg, name, Path(tmp), parent=self, export=False, prefix=f"{name}-",
                          hf_token=args.get("hf_token"), token_from_stack=False, source=source)
        cluster, capacity = built["cluster"], built["capacity"]
        self.cluster_name = cluster.cluster_name if cluster is not None else pulumi.Output.from_input(None)
        self.kubeconfig = (pulumi.Output.secret(cluster.kubeconfig) if cluster is not None
                           else pulumi.Output.from_input(None))
        self.cost_per_hour_usd = pulumi.Output.from_input(capacity.cost_per_hour() if capacity else None)
        self.capacity_plan_json = pulumi.Output.from_input(
            json.dumps(capacity.to_dict(), sort_keys=True) if capacity else None)
        self.register_outputs({"cluster_name": self.cluster_name, "kubeconfig": self.kubeconfig,
                               "cost_per_hour_usd": self.cost_per_hour_usd,
                               "capacity_plan_json": self.capacity_plan_json})

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
# schema properties marked `secret: true` (the engine then encrypts them in every language's
# state): pulumi's component analyzer has no way to say so from the annotations, so provider()
# adds the markers to the schema it infers
SECRET_SCHEMA = {"inputProperties": ("hfToken",), "properties": ("kubeconfig",)}
TOKEN = "dynamo-iac:index:ServingStack"
# the stack setting each input feeds (config_field names) → the input, for errors in input terms
_FIELD_INPUT = {"cloud": "cloud", "region": "region", "graph": "graphYaml", "pools": "instanceType",
                "pools[0]": "instanceType", "pools[0].instance_type": "instanceType", "pools[0].nodes": "nodes",
                "pools[0].max_nodes": "maxNodes", "pools[0].zones": "zones",
                "pools[0].purchase_option": "purchaseOption",
                "pools[0].capacity_reservation_id": "capacityReservationId",
                "cluster.kubernetes_version": "kubernetesVersion", "cluster.kubeconfig": "kubeconfig",
                "cluster.project": "project", "deployment.api": "dgdApi"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.title() for w in rest)


def provider(version: str = "0.0.0"):
    """The component provider `components/__main__.py` serves: the inferred schema, secrets marked."""
    import json

    from pulumi.provider.experimental.component import ComponentProvider

    p = ComponentProvider([ServingStack], "dynamo-iac", version=version)
    schema = json.loads(p.schema)
    res = schema["resources"][TOKEN]
    for section, names in SECRET_SCHEMA.items():
        for n in names:
            res[section][n]["secret"] = True
    p.schema = json.dumps(schema)
    return p


def _input_terms(e, cfg, source: str, name: str, graph_file: str):
    """An error of the stack program, told in this component's input names (instanceType,
    graphYaml …) instead of stack-file paths or the temporary graph file."""
    from ..stacks.config import relabel

    def input_of(field: str) -> str:
        head = field.split(".")[0].split("[")[0]
        for key in sorted(_FIELD_INPUT, key=len, reverse=True):
            if field == key or field.startswith((key + ".", key + "[")):
                return _FIELD_INPUT[key] + field[len(key):]
        return f"{_camel(head)}{field[len(head):]}"

    from ..errors import Problem

    out = relabel(e, cfg, source, lambda f: f"{name}.{input_of(f)}", input_of)
    if not graph_file:
        return out
    # the graph YAML lives in a temporary file only this component knows
    def text(s: str) -> str:
        return s.replace(f"{graph_file}: ", "").replace(graph_file, f"{name}.graphYaml")

    return type(out)([Problem(p.path, text(p.message), text(p.fix)) for p in out.problems])


def plain_args(name: str, args: dict) -> dict:
    """The args as plain values; an Output among them is a clear error (it cannot shape the tree)."""
    from ..errors import DynamoIacError, Problem

    unknown = sorted(set(args) - set(_INPUTS))
    problems = [Problem(f"{name}.{_camel(k)}", "unknown ServingStack input",
                        f"known inputs: {', '.join(_camel(i) for i in _INPUTS)}") for k in unknown]
    for key, value in sorted(args.items()):
        if key in _SECRET_INPUTS:
            continue
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, pulumi.Output) for v in values):
            problems.append(Problem(f"{name}.{_camel(key)}", "is an Output of another resource, but it decides which "
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

        from ..errors import DynamoIacError
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
        try:
            cfg = parse(values, source)
        except DynamoIacError as e:
            raise _input_terms(e, None, source, name, "") from None
        # an HF token is a secret whatever the caller passed (a plain string too)
        token = pulumi.Output.secret(args["hf_token"]) if args.get("hf_token") is not None else None
        with tempfile.TemporaryDirectory() as tmp:
            graph_file = Path(tmp) / "graph.yaml"
            graph_file.write_text(str(args.get("graph_yaml") or ""))
            try:
                built = build(cfg, name, Path(tmp), parent=self, export=False, prefix=f"{name}-",
                              hf_token=token, token_from_stack=False, source=source)
            except DynamoIacError as e:
                raise _input_terms(e, cfg, source, name, str(graph_file)) from None
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

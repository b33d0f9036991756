"""The component package (components/): its schema as `pulumi package add` infers it, and the
ServingStack component built under the recording mock monitor from primitive inputs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dynamo_iac.errors import DynamoIacError
from dynamo_iac.preview.engine import run_program

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.mocks
GRAPH = (ROOT / "stacks" / "graphs" / "qwen3-8b-agg.yaml").read_text()
ARGS = {"cloud": "aws", "region": "us-west-2", "graph_yaml": GRAPH, "instance_type": "g6e.12xlarge",
        "nodes": 1, "max_nodes": 2, "zones": ["us-west-2a"]}
CONFIG = {"aws:region": "us-west-2"}


def _provider():
    from dynamo_iac.components.package import provider

    return provider("0.0.1")


def test_plugin_files():
    assert yaml.safe_load((ROOT / "components" / "PulumiPlugin.yaml").read_text()) == {"runtime": "python"}
    main = (ROOT / "components" / "__main__.py").read_text()
    assert "main(provider(), sys.argv[1:])" in main and '__name__ == "__main__"' in main


def test_schema_has_primitive_inputs_and_the_outputs():
    schema = json.loads(_provider().schema)
    res = schema["resources"]["dynamo-iac:index:ServingStack"]
    assert res["isComponent"] is True
    types = {k: v.get("type") for k, v in res["inputProperties"].items()}
    assert types == {"cloud": "string", "region": "string", "graphYaml": "string", "instanceType": "string",
                     "nodes": "integer", "maxNodes": "integer", "zones": "array", "purchaseOption": "string",
                     "capacityReservationId": "string", "kubernetesVersion": "string", "kubeconfig": "string",
                     "dgdApi": "string", "project": "string", "hfToken": "string"}
    assert set(res["properties"]) == {"clusterName", "kubeconfig", "costPerHourUsd", "capacityPlanJson"}
    # the credentials are schema secrets: every language's SDK and the state keep them encrypted
    assert {k for k, v in res["inputProperties"].items() if v.get("secret")} == {"hfToken"}
    assert {k for k, v in res["properties"].items() if v.get("secret")} == {"kubeconfig"}


def _build(*stacks: tuple[str, dict]):
    from dynamo_iac.components.package import ServingStack

    def program():
        for name, args in stacks:
            ServingStack(name, args)

    return run_program(program, project="t", stack="t", config=CONFIG)


def test_constructed_from_schema_inputs_under_mocks():
    """camelCase inputs as the engine sends them, mapped by the provider, build the stack's tree."""
    from dynamo_iac.components.package import ServingStack

    p = _provider()
    camel = {"cloud": "aws", "region": "us-west-2", "graphYaml": GRAPH, "instanceType": "g6e.12xlarge",
             "nodes": 1, "maxNodes": 2, "zones": ["us-west-2a"], "hfToken": "hf_PKG_SENTINEL"}
    mapped = p.map_inputs(camel, p._component_defs["ServingStack"])
    assert mapped["instance_type"] == "g6e.12xlarge" and mapped["hf_token"] == "hf_PKG_SENTINEL"
    record = run_program(lambda: ServingStack("svc", mapped), project="t", stack="t", config=CONFIG)
    (comp,) = record.of_type("dynamo-iac:index:ServingStack")
    types = {r.type for r in record.resources}
    assert {"aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup",
            "kubernetes:nvidia.com/v1beta1:DynamoGraphDeployment"} <= types
    (secret,) = [r for r in record.of_type("kubernetes:core/v1:Secret") if "hf-token" in r.name]
    assert secret.inputs["stringData"] == {"HF_TOKEN": "[secret]"}
    assert "hf_PKG_SENTINEL" not in json.dumps([r.inputs for r in record.resources])
    dgd = record.of_type("kubernetes:nvidia.com/v1beta1:DynamoGraphDeployment")[0]
    assert "hf-token-secret" in json.dumps(dgd.inputs)          # the token given reaches the workers


def test_two_serving_stacks_in_one_program_record_both():
    """Every child carries its component's name (the Helm releases too: the Pulumi name is
    prefixed, the in-cluster release name stays the chart's), so two stacks never share a URN."""
    one = _build(("a", ARGS))
    two = _build(("a", ARGS), ("b", ARGS))
    assert len(two.resources) == 2 * len(one.resources)
    releases = sorted(r.name for r in two.of_type("kubernetes:helm.sh/v3:Release"))
    assert releases == sorted(f"{s}-{n}" for s in "ab" for n in
                              (r.name.removeprefix("a-") for r in one.of_type("kubernetes:helm.sh/v3:Release")))
    assert {r.inputs["name"] for r in two.of_type("kubernetes:helm.sh/v3:Release")} == \
        {r.inputs["name"] for r in one.of_type("kubernetes:helm.sh/v3:Release")}


def test_an_output_for_a_structural_input_is_a_clear_error():
    import pulumi

    with pytest.raises(DynamoIacError) as e:
        _build(("a", {**ARGS, "instance_type": pulumi.Output.from_input("g6e.12xlarge"),
                      "zones": [pulumi.Output.from_input("us-west-2a")]}))
    assert [p.path for p in e.value.problems] == ["a.instanceType", "a.zones"]
    assert "must be known when the component is built" in e.value.problems[0].message


def test_hf_token_may_be_an_output():
    import pulumi

    record = _build(("a", {**ARGS, "hf_token": pulumi.Output.secret("hf_x")}))
    assert [r for r in record.of_type("kubernetes:core/v1:Secret") if "hf-token" in r.name]


def test_bad_primitive_input_names_the_field():
    with pytest.raises(DynamoIacError) as e:
        _build(("a", {**ARGS, "instance_type": "g6e.12xlarg"}))
    (p,) = e.value.problems
    assert p.path == "a.instanceType" and "not in the catalog" in p.message


def test_offline_engine_rejects_duplicate_urns():
    import pulumi

    def program():
        pulumi.ComponentResource("t:index:Thing", "same", None, None)
        pulumi.ComponentResource("t:index:Thing", "same", None, None)

    with pytest.raises(DynamoIacError) as e:
        run_program(program, project="t", stack="t")
    (p,) = e.value.problems
    assert p.path == "urn:pulumi:t::t::pulumi:pulumi:Stack$t:index:Thing::same" and "duplicate resource URN" in p.message


def test_gpu_node_group_is_sized_by_the_plan():
    """No `nodes` input: the node group runs what the capacity plan provisions (the disaggregated
    graph needs 2 p5 nodes: EFA does not carry KV transfers within a node), not a default of 1."""
    disagg = (ROOT / "stacks" / "graphs" / "qwen3-32b-disagg.yaml").read_text()
    args = {"cloud": "aws", "region": "us-east-1", "graph_yaml": disagg, "instance_type": "p5.48xlarge",
            "max_nodes": 4, "zones": ["us-east-1a"]}
    from dynamo_iac.components.package import ServingStack

    record = run_program(lambda: ServingStack("svc", args), project="t", stack="t",
                         config={"aws:region": "us-east-1"})
    from dynamo_iac.graph import load_graph
    from dynamo_iac.hardware.pool import GpuPool
    from dynamo_iac.plan import plan

    pool = GpuPool(name="gpu", instance_type="p5.48xlarge", max_nodes=4, zones=["us-east-1a"])
    provisioned = plan(load_graph(ROOT / "stacks" / "graphs" / "qwen3-32b-disagg.yaml"), [pool]).pools[0].provisioned
    sizes = {r.name: r.inputs["scalingConfig"]["desiredSize"] for r in record.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert pool.nodes == 1 and provisioned == 2
    assert {k: v for k, v in sizes.items() if not k.endswith("-system")} == {"dynamo-svc-gpu": provisioned}

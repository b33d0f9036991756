"""The component package reports a bad input by its own input names (instanceType, graphYaml …),
never by stack-file paths or the temporary file the graph YAML is written to."""
from __future__ import annotations

from pathlib import Path

import pytest

from dynamo_iac.errors import DynamoIacError
from dynamo_iac.preview.engine import run_program

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.mocks
GRAPH = (ROOT / "stacks" / "graphs" / "qwen3-8b-agg.yaml").read_text()
ARGS = {"cloud": "aws", "region": "us-west-2", "graph_yaml": GRAPH, "instance_type": "g6e.12xlarge",
        "nodes": 1, "max_nodes": 2, "zones": ["us-west-2a"]}


def _problems(**update) -> list:
    from dynamo_iac.components.package import ServingStack

    args = {k: v for k, v in {**ARGS, **update}.items() if v is not None}
    with pytest.raises(DynamoIacError) as e:
        run_program(lambda: ServingStack("svc", args), project="t", stack="t", config={"aws:region": "us-west-2"})
    return e.value.problems


@pytest.mark.parametrize("update,path,message", [
    ({"instance_type": "g6e.12xlarg"}, "svc.instanceType", "instance type 'g6e.12xlarg' is not in the catalog"),
    ({"kubernetes_version": "1.20"}, "svc.kubernetesVersion", "1.20 is older than the dynamo-platform chart"),
    ({"nodes": 0}, "svc.nodes", "pool gpu runs 0 nodes"),
    ({"region": None}, "svc.region", "is required for cloud 'aws'"),
    ({"graph_yaml": "name: x\nbackend: nope\n"}, "svc.graphYaml: backend", "Input should be"),
    ({"graph_yaml": "a: [\n"}, "svc.graphYaml", "not valid YAML"),
])
def test_a_bad_input_is_named_as_the_package_input(update, path, message):
    (p,) = _problems(**update)
    assert p.path == path and p.message.startswith(message), p
    assert "/tmp" not in str(p) and "config.dynamo-iac" not in str(p) and "graph.yaml" not in str(p)


def test_python_keyword_syntax_in_a_fix_becomes_the_input_value():
    (p,) = _problems(instance_type="p5.48xlarge", zones=["us-west-2a", "us-west-2b"])
    assert p.path == "svc.zones" and "zones: ['us-west-2a']" in p.fix and "zones=" not in p.fix

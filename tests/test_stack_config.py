"""Stack presets parse into the typed config; bad stack files give one clear error each."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dynamo_iac.errors import ConfigError
from dynamo_iac.stacks.config import available_stacks, load_stack

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {"aws-p5-disagg", "aws-g6e-agg", "byo-k8s", "azure-ndh100-disagg", "gcp-a3ultra-disagg"}


def test_presets_exist_and_parse():
    assert PRESETS <= set(available_stacks(ROOT))
    for s in PRESETS:
        cfg = load_stack(s, ROOT)
        assert cfg.graph.startswith("stacks/graphs/")
    aws = load_stack("aws-p5-disagg", ROOT)
    assert aws.cloud == "aws" and aws.gpu_pool.instance_type == "p5.48xlarge" and aws.gpu_pool.zones == ["us-east-1a"]


def _stack(tmp_path: Path, text: str) -> Path:
    root = tmp_path / "proj"
    (root / "stacks" / "graphs").mkdir(parents=True)
    shutil.copy(ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    for g in (ROOT / "stacks" / "graphs").glob("*.yaml"):
        shutil.copy(g, root / "stacks" / "graphs" / g.name)
    (root / "stacks" / "Pulumi.t.yaml").write_text(text)
    return root


BASE = """config:
  dynamo-iac:cloud: aws
  dynamo-iac:region: us-east-1
  dynamo-iac:graph: stacks/graphs/qwen3-32b-disagg.yaml
  dynamo-iac:pools:
    - {name: h100, instance_type: p5.48xlarge, nodes: 2, zones: [us-east-1a]}
"""


def test_typo_in_setting_name(tmp_path):
    root = _stack(tmp_path, BASE + "  dynamo-iac:pool: {}\n")
    with pytest.raises(ConfigError) as e:
        load_stack("t", root)
    (p,) = e.value.problems
    assert p.path == "Pulumi.t.yaml: config.dynamo-iac:pool" and "dynamo-iac:pools" in p.fix


def test_typo_inside_a_pool(tmp_path):
    root = _stack(tmp_path, BASE.replace("nodes: 2,", "nodez: 2,"))
    with pytest.raises(ConfigError) as e:
        load_stack("t", root)
    (p,) = e.value.problems
    assert p.path == "Pulumi.t.yaml: config.dynamo-iac:pools[0].nodez"
    assert p.message == "unknown field" and "'nodes'" in p.fix


def test_missing_graph(tmp_path):
    root = _stack(tmp_path, BASE.replace("  dynamo-iac:graph: stacks/graphs/qwen3-32b-disagg.yaml\n", ""))
    with pytest.raises(ConfigError) as e:
        load_stack("t", root)
    (p,) = e.value.problems
    assert p.path == "Pulumi.t.yaml: config.dynamo-iac:graph" and p.message == "is required"


def test_unknown_stack_suggests_close_name():
    with pytest.raises(ConfigError) as e:
        load_stack("aws-p5-disag", ROOT)
    assert "aws-p5-disagg" in e.value.problems[0].fix


def test_unknown_namespace(tmp_path):
    root = _stack(tmp_path, BASE + "  dynamo_iac:cloud: aws\n")
    with pytest.raises(ConfigError) as e:
        load_stack("t", root)
    assert "dynamo-iac" in e.value.problems[0].fix


def test_kai_and_volcano_exclusive(tmp_path):
    root = _stack(tmp_path, BASE + "  dynamo-iac:platform: {kai: true, volcano: true}\n")
    with pytest.raises(ConfigError, match="mutually exclusive"):
        load_stack("t", root)


def test_misspelt_required_field_is_one_error(tmp_path):
    root = _stack(tmp_path, BASE.replace("instance_type: p5.48xlarge", "instance_typ: p5.48xlarge"))
    with pytest.raises(ConfigError) as e:
        load_stack("t", root)
    (p,) = e.value.problems
    assert p.path == "Pulumi.t.yaml: config.dynamo-iac:pools[0].instance_typ"
    assert p.message == "unknown field" and p.fix == "did you mean 'instance_type'?"


# the GPU node group's desired size, per cloud: (resource type, read the size from its inputs)
GPU_GROUP = {"aws": ("aws:eks/nodeGroup:NodeGroup", lambda i: i["scalingConfig"]["desiredSize"]),
             "azure": ("azure-native:containerservice:AgentPool", lambda i: i["count"]),
             "gcp": ("gcp:container/nodePool:NodePool", lambda i: i["initialNodeCount"])}
CLOUD_PRESETS = ["aws-p5-disagg", "azure-ndh100-disagg", "gcp-a3ultra-disagg"]


def _gpu_group_sizes(run) -> dict[str, int]:
    type_, size = GPU_GROUP[run.config.cloud]
    return {p.name: size(r.inputs) for p in run.config.pools for r in run.record.of_type(type_)
            if r.name.endswith(f"-{p.name}")}


@pytest.mark.mocks
@pytest.mark.parametrize("stack", CLOUD_PRESETS)
def test_preset_gpu_node_group_is_sized_by_the_plan(stack):
    from dynamo_iac.preview.stack import run_stack

    run = run_stack(stack, ROOT)
    assert _gpu_group_sizes(run) == run.capacity.provisioned_per_pool() == {run.config.gpu_pool.name: 2}


@pytest.mark.mocks
@pytest.mark.parametrize("stack", ["aws-p5-disagg", "gcp-a3ultra-disagg"])
def test_pool_without_nodes_gets_its_size_from_the_plan(tmp_path, stack):
    """No `nodes` (nor min_nodes) in the pool: the pool's own count is the default 1, but the
    disaggregated graph needs 2 nodes there (prefill and decode on separate nodes over EFA /
    GPUDirect); the node group runs what the plan provisions. (On the Azure preset the plan
    needs 1 node, the same as the default, so it proves nothing there.)"""
    from dynamo_iac.preview.stack import run_stack

    text = (ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text()
    kept = [ln for ln in text.splitlines() if ln.strip().split(":")[0] not in ("nodes", "min_nodes")]
    assert len(kept) < len(text.splitlines())
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text("\n".join(kept) + "\n")
    run = run_stack(str(path), ROOT)
    pool = run.config.gpu_pool
    assert "nodes" not in pool.model_fields_set and pool.nodes == 1 and pool.max == 4
    assert _gpu_group_sizes(run) == run.capacity.provisioned_per_pool() == {pool.name: 2}


@pytest.mark.mocks
@pytest.mark.parametrize("attr,expect", [
    ("DynamoGraph", "dynamo_iac.graph.model.DynamoGraph"),
    ("MyGraph", "stack_graphs_cls.MyGraph"),
])
def test_graph_path_to_a_class_says_so(tmp_path, attr, expect):
    """`module:Class` would be called with no fields ("name: Field required"): say it is a class."""
    from dynamo_iac.errors import GraphError
    from dynamo_iac.preview.stack import run_stack

    text = BASE.replace("config:\n", "config:\n  aws:region: us-east-1\n")
    root = _stack(tmp_path, text.replace("stacks/graphs/qwen3-32b-disagg.yaml", f"stack_graphs_cls:{attr}"))
    (root / "stack_graphs_cls.py").write_text("from dynamo_iac.graph import DynamoGraph\n\n\n"
                                              "class MyGraph(DynamoGraph):\n    pass\n")
    with pytest.raises(GraphError) as e:
        run_stack("t", root)
    (p,) = e.value.problems
    assert p.message == f"stack_graphs_cls:{attr} is a class ({expect}), not a graph or a function returning one"
    assert "DynamoGraph instance" in p.fix and "Field required" not in str(e.value)


def test_a_key_given_twice_is_an_error_not_last_wins(tmp_path):
    """PyYAML keeps the last of two equal keys; Pulumi rejects the file — so do we, naming both lines."""
    root = _stack(tmp_path, BASE.replace("nodes: 2,", "nodes: 1, nodes: 3,"))
    with pytest.raises(ConfigError) as e:
        load_stack("t", root)
    (p,) = e.value.problems
    assert "found duplicate key 'nodes' (first given on line 6)" in str(p)

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

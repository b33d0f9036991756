"""validate: apiVersion typos, label syntax in every metadata block, an empty --crd-dir; import
errors at the manifest's own paths."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import needs_shared
from dynamo_iac.errors import GraphError
from dynamo_iac.graph import DynamoGraph, Model, Worker
from dynamo_iac.targets.k8s.validate import check_manifest, validate_manifest

pytestmark = [pytest.mark.conformance, needs_shared]


def dgd(api: str = "v1beta1") -> dict:
    return DynamoGraph(name="x", model=Model("Qwen/Qwen3-0.6B"), workers=[Worker()]).to_dgd(api)


@pytest.mark.parametrize("group", ["nvidia.comm", "nvida.com", "Nvidia.com", "example.org"])
def test_misspelt_group_is_an_error_with_did_you_mean(group):
    d = dgd()
    d["apiVersion"] = f"{group}/v1beta1"
    problems, notes = check_manifest(d)
    assert [(p.path, p.fix) for p in problems] == [("apiVersion", "did you mean nvidia.com/v1beta1?")] and notes == []


def test_other_operators_resources_stay_notes():
    problems, notes = check_manifest({"apiVersion": "mellanox.com/v1alpha1", "kind": "NicClusterPolicy",
                                      "metadata": {"name": "p"}})
    assert problems == [] and "another operator" in notes[0]
    problems, notes = check_manifest({"apiVersion": "resource.nvidia.com/v1beta1", "kind": "ComputeDomain",
                                      "metadata": {"name": "p"}})
    assert problems == [] and notes


@pytest.mark.parametrize("api", ["v1beta1", "v1alpha1"])
def test_label_syntax_checked_in_object_and_pod_metadata(api):
    d = dgd(api)
    d["metadata"]["labels"] = {"bad key!": "v", "k": "v" * 70}
    if api == "v1beta1":
        d["spec"]["components"][1]["podTemplate"]["metadata"] = {"annotations": {"a b": "x"}}
        pod = "spec.components[1].podTemplate.metadata.annotations"
    else:
        name = list(d["spec"]["services"])[1]
        d["spec"]["services"][name]["extraPodMetadata"] = {"annotations": {"a b": "x"}}
        pod = f"spec.services.{name}.extraPodMetadata.annotations"
    paths = sorted(p.path for p in validate_manifest(d, schema_only=True))
    assert paths == sorted(["metadata.labels", "metadata.labels", pod])


def test_empty_crd_dir_says_no_crd_found(tmp_path):
    (p,) = validate_manifest(dgd(), crd_dir=tmp_path)
    assert f"no CustomResourceDefinition found in {tmp_path}" in p.fix


def test_cli_typo_exits_1(tmp_path):
    f = tmp_path / "d.yaml"
    f.write_text("apiVersion: nvidia.comm/v1beta1\nkind: DynamoGraphDeployment\nmetadata: {name: x}\nspec: {}\n")
    r = subprocess.run([sys.executable, "-m", "dynamo_iac.cli", "validate", str(f)], capture_output=True, text=True)
    assert r.returncode == 1 and "did you mean nvidia.com/v1beta1" in r.stdout


def _doc(name: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "nvidia.com/v1beta1", "kind": "DynamoGraphDeployment",
            "metadata": {"name": "x", **({"labels": labels} if labels else {})},
            "spec": {"components": [{"name": name, "type": "worker", "podTemplate": {"spec": {"containers": [
                {"name": "side", "image": "s:1.0.0"}, {"name": "main", "image": "i:1.0.0"}]}}}]}}


def test_import_errors_at_manifest_paths():
    with pytest.raises(GraphError) as e:
        DynamoGraph.from_dgd(_doc("bad_name"))
    assert [p.path for p in e.value.problems] == ["spec.components[0].name"]
    with pytest.raises(GraphError) as e:
        DynamoGraph.from_dgd(_doc("w", {"bad key": "v"}))
    assert [p.path for p in e.value.problems] == ["metadata.labels"]

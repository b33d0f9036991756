"""Manifest validation: CRD schema (unknown fields with suggestions), admission rules, other kinds."""
from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from conftest import CRDS, EXAMPLES, example_documents, needs_shared
from dynamo_iac import patterns
from dynamo_iac.graph import Model, Parallelism, Worker
from dynamo_iac.targets.k8s.validate import validate_manifest

pytestmark = [pytest.mark.conformance, needs_shared]


def good(api="v1beta1"):
    g = patterns.disaggregated("qwen", Model("Qwen/Qwen3-0.6B"), prefill=Worker(parallelism=Parallelism(tp=2)),
                               decode=Worker(parallelism=Parallelism(tp=2)))
    return g.to_dgd(api)


def paths(problems):
    return [p.path for p in problems]


def test_generated_manifests_are_valid():
    assert validate_manifest(good("v1beta1"), CRDS) == []
    assert validate_manifest(good("v1alpha1"), CRDS) == []


def test_misspelt_field_reported_with_suggestion():
    m = good()
    m["spec"]["components"][1]["replicaz"] = 2
    (p,) = validate_manifest(m, CRDS, schema_only=True)
    assert p.path == "spec.components[1].replicaz" and "unknown field" in p.message and "'replicas'" in p.fix


def test_latest_tag_rejected_unless_override():
    m = good()
    m["spec"]["components"][1]["podTemplate"]["spec"]["containers"][0]["image"] = "nvcr.io/x/vllm-runtime:latest"
    (p,) = validate_manifest(m, CRDS)
    assert p.path == "spec.components[1].podTemplate.spec.containers[0].image" and "semver" in p.message
    assert validate_manifest(m, CRDS, schema_only=True) == []
    m["spec"]["components"][1]["runtimeVersionOverride"] = "1.2.0"
    assert validate_manifest(m, CRDS) == []


def test_26_components_rejected():
    m = good()
    base = m["spec"]["components"][1]
    m["spec"]["components"] = [dict(copy.deepcopy(base), name=f"w{i}") for i in range(26)]
    problems = validate_manifest(m, CRDS)
    assert "spec.components" in paths(problems)


def test_v1beta1_component_without_main_container():
    m = good()
    m["spec"]["components"][1]["podTemplate"]["spec"]["containers"][0]["name"] = "engine"
    problems = validate_manifest(m, CRDS)
    assert any(p.path == "spec.components[1].podTemplate.spec.containers" and "main" in p.message for p in problems)


def test_duplicate_names_epp_and_minavailable():
    m = good()
    m["spec"]["components"][2]["name"] = m["spec"]["components"][1]["name"].upper()
    m["spec"]["components"][1]["minAvailable"] = 3
    problems = validate_manifest(m, CRDS)
    assert "spec.components[2].name" in paths(problems) and "spec.components[1].minAvailable" in paths(problems)


def test_v1alpha1_rules():
    m = good("v1alpha1")
    m["spec"]["pvcs"] = [{"name": "cache", "create": True}]
    m["spec"]["services"]["Frontend"]["ingress"] = {"enabled": True}
    m["spec"]["restart"] = {"id": "r1"}
    assert set(paths(validate_manifest(m, CRDS))) == {"spec.pvcs[0]", "spec.services.Frontend.ingress.host",
                                                       "spec.restart"}


def test_annotation_values():
    m = good()
    m["metadata"]["annotations"] = {"nvidia.com/vllm-distributed-executor-backend": "mpi"}
    (p,) = validate_manifest(m, CRDS)
    assert p.path == "metadata.annotations.nvidia.com/vllm-distributed-executor-backend"


def test_nulls_dropped_like_the_api_server():
    m = good("v1alpha1")
    m["spec"]["services"]["Frontend"]["subComponentType"] = None
    assert validate_manifest(m, CRDS) == []


def test_other_kinds_are_handled_each_its_own_way():
    from dynamo_iac.targets.k8s.validate import check_manifest

    seen = set()
    for f, i, d in example_documents():
        if d.get("kind") == "DynamoGraphDeployment":
            continue
        problems, notes = check_manifest(d, CRDS)
        api = d["apiVersion"]
        if api.startswith("nvidia.com/"):          # DGDR, DynamoModel …: against their own CRD
            assert problems == [] and notes == [], (f, [str(p) for p in problems])
            seen.add("dynamo")
        elif "." in api.split("/")[0] and not api.split("/")[0].endswith(".k8s.io"):   # another operator's CR
            assert problems == [] and notes == [f"not checked: no schema for {api}/{d['kind']} "
                                                "(another operator's resource)"]
            seen.add("foreign")
        else:                                        # PVC, Job …: Kubernetes' own schemas
            assert problems == [] and notes == [], (f, [str(p) for p in problems])
            seen.add("core")
    assert seen == {"dynamo", "foreign", "core"}


def test_every_example_file_validates_except_placeholder_tags():
    from dynamo_iac.targets.k8s.validate_cli import validate_files

    files = sorted(EXAMPLES.glob("*.yaml"))
    assert validate_files(files, CRDS, schema_only=True) == []
    for line in validate_files(files, CRDS, schema_only=False):
        assert "has tag 'my-tag', which is not semver" in line, line


def test_metadata_is_checked_as_object_meta():
    m = good()
    m["metadata"] = {"lables": {"a": "b"}}
    assert sorted((p.path, p.message) for p in validate_manifest(m, CRDS, schema_only=True)) == [
        ("metadata.lables", "unknown field (the API server would silently drop it)"),
        ("metadata.name", "is required")]
    m["metadata"] = {"name": "Bad_Name", "labels": {"a": 1}}
    assert sorted(p.path for p in validate_manifest(m, CRDS, schema_only=True)) == ["metadata.labels.a",
                                                                                      "metadata.name"]


def test_empty_file_is_an_error(tmp_path):
    f = tmp_path / "empty.yaml"
    f.write_text("---\n")
    r = subprocess.run([sys.executable, "-m", "dynamo_iac.cli", "validate", str(f), "--crd-dir", str(CRDS)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "no YAML document" in r.stdout


def test_core_kinds_checked_with_kubernetes_schemas():
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
           "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "10Gi"}}}}
    assert validate_manifest(pvc) == []
    pvc["spec"]["acessModes"] = pvc["spec"].pop("accessModes")
    assert validate_manifest(pvc)


def test_cli_exit_codes(tmp_path):
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump(good()))
    r = subprocess.run([sys.executable, "-m", "dynamo_iac.cli", "validate", str(ok), "--crd-dir", str(CRDS)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    bad = good()
    bad["spec"]["components"][0]["typo"] = 1
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(bad))
    r = subprocess.run([sys.executable, "-m", "dynamo_iac.cli", "validate", str(f), "--crd-dir", str(CRDS)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout.strip() == f"{f}: spec.components[0].typo: unknown field (the API " \
        "server would silently drop it) (fix: did you mean 'type'?)"
    r = subprocess.run([sys.executable, "-m", "dynamo_iac.cli", "validate", "--schema-only",
                        str(EXAMPLES / "vllm__disagg.yaml")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout

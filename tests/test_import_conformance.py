"""Every upstream DynamoGraphDeployment imports, re-renders equal, rebuilds from --to python,
and validates; other kinds are reported clearly. Reads ../shared/reference (skips without it)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from conftest import EXAMPLES, example_dgds, example_documents, needs_shared
from dynamo_iac.errors import GraphError
from dynamo_iac.graph import DynamoGraph
from dynamo_iac.targets.k8s.merge import normalize, prune_nulls

pytestmark = [pytest.mark.conformance, needs_shared]
DGDS = example_dgds()
IDS = [f"{f}#{i}" for f, i, _ in DGDS]


def test_reference_has_the_examples():
    assert len(DGDS) >= 30, "expected ~32 upstream DGDs in ../shared/reference/dynamo-examples"
    assert {d["apiVersion"] for _, _, d in DGDS} == {"nvidia.com/v1alpha1", "nvidia.com/v1beta1"}


@pytest.mark.parametrize("name,idx,doc", DGDS, ids=IDS)
def test_import_rerenders_semantically_equal(name, idx, doc):
    g = DynamoGraph.from_dgd(doc)
    out = yaml.safe_load(g.to_yaml())
    assert out["apiVersion"] == doc["apiVersion"]
    assert normalize(out) == normalize(prune_nulls(doc))
    # components are a list-map keyed by name: same names, and the same order as the input
    if doc["apiVersion"].endswith("v1beta1"):
        assert sorted(c["name"] for c in out["spec"]["components"]) == \
            sorted(c["name"] for c in doc["spec"]["components"])


@pytest.mark.parametrize("name,idx,doc", DGDS, ids=IDS)
def test_to_python_rebuilds_an_equal_graph(name, idx, doc):
    g = DynamoGraph.from_dgd(doc)
    ns: dict = {}
    exec(compile(g.to_python(), f"<{name}>", "exec"), ns)
    assert ns["graph"] == g
    assert ns["graph"].to_yaml() == g.to_yaml()


@pytest.mark.parametrize("name,idx,doc", DGDS, ids=IDS)
def test_imported_graph_knows_its_workers(name, idx, doc):
    g = DynamoGraph.from_dgd(doc)
    gpu_workers = [w for w in g.workers if w.gpu_count]
    for w in gpu_workers:
        assert w.tp >= 1 and w.gpu_count >= 1
        if w.parallelism is not None:
            assert w.parallelism.gpus == w.gpu_count


PLACEHOLDER_TAGS = {"my-tag"}       # what the upstream examples write instead of a release tag


def _placeholder_images(doc: dict) -> set[str]:
    """Components whose main image carries an upstream placeholder tag (and no override)."""
    def placeholder(img):
        return bool(img) and img.rsplit(":", 1)[-1] in PLACEHOLDER_TAGS

    if doc["apiVersion"].endswith("v1beta1"):
        return {c["name"] for c in doc["spec"]["components"] if not c.get("runtimeVersionOverride")
                and any(ct.get("name") == "main" and placeholder(ct.get("image"))
                        for ct in c.get("podTemplate", {}).get("spec", {}).get("containers", []))}
    return {n for n, s in doc["spec"]["services"].items() if not s.get("runtimeVersionOverride")
            and placeholder(((s.get("extraPodSpec") or {}).get("mainContainer") or {}).get("image"))}


@pytest.mark.parametrize("name,idx,doc", DGDS, ids=IDS)
def test_rendered_import_validates(name, idx, doc):
    from dynamo_iac.targets.k8s.validate import validate_manifest

    rendered = DynamoGraph.from_dgd(doc).to_dgd()
    assert validate_manifest(rendered, schema_only=True) == []
    problems = validate_manifest(rendered)
    expected = _placeholder_images(doc)
    flagged = {p.path for p in problems}
    assert len(problems) == len(expected), [str(p) for p in problems]
    for p in problems:
        assert "semver" in p.message or "tag" in p.message, str(p)
    if doc["apiVersion"].endswith("v1beta1"):
        names = [c["name"] for c in rendered["spec"]["components"]]
        assert {names[int(path.split("[")[1].split("]")[0])] for path in flagged} == expected
    else:
        assert {path.split(".")[2] for path in flagged} == expected


def test_other_kinds_are_reported_not_crashed():
    others = [(f, i, d) for f, i, d in example_documents() if d.get("kind") != "DynamoGraphDeployment"]
    assert others
    for f, i, d in others:
        with pytest.raises(GraphError) as e:
            DynamoGraph.from_dgd(d)
        assert d["kind"] in e.value.problems[0].message


def test_cli_import_python_and_yaml():
    f = EXAMPLES / "recipes__qwen3-32b__vllm__cloud-providers__deploy-aws-p5.48xlarge.yaml"
    py = subprocess.run([sys.executable, "-m", "dynamo_iac.cli", "import", str(f), "--to", "python"],
                        capture_output=True, text=True, check=True).stdout
    ns: dict = {}
    exec(py, ns)
    assert ns["graph"] == DynamoGraph.from_dgd(yaml.safe_load(f.read_text()))
    y = subprocess.run([sys.executable, "-m", "dynamo_iac.cli", "import", str(f)],
                       capture_output=True, text=True, check=True).stdout
    assert normalize(yaml.safe_load(y)) == normalize(prune_nulls(yaml.safe_load(f.read_text())))
    pvc = EXAMPLES / "recipes__llama-3-70b__model-cache__model-cache.yaml"
    r = subprocess.run([sys.executable, "-m", "dynamo_iac.cli", "import", str(pvc)], capture_output=True, text=True)
    assert r.returncode == 1 and "PersistentVolumeClaim" in r.stderr and "Traceback" not in r.stderr


# ------------------------------------------------------------------ conversion to the other API
# Upstream features with no faithful mapping: the conversion must refuse them, naming the field.
NOT_CONVERTIBLE = {"vllm__gaie__agg.yaml": "frontendSidecar"}


@pytest.mark.parametrize("name,idx,doc", DGDS, ids=IDS)
def test_converts_to_the_other_api_and_validates(name, idx, doc):
    from dynamo_iac.targets.k8s.validate import validate_manifest

    g = DynamoGraph.from_dgd(doc)
    src = doc["apiVersion"].split("/")[1]
    other = "v1alpha1" if src == "v1beta1" else "v1beta1"
    if name in NOT_CONVERTIBLE:
        with pytest.raises(GraphError) as e:
            g.to_dgd(other)
        assert any(NOT_CONVERTIBLE[name] in p.path for p in e.value.problems), str(e.value)
        return
    converted = g.to_dgd(other)
    assert converted["apiVersion"] == f"nvidia.com/{other}"
    assert validate_manifest(converted, schema_only=True) == []      # includes unknown fields
    # converted back (re-imported), it renders the source API again and still validates
    back = DynamoGraph.from_dgd(converted).to_dgd(src)
    assert validate_manifest(back, schema_only=True) == []
    n_in = len(doc["spec"].get("components") or doc["spec"].get("services") or [])
    assert len(converted["spec"].get("components") or converted["spec"].get("services")) == n_in


def test_v1alpha1_service_fields_land_in_the_v1beta1_pod_template():
    doc = {"apiVersion": "nvidia.com/v1alpha1", "kind": "DynamoGraphDeployment", "metadata": {"name": "x"},
           "spec": {"services": {"W": {
               "componentType": "worker", "envs": [{"name": "A", "value": "1"}], "envFromSecret": "hf",
               "resources": {"requests": {"cpu": "4", "custom": {"rdma/ib": "1"}}, "limits": {"gpu": "2"}},
               "volumeMounts": [{"name": "cache", "mountPoint": "/c"},
                                {"name": "cc", "mountPoint": "/cc", "useAsCompilationCache": True}],
               "extraPodSpec": {"mainContainer": {"image": "r/vllm-runtime:1.2.0", "args": ["--tp", "2"]}}}},
               "pvcs": [{"name": "cache", "create": False}]}}
    beta = DynamoGraph.from_dgd(doc).to_dgd("v1beta1")
    (c,) = beta["spec"]["components"]
    main = c["podTemplate"]["spec"]["containers"][0]
    assert main["env"] == [{"name": "A", "value": "1"}] and "env" not in c
    assert main["envFrom"] == [{"secretRef": {"name": "hf"}}]
    assert main["resources"] == {"requests": {"cpu": "4", "rdma/ib": "1"}, "limits": {"nvidia.com/gpu": "2"}}
    assert main["volumeMounts"] == [{"name": "cache", "mountPath": "/c"}]
    assert c["podTemplate"]["spec"]["volumes"] == [{"name": "cache", "persistentVolumeClaim": {"claimName": "cache"}}]
    assert c["compilationCache"] == {"pvcName": "cc", "mountPath": "/cc"}
    assert "pvcs" not in beta["spec"]
    doc["spec"]["pvcs"][0]["create"] = True
    with pytest.raises(GraphError) as e:
        DynamoGraph.from_dgd(doc).to_dgd("v1beta1")
    assert [p.path for p in e.value.problems] == ["spec.pvcs[0].create"]

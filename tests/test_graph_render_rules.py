"""What render refuses, and what it derives: the PVC a v1beta1 DGD cannot create, the API a Dynamo
release serves, and the render/import command's output errors."""
from __future__ import annotations

import subprocess
import sys

import pytest

from dynamo_iac.errors import GraphError
from dynamo_iac.graph import DynamoGraph, Model, ModelCache, Worker
from dynamo_iac.targets.k8s.overlay import RenderTarget


def graph(**kw) -> DynamoGraph:
    kw.setdefault("model", Model("Qwen/Qwen3-0.6B", cache=ModelCache(create=True, storage_class="gp3")))
    return DynamoGraph(name="g", workers=[Worker()], **kw)


def test_v1beta1_cannot_create_the_cache_pvc():
    with pytest.raises(GraphError) as e:
        graph().to_dgd("v1beta1")
    (p,) = e.value.problems
    assert p.path == "model.cache.create" and "v1alpha1" in p.fix and "DynamoDeployment" in p.fix


def test_v1alpha1_creates_it():
    assert graph().to_dgd("v1alpha1")["spec"]["pvcs"] == [
        {"name": "model-cache", "create": True, "size": "100Gi", "storageClass": "gp3",
         "volumeAccessMode": "ReadWriteMany"}]


def test_pvc_managed_outside_the_dgd_renders_a_mount_in_both_apis():
    target = RenderTarget(model_cache_external=True)
    beta = graph().to_dgd("v1beta1", target)["spec"]["components"][1]["podTemplate"]["spec"]
    assert beta["volumes"] == [{"name": "model-cache", "persistentVolumeClaim": {"claimName": "model-cache"}}]
    assert graph().to_dgd("v1alpha1", target)["spec"]["pvcs"] == [{"name": "model-cache", "create": False}]


def test_release_api_is_the_default_and_enforced():
    old = graph(dynamo_version="1.0.2", model=Model("Qwen/Qwen3-0.6B"))
    assert old.to_dgd()["apiVersion"] == "nvidia.com/v1alpha1"       # 1.0.2 serves only v1alpha1
    assert graph(model=Model("Qwen/Qwen3-0.6B")).to_dgd()["apiVersion"] == "nvidia.com/v1beta1"
    with pytest.raises(GraphError) as e:
        old.to_dgd("v1beta1")
    (p,) = e.value.problems
    assert p.path == "dynamo_version" and "v1alpha1" in p.fix and "1.2.0" in p.fix


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dynamo_iac.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture()
def graph_file(tmp_path):
    f = tmp_path / "g.yaml"
    f.write_text("name: g\nmodel: {id: Qwen/Qwen3-0.6B}\nworkers: [{role: agg}]\n")
    return f


def test_render_out_errors_are_clear(graph_file, tmp_path):
    missing = _cli("render", str(graph_file), "-o", str(tmp_path / "nope" / "x.yaml"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    isdir = _cli("render", str(graph_file), "-o", str(tmp_path))
    assert isdir.returncode == 1 and "is a directory" in isdir.stderr and "Traceback" not in isdir.stderr
    ok = _cli("render", str(graph_file), "-o", str(tmp_path / "x.yaml"))
    assert ok.returncode == 0 and (tmp_path / "x.yaml").read_text().startswith("apiVersion: nvidia.com/v1beta1")


def test_import_to_python_refuses_api(tmp_path, graph_file):
    dgd = tmp_path / "d.yaml"
    dgd.write_text(DynamoGraph(name="g", model=Model("Qwen/Qwen3-0.6B"), workers=[Worker()]).to_yaml())
    r = _cli("import", str(dgd), "--to", "python", "--api", "v1alpha1")
    assert r.returncode == 1 and "--api" in r.stderr

"""`dynamo-iac plan` for a real user: no CRD beside the checkout, stack files outside stacks/,
provider config that must agree with ours, and exactly the stack's config (no injected token)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CRDS
from dynamo_iac.errors import ConfigError, DynamoIacError

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.mocks

STACK = """config:
  aws:region: us-west-2
  dynamo-iac:cloud: aws
  dynamo-iac:region: us-west-2
  dynamo-iac:graph: stacks/graphs/qwen3-8b-agg.yaml
  dynamo-iac:pools:
    - {name: l40s, instance_type: g6e.12xlarge, nodes: 1, max_nodes: 2, zones: [us-west-2a]}
"""


def cli(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "DYNAMO_IAC_HF_TOKEN"}
    full.update({"NO_COLOR": "1", "COLUMNS": "160", **(env or {})})
    return subprocess.run([sys.executable, "-m", "dynamo_iac.cli", *args], cwd=cwd, capture_output=True,
                          text=True, env=full, timeout=300)


@pytest.fixture
def no_crd(monkeypatch):
    """As on a user's machine: no DYNAMO_IAC_CRD_DIR, no ../shared reference beside the checkout."""
    import dynamo_iac.targets.k8s.validate as v

    monkeypatch.delenv("DYNAMO_IAC_CRD_DIR", raising=False)
    monkeypatch.setattr(v, "default_crd_dir", lambda: None)


def test_plan_without_a_crd_skips_only_the_crd_schema_check(no_crd, tmp_path):
    from dynamo_iac.preview.cli import plan_stack

    parts = plan_stack("aws-p5-disagg", tmp_path)
    doc = json.loads((tmp_path / "plan.json").read_text())
    crd = doc["manifest_checks"]["dynamo_crd_schema"]
    assert crd["status"] == "skipped" and "--crd-dir" in crd["enable"]
    dgd = "dynamographdeployment-dynamo-qwen3-32b.yaml"
    assert doc["manifest_checks"]["not_validated"][dgd].startswith("not validated against the Dynamo CRD schema")
    assert doc["manifest_problems"] == [] and not parts["policy"].failed
    assert parts["policy"].rules                                # the policies ran all the same


def test_without_a_crd_admission_rules_still_catch_a_bad_dgd(no_crd, tmp_path):
    from dynamo_iac.preview.checks import check_manifests

    dgd = {"apiVersion": "nvidia.com/v1beta1", "kind": "DynamoGraphDeployment", "metadata": {"name": "g"},
           "spec": {"components": [{"name": "Frontend", "type": "frontend", "podTemplate": {"spec": {
               "containers": [{"name": "main", "image": "nvcr.io/nvidia/ai-dynamo/vllm-runtime:latest"}]}}}]}}
    checks = check_manifests([("dgd.yaml", dgd)], None)
    assert checks.crd is None and checks.problems and all(p.startswith("dgd.yaml: ") for p in checks.problems)
    assert any("latest" in p for p in checks.problems), checks.problems


@pytest.mark.skipif(not CRDS.is_dir(), reason="../shared/reference is absent")
def test_plan_crd_dir_option_takes_one_exported_crd(tmp_path):
    crd = next(CRDS.glob("*dynamographdeployments.yaml"))
    r = cli("plan", "-s", "aws-g6e-agg", "--out", str(tmp_path), "--crd-dir", str(crd))
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "plan.json").read_text())
    assert doc["manifest_checks"]["dynamo_crd_schema"] == {"status": "checked", "crd": str(crd.resolve())}


def test_plan_crd_dir_that_does_not_exist_is_an_error(tmp_path):
    r = cli("plan", "-s", "aws-g6e-agg", "--out", str(tmp_path), "--crd-dir", str(tmp_path / "nope"))
    assert r.returncode == 1 and "--crd-dir" in r.stderr and "does not exist" in r.stderr
    assert "Traceback" not in r.stderr


def test_stack_file_outside_stacks_with_root(tmp_path):
    f = tmp_path / "elsewhere" / "Pulumi.mine.yaml"
    f.parent.mkdir()
    f.write_text(STACK)
    r = cli("plan", "-s", str(f), "--root", str(ROOT), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    assert json.loads((tmp_path / "out" / "plan.json").read_text())["stack"] == "mine"
    r = cli("policy", "-s", str(f), "--root", str(ROOT), "--json", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["stack"] == "mine"


def test_failed_plan_leaves_no_stale_plan_json(tmp_path):
    f = tmp_path / "Pulumi.bad.yaml"
    f.write_text(STACK)
    out = tmp_path / "out"
    assert cli("plan", "-s", str(f), "--root", str(ROOT), "--out", str(out)).returncode == 0
    assert (out / "plan.json").is_file()
    f.write_text(STACK.replace("g6e.12xlarge", "g6e.12xlarg"))
    r = cli("plan", "-s", str(f), "--root", str(ROOT), "--out", str(out))
    assert r.returncode == 1 and "not in the catalog" in r.stderr
    assert not (out / "plan.json").exists() and not list((out / "manifests").glob("*.yaml"))


# --------------------------------------------------------------------- provider config agreement
def _run(tmp_path: Path, text: str):
    from dynamo_iac.preview.stack import run_stack

    f = tmp_path / "Pulumi.t.yaml"
    f.write_text(text)
    return run_stack(str(f), ROOT)


@pytest.mark.parametrize("text,path,message", [
    (STACK.replace("aws:region: us-west-2", "aws:region: us-east-1"), "config.aws:region",
     "is 'us-east-1' but dynamo-iac:region is 'us-west-2'"),
    (STACK.replace("  aws:region: us-west-2\n", ""), "config.aws:region", "is required"),
])
def test_aws_region_must_agree(tmp_path, text, path, message):
    with pytest.raises(DynamoIacError) as e:
        _run(tmp_path, text)
    (p,) = e.value.problems
    assert p.path == f"Pulumi.t.yaml: {path}" and p.message.startswith(message) and p.fix


def _preset_with(stack: str, old: str, new: str) -> str:
    return (ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text().replace(old, new)


@pytest.mark.parametrize("stack,old,new,path", [
    ("azure-ndh100-disagg", "azure-native:location: eastus", "azure-native:location: westus3",
     "config.azure-native:location"),
    ("gcp-a3ultra-disagg", "gcp:region: us-central1", "gcp:region: europe-west4", "config.gcp:region"),
    ("gcp-a3ultra-disagg", "gcp:project: my-project", "gcp:project: other-project", "config.gcp:project"),
])
def test_azure_and_gcp_provider_config_must_agree(tmp_path, stack, old, new, path):
    text = _preset_with(stack, old, new)
    assert text != _preset_with(stack, "", "")
    with pytest.raises(DynamoIacError) as e:
        _run(tmp_path, text)
    assert [p.path for p in e.value.problems] == [f"Pulumi.t.yaml: {path}"]


# --------------------------------------------------------------------- the token: the stack's own
def _hf_secrets(run) -> list:
    return [r for r in run.record.resources if r.type == "kubernetes:core/v1:Secret" and "hf-token" in r.name]


def test_no_token_no_secret_and_no_violation(monkeypatch, tmp_path):
    from dynamo_iac.policies.runner import evaluate_record

    monkeypatch.delenv("DYNAMO_IAC_HF_TOKEN", raising=False)
    run = _run(tmp_path, STACK)
    assert _hf_secrets(run) == []
    dgd = run.record.of_type("kubernetes:nvidia.com/v1beta1:DynamoGraphDeployment")[0]
    assert "hf-token-secret" not in json.dumps(dgd.inputs)          # a public model reads no token
    assert not evaluate_record(run.record).failed


def test_encrypted_token_in_the_stack_gives_a_masked_secret(monkeypatch, tmp_path):
    monkeypatch.delenv("DYNAMO_IAC_HF_TOKEN", raising=False)
    run = _run(tmp_path, STACK + "  dynamo-iac:hfToken:\n    secure: AAABAKx1c2VjcmV0\n")
    (secret,) = _hf_secrets(run)
    assert secret.inputs["stringData"] == {"HF_TOKEN": "[secret]"}
    dgd = run.record.of_type("kubernetes:nvidia.com/v1beta1:DynamoGraphDeployment")[0]
    assert "hf-token-secret" in json.dumps(dgd.inputs)              # a token given reaches the workers
    assert "AAABAKx1c2VjcmV0" not in json.dumps([r.inputs for r in run.record.resources])


def test_a_graph_that_needs_a_token_without_one_is_a_mandatory_violation(monkeypatch, tmp_path):
    """What `pulumi up` would hit is what plan shows: no token Secret, the DGD reads it anyway."""
    from dynamo_iac.policies.runner import evaluate_record

    monkeypatch.delenv("DYNAMO_IAC_HF_TOKEN", raising=False)
    g = (ROOT / "stacks" / "graphs" / "qwen3-8b-agg.yaml").read_text().replace("hf_token_secret: null\n", "")
    (tmp_path / "gated.yaml").write_text(g)
    run = _run(tmp_path, STACK.replace("stacks/graphs/qwen3-8b-agg.yaml", str(tmp_path / "gated.yaml")))
    report = evaluate_record(run.record)
    assert [v.rule for v in report.mandatory] == ["secret-references-exist"]
    assert "'hf-token-secret'" in report.mandatory[0].message


def test_stack_name_of_a_missing_file_is_one_error(tmp_path):
    from dynamo_iac.stacks.config import read_stack_file

    with pytest.raises(ConfigError) as e:
        read_stack_file(str(tmp_path / "Pulumi.none.yaml"))
    assert e.value.problems[0].path == "-s/--stack"


def test_foreign_custom_resources_are_reported_not_validated():
    from dynamo_iac.preview.checks import check_manifests

    net = {"apiVersion": "networking.gke.io/v1", "kind": "Network", "metadata": {"name": "rdma-0"}, "spec": {}}
    checks = check_manifests([("network-rdma-0.yaml", net)], None)
    assert checks.problems == []
    assert checks.not_validated == {"network-rdma-0.yaml": "not checked: no schema for networking.gke.io/v1/Network "
                                                           "(another operator's resource)"}


# --------------------------------------------------------------------- planned vs provisioned nodes
def test_p5_with_nodes_and_min_4_costs_4_nodes(tmp_path):
    text = _preset_with("aws-p5-disagg", "      nodes: 2\n      min_nodes: 2\n", "      nodes: 4\n      min_nodes: 4\n")
    assert "nodes: 4" in text
    run = _run(tmp_path, text)
    out, cap = run.record.outputs, run.capacity
    assert out["nodes"] == {"h100": 4} and out["nodes_needed"] == {"h100": 2}
    (row,) = out["capacity_plan"]["pools"]
    assert (row["nodes"], row["provisioned"]) == (2, 4)
    price = row["usd_per_node_hour"]
    assert out["cost_per_hour_usd"] == (None if price is None else round(4 * price, 4)) == cap.cost_per_hour()


@pytest.mark.parametrize("stack", ["azure-ndh100-disagg", "gcp-a3ultra-disagg"])
def test_presets_show_provisioned_nodes_and_idle_nodes(stack):
    """Both presets run nodes: 2; what placement needs is the planner's (IB on AKS carries KV between
    pods of one node, so Azure needs 1 and runs one idle node — said in a warning)."""
    from dynamo_iac.policies.runner import evaluate_record
    from dynamo_iac.preview.stack import run_stack

    run = run_stack(stack, ROOT)
    (pool,) = run.config.pools
    out = run.record.outputs
    assert out["nodes"] == {pool.name: 2}
    needed = out["nodes_needed"][pool.name]
    idle = [w for w in run.capacity.warnings if w.startswith(f"{pool.name} runs 2 node(s)")]
    assert (needed, bool(idle)) == ((1, True) if stack.startswith("azure") else (2, False))
    if idle:
        assert "but the graph needs 1" in idle[0]
    assert not evaluate_record(run.record).failed


def test_storage_size_sets_the_model_cache_claim(tmp_path):
    run = _run(tmp_path, STACK + "  dynamo-iac:storage: {kind: efs, size: 321Gi}\n")
    (pvc,) = [r for r in run.record.of_type("kubernetes:core/v1:PersistentVolumeClaim")]
    assert pvc.inputs["spec"]["resources"]["requests"]["storage"] == "321Gi"


def test_storage_none_with_a_model_cache_is_one_clear_error(tmp_path):
    with pytest.raises(DynamoIacError) as e:
        _run(tmp_path, STACK + "  dynamo-iac:storage: {kind: none}\n")
    (p,) = e.value.problems
    assert p.path == "dynamo-iac:storage.kind" and "never binds" in p.message and "storage_class" in p.fix


def test_unknown_instance_type_names_the_file_and_the_pool(tmp_path):
    with pytest.raises(DynamoIacError) as e:
        _run(tmp_path, STACK.replace("g6e.12xlarge", "g6e.12xlarg"))
    (p,) = e.value.problems
    assert p.path == "Pulumi.t.yaml: config.dynamo-iac:pools[0].instance_type"
    assert "'g6e.12xlarg' is not in the catalog" in p.message and "g6e.12xlarge" in p.fix


def test_cyclic_gc_paused_restores_the_collector():
    """Off inside, back as it was after (also on an exception); what was alive is frozen, and a
    cycle made afterwards is collected again."""
    import gc

    from dynamo_iac.preview.gcpause import cyclic_gc_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with cyclic_gc_paused():
            assert not gc.isenabled()
            raise RuntimeError("a failed plan")
    assert gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()             # a caller that had it off keeps it off
    finally:
        gc.enable()
    assert gc.get_freeze_count() > 0
    import weakref

    class Node:
        pass

    node = Node()
    node.me = node                            # a cycle: only the collector frees it
    gone = weakref.ref(node)
    del node
    gc.collect()
    assert gone() is None
    gc.unfreeze()

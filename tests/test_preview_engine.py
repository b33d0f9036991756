"""The offline engine as a preview sees it: what the provider computes stays unknown at any depth
(never a silent null or ''), credentials in stack config never reach a report, and one run's
state never leaks into the next in the same process."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.mocks

UNKNOWN = "(known after apply)"


def _record(program):
    from dynamo_iac.preview.engine import run_program

    return run_program(program, project="t", stack="t")


def _inputs(record, type_: str, name: str) -> dict:
    (r,) = [r for r in record.resources if r.type == type_ and r.name == name]
    return r.inputs


# ------------------------------------------------------------------ computed fields, nested
def test_a_computed_field_inside_an_echoed_input_object_is_unknown():
    import pulumi_aws as aws

    def program():
        c = aws.eks.Cluster("c", role_arn="arn:aws:iam::1:role/r", vpc_config={"subnet_ids": ["subnet-1"]})
        aws.ec2.LaunchTemplate("lt", network_interfaces=[
            {"device_index": 0, "security_groups": [c.vpc_config.cluster_security_group_id]}])

    nic = _inputs(_record(program), "aws:ec2/launchTemplate:LaunchTemplate", "lt")["networkInterfaces"][0]
    assert nic["securityGroups"] == [UNKNOWN] and nic["deviceIndex"] == 0


def test_kubernetes_objects_echo_their_inputs_so_their_names_stay_known():
    import pulumi_kubernetes as k8s

    def program():
        ns = k8s.core.v1.Namespace("ns", metadata={"name": "dynamo"})
        k8s.core.v1.ConfigMap("cm", metadata={"name": "c", "namespace": ns.metadata.name}, data={"a": "b"})

    meta = _inputs(_record(program), "kubernetes:core/v1:ConfigMap", "cm")["metadata"]
    assert meta == {"name": "c", "namespace": "dynamo"}


def test_p5_launch_template_security_groups_are_unknown_not_null(tmp_path):
    from dynamo_iac.preview.stack import run_stack

    run = run_stack("aws-p5-disagg")
    (lt,) = run.record.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    nics = lt.inputs["networkInterfaces"]
    assert len(nics) == 32
    assert all(n["securityGroups"] == [UNKNOWN, UNKNOWN] for n in nics), nics[0]


def test_gcp_filestore_address_is_marked_in_the_manifest_and_reported(tmp_path):
    from dynamo_iac.preview.cli import plan_stack
    from dynamo_iac.preview.report import MANIFEST_UNKNOWN

    parts = plan_stack("gcp-a3ultra-disagg", tmp_path)
    pv = "manifests/persistentvolume-dynamo-model-cache-dynamo-gcp-a3ultra-disagg.yaml"
    text = (tmp_path / pv).read_text()
    assert f"ip: {MANIFEST_UNKNOWN}" in text and "ip: ''" not in text
    doc = json.loads((tmp_path / "plan.json").read_text())
    assert doc["manifest_unknowns"][pv] == ["spec.csi.volumeAttributes.ip"]
    assert doc["legend"]["unknown_in_manifests"] == MANIFEST_UNKNOWN
    # the placeholder is a plain string: the manifest still validates as a PersistentVolume
    assert parts["problems"] == []


def test_plan_prints_which_manifests_hold_unknowns(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "dynamo_iac.cli", "plan", "-s", "aws-g6e-agg", "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, env={"NO_COLOR": "1", "COLUMNS": "200",
                                                                      "PATH": "/usr/bin:/bin"}, timeout=300)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if "storageclass-efs-model-cache.yaml" in ln)
    assert "known after apply, written as ${known-after-apply}: parameters.fileSystemId" in line


# ------------------------------------------------------------------ credentials in stack config
SENTINEL = "wJalrXUtnFEMI-SENTINEL-7f3a"


def test_plain_credentials_in_stack_config_never_reach_plan_json(tmp_path):
    from dynamo_iac.preview.cli import plan_stack

    text = (ROOT / "stacks" / "Pulumi.aws-g6e-agg.yaml").read_text()
    text = text.replace("config:\n", f"config:\n  aws:secretKey: {SENTINEL}\n  aws:accessKey: AKIA-{SENTINEL}\n"
                        f"  dynamo-iac:hfToken: hf_{SENTINEL}\n", 1)
    f = tmp_path / "Pulumi.leaky.yaml"
    f.write_text(text)
    out = tmp_path / "out"
    parts = plan_stack(str(f), out, root=ROOT)
    flagged = sorted(v.message for v in parts["policy"].violations if v.rule == "config-secrets-encrypted")
    assert flagged == [f"stack config {k} holds a credential in plain text in Pulumi.leaky.yaml"
                       for k in ("aws:accessKey", "aws:secretKey", "dynamo-iac:hfToken")]
    doc = json.loads((out / "plan.json").read_text())
    assert {k: doc["config"][k] for k in ("aws:accessKey", "aws:secretKey", "dynamo-iac:hfToken")} == {
        "aws:accessKey": "[secret]", "aws:secretKey": "[secret]", "dynamo-iac:hfToken": "[secret]"}
    assert doc["config"]["aws:region"] == "us-west-2"            # what is no credential is shown
    for p in [out / "plan.json", *(out / "manifests").glob("*.yaml")]:
        assert SENTINEL not in p.read_text(), p


def test_the_rule_and_the_report_share_one_credential_predicate():
    from dynamo_iac.policies.model import StackView
    from dynamo_iac.policies.rules.supply import check_config_secrets
    from dynamo_iac.preview.stack import masked_config

    raw = {"aws:secretKey": "x", "gcp:credentials": "x", "azure-native:clientSecret": "x", "aws:region": "x",
           "dynamo-iac:policy": {"budget": {"secure": "AAAB"}}, "dynamo-iac:graph": "x"}
    flagged = {f.message.split()[2] for f in check_config_secrets(
        StackView([], config=raw, config_secure=frozenset()), None)}
    masked = {k for k, v in masked_config(raw).items() if v == "[secret]"}
    assert flagged == masked == {"aws:secretKey", "gcp:credentials", "azure-native:clientSecret"}
    assert masked_config(raw)["dynamo-iac:policy"] == {"budget": "[secret]"}    # `secure:` at any depth


# ------------------------------------------------------------------ one process, several stacks
def test_outputs_do_not_leak_between_stacks_run_in_one_process():
    from dynamo_iac.preview.stack import run_stack

    first = run_stack("aws-p5-disagg")
    assert {"cluster_name", "kubeconfig", "capacity_plan"} <= set(first.record.outputs)
    byo = run_stack("byo-k8s")
    # byo exports the plan of its pool, but it has no cluster of its own to export
    assert sorted(byo.record.outputs) == ["capacity_plan", "cost_per_hour_usd", "cost_per_month_usd", "dgd_api",
                                          "graph", "nodes", "nodes_needed"]
    again = run_stack("aws-p5-disagg")
    assert again.record.outputs == first.record.outputs
    assert [r.urn for r in again.record.resources] == [r.urn for r in first.record.resources]

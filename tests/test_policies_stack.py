"""Whole stacks under the offline engine: the deliberately broken stack shows its mistakes (at
least 8 different rules, each asserted exactly), every preset passes with no mandatory violation,
and `dynamo-iac policy` prints / exits accordingly."""
from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dynamo_iac.policies.runner import evaluate_record
from dynamo_iac.stacks.config import available_stacks

pytestmark = pytest.mark.policy
ROOT = Path(__file__).resolve().parents[1]
BROKEN = ROOT / "tests" / "fixtures" / "stacks" / "broken"


@pytest.fixture(scope="module")
def broken():
    """(record, raw config, MISTAKES) of the broken program run under the offline engine."""
    from dynamo_iac.preview.engine import run_program

    ns = runpy.run_path(str(BROKEN / "__main__.py"), run_name="broken_fixture")
    raw = yaml.safe_load((BROKEN / "Pulumi.broken.yaml").read_text())["config"]
    engine_cfg = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    record = run_program(ns["program"], project="dynamo-iac", stack="broken", config=engine_cfg, secret_keys=[])
    return record, raw, ns["MISTAKES"]


def _urn(record, type_: str, name: str) -> str:
    hits = [r.urn for r in record.resources if r.type == type_ and r.name == name]
    assert len(hits) == 1, (type_, name, hits)
    return hits[0]


def test_broken_stack_shows_its_mistakes(broken) -> None:
    record, raw, mistakes = broken
    report = evaluate_record(record, raw_config=raw)
    assert report.failed
    rules = {v.rule for v in report.mandatory}
    assert rules == set(mistakes), rules ^ set(mistakes)
    assert len(rules) >= 8

    dgd = _urn(record, "kubernetes:nvidia.com/v1beta1:DynamoGraphDeployment", "llama")
    ng = _urn(record, "aws:eks/nodeGroup:NodeGroup", "prod-h100")
    # the capacity outputs are the real planner's (4 p5 nodes for two 16-GPU workers, at the catalog's
    # capacity-block price when it has one)
    need = record.outputs["nodes_needed"]["h100"]
    hour = record.outputs["cost_per_hour_usd"]
    assert need == record.outputs["capacity_plan"]["pools"][0]["nodes"] == 4
    cost = (f"the stack costs ${hour:,.2f}/hour by the capacity plan, over the budget of $100.00/hour"
            if hour is not None else
            "cannot prove the stack stays within its budget: price unknown for p5.48xlarge")
    expected = {
        ("capacity-covers-plan", ng,
         f"pool h100 can grow to 2 node(s) but the capacity plan needs {need}: the graph never fully schedules"),
        ("config-secrets-encrypted", "",
         "stack config dynamo-iac:hfToken holds a credential in plain text in Pulumi.broken.yaml"),
        ("cost-budget", "", cost),
        ("disagg-requests-rdma", dgd,
         "DGD llama component DecodeWorker runs on h100 (p5.48xlarge, efa) but requests no vpc.amazonaws.com/efa: KV "
         "cache between prefill and decode falls back to TCP (~100 s TTFT)"),
        ("disagg-requests-rdma", dgd,
         "DGD llama component PrefillWorker runs on h100 (p5.48xlarge, efa) but requests no vpc.amazonaws.com/efa: KV "
         "cache between prefill and decode falls back to TCP (~100 s TTFT)"),
        ("download-job-memory", _urn(record, "kubernetes:batch/v1:Job", "model-download"),
         "model download Job model-download container download requests no memory: the download is OOMKilled on busy "
         "nodes"),
        ("efa-single-az", ng,
         "EFA pool h100 (p5.48xlarge) spans zones us-east-1a, us-east-1b: EFA does not cross AZs, so KV transfers "
         "between workers in different zones fail"),
        ("gpu-pools-tainted", ng,
         "GPU pool h100 (p5.48xlarge) carries no nvidia.com/gpu NoSchedule taint: CPU pods fill the GPU nodes and block "
         "workers"),
        ("image-pinned", dgd,
         "DGD llama component DecodeWorker (spec.components[2].podTemplate.spec.containers[0].image): image "
         "vllm/vllm-openai:latest is not pinned (latest): every pull may run different code"),
        ("image-registry-allowed", dgd,
         "DGD llama component DecodeWorker (spec.components[2].podTemplate.spec.containers[0].image): image "
         "vllm/vllm-openai:latest (docker.io/vllm/vllm-openai) is not from an allowed registry (nvcr.io/nvidia, "
         "registry.k8s.io, public.ecr.aws, docker.io/library, ghcr.io/ai-dynamo, ghcr.io/mellanox, "
         "us-docker.pkg.dev/gce-ai-infra, gke.gcr.io)"),
        ("kai-volcano-exclusive", _urn(record, "kubernetes:helm.sh/v3:Release", "platform-dynamo"),
         "dynamo-platform release platform-dynamo enables both the KAI scheduler (global.kai-scheduler.install / "
         "global.kai-scheduler.enabled) and Volcano (global.volcano-scheduler.enabled); the chart fails on that"),
        ("kubernetes-version-min", _urn(record, "aws:eks/cluster:Cluster", "prod-eks"),
         "cluster prod-eks runs Kubernetes 1.28, below 1.30 needed by the dynamo-platform chart (kubeVersion >= 1.30)"),
        ("model-cache-retained", _urn(record, "kubernetes:core/v1:PersistentVolumeClaim", "model-cache"),
         "model cache PVC model-cache (mounted by llama/DecodeWorker, llama/Frontend, llama/PrefillWorker) is deleted "
         "with the stack and nothing retains its data (no protect / retainOnDelete, and its StorageClass does not "
         "reclaim with Retain): a refactor or destroy throws away the downloaded weights"),
        ("multinode-needs-grove-or-lws", dgd,
         "DGD llama component DecodeWorker spans 2 nodes but the dynamo-platform release enables neither Grove nor "
         "LWS: the operator rejects multinode workers"),
        ("multinode-needs-grove-or-lws", dgd,
         "DGD llama component PrefillWorker spans 2 nodes but the dynamo-platform release enables neither Grove nor "
         "LWS: the operator rejects multinode workers"),
        ("placement-group-without-reservation", ng,
         "EKS pool h100 uses capacity block capacity and its launch template prod-h100-lt also places nodes in a "
         "placement group: the reserved instances cannot be launched into it"),
        ("platform-chart-supports-dgd-api", dgd,
         "DGD llama uses nvidia.com/v1beta1, which the dynamo-platform 1.0.2 operator does not serve (it serves "
         "v1alpha1)"),
        ("secrets-not-plaintext", dgd,
         "DGD llama component DecodeWorker: env HF_TOKEN holds a literal value "
         "(spec.components[2].podTemplate.spec.containers[0].env[1]): the credential is stored in plain text in the "
         "object (and readable with kubectl get -o yaml)"),
    }
    assert {(v.rule, v.urn, v.message) for v in report.mandatory} == expected
    # every violation says how to fix it
    assert all(v.fix for v in report.violations)


@pytest.mark.parametrize("stack", available_stacks(ROOT))
def test_presets_pass_without_mandatory_violations(stack: str) -> None:
    from dynamo_iac.preview.stack import run_stack
    from dynamo_iac.stacks.config import read_stack_file

    run = run_stack(stack, ROOT)
    _, raw, _ = read_stack_file(stack, ROOT)
    report = evaluate_record(run.record, raw_config=raw)
    assert [(v.rule, v.urn, v.message) for v in report.mandatory] == []
    # the rules did look at something: the pool, the platform and the DGD rules ran
    assert len(report.rules) >= 30


@pytest.mark.parametrize("stack", available_stacks(ROOT))
def test_presets_with_a_known_price_exercise_the_cost_guard(stack: str) -> None:
    """A preset whose plan has a price carries a budget of about twice it (so the guard is evaluated by
    default and catches a doubling); one without a price has none (an unknown price fails any budget),
    nor has byo-k8s: it creates no nodes, and its price is an estimate for a region it may not be in."""
    from dynamo_iac.preview.stack import run_stack
    from dynamo_iac.stacks.config import read_stack_file

    run = run_stack(stack, ROOT)
    _, raw, _ = read_stack_file(stack, ROOT)
    report = evaluate_record(run.record, raw_config=raw)
    hour = run.record.outputs.get("cost_per_hour_usd")
    budget = ((raw.get("dynamo-iac:policy") or {}).get("cost-budget") or {}).get("maxUsdPerHour")
    skipped = {s.rule: s.reason for s in report.skipped}
    if hour is None or run.config.cloud == "byo":
        assert budget is None and skipped["cost-budget"].startswith("no budget configured")
    else:
        assert "cost-budget" not in skipped and ("cost-budget", "mandatory") in report.rules
        assert hour < budget <= 2 * hour + 1


def test_policy_cli(tmp_path: Path, capsys) -> None:
    from dynamo_iac.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["policy", "-s", "aws-p5-disagg", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["stack"] == "aws-p5-disagg" and doc["summary"]["mandatory"] == 0
    # a settings file that makes the stack over budget: exit 1, the violation in the report
    cfg = tmp_path / "policy.json"
    cfg.write_text(json.dumps({"cost-budget": {"maxUsdPerHour": 1}}))
    res = runner.invoke(app, ["policy", "-s", "aws-p5-disagg", "--config", str(cfg), "--json"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert [v["rule"] for v in doc["violations"] if v["level"] == "mandatory"] == ["cost-budget"]
    # the table form names the rule, and a typo in the settings is one clear error
    res = runner.invoke(app, ["policy", "-s", "aws-p5-disagg", "--config", str(cfg)])
    assert res.exit_code == 1 and "cost-budget" in res.stdout and "FAILED" in res.stdout
    cfg.write_text(json.dumps({"cost-budgte": {"maxUsdPerHour": 1}}))
    assert _main(["policy", "-s", "aws-p5-disagg", "--config", str(cfg)], capsys) == (
        1, f"error: {cfg.name}: dynamo-iac:policy.cost-budgte: no such policy rule\n    fix: did you mean "
           f"'cost-budget'?\n")


def _main(argv: list[str], capsys) -> tuple[int, str]:
    """Run the console entry point (which turns DynamoIacError into one message and exit 1)."""
    import sys

    from dynamo_iac import cli

    old = sys.argv
    sys.argv = ["dynamo-iac", *argv]
    try:
        with pytest.raises(SystemExit) as e:
            cli.main()
    finally:
        sys.argv = old
    return e.value.code, capsys.readouterr().err


def test_policy_cli_lists_rules() -> None:
    from dynamo_iac.cli import app
    from dynamo_iac.policies import RULES

    res = CliRunner().invoke(app, ["policy", "--list", "--json"])
    assert res.exit_code == 0
    assert [r["rule"] for r in json.loads(res.stdout)] == [r.name for r in RULES]


def test_broken_fixture_is_an_ordinary_pulumi_project() -> None:
    project = yaml.safe_load((BROKEN / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "python" and (BROKEN / "__main__.py").is_file()
    assert (BROKEN / project["runtime"]["options"]["virtualenv"]).resolve() == (ROOT / ".venv").resolve()


def test_policy_list_outside_a_terminal_is_one_block_per_rule() -> None:
    """Piped (CI logs): no table squeezed to the width, every description whole on its own line."""
    from dynamo_iac.cli import app
    from dynamo_iac.policies import RULES

    res = CliRunner().invoke(app, ["policy", "--list"])
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    for r in RULES:
        i = lines.index(f"{r.name}  [{r.level}, {r.scope}]")
        assert lines[i + 1] == f"    {r.description}"

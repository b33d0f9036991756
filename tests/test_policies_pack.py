"""The CrossGuard pack: built from the same rule list as the offline runner, constructed without
starting its gRPC server, and — through pulumi_policy's own analyzer servicer, the code the engine
talks to — reporting exactly what the offline runner reports."""
from __future__ import annotations

import dataclasses
import json
import re
import runpy
from pathlib import Path

import jsonschema
import pytest

from dynamo_iac.policies import RULES
from dynamo_iac.policies.model import LEVELS
from dynamo_iac.policies.pack import PACK_NAME, build_policies, pack_args
from dynamo_iac.policies.runner import evaluate
from dynamo_iac.policies.model import StackView
from dynamo_iac.policies.settings import PolicySettings
from test_policies_support import EFA, dgd, disagg, render, res

pulumi_policy = pytest.importorskip("pulumi_policy")
pytestmark = pytest.mark.policy
ROOT = Path(__file__).resolve().parents[1]
PACK_DIR = ROOT / "policies"


def test_rule_list_is_well_formed() -> None:
    names = [r.name for r in RULES]
    assert len(names) == len(set(names)) >= 30
    for r in RULES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", r.name) and r.name != "all", r.name
        assert r.level in LEVELS[:2] and r.scope in ("resource", "stack")
        assert r.description.endswith(".") and len(r.description) > 30
        schema = {"type": "object", "properties": r.config_schema()}
        jsonschema.Draft7Validator.check_schema(schema)
        # the defaults of every setting satisfy the schema the engine validates against
        defaults = r.config().model_dump(by_alias=True)
        jsonschema.validate({k: v for k, v in defaults.items() if v is not None}, schema)


def test_pack_policies_mirror_the_rules() -> None:
    policies = build_policies()
    assert [p.name for p in policies] == [r.name for r in RULES]
    for p, r in zip(policies, RULES):
        assert p.description == r.description
        assert p.enforcement_level == pulumi_policy.EnforcementLevel(r.level)
        kind = pulumi_policy.ResourceValidationPolicy if r.scope == "resource" else pulumi_policy.StackValidationPolicy
        assert isinstance(p, kind)
        assert (p.config_schema.properties if p.config_schema else {}) == r.config_schema()


def test_main_constructs_the_pack_from_the_stack_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run policies/__main__.py as the engine does (run_name __main__, PULUMI_CONFIG set), with
    PolicyPack replaced by a recorder: the real constructor would serve gRPC forever."""
    made: list[dict] = []

    class Recorder:
        def __init__(self, **kw):
            made.append(kw)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", Recorder)
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({
        "dynamo-iac:policy": json.dumps({"cost-budget": {"enforcementLevel": "advisory", "maxUsdPerHour": 120},
                                         "kai-volcano-exclusive": "disabled"}),
        "aws:region": "us-east-1"}))
    runpy.run_path(str(PACK_DIR / "__main__.py"), run_name="__main__")
    assert len(made) == 1
    kw = made[0]
    assert kw["name"] == PACK_NAME
    assert [p.name for p in kw["policies"]] == [r.name for r in RULES]
    E = pulumi_policy.EnforcementLevel
    assert kw["initial_config"] == {"cost-budget": {"enforcementLevel": E.ADVISORY, "maxUsdPerHour": 120},
                                    "kai-volcano-exclusive": {"enforcementLevel": E.DISABLED}}
    # importing it (not as __main__) builds nothing
    made.clear()
    runpy.run_path(str(PACK_DIR / "__main__.py"), run_name="policies_main")
    assert made == []


def test_pack_project_file() -> None:
    import yaml

    doc = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert doc["runtime"]["name"] == "python" and doc["version"]
    reqs = (PACK_DIR / "requirements.txt").read_text()
    assert "pulumi-policy" in reqs


def test_bad_stack_policy_settings_fail_the_pack_with_a_path() -> None:
    from dynamo_iac.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        pack_args({"dynamo-iac:policy": {"cost-budgte": {"maxUsdPerHour": 1}}})
    assert str(e.value) == ("stack config: dynamo-iac:policy.cost-budgte: no such policy rule (fix: did you mean "
                            "'cost-budget'?)")


# ------------------------------------------------------------------------------------ engine path
def _servicer(config: dict | None = None):
    from google.protobuf import struct_pb2
    from pulumi.runtime import proto
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    s = _PolicyAnalyzerServicer(PACK_NAME, "0.1.0", build_policies(), pulumi_policy.EnforcementLevel.ADVISORY)
    if config:
        req = proto.ConfigureAnalyzerRequest()
        for name, props in config.items():
            pc = proto.PolicyConfig(enforcementLevel=proto.MANDATORY)
            st = struct_pb2.Struct()
            st.update(props)
            pc.properties.CopyFrom(st)
            req.policyConfig[name].CopyFrom(pc)
        s.Configure(req, None)
    return s


def _struct(d: dict):
    from google.protobuf import struct_pb2

    st = struct_pb2.Struct()
    st.update(json.loads(json.dumps(d)))
    return st


def _analyze(servicer, resources) -> list[tuple[str, str, str, str]]:
    """Run pulumi_policy's servicer like the engine: Analyze per resource, AnalyzeStack once."""
    from pulumi.runtime import proto

    out = []
    for r in resources:
        resp = servicer.Analyze(proto.AnalyzeRequest(type=r.type, urn=r.urn, name=r.name, properties=_struct(r.props.raw),
                                                     options=proto.AnalyzerResourceOptions(protect=r.protect)), None)
        out += [(d.policyName, d.urn or r.urn, d.message, proto.EnforcementLevel.Name(d.enforcementLevel))
                for d in resp.diagnostics]
    stack = proto.AnalyzeStackRequest(resources=[
        proto.AnalyzerResource(type=r.type, urn=r.urn, name=r.name, properties=_struct(r.props.raw),
                               options=proto.AnalyzerResourceOptions(protect=r.protect), parent=r.parent or "")
        for r in resources])
    resp = servicer.AnalyzeStack(stack, None)
    out += [(d.policyName, d.urn, d.message, proto.EnforcementLevel.Name(d.enforcementLevel))
            for d in resp.diagnostics]
    return sorted(out)


def _offline(resources, settings: PolicySettings | None = None) -> list[tuple[str, str, str, str]]:
    report = evaluate(StackView(list(resources)), settings or PolicySettings())
    by = {r.name: r for r in RULES}
    return sorted((v.rule, v.urn, f"{by[v.rule].description}\n{v.message}" + (f"\nfix: {v.fix}" if v.fix else ""),
                   v.level.upper()) for v in report.violations)


def _broken_resources():
    doc = render(disagg(), "v1beta1", dataclasses.replace(EFA, kv_backends=None, separate_prefill_decode_nodes=False,
                                                          image_variant=None))
    release = res("kubernetes:helm.sh/v3:Release", "platform", {
        "chart": "dynamo-platform", "version": "1.0.2",
        "values": {"global": {"kai-scheduler": {"install": True}, "volcano-scheduler": {"enabled": True}}}})
    return [dgd(doc), release]


def test_engine_path_reports_what_the_offline_runner_reports() -> None:
    resources = _broken_resources()
    offline = _offline(resources)
    assert {v[0] for v in offline} >= {"nixl-backend-matches-fabric", "efa-prefill-decode-separate-nodes",
                                       "efa-image-variant", "kai-volcano-exclusive", "platform-chart-supports-dgd-api"}
    assert _analyze(_servicer(), resources) == offline


def test_engine_path_applies_settings_and_levels() -> None:
    doc = render(disagg(), "v1beta1", EFA)
    doc["spec"]["components"][1]["podTemplate"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/vllm-runtime:1.2.0-efa"
    resources = [dgd(doc)]
    found = [x for x in _analyze(_servicer(), resources) if x[0] == "image-registry-allowed"]
    assert len(found) == 1 and found[0][3] == "MANDATORY"
    configured = _servicer({"image-registry-allowed": {"allowedRegistries": ["nvcr.io/nvidia", "ghcr.io/acme"]}})
    assert [x for x in _analyze(configured, resources) if x[0] == "image-registry-allowed"] == []


def test_engine_unknowns_are_not_violations() -> None:
    """During preview an input known only after apply makes the engine skip the rule for that
    resource (an advisory "can't run policy" note), never a violation."""
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    doc = render(disagg(), "v1beta1", EFA)
    doc["spec"]["components"][1]["podTemplate"]["spec"]["containers"][0]["image"] = UNKNOWN_STRING_VALUE
    found = [x for x in _analyze(_servicer(), [dgd(doc)]) if x[0] in ("image-pinned", "efa-image-variant")]
    assert found == []
    doc["spec"]["components"][1]["podTemplate"]["spec"]["containers"][0]["args"] = UNKNOWN_STRING_VALUE
    r = dgd(doc)
    diags = [x for x in _analyze(_servicer(), [r]) if x[0] == "parallelism-matches-gpus"]
    assert diags == [("parallelism-matches-gpus", r.urn,
                      "can't run policy 'parallelism-matches-gpus' from policy pack 'dynamo-iac@v0.1.0' during "
                      "preview: string value at .spec.components.1.podTemplate.spec.containers.0.args can't be known "
                      "during preview", "ADVISORY")]
    # offline (the engine records "(known after apply)"), the same read is reported as not evaluated
    from dynamo_iac.policies.values import UNKNOWN

    doc["spec"]["components"][1]["podTemplate"]["spec"]["containers"][0]["args"] = UNKNOWN
    report = evaluate(StackView([dgd(doc)]), PolicySettings(),
                      rules=[x for x in RULES if x.name == "parallelism-matches-gpus"])
    assert report.violations == [] and [s.reason for s in report.skipped] == [
        "spec.components[1].podTemplate.spec.containers[0].args is known only after apply"]


def test_readme_lists_every_rule_with_its_level() -> None:
    text = (PACK_DIR / "README.md").read_text()
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (\w+) \| (\w+) \|", text, flags=re.M)
    assert rows == [(r.name, r.level, r.scope) for r in RULES]


def test_pack_process_over_grpc() -> None:
    """Start the pack exactly as the engine does (`python -m pulumi.policy <engine> .` in policies/,
    the stack config in PULUMI_CONFIG), then talk to it over gRPC like the engine: GetAnalyzerInfo,
    Analyze per resource, AnalyzeStack. No Pulumi CLI involved."""
    import os
    import subprocess
    import sys

    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime import proto
    from pulumi.runtime.proto import analyzer_pb2_grpc

    env = dict(os.environ, PULUMI_CONFIG=json.dumps({"dynamo-iac:policy": json.dumps(
        {"kai-volcano-exclusive": "advisory", "image-registry-allowed": {"allowedRegistries": ["nvcr.io/nvidia"]}})}),
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."], cwd=PACK_DIR, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline().strip())
        stub = analyzer_pb2_grpc.AnalyzerStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
        assert info.name == PACK_NAME and info.supportsConfig
        assert [p.name for p in info.policies] == [r.name for r in RULES]
        assert [proto.EnforcementLevel.Name(p.enforcementLevel).lower() for p in info.policies] == [
            r.level for r in RULES]
        assert proto.EnforcementLevel.Name(info.initialConfig["kai-volcano-exclusive"].enforcementLevel) == "ADVISORY"
        from google.protobuf import json_format

        assert json_format.MessageToDict(info.initialConfig["image-registry-allowed"].properties) == {
            "allowedRegistries": ["nvcr.io/nvidia"]}
        # the engine reconciles initial config into Configure; do the same for the level override
        req = proto.ConfigureAnalyzerRequest()
        req.policyConfig["kai-volcano-exclusive"].CopyFrom(proto.PolicyConfig(enforcementLevel=proto.ADVISORY))
        stub.Configure(req, timeout=30)
        resources = _broken_resources()
        got = []
        for r in resources:
            resp = stub.Analyze(proto.AnalyzeRequest(type=r.type, urn=r.urn, name=r.name,
                                                     properties=_struct(r.props.raw)), timeout=30)
            got += [(d.policyName, d.urn or r.urn, d.message, proto.EnforcementLevel.Name(d.enforcementLevel))
                    for d in resp.diagnostics]
        resp = stub.AnalyzeStack(proto.AnalyzeStackRequest(resources=[
            proto.AnalyzerResource(type=r.type, urn=r.urn, name=r.name, properties=_struct(r.props.raw))
            for r in resources]), timeout=30)
        got += [(d.policyName, d.urn, d.message, proto.EnforcementLevel.Name(d.enforcementLevel))
                for d in resp.diagnostics]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    settings = PolicySettings.parse({"kai-volcano-exclusive": "advisory"}, "t", RULES)
    assert sorted(got) == _offline(resources, settings)
    assert ("kai-volcano-exclusive", "ADVISORY") in {(g[0], g[3]) for g in got}

"""Every x-kubernetes-validations rule of the reference CRDs is translated (targets/k8s/cel.py),
holds on a passing example and fails on a failing one, and is applied where the CRD puts it."""
from __future__ import annotations

import pytest
import yaml

from conftest import CRDS, needs_shared
from dynamo_iac import patterns
from dynamo_iac.graph import Model
from dynamo_iac.targets.k8s.cel import RULES, schema_rules
from dynamo_iac.targets.k8s.validate import check_manifest, validate_manifest

pytestmark = [pytest.mark.conformance, needs_shared]

KV_ONE = ("(has(self.labelKey) && !has(self.clusterTopologyName)) || "
          "(!has(self.labelKey) && has(self.clusterTopologyName))")
MIN_AVAILABLE = ("!has(self.minAvailable) || (has(self.replicas) && self.replicas == 0) || "
                 "self.minAvailable <= (has(self.replicas) ? self.replicas : 1)")
# rule text → (a value on which it holds, a value on which it fails); None: update-only (holds on create)
EXAMPLES: dict[str, tuple] = {
    "oldSelf.hasValue() || !has(self.restart)": ({}, {"restart": {"id": "r"}}),
    "!has(oldSelf.minAvailable) || (has(self.minAvailable) && self.minAvailable == oldSelf.minAvailable)": None,
    "!has(oldSelf.spec.identity) || self.spec.identity == oldSelf.spec.identity": None,
    MIN_AVAILABLE: ({"minAvailable": 2, "replicas": 2}, {"minAvailable": 2}),
    KV_ONE: ({"labelKey": "zone"}, {"labelKey": "zone", "clusterTopologyName": "t"}),
    "!has(self.enforcement) || self.enforcement != 'preferred' || has(self.preferredWeight)":
        ({"enforcement": "preferred", "preferredWeight": 1}, {"enforcement": "preferred"}),
    "!has(self.preferredWeight) || (has(self.enforcement) && self.enforcement == 'preferred')":
        ({"enforcement": "required"}, {"enforcement": "required", "preferredWeight": 1}),
    "!self.contains('/') || self.split('/')[0].size() <= 253": ("example.com/zone", "a" * 254 + "/zone"),
    "!has(self.create) || self.create == false || (has(self.size) && has(self.storageClass) && "
    "has(self.volumeAccessMode))": ({"name": "c", "create": False}, {"name": "c", "create": True, "size": "1Gi"}),
    "!has(self.job) || !has(self.checkpointRef) || size(self.checkpointRef) == 0":
        ({"job": {}, "checkpointRef": ""}, {"job": {}, "checkpointRef": "ck"}),
    "!has(self.extraClientContainers) || size(self.extraClientContainers) == 0 || self.mode == 'intraPod'":
        ({"mode": "intraPod", "extraClientContainers": [{}]}, {"mode": "interPod", "extraClientContainers": [{}]}),
    "!has(self.extraClientContainers) || size(self.extraClientContainers) == 0 || self.mode == 'IntraPod'":
        ({"mode": "IntraPod", "extraClientContainers": [{}]}, {"mode": "InterPod", "extraClientContainers": [{}]}),
    "!has(self.extraClientPods) || size(self.extraClientPods) == 0 || self.mode == 'interPod'":
        ({"mode": "interPod", "extraClientPods": [{}]}, {"mode": "intraPod", "extraClientPods": [{}]}),
    "!has(self.extraClientPods) || size(self.extraClientPods) == 0 || self.mode == 'InterPod'":
        ({"mode": "InterPod", "extraClientPods": [{}]}, {"mode": "IntraPod", "extraClientPods": [{}]}),
    "!has(self.extraClientPods) || size(self.extraClientPods) == 0": ({"extraClientPods": []}, {"extraClientPods": [{}]}),
    "(has(self.disabled) && self.disabled) || (has(self.size) && quantity(self.size).isGreaterThan(quantity('0')))":
        ({"size": "8Gi"}, {"size": "0"}),
    "self.filter(c, has(c.type) && c.type == 'epp').size() <= 1": ([{"type": "epp"}], [{"type": "epp"}] * 2),
    "self.all(c1, !has(c1.name) || self.filter(c2, has(c2.name) && c2.name.lowerAscii() == "
    "c1.name.lowerAscii()).size() == 1)": ([{"name": "a"}, {"name": "b"}], [{"name": "a"}, {"name": "A"}]),
    "!has(self.eppConfig) || (has(self.type) && self.type == 'epp')":
        ({"type": "epp", "eppConfig": {}}, {"type": "worker", "eppConfig": {}}),
    "has(self.configMapRef) != has(self.config)": ({"config": {}}, {"config": {}, "configMapRef": {}}),
    '!("nvidia.com/vllm-distributed-executor-backend" in self) || '
    'self["nvidia.com/vllm-distributed-executor-backend"].lowerAscii() in ["mp", "ray"]':
        ({"nvidia.com/vllm-distributed-executor-backend": "Ray"}, {"nvidia.com/vllm-distributed-executor-backend": "mpi"}),
    'self.name == "main" || (has(self.image) && self.image != "")': ({"name": "main"}, {"name": "side", "image": ""}),
    'has(self.image) && self.image != ""': ({"image": "busybox:1.36"}, {"name": "init"}),
}


def _crd_rules() -> set[str]:
    out = set()
    for f in sorted(CRDS.glob("*.yaml")):
        crd = yaml.load(f.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        for v in crd["spec"]["versions"]:
            out |= {r["rule"] for _, r in schema_rules(v["schema"]["openAPIV3Schema"])}
    return out


def test_every_crd_rule_is_translated_and_has_examples():
    rules = _crd_rules()
    assert len(rules) >= 20
    assert rules - set(RULES) == set(), "CRD rules without a translation in cel.py"
    assert rules - set(EXAMPLES) == set(), "CRD rules without a test example"


@pytest.mark.parametrize("text", sorted(EXAMPLES))
def test_rule_holds_and_fails(text):
    rule = RULES[text]
    if EXAMPLES[text] is None:
        assert rule.check({}) is True
        return
    good, bad = EXAMPLES[text]
    assert rule.check(good) in (True, [])      # [] = no element fails (list-level rules)
    assert rule.check(bad) not in (True, [])


def good(api="v1beta1"):
    return patterns.aggregated("qwen", Model("Qwen/Qwen3-0.6B")).to_dgd(api)


@pytest.mark.parametrize("api", ["v1beta1", "v1alpha1"])
def test_rules_apply_where_the_crd_puts_them(api):
    m = good(api)
    m["spec"]["experimental"] = {"kvTransferPolicy": {"domain": "rack", "labelKey": "zone", "clusterTopologyName": "t",
                                                      "preferredWeight": 1}}
    assert sorted(p.path for p in validate_manifest(m, CRDS)) == [
        "spec.experimental.kvTransferPolicy", "spec.experimental.kvTransferPolicy.preferredWeight"]
    assert validate_manifest(m, CRDS, schema_only=True) == []


def test_gms_extra_client_pods_rejected():
    m = good()
    m["spec"]["components"][1]["experimental"] = {"gpuMemoryService": {
        "mode": "IntraPod", "extraClientPods": [{"name": "c", "podTemplate": {"spec": {"containers": []}}}]}}
    paths = [p.path for p in validate_manifest(m, CRDS)]
    assert paths == ["spec.components[1].experimental.gpuMemoryService.extraClientPods"] * 2


def test_unknown_rule_in_a_user_crd_is_a_note(tmp_path):
    crd = yaml.safe_load((CRDS / "nvidia.com_dynamographdeployments.yaml").read_text())
    for v in crd["spec"]["versions"]:
        v["schema"]["openAPIV3Schema"]["properties"]["spec"].setdefault("x-kubernetes-validations", []).append(
            {"rule": "self.newThing == 1", "message": "new"})
    (tmp_path / "dgd.yaml").write_text(yaml.safe_dump(crd))
    problems, notes = check_manifest(good(), tmp_path / "dgd.yaml")
    assert problems == [] and notes == ["not checked: CRD rule 'self.newThing == 1' (no translation in dynamo-iac)"]

"""The DGD rules over NVIDIA's own manifests (../shared/reference/dynamo-examples): they parse
every upstream DGD in both API versions, and the mandatory findings are exactly the documented
mistakes present upstream — nothing else."""
from __future__ import annotations

from collections import Counter

import pytest

from conftest import example_dgds, needs_shared
from dynamo_iac.policies.model import Resource, StackView
from dynamo_iac.policies.rules import RULES
from dynamo_iac.policies.runner import evaluate
from dynamo_iac.policies.values import Obj

pytestmark = [pytest.mark.policy, pytest.mark.conformance, needs_shared]
IMAGE_RULES = ("image-pinned", "image-registry-allowed")


def _report():
    resources = []
    for fname, i, doc in example_dgds():
        api = doc["apiVersion"].rsplit("/", 1)[-1]
        resources.append(Resource(urn=f"{fname}#{i}", type=f"kubernetes:nvidia.com/{api}:DynamoGraphDeployment",
                                  name=doc["metadata"]["name"], props=Obj(doc)))
    rules = [r for r in RULES if r.scope == "resource"]
    return resources, evaluate(StackView(resources), rules=rules)


def test_upstream_dgds_parse_and_only_documented_mistakes_are_mandatory() -> None:
    resources, report = _report()
    assert len(resources) >= 25
    assert report.skipped == []                      # every upstream DGD is readable by every rule
    mandatory = sorted({(v.urn, v.rule) for v in report.violations
                        if v.level == "mandatory" and v.rule not in IMAGE_RULES})
    assert mandatory == [
        # policy-catalog #4: 4-GPU EFA prefill and decode on 8-GPU p5 nodes without anti-affinity
        ("recipes__qwen3-32b__vllm__cloud-providers__deploy-aws-p5.48xlarge.yaml#0",
         "efa-prefill-decode-separate-nodes"),
        # policy-catalog #2: rdma/ib workers without IPC_LOCK (relies on host memlock settings)
        ("recipes__qwen3-32b__vllm__disagg-kv-router__deploy.yaml#0", "rdma-ipc-lock"),
    ]
    msgs = {(v.urn, v.rule): v.message for v in report.violations}
    assert msgs[mandatory[0]] == ("DGD q32b-1p1d-cloud-provider component PrefillWorker and decode DecodeWorker can "
                                  "share a node: EFA cannot move KV cache between pods of one node (fi_read EAGAIN)")


def test_upstream_placeholder_images_are_caught() -> None:
    """Upstream backend examples ship `:my-tag` images (the operator's webhook rejects them);
    the recipes pin real releases."""
    _, report = _report()
    pinned = [v for v in report.violations if v.rule == "image-pinned"]
    assert pinned and all("placeholder tag 'my-tag'" in v.message for v in pinned)
    files = {v.urn.split("#")[0] for v in pinned}
    assert not any(f.startswith("recipes__") for f in files)
    assert Counter(v.level for v in pinned) == Counter({"mandatory": len(pinned)})


def test_upstream_efa_recipe_selects_libfabric_through_env() -> None:
    """The AWS recipe passes the kv-transfer config as "${KV_TRANSFER_CONFIG}" inside `sh -lc`;
    the rule expands it from the container env and finds LIBFABRIC."""
    _, report = _report()
    assert not [v for v in report.violations if v.rule == "nixl-backend-matches-fabric"]

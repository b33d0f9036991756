"""x-kubernetes-list-type map/set from the CRD: duplicate keys are errors, as the API server says."""
from __future__ import annotations

import copy

import pytest

from conftest import needs_shared
from dynamo_iac.graph import DynamoGraph, Model, Worker
from dynamo_iac.targets.k8s.listtypes import list_type_problems
from dynamo_iac.targets.k8s.validate import validate_manifest

pytestmark = [pytest.mark.conformance, needs_shared]


def dgd(api: str = "v1beta1") -> dict:
    return DynamoGraph(name="x", model=Model("Qwen/Qwen3-0.6B"), workers=[Worker()]).to_dgd(api)


def worker_main(d: dict) -> dict:
    return d["spec"]["components"][1]["podTemplate"]["spec"]["containers"][0]


def test_rendered_graph_has_unique_keys():
    assert validate_manifest(dgd()) == [] and validate_manifest(dgd("v1alpha1")) == []


@pytest.mark.parametrize("field,items,dup", [
    ("env", [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}], "name='A'"),
    # protocol is left out of the first: the schema default TCP makes the two the same port
    ("ports", [{"containerPort": 80}, {"containerPort": 80, "protocol": "TCP"}], "containerPort=80, protocol='TCP'"),
    ("volumeMounts", [{"name": "a", "mountPath": "/m"}, {"name": "b", "mountPath": "/m"}], "mountPath='/m'"),
])
def test_duplicate_list_map_key(field, items, dup):
    d = dgd()
    worker_main(d)[field] = items
    (p,) = validate_manifest(d)
    assert p.path == f"spec.components[1].podTemplate.spec.containers[0].{field}[1]" and dup in p.message
    other = [dict(x, value="3") if field == "env" else dict(x) for x in items[:1]]
    worker_main(d)[field] = other + [{**items[1], **({"name": "B"} if field == "env" else
                                                     {"containerPort": 81} if field == "ports" else {"mountPath": "/n"})}]
    assert validate_manifest(d) == []


def test_two_main_containers_and_two_components_of_one_name():
    d = dgd()
    spec = d["spec"]["components"][1]["podTemplate"]["spec"]
    spec["containers"].append(copy.deepcopy(spec["containers"][0]))
    d["spec"]["components"].append(copy.deepcopy(d["spec"]["components"][0]))
    paths = [p.path for p in validate_manifest(d, schema_only=True)]
    assert paths == ["spec.components[2]", "spec.components[1].podTemplate.spec.containers[1]"]


def test_set_items_are_unique():
    schema = {"type": "object", "properties": {"v": {"type": "array", "items": {"type": "integer"},
                                                     "x-kubernetes-list-type": "set"}}}
    (p,) = list_type_problems({"v": [1, 2, 1]}, schema)
    assert p.path == "v[2]" and "set" in p.message
    assert list_type_problems({"v": [1, 2]}, schema) == []


def test_set_in_the_crd_is_checked():
    d = dgd()
    rules = [{"exitCodes": {"operator": "In", "values": [1, 2, 1]}, "action": "Restart"}]
    worker_main(d)["restartPolicy"] = "Always"
    worker_main(d)["restartPolicyRules"] = rules
    paths = [p.path for p in validate_manifest(d, schema_only=True)]
    assert "spec.components[1].podTemplate.spec.containers[0].restartPolicyRules[0].exitCodes.values[2]" in paths

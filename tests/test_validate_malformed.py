"""Structurally wrong manifests: `validate` returns problems and `import` raises the library's
error or returns a graph — never another exception (hypothesis mutates valid manifests)."""
from __future__ import annotations

import copy
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CRDS, needs_shared
from dynamo_iac import patterns
from dynamo_iac.errors import DynamoIacError, Problem
from dynamo_iac.graph import DynamoGraph, Model, ModelCache, Parallelism, Worker
from dynamo_iac.targets.k8s.validate import validate_manifest

pytestmark = [pytest.mark.conformance, needs_shared]

_G = patterns.disaggregated("qwen", Model("Qwen/Qwen3-0.6B", cache=ModelCache()),
                            prefill=Worker(parallelism=Parallelism(tp=2)), decode=Worker(parallelism=Parallelism(tp=2)))
BASES = [_G.to_dgd("v1beta1"), _G.to_dgd("v1alpha1")]
junk = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=4), st.just("3"),
                 st.lists(st.integers(0, 2), max_size=2), st.just(["a"]), st.dictionaries(st.text(max_size=2),
                                                                                          st.integers(), max_size=2))


def _paths(obj, prefix=()):
    yield prefix
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield from _paths(v, prefix + (k,))


@st.composite
def malformed(draw):
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        parent[path[-1]] = copy.deepcopy(draw(junk))     # never share a drawn object (no cycles)
    return doc


def _outcome(fn):
    try:
        return fn()
    except DynamoIacError as e:
        assert e.problems and all(isinstance(p, Problem) and p.message for p in e.problems)
        return e


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(doc=malformed())
def test_malformed_manifests_give_problems_not_tracebacks(doc):
    for schema_only in (True, False):
        problems = validate_manifest(doc, CRDS, schema_only=schema_only)
        assert all(isinstance(p, Problem) and p.message for p in problems)
    g = _outcome(lambda: DynamoGraph.from_dgd(doc))
    if isinstance(g, DynamoGraph):
        for api in ("v1beta1", "v1alpha1"):
            _outcome(lambda: g.to_dgd(api))


AUDIT_CASES = [
    {"spec": {"components": ["foo"]}}, {"spec": {"components": {"a": 1}}}, {"spec": "hi"}, {"spec": [1, 2]},
    {"metadata": "str"}, {"spec": {"components": [1]}},
    {"spec": {"components": [{"name": "a", "type": "worker", "minAvailable": "3", "podTemplate": {"spec": {
        "containers": [{"name": "main", "image": "x:1.0.0", "command": "python3 -m dynamo.vllm"}]}}}]}},
]


@pytest.mark.parametrize("patch", AUDIT_CASES)
def test_audit_cases_exit_1_with_path_lines(tmp_path, patch):
    import yaml

    doc = {"apiVersion": "nvidia.com/v1beta1", "kind": "DynamoGraphDeployment", "metadata": {"name": "x"}, **patch}
    f = tmp_path / "m.yaml"
    f.write_text(yaml.safe_dump(doc))
    for cmd in (["validate", str(f), "--crd-dir", str(CRDS)], ["import", str(f)]):
        r = subprocess.run([sys.executable, "-m", "dynamo_iac.cli", *cmd], capture_output=True, text=True)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        out = r.stdout if cmd[0] == "validate" else r.stderr
        assert out.strip() and ("metadata" in out or "spec" in out), out


def test_v1alpha1_malformed_services():
    base = {"apiVersion": "nvidia.com/v1alpha1", "kind": "DynamoGraphDeployment", "metadata": {"name": "x"}}
    for spec in ({"services": {"a": 1}}, {"services": ["a"]}):
        doc = {**base, "spec": spec}
        assert validate_manifest(doc, CRDS)
        assert isinstance(_outcome(lambda: DynamoGraph.from_dgd(doc)), DynamoIacError)
    # a service of no known type is kept verbatim, malformed or not: it renders back as it came
    doc = {**base, "spec": {"pvcs": [1], "services": {"a": {"volumeMounts": [1]}}}}
    assert {p.path for p in validate_manifest(doc, CRDS)} == {"spec.pvcs[0]", "spec.services.a.volumeMounts[0]"}
    assert DynamoGraph.from_dgd(doc).to_dgd() == doc
    with pytest.raises(DynamoIacError) as e:
        DynamoGraph.from_dgd(doc).to_dgd("v1beta1")
    assert [p.path for p in e.value.problems] == ["extra_components[a]"]
    assert [p.path for p in validate_manifest({"apiVersion": 5, "kind": [1]}, CRDS)] == ["apiVersion"]

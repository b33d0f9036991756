"""Fuzz: random graph parameters either build a graph whose rendering validates in both API
versions (CRD schema + admission rules), or raise GraphError — never another exception."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CRDS, needs_shared
from dynamo_iac.errors import GraphError
from dynamo_iac.graph import DynamoGraph, Frontend, Model, Parallelism, Worker

pytestmark = [pytest.mark.conformance, needs_shared]

names = st.one_of(st.sampled_from(["prefill", "decode", "Worker", "VllmWorker", "w-1", "", "bad name", "a" * 50]),
                  st.text(alphabet="abcXYZ019-_.", min_size=0, max_size=70))
tags = st.sampled_from(["1.2.0", "1.1.1-efa-amd64", "latest", "my-tag", "v1.0.0", "1.2", None])
roles = st.sampled_from(["agg", "prefill", "decode"])


@st.composite
def worker(draw):
    par = draw(st.one_of(st.none(), st.builds(Parallelism, tp=st.integers(1, 16), pp=st.integers(1, 4),
                                              dp=st.integers(1, 4), ep=st.integers(1, 8),
                                              dp_attention=st.booleans())))
    gpus = draw(st.one_of(st.none(), st.integers(-1, 64)))
    tag = draw(tags)
    return dict(role=draw(roles), name=draw(st.one_of(st.none(), names)), replicas=draw(st.integers(-1, 8)),
                parallelism=par, gpus=gpus, nodes=draw(st.one_of(st.none(), st.integers(0, 4))),
                image=None if tag is None else f"nvcr.io/nvidia/ai-dynamo/vllm-runtime:{tag}",
                runtime_version_override=draw(st.sampled_from([None, "1.2.0", "x.y"])),
                env=draw(st.dictionaries(st.sampled_from(["A", "B", "HF_HOME"]), st.text(max_size=5), max_size=2)),
                engine_args=draw(st.lists(st.sampled_from(["--enforce-eager", "--max-model-len", "4096"]), max_size=3)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=names, backend=st.sampled_from(["vllm", "sglang", "trtllm", "tgi"]),
       workers=st.lists(worker(), min_size=0, max_size=27), router=st.sampled_from(["kv", "random", "rr"]),
       api=st.sampled_from(["v1beta1", "v1alpha1"]))
def test_random_graphs_validate_or_raise_graph_error(name, backend, workers, router, api):
    from dynamo_iac.targets.k8s.validate import validate_manifest

    try:
        g = DynamoGraph(name=name, backend=backend, model=Model("Qwen/Qwen3-0.6B"),
                        frontend=Frontend(router_mode=router), workers=[Worker(**w) for w in workers])
        manifests = [g.to_dgd("v1beta1"), g.to_dgd("v1alpha1")]
    except GraphError as e:
        assert e.problems and all(p.message for p in e.problems)
        return
    for m in manifests:
        problems = validate_manifest(m, crd_dir=CRDS)
        assert problems == [], [str(p) for p in problems]

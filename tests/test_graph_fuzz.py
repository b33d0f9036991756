"""Fuzz: random graph parameters either build a graph whose rendering validates in both API
versions (CRD schema + admission rules), or raise GraphError — never another exception, never an
invalid manifest. Most drawn graphs are valid multi-worker graphs (so rendering and validation
are what is exercised); a minority carry one deliberately bad parameter."""
from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CRDS, needs_shared
from dynamo_iac.errors import GraphError
from dynamo_iac.graph import DynamoGraph, Frontend, Model, ModelCache, Parallelism, Worker
from dynamo_iac.targets.k8s.overlay import RenderTarget

pytestmark = [pytest.mark.conformance, needs_shared]

GOOD_NAMES = st.from_regex(r"\A[a-z][a-z0-9-]{0,14}[a-z0-9]\Z")
BAD = {   # one bad value per field, drawn for a minority of examples
    "name": st.sampled_from(["", "bad name", "a" * 50, "Upper_Case"]),
    "replicas": st.just(-1), "gpus": st.just(3), "image_tag": st.sampled_from(["latest", "my-tag", "1.2"]),
    "rvo": st.just("x.y"), "backend": st.just("tgi"), "router": st.just("rr"), "shared_memory": st.just("0"),
}
STATS: Counter = Counter()


@st.composite
def worker(draw, role: str, i: int, bad: str | None):
    par = Parallelism(tp=draw(st.sampled_from([1, 2, 4, 8])), pp=draw(st.sampled_from([1, 1, 2])),
                      dp=draw(st.sampled_from([1, 1, 2])))
    kw: dict = dict(role=role, name=f"{role}-{i}", parallelism=par, replicas=draw(st.integers(0, 4)),
                    env=draw(st.dictionaries(st.sampled_from(["A", "B", "VLLM_LOG"]), st.text("abc19", max_size=4),
                                             max_size=2)),
                    engine_args=draw(st.lists(st.sampled_from(["--enforce-eager", "--max-model-len=4096"]),
                                              max_size=2, unique=True)),
                    shared_memory=draw(st.sampled_from([None, "16Gi", "512Mi"])))
    if draw(st.booleans()):
        kw["gpus"] = par.gpus
    tag = draw(st.sampled_from([None, "1.2.0", "1.1.1-efa-amd64"]))
    if tag:
        kw["image"] = f"nvcr.io/nvidia/ai-dynamo/vllm-runtime:{tag}"
    if bad == "replicas":
        kw["replicas"] = -1
    elif bad == "gpus":
        kw["gpus"] = par.gpus + 1
    elif bad == "image_tag":
        kw["image"] = f"nvcr.io/nvidia/ai-dynamo/vllm-runtime:{draw(BAD['image_tag'])}"
    elif bad == "rvo":
        kw["runtime_version_override"] = "x.y"
    elif bad == "shared_memory":
        kw["shared_memory"] = "0"
    elif bad == "name":
        kw["name"] = draw(BAD["name"])
    return kw


@st.composite
def graph_params(draw):
    bad = draw(st.one_of(st.none(), st.none(), st.none(), st.sampled_from(sorted(BAD))))   # ~1 in 4 bad
    disagg = draw(st.booleans())
    roles = (["prefill"] * draw(st.integers(1, 3)) + ["decode"] * draw(st.integers(1, 3))) if disagg \
        else ["agg"] * draw(st.integers(1, 4))
    bad_at = draw(st.integers(0, len(roles) - 1))
    workers = [draw(worker(r, i, bad if i == bad_at else None)) for i, r in enumerate(roles)]
    return dict(bad=bad, name=draw(BAD["name"]) if bad == "name" and draw(st.booleans()) else draw(GOOD_NAMES),
                backend="tgi" if bad == "backend" else draw(st.sampled_from(["vllm", "sglang", "trtllm"])),
                router="rr" if bad == "router" else draw(st.sampled_from(["kv", "round-robin", "random"])),
                cache=draw(st.booleans()), workers=workers,
                gpus_per_node=draw(st.sampled_from([None, 4, 8])))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(p=graph_params())
def test_random_graphs_validate_or_raise_graph_error(p):
    from dynamo_iac.targets.k8s.validate import validate_manifest

    try:
        g = DynamoGraph(name=p["name"], backend=p["backend"],
                        model=Model("Qwen/Qwen3-0.6B", cache=ModelCache() if p["cache"] else None),
                        frontend=Frontend(router_mode=p["router"]), workers=[Worker(**w) for w in p["workers"]])
        target = RenderTarget(gpus_per_node=p["gpus_per_node"])
        manifests = [g.to_dgd(api, target) for api in ("v1beta1", "v1alpha1")]
    except GraphError as e:
        assert e.problems and all(p_.message and p_.path for p_ in e.problems), str(e)
        STATS["error"] += 1
        return
    assert p["bad"] is None, f"bad {p['bad']} was accepted"
    STATS["valid"] += 1
    STATS["workers"] += len(g.workers)
    for m in manifests:
        problems = validate_manifest(m, crd_dir=CRDS)
        assert problems == [], [str(x) for x in problems]


def test_fuzz_mostly_builds_valid_multi_worker_graphs():
    # runs after the fuzz test in this module (pytest keeps file order)
    total = STATS["valid"] + STATS["error"]
    if total == 0:
        pytest.skip("fuzz test not run in this session")
    assert STATS["valid"] / total >= 0.6, STATS
    assert STATS["workers"] / max(STATS["valid"], 1) >= 2, STATS

"""The webhook rules on GPU memory service, failover, elastic EP and the GPU power-limit annotation
(shared/notes/dynamo-crds-and-chart.md §4), each failing and passing, in both API versions."""
from __future__ import annotations

import copy

import pytest

from dynamo_iac.graph import DynamoGraph, Model, Worker
from dynamo_iac.targets.k8s.admission import admission_problems

pytestmark = pytest.mark.conformance


def dgd(api: str, backend: str = "vllm") -> dict:
    return DynamoGraph(name="x", backend=backend, model=Model("Qwen/Qwen3-0.6B"), workers=[Worker()]).to_dgd(api)


def comp(d: dict, i: int) -> dict:
    """The i-th component (0 frontend, 1 worker) in either API."""
    if d["apiVersion"].endswith("v1beta1"):
        return d["spec"]["components"][i]
    return list(d["spec"]["services"].values())[i]


def base(d: dict, i: int) -> str:
    return f"spec.components[{i}]" if d["apiVersion"].endswith("v1beta1") else f"spec.services.{list(d['spec']['services'])[i]}"


def gms(d: dict, i: int, mode: str | None = None, failover: str | None = None) -> None:
    c = comp(d, i)
    beta = d["apiVersion"].endswith("v1beta1")
    target = c.setdefault("experimental", {}) if beta else c
    g = {"mode": mode} if mode else {}
    target["gpuMemoryService"] = g if beta else {"enabled": True, **g}
    if failover:
        target["failover"] = {"mode": failover} if beta else {"enabled": True, "mode": failover}


def paths(d: dict) -> list[str]:
    return [p.path for p in admission_problems(d)]


API = pytest.mark.parametrize("api", ["v1beta1", "v1alpha1"])
MODE = {"v1beta1": ("IntraPod", "InterPod"), "v1alpha1": ("intraPod", "interPod")}


@API
def test_interpod_gms_needs_vllm(api):
    intra, inter = MODE[api]
    for backend, mode, bad in (("sglang", inter, True), ("vllm", inter, False), ("sglang", intra, False)):
        d = dgd(api, backend)
        gms(d, 1, mode)
        prefix = "experimental." if api == "v1beta1" else ""
        assert (f"{base(d, 1)}.{prefix}gpuMemoryService.mode" in paths(d)) == bad, (backend, mode)


@API
def test_gms_only_on_gpu_workers(api):
    d = dgd(api)
    gms(d, 0)                        # the frontend
    assert any("worker, prefill or decode" in p.message for p in admission_problems(d))
    d = dgd(api)
    gms(d, 1)
    assert admission_problems(d) == []
    if api == "v1beta1":
        del comp(d, 1)["podTemplate"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
    else:
        del comp(d, 1)["resources"]["limits"]["gpu"]
    assert any("GPU limit" in p.message for p in admission_problems(d))


@API
def test_failover_mode_matches_gms(api):
    intra, inter = MODE[api]
    d = dgd(api)
    gms(d, 1, intra, failover=inter)
    prefix = "experimental." if api == "v1beta1" else ""
    assert paths(d) == [f"{base(d, 1)}.{prefix}failover.mode"]
    d = dgd(api)
    gms(d, 1, intra, failover=intra)
    assert paths(d) == []


@API
def test_elastic_ep_needs_an_explicit_command(api):
    d = dgd(api)
    main = comp(d, 1)["podTemplate"]["spec"]["containers"][0] if api == "v1beta1" else \
        comp(d, 1)["extraPodSpec"]["mainContainer"]
    main["args"] = main["args"] + ["--enable-elastic-ep"]
    assert paths(d) == []                     # the generated command is explicit
    del main["command"]
    assert [p.split(".")[-1] for p in paths(d)] == ["command"]


@API
def test_power_limit_annotation_with_dra_claims(api):
    d = dgd(api)
    c = comp(d, 1)
    ann = {"dynamo.nvidia.com/gpu-power-limit": "250"}
    if api == "v1beta1":
        c["podTemplate"]["metadata"] = {"annotations": ann}
        assert paths(d) == []
        c["podTemplate"]["spec"]["resourceClaims"] = [{"name": "gpu", "resourceClaimTemplateName": "t"}]
    else:
        c["extraPodMetadata"] = {"annotations": ann}
        assert paths(d) == []
        c["resources"]["claims"] = [{"name": "gpu"}]
    (p,) = admission_problems(d)
    assert p.path.endswith("dynamo.nvidia.com/gpu-power-limit") and "claims" in p.message


def test_v1alpha1_quantities():
    d = dgd("v1alpha1")
    comp(d, 1)["resources"]["requests"] = {"cpu": "lots", "custom": {"example.com/x": "1"}}
    assert paths(d) == [f"{base(d, 1)}.resources.requests.cpu"]
    comp(d, 1)["resources"]["requests"]["cpu"] = "500m"
    assert paths(copy.deepcopy(d)) == []

"""The typed graph: defaults, invariants (field path + fix), rendering in both API versions."""
from __future__ import annotations

import pytest
import yaml

from dynamo_iac import patterns
from dynamo_iac.errors import GraphError
from dynamo_iac.graph import (DynamoGraph, Frontend, Model, ModelCache, Parallelism, Planner,
                              Resources, Worker)


def disagg(**kw) -> DynamoGraph:
    return patterns.disaggregated("qwen3-32b", Model("Qwen/Qwen3-32B", cache=ModelCache()),
                                  prefill=Worker(parallelism=Parallelism(tp=4)),
                                  decode=Worker(parallelism=Parallelism(tp=4)), **kw)


def problems(excinfo) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in excinfo.value.problems]


def test_defaults_and_derived_fields():
    g = disagg()
    assert g.is_disaggregated
    assert [w.name for w in g.workers] == ["PrefillWorker", "DecodeWorker"]
    assert [w.gpu_count for w in g.workers] == [4, 4]
    assert g.frontend.router_mode == "kv"
    assert g.total_gpus() == 8
    assert g.runtime_image() == "nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.2.0"


def test_v1beta1_render_matches_upstream_shape():
    dgd = disagg().to_dgd("v1beta1")
    assert dgd["apiVersion"] == "nvidia.com/v1beta1"
    comps = {c["name"]: c for c in dgd["spec"]["components"]}
    assert {c["type"] for c in comps.values()} == {"frontend", "prefill", "decode"}
    main = comps["PrefillWorker"]["podTemplate"]["spec"]["containers"][0]
    assert main["name"] == "main"
    assert main["command"] == ["python3", "-m", "dynamo.vllm"]
    args = main["args"]
    assert args[args.index("--disaggregation-mode") + 1] == "prefill"
    assert args[args.index("--tensor-parallel-size") + 1] == "4"
    assert "--kv-transfer-config" in args
    assert main["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert main["envFrom"] == [{"secretRef": {"name": "hf-token-secret"}}]
    fe = comps["Frontend"]["podTemplate"]["spec"]["containers"][0]
    assert fe["args"] == ["--http-port", "8000", "--router-mode", "kv"]
    assert dgd["spec"]["backendFramework"] == "vllm"


def test_v1alpha1_render_uses_services_and_pvcs():
    dgd = disagg().to_dgd("v1alpha1")
    svc = dgd["spec"]["services"]["DecodeWorker"]
    assert svc["componentType"] == "worker" and svc["subComponentType"] == "decode"
    assert svc["resources"]["limits"]["gpu"] == "4"
    assert svc["envFromSecret"] == "hf-token-secret"
    assert svc["volumeMounts"] == [{"name": "model-cache", "mountPoint": "/model-cache"}]
    assert dgd["spec"]["pvcs"] == [{"name": "model-cache", "create": False}]
    assert svc["extraPodSpec"]["mainContainer"]["image"].endswith("vllm-runtime:1.2.0")


@pytest.mark.parametrize("backend,module,tp_flag", [("vllm", "dynamo.vllm", "--tensor-parallel-size"),
                                                     ("sglang", "dynamo.sglang", "--tp"),
                                                     ("trtllm", "dynamo.trtllm", "--tensor-parallel-size")])
def test_command_lines_per_backend(backend, module, tp_flag):
    g = disagg(backend=backend)
    main = g.to_dgd()["spec"]["components"][1]["podTemplate"]["spec"]["containers"][0]
    assert main["command"][-1] == module
    assert main["args"][main["args"].index(tp_flag) + 1] == "4"
    if backend == "sglang":
        assert main["args"][main["args"].index("--disaggregation-transfer-backend") + 1] == "nixl"


def test_yaml_is_byte_identical_for_equal_input():
    a, b = disagg().to_yaml(), disagg().to_yaml()
    assert a == b
    assert disagg().to_yaml("v1alpha1") == disagg().to_yaml("v1alpha1")
    assert yaml.safe_load(a)["metadata"]["name"] == "qwen3-32b"


def test_multinode_derived_from_node_size():
    from dynamo_iac.targets.k8s.overlay import RenderTarget

    g = patterns.multinode("llama-405b", "meta-llama/Llama-3.1-405B", gpus=16)
    comp = g.to_dgd(target=RenderTarget(gpus_per_node=8))["spec"]["components"][1]
    assert comp["multinode"] == {"nodeCount": 2}
    assert comp["podTemplate"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    # unknown node size: one pod with all GPUs, no multinode yet
    assert "multinode" not in g.to_dgd()["spec"]["components"][1]


# ------------------------------------------------------------------ bad input: path + fix
def test_latest_tag_rejected_with_path():
    with pytest.raises(GraphError) as e:
        disagg(images={"runtime": "nvcr.io/nvidia/ai-dynamo/vllm-runtime:latest"})
    assert [p for p, _ in problems(e)] == ["images.runtime"]     # where it was set, once
    assert all("semver" in m for _, m in problems(e))
    assert "runtime_version_override" in e.value.problems[0].fix
    with pytest.raises(GraphError) as e:
        DynamoGraph(name="g", model=Model("Qwen/Qwen3-0.6B"),
                    workers=[Worker(image="nvcr.io/nvidia/ai-dynamo/vllm-runtime:latest")])
    assert [p for p, _ in problems(e)] == ["workers[0].image"]


def test_latest_tag_allowed_with_runtime_version_override():
    g = patterns.aggregated("a", "m/x", worker=Worker(image="reg/vllm-runtime:latest",
                                                       runtime_version_override="1.2.0"))
    comp = g.to_dgd()["spec"]["components"][1]
    assert comp["runtimeVersionOverride"] == "1.2.0"


def test_26_components_rejected():
    workers = [Worker(name=f"w{i}", role="agg") for i in range(25)]
    with pytest.raises(GraphError) as e:
        DynamoGraph(name="big", model=Model("m/x"), workers=workers)
    assert ("workers", "26 components; the operator allows at most 25") in problems(e)


def test_prefill_without_decode_rejected():
    with pytest.raises(GraphError) as e:
        DynamoGraph(name="x", model=Model("m/x"), workers=[Worker(role="prefill")])
    assert problems(e) == [("workers", "a prefill worker needs a decode worker")]
    assert "role='decode'" in e.value.problems[0].fix


def test_agg_and_disagg_mixed_rejected():
    with pytest.raises(GraphError) as e:
        DynamoGraph(name="x", model=Model("m/x"),
                    workers=[Worker(role="agg"), Worker(role="prefill"), Worker(role="decode")])
    assert ("workers", "aggregated and disaggregated workers are mixed") in problems(e)


def test_misspelt_field_rejected_with_suggestion():
    with pytest.raises(GraphError) as e:
        Worker(role="agg", replicaz=2)
    (p,) = e.value.problems
    assert (p.path, p.message, p.fix) == ("replicaz", "unknown field", "did you mean 'replicas'?")


def test_nested_errors_keep_their_full_path_and_all_are_listed():
    data = {"name": "q", "model": {"id": "m/x"},
            "workers": [{"role": "agg"}, {"role": "agg", "name": "w2", "replicaz": 2, "parallelism": {"tpp": 2}}]}
    with pytest.raises(GraphError) as e:
        DynamoGraph.from_dict(data)
    assert sorted(problems(e)) == [("workers[1].parallelism.tpp", "unknown field"),
                                   ("workers[1].replicaz", "unknown field")]
    # the same through the Python API: nested models given as dicts, positional shorthand intact
    with pytest.raises(GraphError) as e:
        DynamoGraph(name="q", model=Model("m/x"), workers=[Worker(), {"role": "agg", "parallelism": {"tp": 0}}])
    assert problems(e) == [("workers[1].parallelism.tp", "Input should be greater than or equal to 1")]
    assert Model("m/x").id == "m/x" and Parallelism(4).tp == 4


def test_gpus_inconsistent_with_parallelism():
    with pytest.raises(GraphError) as e:
        DynamoGraph(name="x", model=Model("m/x"), workers=[Worker(gpus=4, parallelism=Parallelism(tp=2, pp=1))])
    (p,) = e.value.problems
    assert p.path == "workers[0].gpus" and "tp×pp×dp = 2" in p.message and p.fix == "set gpus=2 or change the parallelism"


def test_duplicate_names_case_insensitive():
    with pytest.raises(GraphError) as e:
        DynamoGraph(name="x", model=Model("m/x"), workers=[Worker(name="W"), Worker(name="w")])
    assert any("used twice" in m for _, m in problems(e))


def test_grove_name_length_limit():
    long = "a" * 40
    with pytest.raises(GraphError) as e:
        DynamoGraph(name="x", model=Model("m/x"), workers=[Worker(name=long)])
    assert any("Grove" in m for _, m in problems(e))


def test_assignment_is_validated_and_rechecked_before_render():
    g = disagg()
    with pytest.raises(GraphError):
        g.workers[0].replicas = -1
    g.workers.pop()          # leaves a prefill worker alone
    with pytest.raises(GraphError, match="needs a decode worker"):
        g.to_dgd()


def test_invalid_graph_name():
    with pytest.raises(GraphError) as e:
        DynamoGraph(name="Bad_Name", model=Model("m/x"), workers=[Worker()])
    assert problems(e)[0][0] == "name"


def test_escape_hatches_render_in_both_versions():
    w = Worker(parallelism=Parallelism(tp=2), pod_spec={"priorityClassName": "high"},
               container={"workingDir": "/w"}, resources=Resources(requests={"cpu": "8", "memory": "64Gi"}),
               env={"VLLM_LOGGING_LEVEL": "INFO"}, engine_args={"max-model-len": 8192, "enforce-eager": True})
    g = patterns.aggregated("esc", "m/x", worker=w)
    b = g.to_dgd("v1beta1")["spec"]["components"][1]["podTemplate"]["spec"]
    assert b["priorityClassName"] == "high" and b["containers"][0]["workingDir"] == "/w"
    assert b["containers"][0]["resources"]["requests"] == {"cpu": "8", "memory": "64Gi"}
    assert b["containers"][0]["args"][-3:] == ["--max-model-len", "8192", "--enforce-eager"]
    a = g.to_dgd("v1alpha1")["spec"]["services"]["Worker"]
    assert a["extraPodSpec"]["priorityClassName"] == "high"
    assert a["extraPodSpec"]["mainContainer"]["workingDir"] == "/w"
    assert a["resources"]["requests"] == {"cpu": "8", "memory": "64Gi"}


def test_planner_component():
    g = disagg(planner=Planner(args=["--config", "{}"]))
    comp = g.to_dgd()["spec"]["components"][-1]
    assert comp["type"] == "planner"
    assert comp["podTemplate"]["spec"]["containers"][0]["image"].endswith("dynamo-planner:1.2.0")


def test_graph_file_and_module_loading(tmp_path):
    from dynamo_iac.graph import load_graph

    f = tmp_path / "g.yaml"
    f.write_text(yaml.safe_dump({"name": "from-file", "model": {"id": "m/x"},
                                 "workers": [{"role": "agg", "parallelism": {"tp": 2}}]}))
    assert load_graph(str(f)).workers[0].gpu_count == 2
    (tmp_path / "mygraphs.py").write_text(
        "from dynamo_iac import patterns\nqwen = patterns.aggregated('q', 'Qwen/Qwen3-0.6B')\n")
    assert load_graph("mygraphs:qwen", base_dir=tmp_path).name == "q"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "workerz": []}))
    with pytest.raises(GraphError) as e:
        load_graph(str(bad))
    assert e.value.problems[0].path == "workerz" and "workers" in e.value.problems[0].fix


def test_crd_rules_rejected_at_construction():
    with pytest.raises(GraphError) as e:
        Worker(shared_memory="0")
    assert problems(e)[0][0] == "shared_memory" and "greater than 0" in problems(e)[0][1]
    with pytest.raises(GraphError, match="storage_class"):
        ModelCache(create=True)
    assert ModelCache(create=True, storage_class="efs").create
    with pytest.raises(GraphError) as e:
        Worker(container={"name": "engine"})
    assert problems(e)[0][0] == "container" and "'main'" in problems(e)[0][1]


def test_grove_limit_applies_when_the_target_makes_a_worker_multinode():
    from dynamo_iac.targets.k8s.overlay import RenderTarget

    g = patterns.multinode("x", "m/x", gpus=16)
    g.workers[0].name = "a" * 35             # fits a single-node worker's budget (37) …
    assert len(g.to_dgd()["spec"]["components"]) == 2
    with pytest.raises(GraphError) as e:     # … not a multinode one's (31), derived from the node size
        g.to_dgd(target=RenderTarget(gpus_per_node=8))
    assert problems(e) == [("workers[0].name", "component name '" + "a" * 35 + "' is 35 characters; the "
                            "operator's Grove name limit leaves 31 for a multinode worker")]


def test_render_refuses_other_kubernetes_kinds(tmp_path):
    from dynamo_iac.graph import load_graph

    f = tmp_path / "dgdr.yaml"
    f.write_text(yaml.safe_dump({"apiVersion": "nvidia.com/v1beta1", "kind": "DynamoGraphDeploymentRequest",
                                 "metadata": {"name": "r"}, "spec": {"model": "m/x"}}))
    with pytest.raises(GraphError) as e:
        load_graph(str(f))
    assert "DynamoGraphDeploymentRequest (a DGDR" in e.value.problems[0].message


def test_module_graphs_import_from_the_working_directory(tmp_path):
    import subprocess
    import sys

    (tmp_path / "cwdgraphs.py").write_text(
        "from dynamo_iac import patterns\nq = patterns.aggregated('q', 'Qwen/Qwen3-0.6B')\n")
    r = subprocess.run([sys.executable, "-m", "dynamo_iac.cli", "render", "cwdgraphs:q"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout)["metadata"]["name"] == "q"

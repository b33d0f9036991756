"""Construction-time checks that keep a graph from rendering a manifest the API server rejects:
quantities, labels, env types, components, images, an edited import's verbatim command."""
from __future__ import annotations

import pytest
import yaml

from conftest import EXAMPLES, needs_shared
from dynamo_iac.errors import GraphError
from dynamo_iac.graph import DynamoGraph, Frontend, Model, Parallelism, Planner, Resources, Worker


def problems(excinfo) -> list[tuple[str, str, str]]:
    return [(p.path, p.message, p.fix) for p in excinfo.value.problems]


def build(**kw) -> DynamoGraph:
    kw.setdefault("workers", [Worker()])
    return DynamoGraph(name="x", model=Model("Qwen/Qwen3-0.6B"), **kw)


@pytest.mark.parametrize("bad", ["lots", "", "1.5.5", True, None])
def test_resource_quantities_at_construction(bad):
    with pytest.raises(GraphError) as e:
        DynamoGraph.from_dict({"name": "x", "model": {"id": "a/b"},
                               "workers": [{"resources": {"requests": {"cpu": bad}}}]})
    (path, msg, fix) = problems(e)[0]
    assert path.startswith("workers[0].resources.requests") and fix
    assert "quantit" in msg + fix if isinstance(bad, str) else "string" in msg


def test_numeric_quantities_are_fine():
    assert Resources(requests={"cpu": 2, "memory": "16Gi"}, limits={"cpu": 0.5}).limits == {"cpu": "0.5"}


def test_a_graph_needs_a_component():
    with pytest.raises(GraphError) as e:
        DynamoGraph(name="x", model=Model("a/b"), frontend=None)
    assert [p for p, _, _ in problems(e)] == ["workers"]


@pytest.mark.parametrize("labels,bad", [({"bad key!": "v"}, "bad key!"), ({"k": "v" * 70}, "v" * 10),
                                        ({"Example.com/k": "v"}, "prefix"), ({"a/b/c": "v"}, "prefix")])
def test_label_syntax(labels, bad):
    with pytest.raises(GraphError) as e:
        build(labels=labels)
    (path, msg, fix) = problems(e)[0]
    assert path == "labels" and bad in msg and fix


def test_annotation_and_pod_label_syntax():
    with pytest.raises(GraphError) as e:
        build(annotations={"bad key!": "anything goes here"})
    assert problems(e)[0][0] == "annotations"
    with pytest.raises(GraphError) as e:
        DynamoGraph.from_dict({"name": "x", "model": {"id": "a/b"},
                               "workers": [{"pod_metadata": {"labels": {"team": "a b"}}}]})
    assert problems(e)[0][0] == "workers[0].pod_metadata"
    ok = build(labels={"app.kubernetes.io/name": "x", "empty": ""}, annotations={"note": "any text: ok"})
    assert ok.to_dgd()["metadata"]["labels"]["empty"] == ""


@pytest.mark.parametrize("where", ["workers", "frontend", "planner", "graph"])
def test_env_values_must_be_strings(where):
    env = yaml.safe_load("C: yes\nD: 1.10\nE: null\n")
    doc = {"name": "x", "model": {"id": "a/b"}, "workers": [{"role": "prefill"}, {"role": "decode"}]}
    if where == "graph":
        doc["env"] = env
    elif where == "workers":
        doc["workers"][0]["env"] = env
    else:
        doc[where] = {"env": env}
    with pytest.raises(GraphError) as e:
        DynamoGraph.from_dict(doc)
    text = str(e.value)
    assert "quote" in text and "Traceback" not in text
    for path, _, fix in problems(e):
        assert path.startswith(("workers[0].env", "frontend.env", "planner.env", "env")) and fix


def test_pydantic_errors_carry_a_fix():
    with pytest.raises(GraphError) as e:
        DynamoGraph.from_dict({"name": "x", "model": {"id": "a/b"}, "workers": [{"parallelism": {"tp": 0},
                                                                              "replicas": "many", "role": "both"}]})
    fixes = {p: f for p, _, f in problems(e)}
    assert fixes["workers[0].parallelism.tp"] == "use a value of at least 1"
    assert fixes["workers[0].replicas"] == "use a whole number"
    assert "'agg'" in fixes["workers[0].role"]


def test_main_container_in_pod_spec_is_refused_not_replaced():
    with pytest.raises(GraphError) as e:
        Worker(pod_spec={"containers": [{"name": "main", "image": "mine:1.0.0"}]})
    (path, _, fix) = problems(e)[0]
    assert path == "pod_spec" and "container=" in fix
    sidecar = build(workers=[Worker(pod_spec={"containers": [{"name": "side", "image": "s:1.0.0"}]})])
    names = [c["name"] for c in sidecar.to_dgd()["spec"]["components"][1]["podTemplate"]["spec"]["containers"]]
    assert names == ["main", "side"]


@needs_shared
def test_edited_import_gpus_win_and_verbatim_command_must_agree():
    doc = next(d for d in yaml.safe_load_all(
        (EXAMPLES / "recipes__llama-3-70b__vllm__disagg-single-node__deploy.yaml").read_text())
        if d and d.get("kind") == "DynamoGraphDeployment")
    g = DynamoGraph.from_dgd(doc)
    w = g.workers[0]
    assert (w.role, w.parallelism.tp, w.gpus) == ("prefill", 2, 2)
    w.parallelism, w.gpus = Parallelism(tp=4), 4
    with pytest.raises(GraphError) as e:
        g.to_dgd()
    (path, msg, fix) = problems(e)[0]
    assert path == "workers[0].parallelism" and "tp=2" in msg and "tp=4" in msg and "generate_command=True" in fix
    # the command edited to match: both the GPU request and the limit follow `gpus`
    w.args = [w.args[0].replace("--tensor-parallel-size 2", "--tensor-parallel-size 4")]
    res = g.to_dgd()["spec"]["services"][w.name]["resources"]
    assert res["limits"]["gpu"] == res["requests"]["gpu"] == "4"
    beta = g.to_dgd("v1beta1")
    main = next(c for c in beta["spec"]["components"] if c["name"] == w.name)["podTemplate"]["spec"]["containers"][0]
    assert main["resources"]["limits"]["nvidia.com/gpu"] == "4"


def test_frontend_planner_env_also_checked():
    with pytest.raises(GraphError):
        Frontend(env={"A": 1})
    with pytest.raises(GraphError):
        Planner(env={"A": None})

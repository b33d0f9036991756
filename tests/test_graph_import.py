"""Import details: how command lines are read, and what a manifest the model cannot hold raises."""
from __future__ import annotations

import pytest

from dynamo_iac.errors import GraphError
from dynamo_iac.graph import DynamoGraph
from dynamo_iac.graph.cmdline import tokens as _tokens


def _dgd(containers: list[dict]) -> dict:
    return {"apiVersion": "nvidia.com/v1beta1", "kind": "DynamoGraphDeployment", "metadata": {"name": "x"},
            "spec": {"components": [{"name": "w", "type": "worker", "podTemplate": {"spec": {"containers": containers}}}]}}


def test_exec_form_arguments_are_never_split():
    args = ["--model", "a b", "--kv-transfer-config", '{"kv_connector": "NixlConnector"}']
    assert _tokens(["python3", "-m", "dynamo.vllm"], args) == ["python3", "-m", "dynamo.vllm", *args]


def test_shell_script_is_split_like_the_shell():
    script = "exec python3 -m dynamo.vllm \\\n  --model 'a b' \\\n  --tp 2  # the rest\n"
    assert _tokens(["/bin/sh", "-lc"], [script]) == ["/bin/sh", "-lc", "exec", "python3", "-m", "dynamo.vllm",
                                                      "--model", "a b", "--tp", "2"]


def test_quoted_model_imports_whole():
    g = DynamoGraph.from_dgd(_dgd([{"name": "main", "image": "i:1.0.0", "command": ["sh", "-c"],
                                    "args": ["python3 -m dynamo.vllm --model 'org/a b'"]}]))
    assert g.model.id == "org/a b"


def test_unbalanced_quote_is_an_error_at_the_manifest_path():
    with pytest.raises(GraphError) as e:
        DynamoGraph.from_dgd(_dgd([{"name": "main", "image": "i:1.0.0", "command": ["sh", "-c"],
                                    "args": ["python3 -m dynamo.vllm --model 'a b"]}]))
    (p,) = e.value.problems
    assert p.path == "spec.components[0].podTemplate.spec.containers[0].args"
    assert "quote" in p.message + p.fix


def test_second_main_container_is_an_error_not_dropped():
    with pytest.raises(GraphError) as e:
        DynamoGraph.from_dgd(_dgd([{"name": "main", "image": "a:1.0.0"}, {"name": "main", "image": "b:1.0.0"}]))
    assert [p.path for p in e.value.problems] == ["spec.components[0].podTemplate.spec.containers[1].name"]


def test_a_flag_given_twice_reads_as_the_engine_does_last_one_wins():
    """argparse keeps the last value: the importer and the policies read a command the same way."""
    from dynamo_iac.graph.cmdline import flag, flag_value
    from dynamo_iac.policies.values import flag_value as policy_flag_value

    toks = ["python3", "-m", "dynamo.vllm", "--tensor-parallel-size", "2", "--tensor-parallel-size=4",
            "--model", "$MODEL"]
    assert flag_value(toks, "--tensor-parallel-size") == "4" == policy_flag_value(toks, "--tensor-parallel-size")
    assert flag(toks, ("--model",), {"MODEL": "Qwen/Qwen3-0.6B"}) == "Qwen/Qwen3-0.6B"
    assert flag(toks, ("--absent",), {}) is None

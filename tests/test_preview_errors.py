"""Every bad input to `dynamo-iac plan` is one clear error in the terms the user wrote it in
(the stack file's own paths), never a traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dynamo_iac.errors import DynamoIacError

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.mocks


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DYNAMO_IAC_HF_TOKEN"}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    return subprocess.run([sys.executable, "-m", "dynamo_iac.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


def _preset(stack: str) -> str:
    return (ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text()


def _stack_file(tmp_path: Path, text: str, name: str = "t") -> str:
    f = tmp_path / f"Pulumi.{name}.yaml"
    f.write_text(text)
    return str(f)


# ------------------------------------------------------------------ no traceback, one error
def _cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    (tmp_path / "afile").write_text("")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notcrd.yaml").write_text("kind: ConfigMap\n")
    jl = _stack_file(tmp_path, _preset("aws-g6e-agg").replace("stacks/graphs/qwen3-8b-agg.yaml", "json:loads"), "jl")
    return [
        (["-s", _stack_file(tmp_path, "- config\n", "list"), "--root", str(ROOT)],
         "error: Pulumi.list.yaml: (top level): the file holds a list, not a mapping"),
        (["-s", "aws-g6e-agg", "--out", str(tmp_path / "afile")], f"error: --out: {tmp_path / 'afile'} is a file"),
        (["-s", "aws-g6e-agg", "--out", "/proc/x"], "error: --out: cannot write to /proc/x"),
        (["-s", jl, "--root", str(ROOT), "--out", str(tmp_path / "o")],
         "error: Pulumi.jl.yaml: config.dynamo-iac:graph: json:loads is a function that needs arguments"),
        (["-s", "aws-p5-disagg", "--root", "/nonexist"], "error: --root: /nonexist does not exist"),
        (["-s", "aws-p5-disagg", "--root", str(tmp_path)], f"error: --root: {tmp_path} has no stacks/ directory"),
        (["-s", "aws-g6e-agg", "--crd-dir", str(tmp_path / "empty")],
         f"error: --crd-dir: {tmp_path / 'empty'} holds no YAML/JSON files"),
        (["-s", "aws-g6e-agg", "--crd-dir", str(tmp_path / "notcrd.yaml")],
         f"error: --crd-dir: {tmp_path / 'notcrd.yaml'} holds no CustomResourceDefinition"),
    ]


def test_bad_inputs_are_one_error_each_never_a_traceback(tmp_path):
    for args, first in _cases(tmp_path):
        r = cli("plan", *args)
        assert r.returncode == 1, (args, r.stdout[-500:], r.stderr[-2000:])
        assert "Traceback" not in r.stderr, (args, r.stderr[-2000:])
        assert r.stderr.splitlines()[0].startswith(first), (args, r.stderr)
        assert "fix: " in r.stderr, (args, r.stderr)


def test_no_stack_files_says_so_not_an_empty_list(tmp_path):
    (tmp_path / "stacks").mkdir()
    r = cli("plan", "-s", "aws-p5-disagg", "--root", str(tmp_path))
    assert r.returncode == 1 and f"fix: {tmp_path / 'stacks'} holds no stack files" in r.stderr, r.stderr


# ------------------------------------------------------------------ errors at stack-file paths
def _error(tmp_path: Path, text: str):
    from dynamo_iac.preview.stack import run_stack

    with pytest.raises(DynamoIacError) as e:
        run_stack(_stack_file(tmp_path, text), ROOT)
    return e.value.problems


P5 = _preset("aws-p5-disagg")
G6E = _preset("aws-g6e-agg")


def _no_grove(tmp_path: Path) -> str:
    """The p5 preset with its workers spanning two nodes (TP8 x PP2) and Grove turned off."""
    g = (ROOT / "stacks" / "graphs" / "qwen3-32b-disagg.yaml").read_text()
    (tmp_path / "multi.yaml").write_text(g.replace("parallelism: {tp: 4}", "parallelism: {tp: 8, pp: 2}"))
    return (P5.replace("stacks/graphs/qwen3-32b-disagg.yaml", str(tmp_path / "multi.yaml"))
            .replace("nodes: 2", "nodes: 4").replace("max_nodes: 2", "max_nodes: 4")
            + "  dynamo-iac:platform:\n    grove: false\n")


@pytest.mark.parametrize("case,path,message", [
    ("pool", "config.dynamo-iac:deployment.pool", "'h200' is not one of the pools ['l40s']"),
    ("zones", "config.dynamo-iac:pools[0].zones", "pool 'h100' (p5.48xlarge) has zones"),
    ("old-k8s", "config.dynamo-iac:cluster.kubernetes_version", "1.20 is older than the dynamo-platform chart"),
    ("new-k8s", "config.dynamo-iac:cluster.kubernetes_version",
     "1.40 is newer than the newest Kubernetes version known for aws (1.35"),
    ("grove", "config.dynamo-iac:platform.grove", "multinode workers"),
    ("gke-name", "config.dynamo-iac:cluster.name", "'Bad_Name' cannot name a GKE cluster"),
    ("kai-volcano", "config.dynamo-iac:platform.volcano", "platform.kai and platform.volcano are mutually exclusive"),
    ("dup-pool", "config.dynamo-iac:pools[1].name", "pool name 'l40s' is also pools[0]'s"),
])
def test_errors_name_the_stack_setting(tmp_path, case, path, message):
    texts = {
        "pool": lambda: G6E + "  dynamo-iac:deployment:\n    pool: h200\n",
        "zones": lambda: P5.replace("zones: [us-east-1a]", "zones: [us-east-1a, us-east-1b]"),
        "old-k8s": lambda: G6E + "  dynamo-iac:cluster:\n    kubernetes_version: \"1.20\"\n",
        "new-k8s": lambda: G6E + "  dynamo-iac:cluster:\n    kubernetes_version: \"1.40\"\n",
        "grove": lambda: _no_grove(tmp_path),
        "gke-name": lambda: _preset("gcp-a3ultra-disagg").replace("  dynamo-iac:cluster:\n",
                                                                  "  dynamo-iac:cluster:\n    name: Bad_Name\n"),
        "kai-volcano": lambda: G6E + "  dynamo-iac:platform:\n    kai: true\n    volcano: true\n",
        "dup-pool": lambda: G6E.replace("  dynamo-iac:pools:\n", "  dynamo-iac:pools:\n"
                                        "    - {name: l40s, instance_type: g6e.12xlarge, zones: [us-west-2a]}\n"),
    }
    (p,) = _error(tmp_path, texts[case]())
    assert p.path == f"Pulumi.t.yaml: {path}" and p.message.startswith(message), p
    assert "=True" not in str(p) and "=False" not in str(p), p      # stack-file syntax, not Python's
    assert p.fix


def test_grove_fix_is_said_as_the_stack_setting(tmp_path):
    (p,) = _error(tmp_path, _no_grove(tmp_path))
    assert p.fix.startswith("set dynamo-iac:platform.grove: true (or dynamo-iac:platform.lws: true"), p.fix


def test_newest_known_kubernetes_version_is_accepted(tmp_path):
    from dynamo_iac.versions import kubernetes_newest

    newest, source = kubernetes_newest("aws")
    assert newest and source                         # a bound is only as good as its source
    from dynamo_iac.stacks.config import parse

    values = {"cloud": "aws", "region": "us-west-2", "graph": "g.yaml", "cluster": {"kubernetes_version": newest},
              "pools": [{"name": "p", "instance_type": "g6e.12xlarge"}]}
    assert parse(values, "x").cluster.kubernetes_version == newest
    assert kubernetes_newest("azure")[0] is None      # unknown: no upper bound, never an invented one

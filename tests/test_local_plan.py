"""The local target's launch plan and generated model directory (no process is started here)."""
from __future__ import annotations

import hashlib
import json
import socket
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo_iac.errors import ConfigError, DynamoIacError
from dynamo_iac.graph import DynamoGraph, Frontend, Model, Worker, load_graph
from dynamo_iac.targets.local.launch import LOOPBACK, build_plan, module_invocation, shell_tokens
from dynamo_iac.targets.local.modeldir import MOCKER_TOKEN_RANGE, model_files, tokenizer_json, write_model_dir
from dynamo_iac.targets.local.runtime import find_python

from conftest import EXAMPLES, needs_shared

PY = "/opt/dynamo/bin/python"
LOOPBACK_ENV = ("DYN_TCP_RPC_HOST", "DYN_TCP_RESPONSE_STREAM_HOST", "DYN_EVENT_PLANE_HOST", "DYN_SYSTEM_HOST")


def agg(replicas=2, router="round-robin", **kw) -> DynamoGraph:
    return DynamoGraph(name="agg", model=Model("Qwen/Qwen3-0.6B", served_name="tiny"),
                       frontend=Frontend(router_mode=router), workers=[Worker(role="agg", replicas=replicas, **kw)])


def disagg() -> DynamoGraph:
    return DynamoGraph(name="disagg", model=Model("Qwen/Qwen3-0.6B"),
                       workers=[Worker(role="prefill", replicas=2), Worker(role="decode", replicas=1)])


def flag(argv: list[str], name: str) -> str:
    """The value argparse will see: the LAST occurrence wins."""
    i = len(argv) - 1 - argv[::-1].index(name)
    return argv[i + 1]


def test_mocker_plan_keeps_roles_replicas_router_and_loopback(tmp_path):
    plan = build_plan(agg(2, "kv"), run_dir=tmp_path, dynamo_python=PY, port=0)
    kinds = [p.kind for p in plan.processes]
    assert kinds == ["broker", "frontend", "worker", "worker"]
    fe = plan.processes[1]
    assert fe.argv[:3] == [PY, "-m", "dynamo.frontend"]
    assert flag(fe.argv, "--http-host") == LOOPBACK and flag(fe.argv, "--router-mode") == "kv"
    assert flag(fe.argv, "--discovery-backend") == "file" and int(flag(fe.argv, "--http-port")) == fe.port
    for w in plan.processes[2:]:
        assert w.argv[:3] == [PY, "-m", "dynamo.mocker"]
        assert flag(w.argv, "--disaggregation-mode") == "agg" and flag(w.argv, "--model-name") == "tiny"
        assert (tmp_path / "model" / "config.json").is_file()
        assert flag(w.argv, "--model-path") == str(tmp_path / "model")
    for p in plan.processes[1:]:
        for var in LOOPBACK_ENV:
            assert p.env[var] == LOOPBACK
        assert p.env["DYN_FILE_KV"] == str(tmp_path / "kv") and p.env["DYN_DISCOVERY_BACKEND"] == "file"
        assert p.env["DYN_ZMQ_BROKER_URL"].count(f"tcp://{LOOPBACK}:") == 2
        assert p.env["DYN_NAMESPACE"] == "agg" and p.env["HOME"] == str(tmp_path / "home")
        assert "PYTHONPATH" in p.unset
    broker = plan.processes[0]
    assert broker.argv[2] == LOOPBACK and broker.argv[3] != broker.argv[4]
    assert plan.instances == {"backend": 2} and plan.model == "tiny"
    assert [p.name for p in plan.processes] == ["broker", "Frontend", "Worker-0", "Worker-1"]


def test_disaggregated_plan_counts_prefill_and_decode(tmp_path):
    plan = build_plan(disagg(), run_dir=tmp_path, dynamo_python=PY, port=0)
    roles = [(p.name, p.role) for p in plan.processes if p.kind == "worker"]
    assert roles == [("PrefillWorker-0", "prefill"), ("PrefillWorker-1", "prefill"), ("DecodeWorker-0", "decode")]
    for p in plan.processes:
        if p.kind == "worker":
            assert flag(p.argv, "--disaggregation-mode") == p.role
    assert plan.instances == {"backend": 1, "prefill": 2}
    assert plan.model == "Qwen/Qwen3-0.6B"


def test_frontend_replicas_get_their_own_ports(tmp_path):
    g = agg(1)
    g.frontend.replicas = 2
    plan = build_plan(g, run_dir=tmp_path, dynamo_python=PY, port=0)
    fes = [p for p in plan.processes if p.kind == "frontend"]
    assert [p.name for p in fes] == ["Frontend-0", "Frontend-1"]
    assert len({p.port for p in fes}) == 2 and plan.urls == [f"http://{LOOPBACK}:{p.port}" for p in fes]
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        free = s.getsockname()[1]
    g2 = agg(1)
    g2.frontend.port = free
    fixed = build_plan(g2, run_dir=tmp_path, dynamo_python=PY)          # no --port: the graph's own
    assert [p.port for p in fixed.processes if p.kind == "frontend"] == [free]


def test_plan_round_trips_through_json(tmp_path):
    from dynamo_iac.targets.local.launch import LaunchPlan

    plan = build_plan(disagg(), run_dir=tmp_path, dynamo_python=PY, port=0)
    again = LaunchPlan.from_json(plan.to_json())
    assert again == plan and again.to_json() == plan.to_json()
    assert json.loads(plan.to_json()) == json.loads(again.to_json())


def test_engine_args_and_commands_dropped_by_mocker_are_reported(tmp_path):
    g = agg(1, engine_args={"max-model-len": 4096})
    g.planner = None
    plan = build_plan(g, run_dir=tmp_path, dynamo_python=PY, port=0)
    assert any("--max-model-len 4096" in n and "not passed to the mocker" in n for n in plan.notes)
    assert not any("--max-model-len" in a for p in plan.processes for a in p.argv)


def test_real_engine_uses_graph_commands_and_slices_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3,4,5")
    g = DynamoGraph(name="real", model=Model("Qwen/Qwen3-0.6B"), workers=[
        Worker(role="prefill", replicas=2, gpus=1), Worker(role="decode", replicas=1, gpus=2)])
    plan = build_plan(g, run_dir=tmp_path, dynamo_python=PY, engine="real", port=0)
    workers = [p for p in plan.processes if p.kind == "worker"]
    assert [w.env["CUDA_VISIBLE_DEVICES"] for w in workers] == ["0", "1", "2,3"]
    assert workers[0].argv[:3] == [PY, "-m", "dynamo.vllm"]
    assert flag(workers[0].argv, "--disaggregation-mode") == "prefill"
    assert workers[0].env["PATH"].startswith("/opt/dynamo/bin:")
    assert "HOME" not in workers[0].env and "HF_HUB_OFFLINE" not in workers[0].env   # real engines keep the HF cache
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(ConfigError) as e:
        build_plan(g, run_dir=tmp_path, dynamo_python=PY, engine="real", port=0)
    assert "needs 4 GPUs, this machine offers 2" in str(e.value)


def test_bad_local_inputs_name_the_field(tmp_path):
    g = agg(1)
    with pytest.raises(ConfigError) as e:
        build_plan(g, run_dir=tmp_path, dynamo_python=PY, engine="vllm")
    assert e.value.problems[0].path == "--engine"
    with pytest.raises(ConfigError) as e:
        build_plan(g, run_dir=tmp_path, dynamo_python=PY, port=70000, speedup_ratio=0, deadline=-1)
    assert sorted(p.path for p in e.value.problems) == ["--port", "--speedup-ratio", "--timeout"]
    no_fe = DynamoGraph(name="nofe", model=Model("m"), frontend=None, workers=[Worker()])
    with pytest.raises(ConfigError) as e:
        build_plan(no_fe, run_dir=tmp_path, dynamo_python=PY)
    assert e.value.problems[0].path == "frontend"
    zero = agg(0)
    with pytest.raises(ConfigError) as e:
        build_plan(zero, run_dir=tmp_path, dynamo_python=PY)
    assert e.value.problems[0].path == "workers"


def test_port_in_use_is_reported_before_anything_starts(tmp_path):
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        s.listen()
        busy = s.getsockname()[1]
        with pytest.raises(ConfigError) as e:
            build_plan(agg(1), run_dir=tmp_path, dynamo_python=PY, port=busy)
    assert e.value.problems[0].path == "--port" and "--port 0" in e.value.problems[0].fix


def test_runtime_lookup_error_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("DYNAMO_IAC_DYNAMO_PYTHON", str(tmp_path / "nope"))
    with pytest.raises(ConfigError) as e:
        find_python("dynamo")
    assert e.value.problems[0].path == "DYNAMO_IAC_DYNAMO_PYTHON"
    monkeypatch.delenv("DYNAMO_IAC_DYNAMO_PYTHON")
    monkeypatch.setattr("dynamo_iac.targets.local.runtime._candidates", lambda kind: [tmp_path / "x" / "python"])
    with pytest.raises(ConfigError) as e:
        find_python("aiperf")
    assert "scripts/dynamo-env.sh aiperf" in e.value.problems[0].fix


# ------------------------------------------------------------------------------------ commands
def test_shell_commands_of_real_manifests_are_understood():
    cmd = ["/bin/bash", "-c",
           "exec python3 -m dynamo.vllm \\\n --model Qwen/Qwen3-32B \\\n --disaggregation-mode decode"]
    assert module_invocation(shell_tokens(cmd, None)) == (
        "dynamo.vllm", ["--model", "Qwen/Qwen3-32B", "--disaggregation-mode", "decode"])
    assert module_invocation(shell_tokens(["python3", "-m", "dynamo.frontend"], ["--router-mode", "kv"])) == (
        "dynamo.frontend", ["--router-mode", "kv"])
    assert module_invocation(shell_tokens(["sh", "-c"], ["python3 -m dynamo.frontend && sleep 1"])) is None
    assert module_invocation(["bash", "run.sh"]) is None


@given(st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-=0123456789", min_size=1, max_size=12), max_size=8))
def test_module_invocation_keeps_plain_args(args):
    assert module_invocation(["python3.11", "-m", "dynamo.frontend", *args]) == ("dynamo.frontend", args)


@needs_shared
def test_imported_manifest_runs_its_frontend_flags_locally(tmp_path):
    g = load_graph(str(EXAMPLES / "deployments__EKS__vllm__agg.yaml"))
    plan = build_plan(g, run_dir=tmp_path, dynamo_python=PY, port=0)
    fe = next(p for p in plan.processes if p.kind == "frontend")
    assert fe.argv[:3] == [PY, "-m", "dynamo.frontend"] and flag(fe.argv, "--http-host") == LOOPBACK
    assert any("replaced by dynamo.mocker" in n for n in plan.notes)
    assert plan.instances == {"backend": sum(w.replicas for w in g.workers)}


# ------------------------------------------------------------------------------------ model dir
def test_model_dir_is_deterministic_and_large_enough(tmp_path):
    a, b = write_model_dir(tmp_path / "a"), write_model_dir(tmp_path / "b")
    for f in model_files():
        assert (a / f).read_bytes() == (b / f).read_bytes()
    tok = tokenizer_json()
    vocab = tok["model"]["vocab"]
    assert len(vocab) + len(tok["added_tokens"]) == 4096 > MOCKER_TOKEN_RANGE[1]
    assert sorted(vocab.values()) == list(range(len(vocab)))
    cfg = json.loads((a / "config.json").read_text())
    for k in ("num_hidden_layers", "num_attention_heads", "hidden_size", "num_key_value_heads"):
        assert isinstance(cfg[k], int)           # the mocker derives KV bytes/token from these
    # every merge joins two tokens already in the vocabulary into one that is too
    for m in tok["model"]["merges"]:
        left, right = m.split(" ")
        assert left in vocab and right in vocab and left + right in vocab
    mtime = (a / "tokenizer.json").stat().st_mtime_ns
    write_model_dir(a)                           # unchanged files are not rewritten
    assert (a / "tokenizer.json").stat().st_mtime_ns == mtime
    digest = hashlib.sha256((a / "tokenizer.json").read_bytes()).hexdigest()
    assert digest == hashlib.sha256(model_files()["tokenizer.json"].encode()).hexdigest()


def test_model_dir_rejects_a_vocab_the_mocker_would_empty():
    with pytest.raises(DynamoIacError) as e:
        model_files(vocab_size=1500)
    assert e.value.problems[0].path == "vocab_size" and "2000" in e.value.problems[0].fix


def test_tokenizer_loads_and_decodes_mocker_ids_with_hf_tokenizers(tmp_path):
    """The real `tokenizers` library (in the Dynamo venv) loads the file; the ids the mocker emits
    decode to non-empty text and ordinary text round-trips."""
    try:
        py = find_python("dynamo")
    except ConfigError:
        pytest.skip("no Dynamo runtime (scripts/dynamo-env.sh)")
    d = write_model_dir(tmp_path / "m")
    code = (
        "import json, sys; from tokenizers import Tokenizer\n"
        f"t = Tokenizer.from_file({str(d / 'tokenizer.json')!r})\n"
        "low, high = 1000, 2000\n"
        "texts = [t.decode([i]) for i in range(low, high)]\n"
        "s = 'Hello world, the quick brown fox! 123'\n"
        "print(json.dumps({'vocab': t.get_vocab_size(), 'empty': sum(not x.strip() for x in texts),"
        " 'roundtrip': t.decode(t.encode(s).ids) == s, 'eos': t.token_to_id('<|im_end|>')}))\n"
    )
    out = json.loads(subprocess.run([py, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert out == {"vocab": 4096, "empty": 0, "roundtrip": True, "eos": 4095}


def test_modeldir_command_writes_what_the_slurm_mocker_needs(tmp_path):
    import sys

    from dynamo_iac.targets.slurm import RunOptions, SlurmCluster, render

    r = subprocess.run([sys.executable, "-m", "dynamo_iac.cli", "local", "modeldir", str(tmp_path / "m")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert {f: (tmp_path / "m" / f).read_text() for f in model_files()} == model_files()
    c = SlurmCluster(nodes=1, gpus_per_node=2)
    job = render(agg(replicas=1), c, RunOptions(engine="mocker", model_path=str(tmp_path / "m")))
    assert f"--model-path {tmp_path / 'm'}" in job.script
    with pytest.raises(ConfigError) as e:
        render(agg(replicas=1), c, RunOptions(engine="mocker"))
    assert "`dynamo-iac local modeldir DIR`" in e.value.problems[0].fix
    bad = subprocess.run([sys.executable, "-m", "dynamo_iac.cli", "local", "modeldir", str(tmp_path / "x"),
                          "--vocab-size", "100"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "vocab_size=100 is outside" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x" / "config.json").exists()


def test_plan_carries_default_and_declared_probes(tmp_path):
    from dynamo_iac.targets.probe_file import parse_probes

    probes = parse_probes({"probes": {"Worker": {"ready": [{"type": "log", "pattern": "engine up"}]}}})
    p = build_plan(agg(), run_dir=tmp_path, dynamo_python=PY, port=8123, probes=probes)
    got = sorted((e["owner"], e["when"], e["spec"].get("name") or e["spec"]["pattern"]) for e in p.probes)
    assert got == [("Frontend", "fail", "fatal log line"), ("Frontend", "fail", "liveness"),
                   ("Worker-0", "fail", "fatal log line"), ("Worker-0", "ready", "engine up"),
                   ("Worker-1", "fail", "fatal log line"), ("Worker-1", "ready", "engine up"),
                   ("broker", "fail", "fatal log line")]
    live = next(e for e in p.probes if e["spec"].get("name") == "liveness")
    assert (live["host"], live["port"]) == (LOOPBACK, 8123)
    # a worker has no port of its own: an http probe on it must name one (before anything starts)
    no_port = parse_probes({"probes": {"Worker": {"ready": [{"type": "http", "path": "/health"}]}}})
    with pytest.raises(ConfigError) as e:
        build_plan(agg(), run_dir=tmp_path, dynamo_python=PY, port=0, probes=no_port)
    assert e.value.problems[0].path == "probes: probes.Worker.ready[0].port"
    with pytest.raises(ConfigError) as e:
        build_plan(agg(), run_dir=tmp_path, dynamo_python=PY, port=0, stop_grace=-1)
    assert e.value.problems[0].path == "--stop-grace"


def test_unwritable_run_or_model_directory_is_an_error_not_a_traceback(tmp_path):
    import sys

    r = subprocess.run([sys.executable, "-m", "dynamo_iac.cli", "local", "modeldir", "/proc/x"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "DIRECTORY: cannot create directory '/proc/x'" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    g = tmp_path / "g.yaml"
    g.write_text("name: g\nbackend: vllm\nmodel: {id: tiny}\nworkers: [{role: agg}]\n")
    r = subprocess.run([sys.executable, "-m", "dynamo_iac.cli", "local", "up", str(g), "--run-dir", "/proc/foo"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "run_dir: cannot create directory '/proc/foo'" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_failure_log_tail_has_no_terminal_colour_codes(tmp_path):
    from dynamo_iac.targets.local.supervisor import tail

    log = tmp_path / "w.log"
    log.write_bytes(b"start\n\x1b[2m2026\x1b[0m \x1b[31mERROR\x1b[0m boom\x1b[K\n")
    assert tail(str(log)) == "start\n2026 ERROR boom"


def test_one_run_never_picks_the_same_free_port_twice(tmp_path, monkeypatch):
    """The kernel may return a just-closed ephemeral port again: the broker's two ports and every
    frontend replica's must still differ (this collided now and then under load)."""
    from dynamo_iac.targets.local import launch

    handed = iter([41000, 41000, 41001, 41000, 41001, 41002, 41001, 41003])

    class FakeSocket:
        def __init__(self, *a, **k): self.port = None
        def __enter__(self): return self
        def __exit__(self, *a): return False
        def bind(self, addr): self.port = next(handed) if addr[1] == 0 else addr[1]
        def getsockname(self): return (LOOPBACK, self.port)

    monkeypatch.setattr(launch.socket, "socket", FakeSocket)
    g = agg(1)
    g.frontend.replicas = 2
    plan = build_plan(g, run_dir=tmp_path, dynamo_python=PY, port=0)
    broker = next(p for p in plan.processes if p.kind == "broker")
    xsub, xpub = (int(a) for a in broker.argv[-2:])
    fronts = [p.port for p in plan.processes if p.kind == "frontend"]
    assert (xsub, xpub) == (41000, 41001) and fronts == [41002, 41003]

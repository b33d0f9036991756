"""Real Dynamo processes on this machine: frontend + mocker workers, probes, requests, shutdown.

Needs the Dynamo runtime venv (scripts/dynamo-env.sh, which CI runs first). Outside CI a missing
runtime skips these tests; in CI it fails them.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from dynamo_iac.errors import ConfigError
from dynamo_iac.graph import DynamoGraph, Frontend, Model, Worker
from dynamo_iac.targets import local
from dynamo_iac.targets.local.runtime import find_python
from dynamo_iac.targets.local.state import alive, group_members, read_state

pytestmark = pytest.mark.local
ROOT = Path(__file__).resolve().parents[1]


def _runtime(kind: str) -> str:
    try:
        return find_python(kind)
    except ConfigError as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide the {kind} runtime: {e}")
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def dynamo_python() -> str:
    return _runtime("dynamo")


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`dynamo-iac local ...` in a separate process: another shell, as a user would run it."""
    return subprocess.run([sys.executable, "-m", "dynamo_iac.cli", "local", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def listeners() -> list[tuple[str, int, set[int]]]:
    """(address, port, pids) of every listening TCP socket, from `ss -ltnpH` (or /proc without ss)."""
    if shutil.which("ss") is None:
        return proc_listeners()
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        addr, _, port = parts[3].rpartition(":")
        pids = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        rows.append((addr.strip("[]"), int(port), pids))
    return rows


def proc_listeners() -> list[tuple[str, int, set[int]]]:
    owners: dict[str, set[int]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    owners.setdefault(link[8:-1], set()).add(int(pid))
        except OSError:
            continue
    rows = []
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] != "0A":                     # LISTEN
                continue
            hexaddr, hexport = f[1].split(":")
            if v6:
                addr = "::" if int(hexaddr, 16) == 0 else hexaddr
            else:
                addr = ".".join(str(b) for b in reversed(bytes.fromhex(hexaddr)))
            rows.append((addr, int(hexport, 16), owners.get(f[9], set())))
    return rows


def graph_pids(state: dict) -> set[int]:
    pids = set()
    for p in state["processes"]:
        if p.get("pid"):
            pids.add(p["pid"])
            pids.update(group_members(p["pid"]))
    return pids


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
        return json.loads(r.read())


def assert_serves(url: str, model: str) -> None:
    chat = post(f"{url}/v1/chat/completions", {"model": model, "max_tokens": 12,
                                               "messages": [{"role": "user", "content": "Hello there"}]})
    text = chat["choices"][0]["message"]["content"]
    assert isinstance(text, str) and text.strip(), chat
    assert chat["usage"]["completion_tokens"] == 12
    comp = post(f"{url}/v1/completions", {"model": model, "prompt": "The quick brown fox", "max_tokens": 12})
    assert comp["choices"][0]["text"].strip(), comp
    assert comp["object"] == "text_completion"


def assert_all_gone(state: dict, ports: set[int]) -> None:
    for p in state["processes"]:
        assert not alive(p["pid"], p.get("started")), f"{p['name']} (pid {p['pid']}) still runs"
        assert not group_members(p["pid"]), f"{p['name']} left processes behind"
    # the supervisor records "stopped" as its last act, then exits: give it a moment to be gone
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and alive(state["supervisor_pid"], state.get("supervisor_started")):
        time.sleep(0.05)
    assert not alive(state["supervisor_pid"], state.get("supervisor_started"))
    left = [(a, port) for a, port, _ in listeners() if port in ports]
    assert not left, f"listeners left behind: {left}"


def check_loopback_only(state: dict) -> set[int]:
    """Every listener of the graph's processes is on 127.0.0.1; returns their ports."""
    pids = graph_pids(state)
    mine = [(a, port) for a, port, owners in listeners() if owners & pids]
    assert mine, "no listener found for the graph's processes"
    assert all(a == "127.0.0.1" for a, _ in mine), f"listeners beyond loopback: {mine}"
    ports = {port for _, port in mine}
    fe_ports = {p["port"] for p in state["processes"] if p["kind"] == "frontend"}
    assert fe_ports <= ports
    broker_pid = next(p["pid"] for p in state["processes"] if p["kind"] == "broker")
    assert len([1 for a, port, owners in listeners() if broker_pid in owners]) == 2   # XSUB + XPUB
    return ports


@pytest.fixture
def graph_file(tmp_path):
    def write(name: str, text: str) -> Path:
        f = tmp_path / f"{name}.yaml"
        f.write_text(text)
        return f
    return write


def test_aggregated_two_mockers_serve_and_stop_cleanly(tmp_path, dynamo_python, graph_file):
    g = graph_file("agg", """
name: agg-local
model: {id: Qwen/Qwen3-0.6B, served_name: tiny}
frontend: {router_mode: kv}
workers:
  - {name: Worker, role: agg, replicas: 2}
""")
    run_dir = tmp_path / "run"
    t0 = time.monotonic()
    up = cli("up", str(g), "--run-dir", str(run_dir), "--port", "0", "--speedup-ratio", "20", "--json")
    assert up.returncode == 0, up.stderr + up.stdout
    assert time.monotonic() - t0 < 30
    state = json.loads(up.stdout)
    try:
        assert state["status"] == "ready" and state["instances"] == {"backend": 2}
        assert [p["name"] for p in state["processes"]] == ["broker", "Frontend", "Worker-0", "Worker-1"]
        assert "backend×2" in state["readiness"]
        ports = check_loopback_only(state)
        assert_serves(state["urls"][0], "tiny")
        # a second `up` on a running graph is refused
        again = cli("up", str(g), "--run-dir", str(run_dir), "--port", "0")
        assert again.returncode == 1 and "already running" in again.stderr
        st = cli("status", str(run_dir), "--json")
        assert st.returncode == 0, st.stderr
        probe = json.loads(st.stdout)["probe"]
        assert probe[0]["ok"] and "backend×2" in probe[0]["detail"]
    finally:
        down = cli("down", str(run_dir), "--json")
    assert down.returncode == 0, down.stderr
    final = json.loads(down.stdout)
    assert final["status"] == "stopped" and final["killed_by_down"] == []
    assert all(p["returncode"] == 0 for p in final["processes"]), final["processes"]
    assert_all_gone(final, ports)
    assert cli("status", str(run_dir)).returncode == 1


def test_disaggregated_prefill_decode_serve_and_stop_cleanly(tmp_path, dynamo_python):
    g = DynamoGraph(name="disagg-local", model=Model("Qwen/Qwen3-0.6B"),
                    frontend=Frontend(router_mode="round-robin"),
                    workers=[Worker(role="prefill", replicas=1), Worker(role="decode", replicas=1)])
    run = local.up(g, run_dir=tmp_path / "run", port=0, speedup_ratio=20)
    try:
        state = run.status()
        assert state["status"] == "ready" and state["instances"] == {"backend": 1, "prefill": 1}
        assert state["probe"][0]["ok"]
        ports = check_loopback_only(state)
        assert_serves(run.url, "Qwen/Qwen3-0.6B")
        # both halves took part: the frontend activated its prefill router
        fe_log = Path(next(p["log"] for p in state["processes"] if p["kind"] == "frontend")).read_text()
        assert re.search(r"[Pp]refill worker detected", fe_log), fe_log[-2000:]
    finally:
        final = run.down()
    assert final["status"] == "stopped"
    assert_all_gone(final, ports)


def test_worker_failing_at_start_fails_up_within_deadline(tmp_path, dynamo_python, graph_file):
    """--engine real runs the graph's own engine; here vLLM is not installed, so the worker exits at
    start. `up` must fail fast, name the worker, show its log, and leave nothing running."""
    probe = subprocess.run([dynamo_python, "-c", "import vllm"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("vLLM is installed here: its worker would not exit at start")
    g = graph_file("fail", """
name: fail-local
backend: vllm
model: {id: Qwen/Qwen3-0.6B}
workers:
  - {name: VllmWorker, role: agg, replicas: 1}
""")
    run_dir = tmp_path / "run"
    t0 = time.monotonic()
    r = cli("up", str(g), "--engine", "real", "--run-dir", str(run_dir), "--port", "0", "--timeout", "20")
    took = time.monotonic() - t0
    assert r.returncode == 1
    assert took < 20, took
    assert "VllmWorker" in r.stderr and "exited with code" in r.stderr
    assert "No module named 'vllm'" in r.stderr           # the tail of its log
    assert "Traceback" not in r.stderr.split("---")[0]       # our own error is not a traceback
    state = read_state(run_dir)
    assert state["status"] == "failed" and state["failure"]["process"] == "VllmWorker-0"
    assert_all_gone(state, {p["port"] for p in state["processes"] if p.get("port")})


def test_unregistered_worker_misses_the_deadline(tmp_path, dynamo_python):
    """A worker that stays up but registers where the frontend does not look (another Dynamo
    namespace): the readiness deadline is enforced and names it."""
    g = DynamoGraph(name="slow-local", model=Model("m", served_name="tiny"), workers=[Worker(replicas=1)])
    t0 = time.monotonic()
    with pytest.raises(local.LocalRunError) as e:
        local.up(g, run_dir=tmp_path / "run", port=0, timeout=2.5,
                 mocker_args=("--endpoint", "dyn://elsewhere.backend.generate"))
    took = time.monotonic() - t0
    assert 2.5 <= took < 2.5 + 4, took
    p = e.value.problems[0]
    assert p.path == "Worker" and "not ready within the 2.5 s deadline" in p.message
    assert "backend/generate: 0 of 1 workers registered" in p.message
    assert_all_gone(e.value.state, set())


def test_worker_crash_after_ready_stops_the_whole_graph(tmp_path, dynamo_python):
    g = DynamoGraph(name="crash-local", model=Model("m", served_name="tiny"), workers=[Worker(replicas=2)])
    run = local.up(g, run_dir=tmp_path / "run", port=0)
    victim = next(p for p in run.state["processes"] if p["name"] == "Worker-1")
    os.kill(victim["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (read_state(run.run_dir) or {}).get("stopped_at") is None:
        time.sleep(0.05)
    state = read_state(run.run_dir)
    try:
        assert state["status"] == "failed"
        f = state["failure"]
        assert f["process"] == "Worker-1" and "SIGKILL" in f["reason"] and f["phase"] == "after the graph was ready"
        assert_all_gone(state, set())
    finally:
        run.down()


def test_down_cleans_up_after_a_killed_supervisor(tmp_path, dynamo_python):
    g = DynamoGraph(name="lost-local", model=Model("m", served_name="tiny"), workers=[Worker(replicas=1)])
    run = local.up(g, run_dir=tmp_path / "run", port=0)
    st = run.state
    os.kill(st["supervisor_pid"], signal.SIGKILL)
    time.sleep(0.1)
    assert local.status(run.run_dir, probe=False)["status"] == "lost"
    final = run.down()
    assert sorted(final["killed_by_down"]) == ["Frontend", "Worker-0", "broker"]
    assert_all_gone(final, {p["port"] for p in st["processes"] if p.get("port")})


def test_bench_reports_ttft_itl_and_throughput(tmp_path, dynamo_python, graph_file):
    aiperf = _runtime("aiperf")
    g = graph_file("bench", """
name: bench-local
model: {id: Qwen/Qwen3-0.6B, served_name: tiny}
workers:
  - {role: agg, replicas: 2}
""")
    before = set(Path(tempfile.gettempdir()).glob("aiperf_mmap_*"))
    r = cli("bench", str(g), "--up", "--run-dir", str(tmp_path / "run"), "--requests", "8", "--json", timeout=300)
    assert r.returncode == 0, r.stderr + r.stdout
    res = json.loads(r.stdout)
    assert res["requests"] == 8 and res["errors"] == 0
    assert 0 < res["ttft_ms_avg"] < 5000 and 0 < res["itl_ms_avg"] < 1000
    assert res["request_throughput"] > 0 and res["output_token_throughput"] > 0
    assert Path(res["artifact_dir"], "profile_export_aiperf.json").is_file()
    # aiperf's dataset memory maps went to the bench directory (and were removed), not to /tmp
    assert set(Path(tempfile.gettempdir()).glob("aiperf_mmap_*")) == before
    assert not Path(res["artifact_dir"], "mmap").exists()
    assert aiperf
    state = read_state(tmp_path / "run")
    assert state["status"] == "stopped"
    assert_all_gone(state, set())


def test_dynamo_env_script_is_idempotent_and_fast(dynamo_python):
    """A second run of scripts/dynamo-env.sh finds the venv stamped and does nothing."""
    t0 = time.monotonic()
    r = subprocess.run(["bash", str(ROOT / "scripts" / "dynamo-env.sh"), "dynamo"], capture_output=True, text=True,
                       timeout=600)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    if os.environ.get("DYNAMO_IAC_DYNAMO_PYTHON"):
        assert "using DYNAMO_IAC_DYNAMO_PYTHON" in r.stderr
    else:
        assert "is up to date" in r.stderr and took < 5, (took, r.stderr)
    bad = subprocess.run(["bash", str(ROOT / "scripts" / "dynamo-env.sh"), "nonsense"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "unknown argument: nonsense" in bad.stderr


# ------------------------------------------------------------------------------------ declared probes
PROBE_GRAPH = """
name: {name}
model: {{id: Qwen/Qwen3-0.6B, served_name: tiny}}
workers:
  - {{name: Worker, role: agg, replicas: 2}}
"""


def bash_worker_graph(name: str, worker: str, script: str) -> str:
    """A graph of one worker whose command (run with --engine real) is `bash -c SCRIPT`."""
    return f"""
name: {name}
backend: vllm
model: {{id: tiny, served_name: tiny}}
workers:
  - name: {worker}
    role: agg
    command: [bash, -c, {json.dumps(script)}]
"""


def test_declared_readiness_probes_gate_ready_and_failure_probes_stop_the_graph(tmp_path, dynamo_python, graph_file):
    g = graph_file("declared", PROBE_GRAPH.format(name="probes-local"))
    probes = tmp_path / "probes.yaml"
    probes.write_text(r"""
probes:
  Frontend:
    ready:
      - {type: http, path: /v1/models, body: '"id":\s*"tiny"', name: model listed}
  Worker:
    ready:
      - {type: log, pattern: 'INFO main.launch_workers: All 1 mocker worker\(s\) created', name: mocker up}
    fail:
      - {type: log, pattern: 'CUDA out of memory', name: oom}
""")
    run_dir = tmp_path / "run"
    up = cli("up", str(g), "--run-dir", str(run_dir), "--port", "0", "--probes", str(probes), "--json")
    assert up.returncode == 0, up.stderr + up.stdout
    state = json.loads(up.stdout)
    try:
        assert "backend×2" in state["readiness"]
        assert state["readiness"].endswith("readiness probes passed: Frontend: model listed, Worker-0: mocker up, "
                                           "Worker-1: mocker up")
        # a worker that logs the declared fatal line after the graph was ready stops the whole graph
        log = next(p["log"] for p in state["processes"] if p["name"] == "Worker-1")
        with open(log, "a") as f:
            f.write("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB\n")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (read_state(run_dir) or {}).get("stopped_at") is None:
            time.sleep(0.05)
        final = read_state(run_dir)
        f = final["failure"]
        assert final["status"] == "failed" and f["process"] == "Worker-1" and f["phase"] == "after the graph was ready"
        assert f["reason"] == "tripped its failure probe 'oom': Worker-1.log: RuntimeError: CUDA out of memory. " \
                              "Tried to allocate 2.00 GiB"
        assert_all_gone(final, {p["port"] for p in final["processes"] if p.get("port")})
    finally:
        cli("down", str(run_dir))


def test_declared_readiness_probe_that_never_passes_names_the_worker(tmp_path, dynamo_python, graph_file):
    g = graph_file("never", PROBE_GRAPH.format(name="never-local"))
    probes = tmp_path / "probes.yaml"
    probes.write_text("probes:\n  Worker:\n    ready:\n      - {type: log, pattern: 'weights loaded', deadline: 2}\n")
    t0 = time.monotonic()
    r = cli("up", str(g), "--run-dir", str(tmp_path / "run"), "--port", "0", "--probes", str(probes), "--stop-grace", "2")
    took = time.monotonic() - t0
    assert r.returncode == 1 and took < 2 + 2 + 3, (took, r.stderr)
    assert re.search(r"worker 'Worker' \(Worker-[01]\) did not pass its readiness probe 'log Worker-[01].log has "
                     r"/weights loaded/' within its 2 s deadline", r.stderr), r.stderr
    assert_all_gone(read_state(tmp_path / "run"), set())


def test_worker_traceback_fails_up_by_the_default_failure_probe(tmp_path, dynamo_python, graph_file):
    """A worker whose engine logged an uncaught exception but hangs instead of exiting."""
    g = graph_file("tb", bash_worker_graph("tb-local", "Wedged", "echo 'Traceback (most recent call last):'; "
                                                                  "echo 'RuntimeError: engine wedged'; sleep 120"))
    t0 = time.monotonic()
    r = cli("up", str(g), "--engine", "real", "--run-dir", str(tmp_path / "run"), "--port", "0", "--timeout", "30")
    took = time.monotonic() - t0
    assert r.returncode == 1 and took < 10, (took, r.stderr)
    assert "worker 'Wedged' (Wedged-0) tripped its failure probe 'fatal log line': Wedged-0.log: Traceback (most " \
           "recent call last): while starting" in r.stderr
    assert "RuntimeError: engine wedged" in r.stderr        # the tail of its log
    assert_all_gone(read_state(tmp_path / "run"), set())


def test_stop_grace_bounds_a_failure_and_a_port_clash_keeps_the_last_run(tmp_path, dynamo_python, graph_file):
    """A worker that ignores SIGTERM: `up --timeout 3 --stop-grace 1` returns within 3 + 1 s (+ start-up),
    not after the 10 s default grace. A second `up` refused for a busy port leaves that run's record."""
    g = graph_file("stubborn", bash_worker_graph("stubborn-local", "Stubborn", "trap '' TERM; echo stubborn up; sleep 120"))
    run_dir = tmp_path / "run"
    t0 = time.monotonic()
    r = cli("up", str(g), "--engine", "real", "--run-dir", str(run_dir), "--port", "0", "--timeout", "3",
            "--stop-grace", "1")
    took = time.monotonic() - t0
    assert r.returncode == 1 and "not ready within the 3 s deadline" in r.stderr
    assert 3 + 1 <= took < 3 + 1 + 3, took
    state = read_state(run_dir)
    worker = next(p for p in state["processes"] if p["name"] == "Stubborn-0")
    assert worker["killed"] and worker["returncode"] == -9
    assert_all_gone(state, set())
    before = (run_dir / "state.json").read_text(), (run_dir / "logs" / "Stubborn-0.log").read_text()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        r = cli("up", str(g), "--engine", "real", "--run-dir", str(run_dir), "--port", str(busy.getsockname()[1]))
    assert r.returncode == 1 and "is already in use" in r.stderr
    assert ((run_dir / "state.json").read_text(), (run_dir / "logs" / "Stubborn-0.log").read_text()) == before
    bad = cli("up", str(g), "--run-dir", str(run_dir), "--stop-grace", "-1")
    assert bad.returncode == 1 and bad.stderr.startswith("error: --stop-grace: must be >= 0 seconds, got -1")
    assert (run_dir / "state.json").read_text() == before[0]

"""Slurm target without a cluster: the cluster file, the allocation map and what Slurm can honour
of it, the script's supervisor pieces run for real in bash/python, sweeps and the CLI."""
from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dynamo_iac.errors import ConfigError, DynamoIacError, PlanError
from dynamo_iac.graph import DynamoGraph, Model, Worker
from dynamo_iac.targets.slurm import RunOptions, SlurmCluster, load_cluster, place, render
from dynamo_iac.targets.slurm import sweep as sw
from dynamo_iac.targets.slurm.cli import app
from dynamo_iac.targets.slurm.placement import planned
from dynamo_iac.targets.slurm.runtime import STEP_SH

from conftest import ROOT

FIX = ROOT / "tests" / "fixtures" / "slurm"


def cluster(**kw) -> SlurmCluster:
    return SlurmCluster.from_dict({"nodes": 2, "gpus_per_node": 8, **kw})


def graph(*workers: Worker, name: str = "g") -> DynamoGraph:
    return DynamoGraph(name=name, model=Model("tiny"), workers=list(workers))


def paths(e: DynamoIacError) -> list[str]:
    return [p.path for p in e.problems]


# ------------------------------------------------------------------------------- cluster file
@pytest.mark.parametrize("data, path, fragment", [
    ({"nodes": 2, "gpus_per_node": 8, "partiton": "gpu"}, "cluster.partiton", "did you mean 'partition'"),
    ({"nodes": 2, "gpus_per_node": 8, "time": "4h"}, "cluster.time", "not an sbatch time limit"),
    ({"nodes": ["a", "a"], "gpus_per_node": 8}, "cluster.nodes", "repeat"),
    ({"nodes": 2, "gpus_per_node": 8, "sbatch_flags": ["--nodes=4"]}, "cluster.sbatch_flags", "use nodes instead"),
    ({"nodes": 2, "gpus_per_node": 8, "srun_flags": ["--overlap"]}, "cluster.srun_flags", "set by the renderer"),
    ({"nodes": 2, "gpus_per_node": 8, "container": {"mount": []}}, "cluster.container.mount", "did you mean 'mounts'"),
    ({"nodes": 2, "gpus_per_node": 8, "container": {"mounts": ["relative:/x"]}}, "cluster.container.mounts", "/src:/dst"),
    ({"nodes": 2, "gpus_per_node": 8, "step_resources": {"mem_per_gpu": "lots"}}, "cluster.step_resources.mem_per_gpu",
     "memory size"),
    ({"gpus_per_node": 8}, "cluster.nodes", "Field required"),
    ({"nodes": "two", "gpus_per_node": 8}, "cluster.nodes", "node count or a list of node names"),
    ({"nodes": 2, "gpus_per_node": 0}, "cluster.gpus_per_node", "greater than or equal to 1"),
])
def test_cluster_errors_name_field_and_fix(data, path, fragment):
    with pytest.raises(ConfigError) as e:
        SlurmCluster.from_dict(data)
    text = str(e.value)
    assert path in paths(e.value), text
    assert fragment in text


def test_cluster_files_load(tmp_path):
    assert load_cluster(FIX / "local-cluster.yaml").node_names == ["node0", "node1"]
    p5 = load_cluster(FIX / "p5-cluster.yaml")
    assert (p5.node_names, p5.gpus_per_node, p5.container.runtime) == (["n0", "n1"], 8, "pyxis")
    bad = tmp_path / "c.yaml"
    bad.write_text("nodes: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_cluster(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_cluster(tmp_path / "missing.yaml")


# ------------------------------------------------------------------------------- placement
def test_planner_map_packs_lowest_indices_and_whole_nodes():
    g = graph(Worker(role="prefill", gpus=4, replicas=3), Worker(role="decode", gpus=16))
    amap = planned(g, cluster(nodes=4))
    assert amap["n0"] == amap["n1"] == {i: "DecodeWorker[0]" for i in range(8)}
    assert amap["n2"] == {i: f"PrefillWorker[{i // 4}]" for i in range(8)}
    assert amap["n3"] == {i: "PrefillWorker[2]" for i in range(4)}
    p = place(g, cluster(nodes=4))
    assert p.source == "planner"
    assert [r.step for r in p.replicas] == ["DecodeWorker-0", "PrefillWorker-0", "PrefillWorker-1", "PrefillWorker-2"]
    assert p.replicas[0].nodes == ("n0", "n1") and p.replicas[0].gpus_per_node == 8


def test_plan_errors_name_the_worker_and_the_fix():
    with pytest.raises(PlanError) as e:
        place(graph(Worker(gpus=8, replicas=3)), cluster())
    assert paths(e.value) == ["cluster.nodes"] and "needs 3 nodes of 8 GPUs (24 GPUs)" in str(e.value)
    assert "raise nodes" in e.value.problems[0].fix
    with pytest.raises(PlanError, match="does not fit nodes of 8 GPUs"):
        place(graph(Worker(gpus=24, nodes=2)), cluster(nodes=4))


def test_a_map_slurm_cannot_honour_is_rejected():
    g = graph(Worker(role="prefill", gpus=2), Worker(role="decode", gpus=2))
    # decode planned on GPUs 2,3 of n0 while 0,1 are free when it starts: slurmd would give 0,1
    gap = {"n0": {2: "DecodeWorker[0]", 3: "DecodeWorker[0]"}, "n1": {0: "PrefillWorker[0]", 1: "PrefillWorker[0]"}}
    with pytest.raises(PlanError, match="lowest free ones"):
        place(g, cluster(), gap)
    with pytest.raises(PlanError, match="holds 1 GPUs"):
        place(g, cluster(), {"n0": {0: "PrefillWorker[0]", 1: "DecodeWorker[0]", 2: "DecodeWorker[0]"}})
    with pytest.raises(PlanError, match="not in the cluster"):
        place(g, cluster(), {"x9": {0: "PrefillWorker[0]"}})
    # a dense map in another order is fine: launch order follows the GPUs, not the graph
    ok = place(g, cluster(), {"n0": {0: "DecodeWorker[0]", 1: "DecodeWorker[0]", 2: "PrefillWorker[0]", 3: "PrefillWorker[0]"}})
    assert [r.step for r in ok.replicas] == ["DecodeWorker-0", "PrefillWorker-0"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gpn=st.sampled_from([1, 2, 4, 8]), nodes=st.integers(1, 4),
       workers=st.lists(st.tuples(st.integers(1, 16), st.integers(1, 3)), min_size=1, max_size=3))
def test_placement_invariants(gpn, nodes, workers):
    """Either a PlanError, or every replica holds exactly its GPUs, no GPU twice, and the launch
    order reproduces the map under slurmd's lowest-free-index rule."""
    ws = [Worker(name=f"W{i}", gpus=g, replicas=r) for i, (g, r) in enumerate(workers)]
    try:
        g = graph(*ws)
    except DynamoIacError:
        return
    c = cluster(nodes=nodes, gpus_per_node=gpn)
    try:
        p = place(g, c)
    except PlanError as e:
        assert e.problems and all(pr.fix for pr in e.problems)
        return
    seen = set()
    for rp in p.replicas:
        assert sum(len(x) for _, x in rp.gpus) == g.worker(rp.component).gpu_count
        for node, idx in rp.gpus:
            for i in idx:
                assert (node, i) not in seen
                seen.add((node, i))
    assert len(seen) == g.total_gpus()


# ------------------------------------------------------------------------------- script pieces, run for real
def _run_step_sh(tmp_path: Path, env: dict[str, str], planned: str) -> subprocess.CompletedProcess:
    (tmp_path / "placement").mkdir(exist_ok=True)
    sh = tmp_path / "step.sh"
    sh.write_text(STEP_SH)
    full = {"PATH": os.environ["PATH"], "DYN_RUN_DIR": str(tmp_path), **env}
    return subprocess.run(["bash", str(sh), "W-0", planned, 'echo "cmd addr=$DYN_ADDR http=$DYN_HTTP_HOST"'],
                          capture_output=True, text=True, env=full, timeout=10)


def test_step_wrapper_checks_gpus_against_the_map(tmp_path):
    ok = _run_step_sh(tmp_path, {"SLURMD_NODENAME": "localhost", "SLURM_STEP_GPUS": "2,3",
                                 "CUDA_VISIBLE_DEVICES": "2,3"}, "localhost=2,3")
    assert ok.returncode == 0, ok.stderr
    assert "cmd addr=127.0.0.1 http=127.0.0.1" in ok.stdout
    assert (tmp_path / "placement" / "W-0.localhost.0").read_text().split() == ["localhost", "2,3", "2,3"]
    bad = _run_step_sh(tmp_path, {"SLURMD_NODENAME": "localhost", "SLURM_STEP_GPUS": "0,1"}, "localhost=2,3")
    assert bad.returncode == 97 and "allocation map says '2,3'" in bad.stderr
    cpu = _run_step_sh(tmp_path, {"SLURMD_NODENAME": "localhost", "DYN_HTTP_BIND": "0.0.0.0"}, "-")
    assert cpu.returncode == 0 and "http=0.0.0.0" in cpu.stdout


def _jobprobe(*args: str) -> subprocess.CompletedProcess:
    script = ROOT / "dynamo_iac" / "targets" / "slurm" / "jobprobe.py"
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=20,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_jobprobe_deadline_ready_and_abort():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = str(s.getsockname()[1])
        assert _jobprobe("--deadline", "2", "--interval", "0.1", "tcp", "127.0.0.1", port).returncode == 0
    r = _jobprobe("--deadline", "0.5", "--interval", "0.1", "tcp", "127.0.0.1", port)
    assert r.returncode == 1 and "deadline" in r.stdout
    dead = subprocess.Popen(["true"])
    dead.wait()
    r = _jobprobe("--deadline", "5", "--interval", "0.1", "--watch", str(dead.pid), "tcp", "127.0.0.1", port)
    assert r.returncode == 2 and "exited" in r.stdout
    steps = ["--steps", "frontend=F-0", "prefill=P-0,P-1"]
    r = _jobprobe("--deadline", "0.3", "--interval", "0.1", "graph", f"http://127.0.0.1:{port}", "tiny",
                  "prefill=1", *steps)
    assert r.returncode == 1 and "blame: F-0" in r.stdout and "not answering" in r.stdout


def test_jobprobe_graph_names_the_unregistered_worker():
    """A frontend that lists the model but has no prefill worker registered (real HTTP server)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            body = {"/v1/models": {"data": [{"id": "tiny"}]},
                    "/health": {"instances": [{"component": "backend", "endpoint": "generate"}]}}[self.path]
            raw = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *a):
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        steps = ["--steps", "frontend=F-0", "backend=D-0", "prefill=P-0,P-1"]
        r = _jobprobe("--deadline", "0.5", "--interval", "0.1", "graph", url, "tiny", "backend=1", "prefill=2", *steps)
        assert r.returncode == 1 and "blame: P-0" in r.stdout and "prefill/generate: 0 of 2" in r.stdout
        r = _jobprobe("--deadline", "2", "--interval", "0.1", "graph", url, "tiny", "backend=1", *steps)
        assert r.returncode == 0, r.stdout
    finally:
        srv.shutdown()


def test_render_errors_and_warnings(tmp_path):
    g = graph(Worker(gpus=1))
    with pytest.raises(ConfigError, match="model directory"):
        render(g, cluster(), RunOptions(engine="mocker"))
    g2 = graph(Worker(gpus=1))
    g2.frontend.replicas = 2
    job = render(g2, cluster(nodes=3), RunOptions())
    assert any("one frontend" in w for w in job.warnings)
    assert any("n1, n2" in w for w in job.warnings)
    assert "#SBATCH --nodes=1\n" in job.script


def test_etcd_nats_and_benchmark_steps():
    from dynamo_iac.targets.slurm import BenchmarkOptions

    c = cluster(discovery="etcd", nats=True, container=None)
    job = render(graph(Worker(gpus=1)), c, RunOptions(benchmark=BenchmarkOptions(concurrency=4)))
    names = [s.name for s in job.steps]
    assert names[:2] == ["etcd", "nats"] and "broker" not in names and names[-1] == "benchmark"
    s = job.script
    assert "export DYN_DISCOVERY_BACKEND=etcd ETCD_ENDPOINTS=" in s and "DYN_EVENT_PLANE=nats" in s
    assert "aiperf profile --model tiny" in s and "--concurrency 4" in s and "exit 0\n" in s
    # aiperf's dataset memory maps go to the run dir, not the node's /tmp
    assert 'export AIPERF_DATASET_MMAP_BASE_PATH=\"$DYN_RUN_DIR/aiperf/mmap\" ' in s
    assert "dyn_serve" not in s.split("\n# --- graph readiness")[1]


# ------------------------------------------------------------------------------- sweeps + CLI
def test_sweep_points_paths_and_summary(tmp_path):
    g = graph(Worker(name="P", role="prefill", gpus=2), Worker(name="D", role="decode", gpus=2))
    axes = sw.parse_sets(["workers[P].replicas=1,2", "workers[1].gpus=2,16", "cluster.gpus_per_node=8"])
    points = sw.cartesian(axes)
    assert len(points) == 4 and points[0] == {"workers[P].replicas": 1, "workers[1].gpus": 2, "cluster.gpus_per_node": 8}
    pts = sw.build(g, cluster(nodes=1), points, RunOptions(), tmp_path)
    assert [p.error is None for p in pts] == [True, False, True, False]     # 16 GPUs do not fit one node
    assert "needs 3 nodes of 8 GPUs" in (pts[1].error or "") and "needs 18 GPUs" in (pts[1].error or "")
    assert sorted(r.step for r in pts[2].job.placement.replicas) == ["D-0", "P-0", "P-1"]
    rows = list(csv.DictReader(sw.write_summary(pts, tmp_path / "summary.csv").open()))
    assert [r["point"] for r in rows] == [p.name for p in pts] and rows[1]["error"]
    with pytest.raises(ConfigError, match="no item named 'X'"):
        sw.apply_point(g, cluster(), {"workers[X].replicas": 2})
    with pytest.raises(ConfigError, match="PATH=v1"):
        sw.parse_sets(["workers[0].replicas"])


def test_cli_render_sweep_and_errors(tmp_path):
    r = CliRunner()
    gfile = FIX / "p5-disagg.yaml"
    res = r.invoke(app, ["render", str(gfile), "-c", str(FIX / "p5-cluster.yaml"), "-o", str(tmp_path / "j.sbatch")])
    assert res.exit_code == 0, res.output
    assert "PrefillWorker[1]" in res.output and "DecodeWorker-0" in res.output and (tmp_path / "j.sbatch").is_file()
    res = r.invoke(app, ["render", str(gfile), "-c", str(FIX / "p5-cluster.yaml"), "--json"])
    assert '"n1"' in res.output and '"DecodeWorker[0]"' in res.output
    res = r.invoke(app, ["render", str(gfile), "-c", str(FIX / "p5-cluster.yaml"), "--engine", "mocker"])
    assert res.exit_code == 1 and "run.model_path" in res.output and "Traceback" not in res.output
    amap = tmp_path / "map.yaml"      # e.g. the capacity planner's map for this cluster
    amap.write_text(yaml.safe_dump({"n0": {i: "DecodeWorker[0]" for i in range(8)},
                                    "n1": {i: f"PrefillWorker[{i // 4}]" for i in range(8)}}))
    res = r.invoke(app, ["render", str(gfile), "-c", str(FIX / "p5-cluster.yaml"), "--allocation", str(amap), "-o", "-"])
    assert res.exit_code == 0, res.output
    assert res.output.index("--job-name=DecodeWorker-0") < res.output.index("--job-name=PrefillWorker-0")
    assert '"${DYN_NODE[n1]}=4,5,6,7"' in res.output and "plan: given" in res.output
    amap.write_text("n0:\n  x: DecodeWorker[0]\n")
    res = r.invoke(app, ["render", str(gfile), "-c", str(FIX / "p5-cluster.yaml"), "--allocation", str(amap)])
    assert res.exit_code == 1 and "GPU index is not an integer" in res.output
    csv_file = tmp_path / "points.csv"
    csv_file.write_text("workers[0].replicas,workers[1].replicas\n1,1\n2,1\n3,1\n")
    res = r.invoke(app, ["sweep", str(gfile), "-c", str(FIX / "p5-cluster.yaml"), "--csv", str(csv_file),
                         "-o", str(tmp_path / "sw")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "sw" / "summary.csv").open()))
    assert [bool(x["error"]) for x in rows] == [False, False, True]      # 3×4 + 8 GPUs > 16
    assert len(list((tmp_path / "sw").glob("*.sbatch"))) == 2


@pytest.mark.parametrize("backend, fragment", [
    ("sglang", '--dist-init-addr "$DYN_LEADER_ADDR:29500" --nnodes 2 --node-rank "$SLURM_NODEID"'),
    ("vllm", 'ray start --address="$DYN_LEADER_ADDR:6379"'),
])
def test_multinode_replica_is_one_step_across_whole_nodes(backend, fragment):
    from dynamo_iac.graph import Parallelism

    g = DynamoGraph(name="big", backend=backend, model=Model("m"),
                    workers=[Worker(parallelism=Parallelism(tp=16), env={"A": "1"})])
    job = render(g, cluster(), RunOptions())
    s = job.script
    assert 'DYN_LEADER_HOST="${DYN_NODE[n0]}" srun --job-name=Worker-0 --nodes=2 --ntasks=2' in s
    assert '"${DYN_NODE[n0]}=0,1,2,3,4,5,6,7;${DYN_NODE[n1]}=0,1,2,3,4,5,6,7"' in s
    assert "--kill-on-bad-exit=1" in s and fragment in s and "export A=1;" in s
    assert "files \"$DYN_RUN_DIR/placement\" Worker-0. 2" in s


def test_multinode_trtllm_is_refused_with_a_fix():
    from dynamo_iac.graph import Parallelism

    g = DynamoGraph(name="big", backend="trtllm", model=Model("m"), workers=[Worker(parallelism=Parallelism(tp=16))])
    with pytest.raises(PlanError, match="no multi-node launch for trtllm") as e:
        render(g, cluster(), RunOptions())
    assert e.value.problems[0].fix


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists(), reason="needs root to become nobody")
def test_cluster_script_as_a_user_uses_sudo_or_says_what_to_run(tmp_path):
    """`make test` runs scripts/slurm.sh install/up; as a user they re-run through sudo, or, without
    sudo, say what to run instead of failing on a permission error. (`install` stops at that point:
    the fake sudo below records what it was asked to run; nothing is installed.)"""
    import stat
    import tempfile

    def as_nobody(path: str) -> subprocess.CompletedProcess:
        return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", f"PATH={path}",
                               "bash", str(ROOT / "scripts" / "slurm.sh"), "install"],
                              capture_output=True, text=True, timeout=30, cwd="/")

    no_sbin = "/usr/bin:/bin"       # slurmctld lives in /usr/sbin: `install` sees it missing
    if any(Path(d, "sudo").exists() for d in no_sbin.split(":")):
        pytest.skip("sudo is installed here")
    r = as_nobody(no_sbin)
    assert r.returncode == 1
    assert "error: install needs root (apt-get of slurmctld slurmd munged) and sudo is not installed: run it as " \
           f"root, e.g. su -c 'bash {ROOT}/scripts/slurm.sh install'" in r.stderr
    fake = Path(tempfile.mkdtemp(prefix="fake-sudo-"))
    try:
        fake.chmod(0o755)
        (fake / "sudo").write_text('#!/bin/sh\necho "sudo $*"\n')
        (fake / "sudo").chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        r = as_nobody(f"{fake}:{no_sbin}")
    finally:
        import shutil

        shutil.rmtree(fake)
    assert r.returncode == 0, r.stderr
    assert "install needs root (apt-get of slurmctld slurmd munged): re-running it with sudo" in r.stderr
    assert r.stdout.startswith("sudo -- env DYNAMO_IAC_SLURM_STATE=") and \
        r.stdout.rstrip().endswith(f"bash {ROOT}/scripts/slurm.sh install")


@pytest.mark.parametrize("text, seconds", [("30", 1800), ("30:15", 1815), ("04:00:00", 14400), ("1-00", 86400),
                                           ("1-02:30", 95400), ("1-02:30:05", 95405), ("UNLIMITED", None)])
def test_time_limit_seconds_bound_the_failure_watch(text, seconds):
    c = cluster(time=text)
    assert c.time_limit_s == seconds
    assert f"DYN_DEADLINE_JOB={seconds or 0} " in render(graph(Worker(gpus=1)), c, RunOptions()).script


def test_sweep_point_with_zero_gpus_per_node_is_invalid_not_a_crash(tmp_path):
    pts = sw.build(graph(Worker(gpus=1)), cluster(), [{"cluster.gpus_per_node": 0}, {"cluster.gpus_per_node": 4}],
                   RunOptions(), tmp_path)
    assert "cluster.gpus_per_node" in pts[0].error and "greater than or equal to 1" in pts[0].error
    assert pts[1].error is None and pts[1].script.is_file()


def test_sweep_point_whose_library_call_raises_keeps_the_sweep_going(tmp_path, monkeypatch):
    real = sw.render

    def flaky(g, c, *a, **kw):
        if c.gpus_per_node == 2:
            raise ZeroDivisionError("division by zero")
        return real(g, c, *a, **kw)

    monkeypatch.setattr(sw, "render", flaky)
    pts = sw.build(graph(Worker(gpus=1)), cluster(), [{"cluster.gpus_per_node": 2}, {"cluster.gpus_per_node": 4}],
                   RunOptions(), tmp_path)
    assert pts[0].error.startswith("internal error (ZeroDivisionError: division by zero)")
    assert pts[1].error is None


def test_unfinished_sweep_point_is_not_reported_as_a_state(tmp_path):
    from dynamo_iac.targets.slurm.jobs import JobStatus

    p = sw.Point(0, {"workers[0].replicas": 1}, "p000")
    sw.collect(p, JobStatus(7, "PENDING"), timed_out=(60, True))
    assert p.result["state"] == "UNFINISHED (PENDING, cancelled)"
    assert p.result["failure"] == "not finished within the sweep's --timeout 60 s"


def test_model_path_is_absolute_and_a_missing_one_is_a_warning_off_this_machine(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    job = render(graph(Worker(gpus=1)), cluster(), RunOptions(engine="mocker", model_path="m"))
    assert f"--model-path {tmp_path / 'm'} " in job.script
    assert not any("model-path" in w for w in job.warnings)
    job = render(graph(Worker(gpus=1)), cluster(), RunOptions(engine="mocker", model_path="gone"))
    assert f"--model-path {tmp_path / 'gone'} " in job.script
    assert any(f"--model-path {tmp_path / 'gone'} is not a directory on this machine" in w for w in job.warnings)


def test_cli_errors_print_brackets_verbatim(tmp_path):
    """Rich markup must not eat `[replica]` or `[a, b]` from an error line."""
    cfile = tmp_path / "c.yaml"
    cfile.write_text("nodes: 2.5\ngpus_per_node: 4\n")
    res = CliRunner().invoke(app, ["render", str(FIX / "p5-disagg.yaml"), "-c", str(cfile)])
    assert res.exit_code == 1 and "`nodes: [gpu-001, gpu-002]`" in res.output, res.output
    amap = tmp_path / "a.yaml"
    amap.write_text("n0: {0: Decode}\n")
    res = CliRunner().invoke(app, ["render", str(FIX / "p5-disagg.yaml"), "-c", str(FIX / "p5-cluster.yaml"),
                                   "--allocation", str(amap)])
    assert res.exit_code == 1 and "is not 'Component[replica]'" in res.output, res.output


def test_cli_names_the_flag_of_a_bad_option_and_the_map_names_cpu_steps(tmp_path):
    r = CliRunner()
    res = r.invoke(app, ["render", str(FIX / "p5-disagg.yaml"), "-c", str(FIX / "p5-cluster.yaml"), "--bench",
                         "--bench-requests", "0"])
    assert res.exit_code == 1 and "--bench-requests: Input should be greater than or equal to 1" in res.output
    res = r.invoke(app, ["render", str(FIX / "p5-disagg.yaml"), "-c", str(FIX / "p5-cluster.yaml"), "--bench"])
    cpu_row = next(line for line in res.output.splitlines() if "│ cpu │" in line)
    assert "broker, Frontend-0, benchmark" in cpu_row, res.output

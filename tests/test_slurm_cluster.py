"""On the real local Slurm cluster (scripts/slurm.sh): a disaggregated graph runs as real Dynamo
processes (dynamo.mocker) under srun, on the nodes and GPU indices of the allocation map, answers
a real chat completion, and is cancelled leaving nothing behind; a worker that exits at start
fails the job within its deadline with a report naming it."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dynamo_iac.errors import ConfigError
from dynamo_iac.targets.slurm import jobs
from dynamo_iac.targets.slurm.cli import app

from conftest import ROOT

pytestmark = pytest.mark.slurm
FIX = ROOT / "tests" / "fixtures" / "slurm"


@pytest.fixture(scope="module")
def slurm_cluster():
    """The project's local cluster, started (idempotently) when Slurm is installed."""
    # in CI a missing cluster is a failure, not a skip: the suite must not pass without Slurm
    missing = pytest.fail if os.environ.get("CI") else pytest.skip
    if shutil.which("slurmctld") is None or shutil.which("sbatch") is None:
        missing("Slurm is not installed (scripts/slurm.sh install)")
    if os.geteuid() != 0:
        missing("the local Slurm cluster needs root")
    r = subprocess.run(["bash", str(ROOT / "scripts" / "slurm.sh"), "up"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return load_fixture_cluster()


def load_fixture_cluster() -> dict:
    return yaml.safe_load((FIX / "local-cluster.yaml").read_text())


@pytest.fixture(scope="module")
def dynamo_python() -> str:
    from dynamo_iac.targets.local.runtime import find_python

    try:
        return find_python("dynamo")
    except ConfigError as e:
        pytest.skip(str(e))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def run_env(tmp_path, slurm_cluster, dynamo_python, monkeypatch):
    from dynamo_iac.targets.local.modeldir import write_model_dir

    model = write_model_dir(tmp_path / "model", name="tiny")
    c = dict(slurm_cluster)
    c["python"] = dynamo_python        # the nodes' interpreter comes from the cluster file
    c["output_dir"] = str(tmp_path / "runs")
    c["ports"] = {"broker_xsub": free_port(), "broker_xpub": free_port()}
    (tmp_path / "runs").mkdir()
    cfile = tmp_path / "cluster.yaml"
    cfile.write_text(yaml.safe_dump(c))
    return tmp_path, cfile, model


def write_graph(tmp_path: Path, decode: dict | None = None) -> tuple[Path, int]:
    port = free_port()
    g = {"name": "tiny-disagg", "backend": "vllm", "model": {"id": "tiny"}, "frontend": {"port": port},
         # 3 + 2 GPUs on 4-GPU nodes: prefill on node0 GPUs 0-2, decode on node1 GPUs 0-1
         "workers": [{"role": "prefill", "gpus": 3}, {"role": "decode", "gpus": 2, **(decode or {})}]}
    f = tmp_path / "graph.yaml"
    f.write_text(yaml.safe_dump(g))
    return f, port


def job_processes(run_dir: Path, job_id: int) -> list[str]:
    """Live processes of this job: anything with its run dir in the environment, its slurmstepds."""
    out = []
    marker = f"DYN_RUN_DIR={run_dir}".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
            continue
        if marker in env or re.search(rf"slurmstepd: \[{job_id}\.", cmd):
            out.append(f"{pid} {cmd.strip()}")
    return out


def wait_gone(run_dir: Path, job_id: int, timeout: float = 15) -> list[str]:
    end = time.monotonic() + timeout
    while True:
        left = job_processes(run_dir, job_id)
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.2)


def submitted_job_id(output: str) -> int:
    """The job id `slurm submit` printed (the test fails showing the output when there is none)."""
    m = re.search(r"submitted job (\d+)", output)
    assert m, output
    return int(m.group(1))


def run_to_end(run_env, gfile: Path, *flags: str) -> tuple[int, jobs.JobStatus, float]:
    """Render GRAPH with the mocker (and FLAGS), sbatch it and follow the job to its end (at most
    60 s, then it is cancelled): the job id, its status and the seconds from sbatch to the end."""
    tmp_path, cfile, model = run_env
    res = CliRunner().invoke(app, ["render", str(gfile), "-c", str(cfile), "--engine", "mocker", "--model-path",
                                   str(model), *flags, "-o", str(tmp_path / "fail.sbatch")])
    assert res.exit_code == 0, res.output
    t0 = time.monotonic()
    job_id = jobs.submit(tmp_path / "fail.sbatch")
    try:
        st = jobs.follow(job_id, until="end", timeout=60)
    finally:
        if jobs.in_queue(job_id):
            jobs.cancel(job_id)
    return job_id, st, time.monotonic() - t0


def test_disagg_graph_serves_on_planned_gpus_and_cancels_clean(run_env):
    tmp_path, cfile, model = run_env
    gfile, port = write_graph(tmp_path)
    r = CliRunner()
    res = r.invoke(app, ["submit", str(gfile), "-c", str(cfile), "--engine", "mocker", "--model-path", str(model),
                         "--timeout", "60"])
    job_id = submitted_job_id(res.output)
    try:
        assert res.exit_code == 0, res.output
        assert f"endpoint http://127.0.0.1:{port}" in res.output
        st = jobs.status(job_id)
        assert st.state == "RUNNING" and st.ready and st.failure is None
        run_dir = st.run_dir
        assert run_dir == tmp_path / "runs" / f"tiny-disagg-{job_id}"

        # every step on the node and GPU indices of the allocation map, CUDA_VISIBLE_DEVICES per step
        planned = {"PrefillWorker-0": ("node0", "0,1,2"), "DecodeWorker-0": ("node1", "0,1"),
                   "Frontend-0": ("node0", "-"), "broker": ("node0", "-")}
        for step, (node, gpus) in planned.items():
            files = list((run_dir / "placement").glob(f"{step}.*"))
            assert [f.name for f in files] == [f"{step}.{node}.0"]
            host, step_gpus, cvd = files[0].read_text().split()
            assert (host, step_gpus, cvd) == (node, gpus, gpus)
            first = (run_dir / "logs" / f"{step}.log").read_text().splitlines()[0]
            assert f"on {node} " in first and f"CUDA_VISIBLE_DEVICES={gpus if gpus != '-' else 'unset'}" in first
        assert {s for s, state in st.steps.items() if state == "RUNNING"} >= set(planned)

        # a real chat completion through the frontend
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", method="POST",
                                     headers={"Content-Type": "application/json"},
                                     data=json.dumps({"model": "tiny", "max_tokens": 8,
                                                      "messages": [{"role": "user", "content": "hello"}]}).encode())
        with urllib.request.urlopen(req, timeout=20) as resp:
            body = json.loads(resp.read())
        assert body["choices"][0]["message"]["content"].strip()
        assert body["usage"]["completion_tokens"] == 8

        res = r.invoke(app, ["status", str(job_id), "--json"])
        status = json.loads(res.output)
        assert status["endpoint"] == f"http://127.0.0.1:{port}" and status["steps"]["DecodeWorker-0"]["slurm"] == "RUNNING"
        assert job_processes(run_dir, job_id)      # the check below would see them
    finally:
        res = r.invoke(app, ["cancel", str(job_id)])
    assert res.exit_code == 0, res.output
    assert not jobs.in_queue(job_id)
    assert wait_gone(run_dir, job_id) == []
    kinds = [e.kind for e in jobs.read_events(run_dir)]
    assert kinds[-2:] == ["stopping", "stopped"]


def test_failing_worker_fails_the_job_with_a_report(run_env):
    gfile, _ = write_graph(run_env[0], {"command": ["bash", "-c", "echo decode starting; exit 3"]})
    job_id, st, elapsed = run_to_end(run_env, gfile)
    deadline = load_fixture_cluster()["deadlines"]["ready"]
    assert st.state == "FAILED", st
    assert elapsed < deadline, f"failed after {elapsed:.1f} s, deadline {deadline} s"
    assert st.failure is not None
    first = st.failure.splitlines()[0]
    assert first == "dynamo-iac: step DecodeWorker-0 failed: exited with code 3"
    assert "decode starting" in st.failure
    assert not jobs.in_queue(job_id)
    assert wait_gone(st.run_dir, job_id) == []


def test_cluster_script_is_idempotent_and_reports_status(slurm_cluster):
    sh = ["bash", str(ROOT / "scripts" / "slurm.sh")]
    again = subprocess.run([*sh, "up"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "already up" in again.stderr
    st = subprocess.run([*sh, "status"], capture_output=True, text=True, timeout=30)
    assert st.returncode == 0 and st.stdout.rstrip().endswith("up")
    assert re.search(r"node0 local\* idle 16 16384 gpu:4", st.stdout) and "node1" in st.stdout
    # both emulated nodes run steps, each with its own --gres binding
    out = subprocess.run(["srun", "-N2", "-n2", "--gres=gpu:2", "bash", "-c",
                          "echo $SLURMD_NODENAME $CUDA_VISIBLE_DEVICES"], capture_output=True, text=True, timeout=60)
    assert sorted(out.stdout.split("\n")[:2]) == ["node0 0,1", "node1 0,1"], out.stderr


def test_sweep_submits_valid_points_and_summarises(run_env):
    tmp_path, cfile, model = run_env
    gfile, _ = write_graph(tmp_path)
    out = tmp_path / "sweep"
    res = CliRunner().invoke(app, ["sweep", str(gfile), "-c", str(cfile), "--engine", "mocker", "--model-path",
                                   str(model), "--set", "workers[1].gpus=2,5", "-o", str(out), "--submit", "--wait",
                                   "--timeout", "90"])
    assert res.exit_code == 0, res.output
    import csv

    rows = {r["point"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert set(rows) == {"p000-workers1_gpus2", "p001-workers1_gpus5"}
    ok, bad = rows["p000-workers1_gpus2"], rows["p001-workers1_gpus5"]
    assert ok["state"] == "COMPLETED" and float(ok["ready_s"]) > 0 and not ok["error"]
    assert "does not fit nodes of 4 GPUs" in bad["error"] and not bad["job_id"]
    assert not jobs.in_queue(int(ok["job_id"]))


def test_prerendered_mocker_replica_across_two_nodes_into_a_fresh_output_dir(run_env):
    """A tp=8 replica spans both 4-GPU nodes: rank 0 runs the mocker, rank 1 holds its GPUs; the
    script is rendered first and submitted as a file into an output_dir that does not exist yet."""
    tmp_path, cfile, model = run_env
    c = yaml.safe_load(cfile.read_text())
    c["output_dir"] = str(tmp_path / "fresh" / "runs")          # created by `submit`, not by the test
    c.pop("ports")                                               # broker ports derived from the job id
    cfile.write_text(yaml.safe_dump(c))
    port = free_port()
    g = {"name": "tiny-tp8", "backend": "vllm", "model": {"id": "tiny"}, "frontend": {"port": port},
         "workers": [{"role": "agg", "parallelism": {"tp": 8}}]}
    gfile = tmp_path / "tp8.yaml"
    gfile.write_text(yaml.safe_dump(g))
    r = CliRunner()
    res = r.invoke(app, ["render", str(gfile), "-c", str(cfile), "--engine", "mocker", "--model-path", str(model),
                         "-o", str(tmp_path / "tp8.sbatch")])
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "fresh").exists()
    res = r.invoke(app, ["submit", str(tmp_path / "tp8.sbatch"), "--timeout", "60"])
    job_id = submitted_job_id(res.output)
    try:
        assert res.exit_code == 0, res.output
        st = jobs.status(job_id)
        assert st.ready and st.run_dir == tmp_path / "fresh" / "runs" / f"tiny-tp8-{job_id}"
        placed = sorted(f.read_text().split()[0:2] for f in (st.run_dir / "placement").glob("Worker-0.*"))
        assert placed == [["node0", "0,1,2,3"], ["node1", "0,1,2,3"]]
        xpub = 10000 + job_id % 10000 * 2 + 1
        assert f"xpub tcp://127.0.0.1:{xpub}" in (st.run_dir / "logs" / "broker.log").read_text()
        log = (st.run_dir / "logs" / "Worker-0.log").read_text()
        assert "command not found" not in log and "ray" not in log
    finally:
        r.invoke(app, ["cancel", str(job_id)])
    assert not jobs.in_queue(job_id)
    assert wait_gone(st.run_dir, job_id) == []


def test_declared_probes_gate_readiness_and_a_worker_traceback_after_ready_fails_the_job(run_env):
    """The probe file `local up --probes` reads works on Slurm too: declared readiness probes (an
    HTTP body match on the frontend, a log line of the decode worker) gate readiness; after ready,
    a Python traceback in a worker's log (the default failure pattern) fails the job naming the step."""
    tmp_path, cfile, model = run_env
    gfile, port = write_graph(tmp_path)
    probes = tmp_path / "probes.yaml"
    probes.write_text(r"""
probes:
  Frontend:
    ready:
      - {type: http, path: /v1/models, body: '"id":\s*"tiny"', name: model listed}
  DecodeWorker:
    ready:
      - {type: log, pattern: 'mocker worker\(s\) created and running', name: mocker up}
""")
    res = CliRunner().invoke(app, ["submit", str(gfile), "-c", str(cfile), "--engine", "mocker", "--model-path",
                                   str(model), "--probes", str(probes), "--timeout", "60"])
    job_id = submitted_job_id(res.output)
    try:
        assert res.exit_code == 0, res.output
        st = jobs.status(job_id)
        assert st.ready and st.failure is None
        probes_log = (st.run_dir / "probes.log").read_text()
        assert "readiness probes passed: Frontend-0: model listed, DecodeWorker-0: mocker up" in probes_log
        with open(st.run_dir / "logs" / "PrefillWorker-0.log", "a") as f:
            f.write("Traceback (most recent call last):\nRuntimeError: engine wedged\n")
        t0 = time.monotonic()
        st = jobs.follow(job_id, until="end", timeout=30)
        took = time.monotonic() - t0
    finally:
        if jobs.in_queue(job_id):
            jobs.cancel(job_id)
    assert st.state == "FAILED" and took < 10, (st, took)
    assert st.failure.splitlines()[0] == ("dynamo-iac: step PrefillWorker-0 failed: tripped its failure probe "
                                          "'fatal log line': PrefillWorker-0.log: Traceback (most recent call last):")
    assert "RuntimeError: engine wedged" in st.failure
    assert wait_gone(st.run_dir, job_id) == []


def test_worker_that_logs_a_declared_fatal_line_fails_the_job_while_starting(run_env):
    """A worker that hangs after logging its failure (it never exits) fails the job at once by a
    declared log-line failure probe, long before the readiness deadline."""
    tmp_path = run_env[0]
    gfile, _ = write_graph(tmp_path, {"command": ["bash", "-c", "echo 'NCCL error: unhandled system error'; sleep 300"]})
    probes = tmp_path / "probes.yaml"
    probes.write_text("probes:\n  DecodeWorker:\n    fail:\n      - {type: log, pattern: 'NCCL error', name: nccl}\n")
    job_id, st, elapsed = run_to_end(run_env, gfile, "--probes", str(probes))
    assert st.state == "FAILED" and elapsed < load_fixture_cluster()["deadlines"]["ready"] / 2, (st, elapsed)
    assert st.failure.splitlines()[0] == ("dynamo-iac: step DecodeWorker-0 failed: tripped its failure probe 'nccl': "
                                          "DecodeWorker-0.log: NCCL error: unhandled system error")
    assert wait_gone(st.run_dir, job_id) == []


def test_benchmark_step_keeps_aiperf_files_in_the_run_dir(run_env):
    """The aiperf step after readiness: results in <run dir>/aiperf, and its dataset memory maps
    there too instead of /tmp/aiperf_mmap_* on the node."""
    from dynamo_iac.targets.local.runtime import find_python

    try:
        aiperf = find_python("aiperf")
    except ConfigError as e:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(str(e))
    tmp_path, cfile, model = run_env
    gfile, _ = write_graph(tmp_path)
    before = set(Path("/tmp").glob("aiperf_mmap_*"))
    res = CliRunner().invoke(app, ["submit", str(gfile), "-c", str(cfile), "--engine", "mocker", "--model-path",
                                   str(model), "--bench", "--bench-requests", "4", "--aiperf", f"{aiperf} -m aiperf",
                                   "--wait", "--timeout", "240"])
    assert res.exit_code == 0, res.output
    job_id = submitted_job_id(res.output)
    st = jobs.status(job_id)
    assert st.state == "COMPLETED"
    export = json.loads((st.run_dir / "aiperf" / "profile_export_aiperf.json").read_text())
    assert export["request_count"]["avg"] == 4
    assert list((st.run_dir / "aiperf" / "mmap").glob("aiperf_mmap_*"))
    assert set(Path("/tmp").glob("aiperf_mmap_*")) == before


def test_sweep_wait_timeout_fails_names_and_cancels_unfinished_points(run_env):
    """Points still queued at --timeout fail the sweep (exit 1), are named, cancelled by default and
    marked UNFINISHED in the summary; --keep-unfinished leaves them queued."""
    import csv

    tmp_path, cfile, model = run_env
    c = yaml.safe_load(cfile.read_text())
    c["sbatch_flags"] = ["--begin=now+300"]          # held PENDING: deterministic "not finished"
    cfile.write_text(yaml.safe_dump(c))
    gfile, _ = write_graph(tmp_path)
    args = ["sweep", str(gfile), "-c", str(cfile), "--engine", "mocker", "--model-path", str(model),
            "--set", "workers[1].gpus=1,2", "--submit", "--wait", "--timeout", "1"]
    res = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "s1")])
    assert res.exit_code == 1, res.output
    rows = list(csv.DictReader((tmp_path / "s1" / "summary.csv").open()))
    assert [r["state"] for r in rows] == ["UNFINISHED (PENDING, cancelled)"] * 2
    assert "2 point(s) did not finish within --timeout 1 s, cancelled" in res.output
    assert all(f"(job {r['job_id']})" in res.output and not jobs.in_queue(int(r["job_id"])) for r in rows)
    res = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "s2"), "--keep-unfinished"])
    ids = [int(r["job_id"]) for r in csv.DictReader((tmp_path / "s2" / "summary.csv").open())]
    try:
        assert res.exit_code == 1 and "left queued (--keep-unfinished)" in res.output, res.output
        assert all(jobs.in_queue(i) for i in ids)
    finally:
        for i in ids:
            jobs.cancel(i)
    assert not any(jobs.in_queue(i) for i in ids)


def test_unknown_job_id_is_an_error(slurm_cluster):
    for cmd in ("status", "cancel"):
        res = CliRunner().invoke(app, [cmd, "99999999"])
        assert res.exit_code == 1 and "Slurm knows no job 99999999" in res.output, (cmd, res.output)


def test_missing_model_path_is_an_error_when_the_nodes_are_this_machine(run_env):
    tmp_path, cfile, _ = run_env
    gfile, _ = write_graph(tmp_path)
    res = CliRunner().invoke(app, ["render", str(gfile), "-c", str(cfile), "--engine", "mocker",
                                   "--model-path", str(tmp_path / "nope")])
    assert res.exit_code == 1 and "the cluster's nodes run on this machine" in res.output, res.output
    assert "dynamo-iac local modeldir DIR" in res.output

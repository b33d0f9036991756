"""Slurm target rules that need no cluster: the embedded probe code runs on the batch host's
Python 3.8+, the cluster file's interpreter wins over this machine's, output_dir is absolute and
created before sbatch, Slurm's JobLaunchFailure gets a reason, submission leaves --nice alone,
and a mocker replica spanning nodes runs a plain mocker (no Ray)."""
from __future__ import annotations

import ast
import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dynamo_iac.graph import DynamoGraph, Frontend, Model, Parallelism, Worker
from dynamo_iac.targets.slurm import RunOptions, SlurmCluster, jobs, render
from dynamo_iac.targets.slurm import jobprobe
from dynamo_iac.targets.slurm.script import LIBRARY, _library_text

LOCAL = {"nodes": ["node0", "node1"], "gpus_per_node": 4, "partition": "local", "output_dir": "/tmp/o"}


def _graph(**kw) -> DynamoGraph:
    return DynamoGraph(name="g", model=Model("tiny"), frontend=kw.pop("frontend", Frontend()),
                       workers=kw.pop("workers", [Worker(role="prefill", gpus=1), Worker(role="decode", gpus=1)]), **kw)


def _embedded(tmp_path: Path) -> Path:
    """The job's bin/ layout: jobprobe.py next to the copies of the shared library files."""
    (tmp_path / "jobprobe.py").write_text(Path(jobprobe.__file__).read_text())
    for dest, src in LIBRARY:
        p = tmp_path / dest
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(_library_text(src))
    return tmp_path


def _old_pythons() -> dict[tuple[int, int], str]:
    found = {}
    for minor in (7, 8):
        cands = [*sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.{minor}.*/bin/python"))),
                 shutil.which(f"python3.{minor}")]
        for c in cands:
            if c and "/shims/" not in c and os.access(c, os.X_OK):     # a pyenv shim may not resolve
                found[(3, minor)] = c
                break
    return found


def test_embedded_probe_code_parses_as_python38(tmp_path):
    root = _embedded(tmp_path)
    files = [root / "jobprobe.py", *(root / d for d, _ in LIBRARY)]
    for f in files:
        src = f.read_text()
        ast.parse(src, filename=str(f), feature_version=(3, 8))
        assert "kw_only" not in src, f"{f.name}: dataclass(kw_only=...) needs Python 3.10"


@pytest.mark.skipif((3, 8) not in _old_pythons(), reason="no Python 3.8 interpreter on this machine")
def test_jobprobe_runs_on_python38_and_37_gets_a_clear_message(tmp_path):
    root = _embedded(tmp_path)
    olds = _old_pythons()
    (root / "job.ready").write_text("")
    r = subprocess.run([olds[(3, 8)], "jobprobe.py", "--deadline", "2", "--interval", "0.05", "files", ".", "job.", "1"],
                       cwd=root, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "ready" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([olds[(3, 8)], "jobprobe.py", "--deadline", "0.3", "--interval", "0.05", "tcp", "127.0.0.1", "1"],
                       cwd=root, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "deadline" in r.stdout, r.stdout + r.stderr
    if (3, 7) in olds:
        r = subprocess.run([olds[(3, 7)], "jobprobe.py", "--deadline", "1", "files", ".", "x", "1"],
                           cwd=root, capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "need Python >= 3.8" in r.stderr and "probe_python" in r.stderr


def test_cluster_python_wins_over_the_local_override(monkeypatch):
    monkeypatch.setenv("DYNAMO_IAC_DYNAMO_PYTHON", "/home/me/laptop/.venv-dynamo/bin/python")
    job = render(_graph(), SlurmCluster.from_dict({**LOCAL, "python": "/opt/dynamo/bin/python"}),
                 RunOptions(engine="mocker", model_path="/m"))
    assert "/home/me/laptop" not in job.script
    assert "exec /opt/dynamo/bin/python -m dynamo.frontend" in job.script
    assert "/opt/dynamo/bin/python -m dynamo.mocker" in job.script


def test_relative_output_dir_is_made_absolute_at_render_time(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    job = render(_graph(), SlurmCluster.from_dict({**LOCAL, "output_dir": "runs/x"}), RunOptions(engine="mocker",
                                                                                               model_path="/m"))
    assert f"#SBATCH --output={tmp_path}/runs/x/%x-%j.out\n" in job.script
    assert f"DYN_JOB_OUT={tmp_path}/runs/x\n" in job.script


def _fake_slurm(tmp_path: Path, monkeypatch) -> Path:
    """sbatch/scontrol stand-ins that record their arguments (the real ones are in test_slurm_cluster)."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    for tool, out in (("sbatch", "4242"), ("scontrol", "")):
        f = bin_dir / tool
        f.write_text(f"#!/bin/sh\necho {tool} \"$@\" >>{calls}\necho {out}\n")
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def test_submit_creates_the_output_dir_and_leaves_nice_alone(tmp_path, monkeypatch):
    calls = _fake_slurm(tmp_path, monkeypatch)
    out = tmp_path / "fresh" / "runs"
    job = render(_graph(), SlurmCluster.from_dict({**LOCAL, "output_dir": str(out)}),
                 RunOptions(engine="mocker", model_path="/m"))
    script = job.write(tmp_path / "pre-rendered.sbatch")
    assert jobs.output_dir_of(script) == out
    assert jobs.submit(script, ["--nice=50"]) == 4242
    assert out.is_dir()
    assert calls.read_text().splitlines() == [f"sbatch --parsable --nice=50 {script}"]    # no scontrol update


def test_job_launch_failure_is_explained():
    st = jobs.JobStatus(7, "FAILED", "JobLaunchFailure", stdout="/shared/runs/g-7.out", batch_host="node0")
    text = jobs.launch_failure(st)
    assert text is not None and "/shared/runs" in text and "node0" in text and "--output directory" in text
    assert jobs.launch_failure(jobs.JobStatus(7, "FAILED", "NonZeroExitCode")) is None


def test_mocker_replica_across_nodes_runs_a_plain_mocker_on_rank_0():
    g = _graph(backend="vllm", workers=[Worker(parallelism=Parallelism(tp=8))])
    job = render(g, SlurmCluster.from_dict(LOCAL), RunOptions(engine="mocker", model_path="/m"))
    s = job.script
    assert "ray " not in s and "--distributed-executor-backend" not in s
    assert ('if [ "$SLURM_NODEID" = 0 ]; then exec python3 -m dynamo.mocker --model-path /m --model-name tiny '
            '--speedup-ratio 100; else exec sleep infinity; fi') in s
    assert "--nodes=2 --ntasks=2" in s and "backend=1" in s        # one registered instance per replica


def test_broker_ports_derive_from_the_job_id_unless_set_and_the_map_names_the_frontend():
    g = _graph(frontend=Frontend(name="Gateway"))
    s = render(g, SlurmCluster.from_dict(LOCAL), RunOptions(engine="mocker", model_path="/m")).script
    assert "DYN_BROKER_XSUB=$(( 10000 + SLURM_JOB_ID % 10000 * 2 ))\n" in s
    assert "export DYN_BROKER_XSUB DYN_BROKER_XPUB=$(( DYN_BROKER_XSUB + 1 ))\n" in s
    assert "Gateway (cpu), probes (batch host)" in s and "Frontend (cpu)" not in s
    # the two lines as bash evaluates them: job 12345 → 14690/14691, job 12346 → 14692/14693
    for job_id, want in ((12345, "14690 14691"), (12346, "14692 14693")):
        lines = [ln for ln in s.splitlines() if ln.startswith(("DYN_BROKER_XSUB=", "export DYN_BROKER_XSUB"))]
        out = subprocess.run(["bash", "-c", "\n".join(lines) + '\necho "$DYN_BROKER_XSUB $DYN_BROKER_XPUB"'],
                             env={"SLURM_JOB_ID": str(job_id), "PATH": os.environ["PATH"]},
                             capture_output=True, text=True)
        assert out.stdout.strip() == want, out.stderr
    fixed = render(g, SlurmCluster.from_dict({**LOCAL, "ports": {"broker_xsub": 30000}}),
                   RunOptions(engine="mocker", model_path="/m")).script
    assert "DYN_BROKER_XSUB=30000\n" in fixed and "export DYN_BROKER_XSUB DYN_BROKER_XPUB=30001\n" in fixed

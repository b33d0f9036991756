"""Time from `sbatch` to graph-ready on the local Slurm cluster, next to the local target's
time-to-ready for the SAME graph, in the same run. Target: slurm / local <= 1.5.

Where Slurm's share goes (slurm.conf by scripts/slurm.sh): sbatch only test-schedules a batch
job and queues a request for slurmctld's once-a-second background loop (batch_sched_delay=0
lets every tick serve it; backfill with bf_interval=1 is the other clock), so sbatch → job start
is 0-1 s by design of Slurm 22.05, not tunable further; the rest is the job's own start-up.

Graph: disaggregated, frontend + 1 prefill (3 GPUs, node0) + 1 decode (2 GPUs, node1), dynamo.mocker.
Slurm "ready" = the job's `endpoint` event (written after the frontend lists the model and both
workers are registered), measured from just before `sbatch`; the job is then cancelled and the
time until it has left the queue is reported too. Local "ready" = `local.up()` returning (the same
readiness rule). Runs alternate between the targets; each figure is the median of `repeats`.
Needs: scripts/slurm.sh install && scripts/slurm.sh up, scripts/dynamo-env.sh dynamo.
Last line: one JSON object with the figures.

    python benchmarks/slurm_ready.py [repeats]     (default 5)
"""
from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from dynamo_iac.graph import DynamoGraph, Frontend, Model, Worker  # noqa: E402
from dynamo_iac.targets.local.modeldir import write_model_dir  # noqa: E402
from dynamo_iac.targets.local.runner import up as local_up  # noqa: E402
from dynamo_iac.targets.local.runtime import find_python  # noqa: E402
from dynamo_iac.targets.slurm import RunOptions, SlurmCluster, jobs, render  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_graph(port: int) -> DynamoGraph:
    return DynamoGraph(name="ready-disagg", model=Model("tiny"), frontend=Frontend(port=port),
                       workers=[Worker(role="prefill", gpus=3), Worker(role="decode", gpus=2)])


def slurm_once(tmp: Path, model: Path) -> dict[str, float]:
    data = yaml.safe_load((ROOT / "tests" / "fixtures" / "slurm" / "local-cluster.yaml").read_text())
    data["output_dir"] = str(tmp / "runs")
    data["python"] = find_python("dynamo")       # the nodes' interpreter is the cluster file's
    data["ports"] = {"broker_xsub": free_port(), "broker_xpub": free_port()}
    job = render(make_graph(free_port()), SlurmCluster.from_dict(data),
                 RunOptions(engine="mocker", model_path=str(model)))
    script = job.write(tmp / "runs" / "ready.sbatch")
    t0 = time.time()
    job_id = jobs.submit(script)
    st = jobs.follow(job_id, until="ready", timeout=120, interval=0.02)
    t_ready = time.time()
    if not st.ready:
        jobs.cancel(job_id)
        raise SystemExit(f"slurm job {job_id} not ready: {st.state} {st.failure or ''}")
    started = next(e.t for e in st.events if e.kind == "started")
    endpoint = next(e.t for e in st.events if e.kind == "endpoint")
    t1 = time.time()
    jobs.cancel(job_id)
    t_gone = time.time()
    return {"ready": endpoint - t0, "observed": t_ready - t0, "sbatch_to_start": started - t0,
            "start_to_ready": endpoint - started, "cancel": t_gone - t1}


def local_once(tmp: Path, i: int) -> dict[str, float]:
    g = make_graph(8000)             # port=0 below: the local target picks a free one
    t0 = time.perf_counter()
    run = local_up(g, run_dir=tmp / f"local-{i}", port=0, speedup_ratio=100.0)
    ready = time.perf_counter() - t0
    t1 = time.perf_counter()
    run.down()
    return {"ready": ready, "stop": time.perf_counter() - t1}


def main(repeats: int = 5) -> None:
    os.environ.setdefault("DYNAMO_IAC_DYNAMO_PYTHON", find_python("dynamo"))
    with tempfile.TemporaryDirectory(prefix="dynamo-iac-slurm-ready-") as d:
        tmp = Path(d)
        (tmp / "runs").mkdir()
        model = write_model_dir(tmp / "model", name="tiny")
        slurm_runs, local_runs = [], []
        for i in range(repeats):
            local_runs.append(local_once(tmp, i))
            slurm_runs.append(slurm_once(tmp, model))
            print(f"run {i + 1}: local ready {local_runs[-1]['ready']:.3f} s | slurm sbatch→ready "
                  f"{slurm_runs[-1]['ready']:.3f} s (sbatch→job start {slurm_runs[-1]['sbatch_to_start']:.3f} s, "
                  f"start→ready {slurm_runs[-1]['start_to_ready']:.3f} s), cancel {slurm_runs[-1]['cancel']:.3f} s")

    def med(runs: list[dict[str, float]], k: str) -> float:
        return round(statistics.median(r[k] for r in runs), 3)

    s_ready, l_ready = med(slurm_runs, "ready"), med(local_runs, "ready")
    ratio = round(s_ready / l_ready, 2)
    print(f"median: slurm sbatch→ready {s_ready:.3f} s, local up→ready {l_ready:.3f} s, ratio {ratio} "
          f"[{'ok' if ratio <= 1.5 else 'OVER TARGET'} (target <= 1.5)]")
    from_start = round(med(slurm_runs, "start_to_ready") / l_ready, 2)
    print(f"job start→ready vs local: ratio {from_start}; sbatch→ready min {min(r['ready'] for r in slurm_runs):.3f} s, "
          f"max {max(r['ready'] for r in slurm_runs):.3f} s")
    print(json.dumps({
        "slurm_ready_s": s_ready, "slurm_ready_min_s": round(min(r["ready"] for r in slurm_runs), 3),
        "slurm_ready_max_s": round(max(r["ready"] for r in slurm_runs), 3), "ratio_from_job_start": from_start, "slurm_sbatch_to_start_s": med(slurm_runs, "sbatch_to_start"),
        "slurm_start_to_ready_s": med(slurm_runs, "start_to_ready"), "slurm_cancel_s": med(slurm_runs, "cancel"),
        "local_ready_s": l_ready, "local_ready_min_s": round(min(r["ready"] for r in local_runs), 3),
        "local_stop_s": med(local_runs, "stop"),
        "ratio_of_minimums": round(min(r["ready"] for r in slurm_runs) / min(r["ready"] for r in local_runs), 2), "ratio": ratio, "target_ratio": 1.5,
        "meets_target": ratio <= 1.5, "repeats": repeats,
    }, sort_keys=True))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)

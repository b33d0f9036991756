"""Submit, follow, inspect and cancel a rendered job through the Slurm client tools.

The batch script writes `events.tsv` into its run directory (launched / ready / failed / endpoint
/ stopping / stopped, with timestamps) and `failure.txt` when a step fails; this module joins that
with what Slurm says (squeue/scontrol) so the CLI can show every step's state, readiness and the
endpoint. The run directory is `<output_dir>/<job name>-<job id>`, i.e. the job's StdOut path
without `.out`, so a job id alone is enough to find it.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ...errors import ConfigError, DynamoIacError

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
            "BOOT_FAIL", "DEADLINE"}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ConfigError(f"{name} not found on PATH", "slurm", "run on a Slurm login node, or start the local "
                          "cluster with scripts/slurm.sh install && scripts/slurm.sh up")
    return path


def _run(argv: list[str], timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DynamoIacError(f"{' '.join(argv)} did not answer within {timeout:g} s", "slurm",
                             "check that slurmctld is up (scontrol ping)") from None
    if check and cp.returncode != 0:
        raise DynamoIacError(f"{' '.join(argv)} failed: {(cp.stderr or cp.stdout).strip()}", "slurm",
                             "check the message above (partition, account, node names)")
    return cp


@dataclass(frozen=True)
class Event:
    t: float
    kind: str
    step: str
    detail: str


@dataclass
class JobStatus:
    job_id: int
    state: str                                  # Slurm job state, "UNKNOWN" once forgotten
    reason: str = ""
    exit_code: str = ""
    run_dir: Path | None = None
    steps: dict[str, str] = field(default_factory=dict)     # step name → Slurm step state
    events: list[Event] = field(default_factory=list)
    failure: str | None = None
    stdout: str = ""                            # the job's StdOut path (Slurm's view)
    batch_host: str = ""

    @property
    def endpoint(self) -> str | None:
        return next((e.detail for e in self.events if e.kind == "endpoint"), None)

    @property
    def ready(self) -> bool:
        return self.endpoint is not None

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL or self.state == "UNKNOWN"

    def step_phase(self) -> dict[str, str]:
        """Per step: the latest of launched / ready / failed / done from the job's own events."""
        out: dict[str, str] = {}
        for e in self.events:
            if e.step == "graph" and e.kind == "ready":      # every worker is registered now
                out.update({s: "registered" for s, p in out.items() if p == "on its GPUs"})
            if e.step != "-" and e.kind in ("launched", "ready", "failed", "done"):
                if e.kind == "ready" and e.detail == "GPU binding":
                    out[e.step] = "on its GPUs"
                else:
                    out[e.step] = e.kind
            if e.kind == "stopped":
                out.update({s: "stopped" for s, p in out.items() if p not in ("failed", "done")})
        return out


def read_events(run_dir: Path) -> list[Event]:
    f = run_dir / "events.tsv"
    if not f.is_file():
        return []
    out = []
    for line in f.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 4:
            try:
                out.append(Event(float(parts[0]), parts[1], parts[2], parts[3]))
            except ValueError:
                continue
    return out


def submit(script: Path, extra: list[str] | None = None) -> int:
    """sbatch the script; returns the job id.

    No scheduler nudge: Slurm 22.05 only test-schedules a batch job at submission (job_allocate
    with allocate=0) and queues a scheduling request that slurmctld's once-a-second background
    loop serves (batch_sched_delay=0 lets it serve every tick); the backfill pass (bf_interval=1)
    is the other 1 s clock. A no-op `scontrol update Nice=0` ("new nice identical to old nice")
    triggers neither, and would reset a user's --nice.
    """
    make_output_dir(script)
    cp = _run([_tool("sbatch"), "--parsable", *(extra or []), str(script)], timeout=60)
    try:
        job_id = int(cp.stdout.strip().split(";")[0])
    except ValueError:
        raise DynamoIacError(f"sbatch answered {cp.stdout.strip()!r}, not a job id", "slurm", "") from None
    return job_id


def output_dir_of(script: Path) -> Path | None:
    """The directory of the script's `#SBATCH --output=` file (None when absent or patterned)."""
    try:
        text = script.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("#SBATCH --output="):
            d = Path(line.split("=", 1)[1].strip()).parent
            return None if "%" in str(d) else (d if d.is_absolute() else script.parent / d)
        if line and not line.startswith("#"):
            break                     # sbatch reads #SBATCH lines only before the first command
    return None


def make_output_dir(script: Path) -> None:
    """slurmd opens the job's --output file before the script runs; a missing directory fails the
    job as JobLaunchFailure with no log at all, so create it here (a shared path on real clusters)."""
    d = output_dir_of(script)
    if d is None:
        return
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the job's output directory {d}: {e.strerror}", "cluster.output_dir",
                          "point output_dir at a writable directory shared by all nodes") from None


LAUNCH_FAILURE_HINT = ("Slurm could not start the batch script (JobLaunchFailure): the --output directory {d} "
                       "must exist and be writable on the batch node (shared by all nodes); see the slurmd log "
                       "of {node} for the exact reason")


def launch_failure(st: "JobStatus") -> str | None:
    """A readable reason when Slurm failed the job before its script ran (no events, no log)."""
    if "JobLaunchFailure" not in st.reason or st.events:
        return None
    d = Path(st.stdout).parent if st.stdout else "(unknown)"
    return LAUNCH_FAILURE_HINT.format(d=d, node=st.batch_host or "the batch node")


def _fields(line: str) -> dict[str, str]:
    """The KEY=VALUE tokens of one `scontrol show … -o` line."""
    out = {}
    for tok in line.split():
        k, sep, v = tok.partition("=")
        if sep:
            out[k] = v
    return out


def _job_fields(job_id: int) -> dict[str, str]:
    cp = _run([_tool("scontrol"), "show", "job", "-o", str(job_id)], check=False)
    if cp.returncode != 0:
        return {}
    return _fields(cp.stdout)


def status(job_id: int, run_dir: Path | None = None) -> JobStatus:
    f = _job_fields(job_id)
    st = JobStatus(job_id, f.get("JobState", "UNKNOWN"), f.get("Reason", ""), f.get("ExitCode", ""),
                   stdout=f.get("StdOut", ""), batch_host=f.get("BatchHost", ""))
    if run_dir is None and f.get("StdOut", "").endswith(".out"):
        run_dir = Path(f["StdOut"][: -len(".out")])
    st.run_dir = run_dir
    if st.state in ("RUNNING", "COMPLETING"):
        cp = _run([_tool("squeue"), "-h", "-s", "-j", str(job_id), "-O", "StepId:|,StepName:|,StepState:|"],
                  check=False)
        for line in cp.stdout.splitlines():
            parts = line.split("|")
            if len(parts) >= 3 and not parts[0].endswith((".batch", ".extern")):
                st.steps[parts[1]] = parts[2]
    if run_dir is not None:
        st.events = read_events(run_dir)
        fail = run_dir / "failure.txt"
        if fail.is_file():
            st.failure = fail.read_text()
    if st.failure is None:
        st.failure = launch_failure(st)
    return st


def follow(job_id: int, run_dir: Path | None = None, *, until: str = "ready", timeout: float = 600,
           interval: float = 0.25, on_change: Callable[[JobStatus], None] | None = None) -> JobStatus:
    """Poll until the graph is ready (until="ready") or the job has ended (until="end"), or timeout."""
    end = time.monotonic() + timeout
    last: tuple | None = None
    while True:
        st = status(job_id, run_dir)
        run_dir = st.run_dir or run_dir
        key = (st.state, tuple(sorted(st.steps.items())), len(st.events))
        if on_change is not None and key != last:
            on_change(st)
        last = key
        if st.finished or (until == "ready" and (st.ready or st.failure)):
            return st
        if time.monotonic() >= end:
            return st
        time.sleep(interval)


def no_such_job(job_id: int) -> DynamoIacError:
    return DynamoIacError(f"Slurm knows no job {job_id}", "JOB_ID",
                          "check the id (`squeue --me`); Slurm forgets a finished job MinJobAge seconds after "
                          "it ends — its run directory under the cluster's output_dir still has the logs")


def cancel(job_id: int, wait: float = 30) -> JobStatus:
    """scancel; then wait until the job has left squeue (its steps stopped, its processes gone).
    An id Slurm does not know is an error (scancel itself exits 0 for it)."""
    if not _job_fields(job_id):
        raise no_such_job(job_id)
    _run([_tool("scancel"), str(job_id)])
    end = time.monotonic() + wait
    while time.monotonic() < end:
        cp = _run([_tool("squeue"), "-h", "-j", str(job_id), "-o", "%T"], check=False)
        if not cp.stdout.strip():
            break
        time.sleep(0.1)
    return status(job_id)


def nodes_are_this_machine(names: list[str] | None, partition: str | None) -> bool:
    """True when Slurm runs the cluster's nodes (the pinned names, else the partition's or all
    nodes) on this machine — an emulated cluster such as scripts/slurm.sh starts, where a path
    missing here is missing on every node. False where the Slurm tools are absent."""
    import socket

    if shutil.which("scontrol") is None:
        return False
    cp = _run(["scontrol", "show", "node", "-o"], check=False)
    nodes = {}
    for line in cp.stdout.splitlines():
        f = _fields(line)
        if f.get("NodeName"):
            nodes[f["NodeName"]] = f
    if names is None:
        names = [n for n, f in nodes.items() if not partition or partition in f.get("Partitions", "").split(",")]
    picked = [nodes[n] for n in names if n in nodes]
    here = {socket.gethostname(), socket.gethostname().split(".")[0], "localhost"}
    return bool(picked) and all(f.get("NodeHostName") in here or f.get("NodeAddr", "").startswith("127.")
                                for f in picked)


def in_queue(job_id: int) -> bool:
    cp = _run([_tool("squeue"), "-h", "-j", str(job_id), "-o", "%T"], check=False)
    return bool(cp.stdout.strip())

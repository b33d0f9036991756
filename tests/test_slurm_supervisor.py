"""The batch script's supervisor functions (runtime.FUNCTIONS_SH) run in bash without a cluster:
a job that ends right after readiness stops its probe processes every time (the SIGTERM that
lands before the child exec'd is lost there, or runs the script's traps in the child), the
probes exit by themselves once the script is gone, and the failure watch has a deadline."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from dynamo_iac.targets.slurm.runtime import FUNCTIONS_SH

from conftest import ROOT

JOBPROBE = ROOT / "dynamo_iac" / "targets" / "slurm" / "jobprobe.py"


def _harness(tmp_path: Path, body: str) -> Path:
    """A batch-script skeleton: the settings the generated script sets, the supervisor, its traps."""
    run = tmp_path / "run"
    (run / "bin").mkdir(parents=True)
    (run / "bin" / "jobprobe.py").write_text(JOBPROBE.read_text())
    (run / "bin" / "probes.json").write_text("[]")
    script = tmp_path / "job.sh"
    script.write_text("\n".join([
        "#!/bin/bash", "set -uo pipefail",
        f"DYN_RUN_DIR={run}", "DYN_BIN=\"$DYN_RUN_DIR/bin\"", f"DYN_PROBE_PY={sys.executable}",
        "DYN_PROBE_INTERVAL=0.05", "DYN_DEADLINE_READY=5", "DYN_DEADLINE_STOP=1", "DYN_DEADLINE_JOB=0",
        "SLURM_JOB_ID=1",
        FUNCTIONS_SH,
        "DYN_PROBE_ARGS=(--probes \"$DYN_BIN/probes.json\" --run-dir \"$DYN_RUN_DIR\")",
        "trap dyn_stop EXIT", "trap 'exit 143' TERM", "trap 'exit 130' INT",
        body, ""]))
    return script


def _probes_of(run: Path) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if b"jobprobe.py" in cmd and str(run).encode() in cmd:
                out.append(int(d.name))
    return out


def test_a_job_that_ends_after_readiness_always_stops_its_watch(tmp_path):
    """`exit 0` right after dyn_watch_start (every sweep point, --exit-after-ready): 40 runs, each
    ends within its stop budget with exactly one stopping/stopped pair and no probe left."""
    script = _harness(tmp_path, "dyn_watch_start\nexit 0")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{tmp_path / 'nobin'}:/usr/bin:/bin"}
    run = tmp_path / "run"
    for i in range(40):
        (run / "events.tsv").unlink(missing_ok=True)
        t0 = time.monotonic()
        r = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=20)
        took = time.monotonic() - t0
        kinds = [line.split("\t")[1] for line in (run / "events.tsv").read_text().splitlines()]
        assert r.returncode == 0, (i, r.stderr)
        assert kinds == ["stopping", "stopped"], (i, kinds)
        assert took < 5, (i, took)
        assert _probes_of(run) == [], i


def test_probe_exits_once_its_parent_script_is_gone(tmp_path):
    """A probe whose SIGTERM was lost, or whose script was SIGKILLed, does not outlive the script."""
    pidfile = tmp_path / "pid"
    subprocess.run(["bash", "-c", f"{sys.executable} {JOBPROBE} --parent $$ --deadline 0 watch "
                                  f">/dev/null 2>&1 & echo $! >{pidfile}"],
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True, timeout=10)
    pid = int(pidfile.read_text())
    end = time.monotonic() + 5
    while time.monotonic() < end and Path(f"/proc/{pid}").exists():
        stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
        if stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]:
            break
        time.sleep(0.05)
    else:
        assert not Path(f"/proc/{pid}").exists(), "jobprobe outlived its parent script"


def test_watch_ends_at_its_deadline_and_the_script_does_not_count_that_as_a_failure(tmp_path):
    r = subprocess.run([sys.executable, str(JOBPROBE), "--deadline", "0.3", "--interval", "0.05", "watch"],
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "no failure probe fired within 0.3 s" in r.stdout
    script = _harness(tmp_path, "DYN_DEADLINE_JOB=0.3\ndyn_watch_start\nsleep 1\ndyn_check_steps\n"
                                "dyn_event served - ok\nexit 0")
    r = subprocess.run(["bash", str(script)], env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                       text=True, timeout=20)
    kinds = [line.split("\t")[1] for line in (tmp_path / "run" / "events.tsv").read_text().splitlines()]
    assert r.returncode == 0 and kinds == ["served", "stopping", "stopped"], (r.stderr, kinds)


def test_a_signalled_stop_fits_in_slurms_killwait(tmp_path):
    """scancel/time limit: slurmstepd SIGKILLs the script KillWait s after SIGTERM, so the stop is cut
    to KillWait - 2 in all, says so, and still records "stopped"."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "scontrol").write_text("#!/bin/sh\necho 'KillWait                = 5 sec'\n")
    (bindir / "scontrol").chmod(0o755)
    # a step that ignores SIGTERM (srun's pid stands in for the step)
    script = _harness(tmp_path, "DYN_DEADLINE_STOP=10\nbash -c \"trap '' TERM; sleep 30\" &\n"
                                "dyn_started W-0 $! 2\nsleep 0.3\nkill -TERM $$\nsleep 30")
    t0 = time.monotonic()
    r = subprocess.run(["bash", str(script)], env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"},
                       capture_output=True, text=True, timeout=30)
    took = time.monotonic() - t0
    events = [line.split("\t") for line in (tmp_path / "run" / "events.tsv").read_text().splitlines()]
    kinds = [e[1] for e in events]
    assert r.returncode == 143 and kinds[-3:] == ["stopping", "note", "stopped"], (r.stderr, kinds)
    assert "cut from 10 s to 3 s" in events[-2][3] and "fix:" in events[-2][3]
    assert 3 <= took < 4.5, took


def test_failure_report_has_no_terminal_colour_codes(tmp_path):
    script = _harness(tmp_path, "mkdir -p \"$DYN_RUN_DIR/logs\"\n"
                                "printf 'ok\\n\\033[31mERROR\\033[0m boom\\n' >\"$DYN_RUN_DIR/logs/W-0.log\"\n"
                                "dyn_fail W-0 'exited with code 1'")
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=20)
    report = (tmp_path / "run" / "failure.txt").read_text()
    assert r.returncode == 1 and report.endswith("ok\nERROR boom\n") and "\x1b" not in report, report

"""The probe command the sbatch script runs on the batch host (stdlib + targets/probes.py only).

The renderer copies this file and the shared probes (dynamo_iac/targets/probes.py, errors.py)
into the job's bin/ directory, so compute nodes need neither this package nor the network.
One call waits for one thing with the probes' enforced deadline and stops early when a watched
srun step has exited:

    jobprobe.py --deadline S --interval S --watch PID[,PID…] tcp HOST PORT
    jobprobe.py … graph URL MODEL COMPONENT=N… [--steps COMPONENT=STEP[,STEP]…]
                  (on failure a line "blame: STEP" names a step of the first short component)
    jobprobe.py … files DIR PREFIX COUNT        (COUNT files named PREFIX* appear in DIR)
    jobprobe.py --probes FILE --run-dir DIR --host NODE=HOST… watch
                  (after readiness: every step's failure probes, until one fires or --deadline,
                  the job's time limit, passes)

--parent PID (the batch script's $$): the probe exits (code 4) as soon as that process has
exited, so it never outlives the script — even when the script's SIGTERM reached it before it
exec'd this interpreter (the forked shell drops it) or the script was SIGKILLed.

--probes names the job's per-step probes (probes.ProbeSet entries: the default failure log
patterns and what the user's probe file declares; log paths relative to --run-dir, hosts as
allocation-map node names that --host maps). With `graph`, its failure probes run while waiting
and its readiness probes must pass too.

Exit 0 ready (watch: the deadline passed), 1 not ready by the deadline (the detail names what is
missing), 2 a watched step exited (the script then names it), 3 a step's probe failed ("blame:
STEP" names it), 4 the parent script is gone, 64 bad usage. The last stdout line is the detail.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import threading
import time
from dataclasses import dataclass

# The batch host's interpreter is the cluster's (probe_python), not ours: this file and the
# embedded probes are kept to Python 3.8 (tests/test_slurm_unit.py parses them as 3.8).
if sys.version_info < (3, 8):
    sys.exit(f"jobprobe: {sys.executable} is Python {sys.version.split()[0]}; the probes need Python >= 3.8 "
             "(fix: set probe_python in the cluster file to a Python 3.8+ interpreter on the batch host)")

from dynamo_iac.targets.probes import Attempt, GraphReadyProbe, Probe, ProbeSet, TcpProbe  # noqa: E402


def _exited(pid: int) -> bool:
    """True once the process is gone or a zombie (the batch shell has not reaped it yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True


@dataclass(frozen=True)
class FilesProbe(Probe):
    """Ok once `count` files whose names start with `prefix` exist in `directory`."""

    directory: str = "."
    prefix: str = ""
    count: int = 1

    def describe(self) -> str:
        return f"{self.count} file(s) {self.prefix}* in {self.directory}"

    def attempt(self, timeout: float | None = None) -> Attempt:
        try:
            n = sum(1 for f in os.listdir(self.directory) if f.startswith(self.prefix))
        except FileNotFoundError:
            n = 0
        return Attempt(n >= self.count, f"{n} of {self.count} {self.prefix}* file(s)")


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not k or not v:
            raise SystemExit(f"jobprobe: {what} {it!r} is not KEY=VALUE")
        out[k] = v
    return out


def _probe_set(path: str, run_dir: str, hosts: dict[str, str]) -> ProbeSet:
    if not path:
        return ProbeSet([])
    with open(path) as f:
        entries = json.load(f)
    for e in entries:
        e["host"] = hosts.get(e.get("host", ""), e.get("host", ""))
        if e.get("log"):
            e["log"] = os.path.join(run_dir, e["log"])
    return ProbeSet(entries)


def _blame(owner: str, reason: str) -> int:
    print(f"blame: {owner}")
    print(reason, flush=True)
    return 3


ORPHANED = 4


def _exit_with_parent(parent: int) -> None:
    """A daemon thread that ends the process once `parent` has exited, whatever the main thread
    is blocked in (an HTTP probe, a sleep). Its pid, not getppid(): an interpreter shim between
    the script and this process must not count as the parent."""
    def run() -> None:
        while not _exited(parent):
            time.sleep(0.1)
        print(f"jobprobe: parent {parent} is gone; exiting", flush=True)
        os._exit(ORPHANED)

    threading.Thread(target=run, name="parent-watch", daemon=True).start()


def _watch(extra: ProbeSet, interval: float, deadline: float) -> int:
    """After readiness: poll every failure probe until one fires or the deadline passes (the
    script also stops this at its exit). A deadline <= 0: none (an UNLIMITED job)."""
    end = time.monotonic() + deadline if deadline > 0 else float("inf")
    while time.monotonic() < end:
        bad = extra.poll(ready=True)
        if bad:
            return _blame(*bad)
        time.sleep(min(interval, 0.25))
    print(f"watch: no failure probe fired within {deadline:g} s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="jobprobe.py")
    ap.add_argument("--deadline", type=float, required=True)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--parent", type=int, default=0, help="exit once this pid (the batch script) has exited")
    ap.add_argument("--watch", default="", help="comma-separated srun pids; stop when one exits")
    ap.add_argument("--probes", default="", help="JSON file of per-step probes (probes.ProbeSet entries)")
    ap.add_argument("--run-dir", default=".", help="what the probes' relative log paths are relative to")
    ap.add_argument("--host", dest="hosts", action="append", default=[], help="NODE=HOST for the probes' hosts")
    sub = ap.add_subparsers(dest="kind", required=True)
    t = sub.add_parser("tcp")
    t.add_argument("host")
    t.add_argument("port", type=int)
    g = sub.add_parser("graph")
    g.add_argument("url")
    g.add_argument("model")
    g.add_argument("instances", nargs="*", help="COMPONENT=N, e.g. backend=1 prefill=1")
    g.add_argument("--steps", nargs="*", default=[], help="COMPONENT=STEP[,STEP] to name in a report")
    f = sub.add_parser("files")
    f.add_argument("directory")
    f.add_argument("prefix")
    f.add_argument("count", type=int)
    sub.add_parser("watch")
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        return 64 if e.code else 0
    if a.parent:
        _exit_with_parent(a.parent)
    extra = _probe_set(a.probes, a.run_dir, _pairs(a.hosts, "--host"))
    if a.kind == "watch":
        return _watch(extra, a.interval, a.deadline)
    common = dict(deadline=a.deadline, interval=a.interval, timeout=min(2.0, a.deadline))
    probe: Probe
    steps: dict[str, str] = {}
    if a.kind == "tcp":
        probe = TcpProbe(host=a.host, port=a.port, **common)
    elif a.kind == "graph":
        probe = GraphReadyProbe(base_url=a.url, model=a.model,
                                instances={k: int(v) for k, v in _pairs(a.instances, "instance count").items()},
                                **common)
        steps = _pairs(a.steps, "step list")
    else:
        probe = FilesProbe(directory=a.directory, prefix=a.prefix, count=a.count, **common)
    pids = [int(p) for p in a.watch.replace(" ", ",").split(",") if p]

    tripped: list[tuple[str, str]] = []

    def abort() -> str | None:
        dead = [p for p in pids if _exited(p)]
        if dead:
            return f"srun pid {dead[0]} exited"
        bad = extra.poll()
        if bad:
            tripped.append(bad)
            return f"{bad[0]} {bad[1]}"
        return None

    res = probe.wait(abort=abort)
    # the graph answers: the steps' declared readiness probes must pass too (each has its deadline)
    while res.ok and extra.pending and not tripped:
        reason = abort()
        if reason and not tripped:
            res = dataclasses.replace(res, ok=False, outcome="aborted", detail=reason)
            break
        time.sleep(min(a.interval, 0.25))
    if tripped:
        return _blame(*tripped[0])
    detail = res.detail
    if res.ok and extra.passed:
        detail += "; readiness probes passed: " + ", ".join(extra.passed)
    if not res.ok and steps:
        # name the steps behind each component that is short of registered workers
        short = [c for c in sorted(steps) if f"{c}/generate:" in detail]
        if "frontend" in steps and "not answering" in detail:
            short = ["frontend"]
        if short:
            print(f"blame: {steps[short[0]].split(',')[0]}")
            detail += " [steps: " + "; ".join(f"{c}: {steps[c]}" for c in short) + "]"
    print(f"{probe.label}: {res.outcome} after {res.elapsed:.2f} s: {detail}", flush=True)
    return {"ready": 0, "aborted": 2}.get(res.outcome, 1)


if __name__ == "__main__":
    sys.exit(main())

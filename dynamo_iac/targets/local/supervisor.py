"""The supervisor of one local run: `python -m dynamo_iac.targets.local.supervisor RUN_DIR`.

It is the parent of every process of the graph, so it learns at once when one exits. It starts
the processes of `<run>/plan.json`, waits for graph readiness (every frontend lists the model
and every worker is registered), then keeps watching. The first process that exits, fatal log
line or failed frontend liveness probe stops the whole graph and records which component failed
with the tail of its log. SIGTERM (what `local down` sends) stops the graph in order: workers,
then frontends, then the broker. Everything it knows goes to `<run>/state.json`.

Kept light (no pydantic, no rich): its start-up time is part of every `local up`.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..probes import GraphReadyProbe, ProbeSet
from .launch import LaunchPlan, ProcSpec
from .state import PLAN_FILE, group_members, start_time, write_state

TICK = 0.03                  # readiness/exit polling before ready
WATCH_TICK = 0.2             # after ready (each probe of the plan keeps its own interval)
TAIL_LINES = 40
# colour/cursor escapes (Dynamo's Rust logs colour when they think they may): a report is plain text
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


def tail(path: str, lines: int = TAIL_LINES, max_bytes: int = 64 * 1024) -> str:
    """The last `lines` lines of a log, without terminal escape codes."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - max_bytes, 0))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(ANSI_RE.sub("", data).splitlines()[-lines:])


class Supervisor:
    def __init__(self, run_dir: str):
        self.run_dir = run_dir
        self.plan = LaunchPlan.from_json((Path(run_dir) / PLAN_FILE).read_text())
        self.procs: dict[str, subprocess.Popen] = {}
        # readiness deadlines of declared probes count from here, as the graph's own does
        self.probes = ProbeSet(self.plan.probes)
        self.stop_requested: str | None = None
        t = time.time()
        self.state: dict[str, Any] = {
            "graph": self.plan.graph, "engine": self.plan.engine, "run_dir": self.plan.run_dir,
            "model": self.plan.model, "tokenizer": self.plan.tokenizer, "namespace": self.plan.namespace,
            "urls": self.plan.urls,
            "instances": self.plan.instances, "notes": self.plan.notes, "deadline": self.plan.deadline,
            "supervisor_pid": os.getpid(), "supervisor_started": start_time(os.getpid()),
            "status": "starting", "started_at": t, "ready_at": None, "ready_seconds": None,
            "stopped_at": None, "failure": None, "readiness": "not probed yet",
            "processes": [self._proc_entry(p) for p in self.plan.processes],
        }

    @staticmethod
    def _proc_entry(p: ProcSpec) -> dict[str, Any]:
        return {"name": p.name, "component": p.component, "kind": p.kind, "role": p.role, "replica": p.replica,
                "port": p.port, "log": p.log, "argv": p.argv, "pid": None, "started": None, "returncode": None}

    def entry(self, name: str) -> dict[str, Any]:
        return next(e for e in self.state["processes"] if e["name"] == name)

    def save(self) -> None:
        write_state(self.run_dir, self.state)

    # ------------------------------------------------------------------ start
    def start_all(self) -> None:
        base = {k: v for k, v in os.environ.items()}
        for spec in self.plan.processes:
            env = {k: v for k, v in base.items() if k not in spec.unset}
            env.update(spec.env)
            Path(spec.log).parent.mkdir(parents=True, exist_ok=True)
            with open(spec.log, "ab", buffering=0) as log:
                try:
                    proc = subprocess.Popen(spec.argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.run_dir, start_new_session=True)
                except OSError as e:
                    log.write(f"dynamo-iac: cannot start {spec.argv[0]!r}: {e}\n".encode())
                    self.fail(spec.name, f"could not be started: {e.strerror or e}")
                    return
            self.procs[spec.name] = proc
            e = self.entry(spec.name)
            e["pid"], e["started"] = proc.pid, start_time(proc.pid)
        self.save()

    # ------------------------------------------------------------------ checks
    def exited(self) -> tuple[str, str] | None:
        for name, proc in self.procs.items():
            rc = proc.poll()
            if rc is not None:
                self.entry(name)["returncode"] = rc
                how = f"exited with code {rc}" if rc >= 0 else f"was killed by {signal.Signals(-rc).name}"
                return name, how
        return None

    def fail(self, name: str, reason: str) -> None:
        spec = self.plan.process(name)
        what = {"worker": "worker", "frontend": "frontend", "broker": "event-plane broker"}[spec.kind]
        phase = "while starting" if self.state["status"] == "starting" else "after the graph was ready"
        self.state["failure"] = {
            "process": name, "component": spec.component, "kind": spec.kind, "role": spec.role,
            "reason": reason, "phase": phase, "log": spec.log, "log_tail": tail(spec.log),
            "message": f"{what} {spec.component!r} ({name}) {reason} {phase}",
        }
        self.state["status"] = "failed"
        self.save()

    def unready_component(self, detail: str) -> str:
        """Which process to blame when readiness times out: a worker of a short component, else the frontend."""
        short = re.findall(r"(\w+)/generate: (\d+) of (\d+)", detail)
        for comp, _, _ in short:
            for spec in self.plan.processes:
                if spec.kind == "worker" and (("prefill" if spec.role == "prefill" else "backend") == comp):
                    return spec.name
        return next(p.name for p in self.plan.processes if p.kind == "frontend")

    # ------------------------------------------------------------------ run
    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        self.save()
        self.start_all()
        if self.state["status"] != "failed":
            self.wait_ready()
        if self.state["status"] == "ready":
            self.watch()
        self.stop_all()
        return 1 if self.state["status"] == "failed" else 0

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.stop_requested = signal.Signals(signum).name

    def wait_ready(self) -> None:
        ready_probes = {url: GraphReadyProbe(base_url=url, model=self.plan.model, instances=self.plan.instances,
                                             namespace=self.plan.namespace, timeout=1.0, deadline=self.plan.deadline)
                        for url in self.plan.urls}
        extra = self.probes
        pending = dict(ready_probes)
        start = time.monotonic()
        end = start + self.plan.deadline
        last_detail = graph_detail = ""
        while pending or extra.pending:
            if self.stop_requested:
                self.state["status"] = "stopping"
                self.state["stop_reason"] = f"{self.stop_requested} before the graph was ready"
                return
            hit = self.exited()
            if hit:
                self.fail(*hit)
                return
            bad = extra.poll()
            if bad:
                self.fail(*bad)
                return
            if time.monotonic() >= end:
                if not pending:         # the graph is up; a declared readiness probe is not
                    owner, _, what = extra.pending[0].partition(": ")
                    self.fail(owner, f"was not ready within the {self.plan.deadline:g} s deadline "
                                     f"(readiness probe {what} has not passed)")
                    return
                self.fail(self.unready_component(last_detail),
                          f"was not ready within the {self.plan.deadline:g} s deadline ({last_detail})")
                return
            for url, probe in list(pending.items()):
                a = probe.attempt(min(probe.timeout, max(end - time.monotonic(), 0.01)))
                graph_detail = last_detail = a.detail
                if a.ok:
                    del pending[url]
            if not pending and extra.pending:
                last_detail = f"{graph_detail}; waiting for readiness probe {extra.pending[0]}"
            if last_detail != self.state["readiness"]:
                self.state["readiness"] = last_detail
                self.save()
            if pending or extra.pending:
                time.sleep(TICK)
        last_detail = graph_detail
        if extra.passed:
            last_detail += "; readiness probes passed: " + ", ".join(extra.passed)
        self.state.update(status="ready", ready_at=time.time(),
                          ready_seconds=round(time.monotonic() - start, 3), readiness=last_detail)
        self.save()

    def watch(self) -> None:
        """After readiness: failure probes (fatal log lines, frontend liveness, declared ones) and exits."""
        while not self.stop_requested:
            hit = self.exited() or self.probes.poll(ready=True)
            if hit:
                self.fail(*hit)
                return
            time.sleep(WATCH_TICK)
        self.state["status"] = "stopping"
        self.state["stop_reason"] = self.stop_requested
        self.save()

    def stop_all(self) -> None:
        """Workers first (they deregister), then frontends, then the broker; SIGKILL after the grace."""
        if self.state["status"] not in ("failed",):
            self.state["status"] = "stopping"
            self.save()
        for kind in ("worker", "frontend", "broker"):
            group = [(n, p) for n, p in self.procs.items() if self.plan.process(n).kind == kind]
            for _, p in group:
                if p.poll() is None:
                    try:
                        os.killpg(p.pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            end = time.monotonic() + self.plan.stop_grace
            for n, p in group:
                try:
                    p.wait(max(end - time.monotonic(), 0.01))
                except subprocess.TimeoutExpired:
                    self.entry(n)["killed"] = True
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.wait()
                if self.entry(n)["returncode"] is None:
                    self.entry(n)["returncode"] = p.returncode
                for member in group_members(p.pid):      # children the process left in its group
                    try:
                        os.kill(member, signal.SIGKILL)
                    except OSError:
                        pass
        if self.state["status"] != "failed":
            self.state["status"] = "stopped"
        self.state["stopped_at"] = time.time()
        self.save()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m dynamo_iac.targets.local.supervisor RUN_DIR", file=sys.stderr)
        return 2
    sup = Supervisor(args[0])
    try:
        return sup.run()
    except BaseException as e:      # never leave the graph running behind a crashed supervisor
        sup.state["supervisor_error"] = f"{type(e).__name__}: {e}"
        try:
            sup.stop_all()
        finally:
            raise


if __name__ == "__main__":
    sys.exit(main())

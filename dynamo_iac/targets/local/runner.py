"""`up`, `status` and `down` of a local run — the Python API behind `dynamo-iac local`.

`up` writes the launch plan into the run directory, starts the supervisor in its own session
(so the graph outlives the shell that started it) and waits until the state file says ready or
failed. `status` and `down` only need the run directory, so they work from any shell.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ConfigError, DynamoIacError, Problem
from ..probe_file import DEFAULT as NO_EXTRA_PROBES, ProbeFile
from ..probes import GraphReadyProbe
from .launch import STOP_GRACE, LaunchPlan, build_plan
from .runtime import find_python
from .state import (PLAN_FILE, STATE_FILE, TERMINAL, alive, kill_recorded, make_dir, read_state, signal_group,
                    wait_gone)

DEFAULT_RUN_ROOT = Path(".run") / "local"


class LocalRunError(DynamoIacError):
    """A local run failed: a component exited, logged a fatal line or missed its deadline."""

    def __init__(self, problems: Any, state: dict[str, Any] | None = None):
        super().__init__(problems)
        self.state = state or {}


def default_run_dir(graph_name: str, root: str | Path | None = None) -> Path:
    return Path(root or os.environ.get("DYNAMO_IAC_RUN_ROOT") or DEFAULT_RUN_ROOT) / graph_name


@dataclass
class Run:
    """A handle on a local run (what `up` returns)."""

    run_dir: Path

    @property
    def state(self) -> dict[str, Any]:
        return read_state(self.run_dir) or {}

    @property
    def url(self) -> str:
        return self.state["urls"][0]

    @property
    def model(self) -> str:
        return self.state["model"]

    def status(self) -> dict[str, Any]:
        return status(self.run_dir)

    def down(self) -> dict[str, Any]:
        return down(self.run_dir)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.down()


def _supervisor_alive(state: dict[str, Any]) -> bool:
    return alive(state.get("supervisor_pid"), state.get("supervisor_started"))


def failure_problem(state: dict[str, Any]) -> Problem:
    f = state.get("failure") or {}
    msg = f.get("message") or f"local run ended with status {state.get('status')!r}"
    tail = f.get("log_tail", "")
    if tail:
        msg += f"\n--- last lines of {f.get('log')} ---\n{tail}"
    fix = f"read {f['log']}" if f.get("log") else "read the logs in the run directory"
    if f.get("kind") == "worker" and state.get("engine") == "real":
        fix += "; to try the graph without its engine, use --engine mocker"
    return Problem(str(f.get("component") or state.get("graph", "graph")), msg, fix)


def up(graph: Any, *, run_dir: str | Path | None = None, engine: str = "mocker", port: int | None = None,
       timeout: float | None = None, speedup_ratio: float = 1.0, mocker_args: tuple[str, ...] = (),
       dynamo_python: str | None = None, stop_grace: float = STOP_GRACE,
       probes: ProbeFile = NO_EXTRA_PROBES) -> Run:
    """Start the graph as local processes and return once it is ready; raises LocalRunError (with the
    failing component and its log tail) after stopping everything when it is not. A failure takes at
    most the readiness deadline plus `stop_grace` (SIGTERM → SIGKILL) per process group tier."""
    run = make_dir(Path(run_dir) if run_dir else default_run_dir(graph.name), "run_dir")
    old = read_state(run)
    if old and old.get("status") not in TERMINAL and _supervisor_alive(old):
        raise ConfigError(f"graph {old.get('graph')!r} is already running from {run} ({old.get('status')})",
                          "run_dir", f"stop it first: dynamo-iac local down {run}, or pick another --run-dir")
    if old and old.get("status") not in TERMINAL:
        kill_recorded(old, 5.0)         # a lost run (its supervisor was killed): free what it held
    py = dynamo_python or find_python("dynamo")
    # plan (ports, probes, GPUs) first: a bad input leaves the previous run's state and logs alone
    plan = build_plan(graph, run_dir=run, dynamo_python=py, engine=engine, port=port, deadline=timeout,
                      speedup_ratio=speedup_ratio, mocker_args=mocker_args, stop_grace=stop_grace, probes=probes)
    for sub in ("kv", "logs", "home"):
        shutil.rmtree(run / sub, ignore_errors=True)
    for f in (STATE_FILE, PLAN_FILE):
        (run / f).unlink(missing_ok=True)
    (run / "logs").mkdir(parents=True, exist_ok=True)
    (run / PLAN_FILE).write_text(plan.to_json())
    env = {k: v for k, v in os.environ.items()}
    # the supervisor must import this very package, wherever it was imported from
    pkg_root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(run / "logs" / "supervisor.log", "ab") as log:
        sup = subprocess.Popen([sys.executable, "-m", "dynamo_iac.targets.local.supervisor", str(run.resolve())],
                               env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, cwd=str(run))
    try:
        state = _wait_settled(run, plan, sup)
    except KeyboardInterrupt:
        down(run)
        raise
    if state.get("status") != "ready":
        raise LocalRunError([failure_problem(state)], state)
    return Run(run)


def _wait_settled(run: Path, plan: LaunchPlan, sup: subprocess.Popen) -> dict[str, Any]:
    """Poll the state file until ready or terminal; the supervisor enforces the deadline, this is
    the backstop should the supervisor itself hang or die."""
    end = time.monotonic() + plan.deadline + plan.stop_grace * 3 + 10
    while True:
        state = read_state(run) or {}
        st = state.get("status")
        if st == "ready":
            return state
        if st in TERMINAL or (st == "failed"):
            sup.wait(plan.stop_grace * 3 + 10)      # it is stopping the graph: wait for that to finish
            return read_state(run) or state
        rc = sup.poll()
        if rc is not None:
            state = read_state(run) or {}
            if state.get("status") == "ready":
                return state
            kill_recorded(state, plan.stop_grace)
            tail = (run / "logs" / "supervisor.log").read_text(errors="replace")[-4000:]
            state.setdefault("failure", None)
            if not state.get("failure"):
                state["failure"] = {"component": "supervisor", "kind": "supervisor",
                                    "message": f"the local supervisor exited with code {rc}",
                                    "log": str(run / "logs" / "supervisor.log"), "log_tail": tail}
                state["status"] = "failed"
            return state
        if time.monotonic() > end:
            sup.kill()
            sup.wait()
            kill_recorded(state, plan.stop_grace)
            state["status"] = "failed"
            state["failure"] = {"component": "supervisor", "kind": "supervisor",
                                "message": "the local supervisor did not settle within its deadline",
                                "log": str(run / "logs" / "supervisor.log"), "log_tail": ""}
            return state
        time.sleep(0.02)


def status(run_dir: str | Path, probe: bool = True) -> dict[str, Any]:
    """The recorded state, with liveness of every process checked now and (when ready) a fresh
    readiness probe of each frontend."""
    state = read_state(run_dir)
    if state is None:
        raise ConfigError(f"no local run in {run_dir} (no {STATE_FILE})", "run_dir",
                          "start one with `dynamo-iac local up GRAPH` or pass its --run-dir")
    sup_alive = _supervisor_alive(state)
    for p in state.get("processes", []):
        p["alive"] = alive(p.get("pid"), p.get("started"))
    state["supervisor_alive"] = sup_alive
    if state.get("status") not in TERMINAL and not sup_alive:
        state["status"] = "lost"     # the supervisor died without recording an end: `down` cleans up
    if probe and state.get("status") == "ready":
        checks = []
        for url in state.get("urls", []):
            a = GraphReadyProbe(base_url=url, model=state["model"], instances=state.get("instances", {}),
                                namespace=state.get("namespace"), timeout=2.0).attempt()
            checks.append({"url": url, "ok": a.ok, "detail": a.detail})
        state["probe"] = checks
    return state


def down(run_dir: str | Path, timeout: float | None = None) -> dict[str, Any]:
    """Stop a local run (workers, then frontends, then the broker) and make sure nothing is left."""
    state = read_state(run_dir)
    if state is None:
        raise ConfigError(f"no local run in {run_dir} (no {STATE_FILE})", "run_dir",
                          "nothing to stop; pass the --run-dir the graph was started with")
    plan_grace = 10.0
    try:
        plan_grace = LaunchPlan.from_json((Path(run_dir) / PLAN_FILE).read_text()).stop_grace
    except (OSError, ValueError, TypeError):
        pass
    wait = timeout if timeout is not None else plan_grace * 3 + 5
    pid, started = state.get("supervisor_pid"), state.get("supervisor_started")
    if _supervisor_alive(state):
        signal_group(pid, started, signal.SIGTERM)
        if not wait_gone(lambda: alive(pid, started), wait):
            signal_group(pid, started, signal.SIGKILL)
    # whatever the supervisor could not stop (or a supervisor that was killed) is stopped here
    leftovers = kill_recorded(read_state(run_dir) or state, plan_grace)
    final = read_state(run_dir) or state
    if final.get("status") not in TERMINAL:
        from .state import write_state
        final["status"] = "stopped"
        final["stopped_at"] = time.time()
        write_state(run_dir, final)
    final["killed_by_down"] = leftovers
    return final

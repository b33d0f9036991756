"""DynamoGraph → the processes of a local run (a `LaunchPlan`), bound to loopback only.

One process per frontend replica and per worker replica, plus a ZMQ XSUB/XPUB broker for the
event plane. Everything the processes need to find each other is per run: file-based discovery
in `<run>/kv`, the model-card cache under `<run>/home`, ports picked for this run.

Loopback only (Dynamo binds some listeners beyond loopback unless told otherwise):
  --http-host 127.0.0.1                 frontend HTTP (default 0.0.0.0)
  DYN_TCP_RPC_HOST=127.0.0.1            worker request-plane server (default: primary address)
  DYN_TCP_RESPONSE_STREAM_HOST=...      frontend response stream (default: primary address)
  DYN_EVENT_PLANE_HOST=...              the advertised event-plane address
  DYN_ZMQ_BROKER_URL=<local broker>     publishers connect to the broker instead of binding
                                        tcp://0.0.0.0:<random> (hard-coded upstream)
  DYN_SYSTEM_HOST=127.0.0.1             the system status server, should DYN_SYSTEM_PORT be set

--engine mocker replaces each worker's engine with `python -m dynamo.mocker`, keeping its role
(--disaggregation-mode), replica count and the frontend's router mode. --engine real runs the
graph's own worker command lines with the Dynamo venv first on PATH.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ConfigError, GraphError, Problem
from ..probe_file import DEFAULT as NO_EXTRA_PROBES, ProbeFile
from ..probes import ProbeSet, expected_instances
from .modeldir import write_model_dir

LOOPBACK = "127.0.0.1"
ENGINES = ("mocker", "real")
DEFAULT_DEADLINE = {"mocker": 60.0, "real": 1800.0}   # real engines load weights, compile graphs
STOP_GRACE = 10.0                                      # SIGTERM → SIGKILL, per process group
# A frontend that stops answering /live after the graph was ready fails the graph.
LIVENESS = {"type": "http", "name": "liveness", "path": "/live", "interval": 1.0, "timeout": 2.0, "failure_threshold": 5}
_PYTHON_RE = re.compile(r"^python(\d+(\.\d+)?)?$")
_SHELL_OPS = {"&&", "||", ";", "|", "&"}
_DROP_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__")


@dataclass
class ProcSpec:
    name: str                   # unique: "broker", "Frontend", "Worker-0", ...
    component: str              # the graph component it belongs to ("broker" for the broker)
    kind: str                   # broker | frontend | worker
    argv: list[str]
    env: dict[str, str]         # set on top of the caller's environment
    log: str
    role: str | None = None     # agg | prefill | decode (workers)
    replica: int = 0
    port: int | None = None     # the frontend's HTTP port
    unset: list[str] = field(default_factory=lambda: list(_DROP_ENV))


@dataclass
class LaunchPlan:
    graph: str
    engine: str
    run_dir: str
    model: str                  # served model name
    tokenizer: str              # what a client (aiperf) loads to count tokens: a directory or a hub id
    namespace: str              # Dynamo namespace (DYN_NAMESPACE)
    urls: list[str]             # one per frontend replica
    instances: dict[str, int]   # {"backend": n, "prefill": m}: what readiness waits for
    deadline: float
    processes: list[ProcSpec]
    notes: list[str] = field(default_factory=list)
    stop_grace: float = STOP_GRACE
    # per-process readiness/failure probes (probes.ProbeSet entries): the default failure log
    # patterns, each frontend's liveness, and what the user's --probes file declares
    probes: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "LaunchPlan":
        d = json.loads(text)
        d["processes"] = [ProcSpec(**p) for p in d["processes"]]
        return cls(**d)

    def process(self, name: str) -> ProcSpec:
        return next(p for p in self.processes if p.name == name)


def free_port(host: str = LOOPBACK, taken: set[int] | None = None) -> int:
    """A port nothing listens on now. The socket is closed before the process binds it, so the
    kernel may hand the same port out again: ports in `taken` are skipped, and the chosen one is
    added to it (one run's listeners never collide with each other)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if taken is None:
            return port
        if port not in taken:
            taken.add(port)
            return port


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    # a listener on 0.0.0.0 also takes the port from us
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def shell_tokens(command: list[str] | None, args: list[str] | None) -> list[str]:
    """argv tokens of a k8s command+args, splitting `sh -c "..."` strings (line continuations too)."""
    out: list[str] = []
    for part in (command or []) + (args or []):
        if any(ch in part for ch in " \n\t"):
            text = part.replace("\\\n", " ")
            try:
                out += shlex.split(text)
            except ValueError:
                out += text.split()
        else:
            out.append(part)
    return out


def module_invocation(tokens: list[str]) -> tuple[str, list[str]] | None:
    """("dynamo.frontend", [args]) when the tokens run `python -m MODULE args` (maybe via sh -c, exec)."""
    for i, tok in enumerate(tokens):
        if _PYTHON_RE.match(os.path.basename(tok)) and i + 2 < len(tokens) and tokens[i + 1] == "-m":
            rest = tokens[i + 3:]
            for j, t in enumerate(rest):
                if t in _SHELL_OPS:
                    if rest[j + 1:]:           # something else runs too: not a plain invocation
                        return None
                    rest = rest[:j]
                    break
            return tokens[i + 2], rest
    return None


def _gpu_pool() -> list[str] | None:
    """GPU ids this machine offers (CUDA_VISIBLE_DEVICES or nvidia-smi), None when unknown."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def _names(graph: Any) -> list[tuple[Any, str]]:
    return list(zip(graph.workers, graph.worker_names()))


def build_plan(graph: Any, *, run_dir: str | Path, dynamo_python: str, engine: str = "mocker",
               port: int | None = None, deadline: float | None = None, speedup_ratio: float = 1.0,
               mocker_args: tuple[str, ...] | list[str] = (), model_dir: str | Path | None = None,
               stop_grace: float = STOP_GRACE, probes: ProbeFile = NO_EXTRA_PROBES) -> LaunchPlan:
    """The processes of one local run. Writes nothing except the generated model directory."""
    problems: list[Problem] = []
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}", "--engine", f"use one of {', '.join(ENGINES)}")
    fe = graph.frontend
    if fe is None:
        problems.append(Problem("frontend", "the local target needs a frontend to serve and probe the graph",
                                "add frontend=Frontend() to the graph"))
    elif fe.replicas < 1:
        problems.append(Problem("frontend.replicas", "is 0; nothing would serve the graph", "set replicas >= 1"))
    if graph.model is None:
        problems.append(Problem("model", "the local target needs the model (its served name is what "
                                "readiness waits for on /v1/models)", "set model=Model('org/name')"))
    if not any(w.replicas > 0 for w in graph.workers):
        problems.append(Problem("workers", "no worker with replicas > 0; nothing would register",
                                "add a Worker with replicas >= 1"))
    if deadline is not None and not deadline > 0:
        problems.append(Problem("--timeout", f"must be > 0 seconds, got {deadline}", "e.g. --timeout 60"))
    if not speedup_ratio > 0:
        problems.append(Problem("--speedup-ratio", f"must be > 0, got {speedup_ratio} (the mocker treats 0 like 1)",
                                "e.g. --speedup-ratio 10"))
    if port is not None and not 0 <= port < 65536:
        problems.append(Problem("--port", f"{port} is not a TCP port", "use 1-65535, or 0 for a free port"))
    if not (isinstance(stop_grace, (int, float)) and 0 <= stop_grace < float("inf")):
        problems.append(Problem("--stop-grace", f"must be >= 0 seconds, got {stop_grace}",
                                "e.g. --stop-grace 2 (SIGKILL after 2 s)"))
    if problems:
        raise ConfigError(problems)

    run = Path(run_dir).resolve()
    logs, kv, home = run / "logs", run / "kv", run / "home"
    venv_bin = str(Path(dynamo_python).parent)
    model_name = graph.model.name
    namespace = graph.name
    notes: list[str] = []
    if graph.planner is not None:
        notes.append(f"planner {graph.planner.name!r} is not started locally (it scales Kubernetes deployments)")
    for rc in graph.extra_components:
        notes.append(f"component {rc.name!r} ({rc.type}) is not started locally")

    ports: set[int] = set()                      # every port this run picks, kept apart
    xsub, xpub = free_port(taken=ports), free_port(taken=ports)
    common = {
        "DYN_DISCOVERY_BACKEND": "file",
        "DYN_FILE_KV": str(kv),
        "DYN_NAMESPACE": namespace,
        "DYN_REQUEST_PLANE": "tcp",
        "DYN_EVENT_PLANE": "zmq",
        "DYN_TCP_RPC_HOST": LOOPBACK,
        "DYN_TCP_RESPONSE_STREAM_HOST": LOOPBACK,
        "DYN_EVENT_PLANE_HOST": LOOPBACK,
        "DYN_SYSTEM_HOST": LOOPBACK,
        "DYN_ZMQ_BROKER_URL": f"xsub=tcp://{LOOPBACK}:{xsub} , xpub=tcp://{LOOPBACK}:{xpub}",
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", os.defpath),
        "PYTHONUNBUFFERED": "1",
    }
    if engine == "mocker":
        # the model card cache goes to $HOME/.cache/dynamo; a mocker run needs nothing else from HOME
        common.update(HOME=str(home), HF_HUB_OFFLINE="1")
    procs: list[ProcSpec] = []
    broker_py = str(Path(__file__).with_name("zmq_broker.py"))
    procs.append(ProcSpec("broker", "broker", "broker", [dynamo_python, broker_py, LOOPBACK, str(xsub), str(xpub)],
                          {"PYTHONUNBUFFERED": "1"}, str(logs / "broker.log")))

    # ---- frontends
    from ...graph.commands import frontend_command, worker_command

    urls: list[str] = []
    fe_name = fe.name or "Frontend"
    base_port = fe.port if port is None else port
    for i in range(fe.replicas):
        p = free_port(taken=ports) if base_port == 0 else base_port + i
        if base_port and p > 65535:
            raise ConfigError(f"frontend replica {i} would need port {p}", "frontend.port",
                              "use a lower port or --port 0")
        if base_port and port_in_use(p):
            raise ConfigError(f"port {p} on {LOOPBACK} is already in use", "--port" if port else "frontend.port",
                              "stop what listens there, pass --port N, or --port 0 for a free port")
        command, args = frontend_command(fe, python=dynamo_python)
        inv = module_invocation(shell_tokens(command, args))
        if inv is None or inv[0] != "dynamo.frontend":
            if fe.command is not None or fe.args is not None:
                notes.append(f"frontend {fe_name!r}: its command is not a plain `python -m dynamo.frontend ...`; "
                             "started from its typed fields instead")
            inv = ("dynamo.frontend", [])
        argv = [dynamo_python, "-m", "dynamo.frontend", *inv[1],
                # last occurrence wins in argparse: these override whatever the graph said
                "--http-host", LOOPBACK, "--http-port", str(p), "--discovery-backend", "file",
                "--router-mode", fe.router_mode]
        pname = fe_name if fe.replicas == 1 else f"{fe_name}-{i}"
        env = {**graph.env, **fe.env, **common}
        procs.append(ProcSpec(pname, fe_name, "frontend", argv, env, str(logs / f"{pname}.log"), replica=i, port=p))
        urls.append(f"http://{LOOPBACK}:{p}")

    # ---- workers
    mocker_model: str | None = None
    if engine == "mocker":
        local = Path(graph.model.id).expanduser()
        if (local / "config.json").is_file():
            mocker_model = str(local.resolve())
        else:
            mocker_model = str(write_model_dir(model_dir or run / "model", name=model_name,
                                               field="model_dir" if model_dir else "run_dir"))
            notes.append(f"mocker workers use a generated tiny model directory for {graph.model.id!r} "
                         f"(served as {model_name!r})")
    gpus = _gpu_pool() if engine == "real" else None
    next_gpu = 0
    for w, wname in _names(graph):
        if engine == "mocker" and (w.command is not None or w.args is not None or not w.generate_command):
            notes.append(f"worker {wname!r}: its own command line is replaced by dynamo.mocker")
        elif engine == "mocker" and w.engine_args:
            notes.append(f"worker {wname!r}: engine_args {' '.join(w.engine_args)!r} are for "
                         f"{graph.backend}, not passed to the mocker")
        for r in range(w.replicas):
            pname = f"{wname}-{r}"
            env = {**graph.env, **w.env, **common}
            if engine == "mocker":
                argv = [dynamo_python, "-m", "dynamo.mocker", "--model-path", mocker_model, "--model-name", model_name,
                        "--disaggregation-mode", w.role, "--discovery-backend", "file",
                        "--speedup-ratio", f"{speedup_ratio:g}", *mocker_args]
            else:
                command, args = worker_command(graph, w, python="python3")
                argv = list(command) + list(args)
                if not argv:
                    raise GraphError(f"worker {wname!r} has no command line", f"workers[{wname}].command",
                                     "give it command/args, or let the graph generate them (generate_command=True)")
                if _PYTHON_RE.match(os.path.basename(argv[0])):
                    argv[0] = dynamo_python
                if gpus is not None:
                    n = w.gpu_count
                    if next_gpu + n > len(gpus):
                        need = sum(x.gpu_count * x.replicas for x in graph.workers)
                        raise ConfigError(f"the graph needs {need} GPUs, this machine offers {len(gpus)}",
                                          f"workers[{wname}].gpus",
                                          "lower replicas or GPUs per worker, or use --engine mocker")
                    env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[next_gpu:next_gpu + n])
                    next_gpu += n
            procs.append(ProcSpec(pname, wname, "worker", argv, env, str(logs / f"{pname}.log"), role=w.role,
                                  replica=r))
    if engine == "real" and gpus is None:
        notes.append("no GPUs found (no nvidia-smi, no CUDA_VISIBLE_DEVICES): workers get no GPU assignment")

    instances = expected_instances([(w.role, w.replicas) for w in graph.workers if w.replicas > 0])
    ready_deadline = float(deadline or DEFAULT_DEADLINE[engine])
    probes.check([fe_name, *graph.worker_names()])
    entries: list[dict[str, Any]] = []
    for p in procs:
        entries += probes.entries(p.name, p.component, p.kind, host=LOOPBACK, port=p.port, log=p.log,
                                  deadline=ready_deadline)
        if p.kind == "frontend":
            entries.append({"owner": p.name, "when": "fail", "spec": dict(LIVENESS), "host": LOOPBACK,
                            "port": p.port, "log": p.log, "deadline": ready_deadline, "where": "frontend liveness"})
    ProbeSet(entries)        # binds every probe now: a bad one is an error here, not in the supervisor
    return LaunchPlan(graph=graph.name, engine=engine, run_dir=str(run), model=model_name,
                      tokenizer=mocker_model or graph.model.id, namespace=namespace,
                      urls=urls, instances=instances, deadline=ready_deadline,
                      processes=procs, notes=notes, stop_grace=float(stop_grace), probes=entries)

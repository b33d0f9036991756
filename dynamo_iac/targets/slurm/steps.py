"""The srun steps of a graph on a Slurm cluster: what runs where, with which command and env.

One step per frontend and per worker replica (pinned by the allocation map), plus the
infrastructure the discovery mode needs (ZMQ event broker, etcd, NATS) and an optional aiperf
step. Commands are shell strings evaluated by step.sh inside the task, so they may use the
addresses step.sh exports ($DYN_ADDR, $DYN_LEADER_ADDR) and the batch script's $DYN_HEAD_ADDR.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from ...errors import ConfigError, PlanError, Problem
from ...graph.commands import frontend_command, worker_command
from ...graph.model import DynamoGraph, Worker
from ..local.bench import aiperf_env
from ..probes import component_for_role
from .cluster import SlurmCluster, mem_mb
from .options import RunOptions
from .placement import Placement, ReplicaPlacement

TIER_INFRA, TIER_FRONTEND, TIER_WORKER, TIER_BENCH = 0, 1, 2, 3
SGLANG_DIST_PORT = 29500          # what the Dynamo operator injects for SGLang multinode
RAY_PORT = 6379


@dataclass
class Step:
    name: str                         # srun --job-name, log file name
    title: str                        # one line for the script comment
    tier: int
    nodes: tuple[str, ...]            # logical node names (allocation-map names)
    gpus_per_node: int
    planned: tuple[tuple[str, tuple[int, ...]], ...] = ()
    command: str = ""                 # shell text run by step.sh (bash -c)
    cpus: int = 1
    mem: str | None = None
    component: str | None = None
    role: str | None = None
    ready: tuple[str, ...] = ()       # probe args for dyn_wait after launch (tcp …), empty = none
    ready_what: str = ""
    ready_deadline: str = ""          # shell variable name holding the deadline
    env_prefix: dict[str, str] = field(default_factory=dict)   # VAR=value before srun (batch-side)
    container: str = "graph"          # graph | bench | none
    port: int | None = None           # the step's own port (what its tcp/http probes default to)


def dynamo_python(cluster: SlurmCluster) -> str:
    """The interpreter inside the steps: the image's python3, or the cluster file's `python`.

    Never DYNAMO_IAC_DYNAMO_PYTHON: that names an interpreter on THIS machine (the local
    target's); the nodes' interpreter is a fact of the cluster and belongs in its file."""
    if cluster.container is not None:
        return "python3"
    return cluster.python


def _join(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def _env_cmd(env: dict[str, str], argv_text: str) -> str:
    if not env:
        return f"exec {argv_text}"
    pairs = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
    return f"exec env {pairs} {argv_text}"


def _cpu_mem(cluster: SlurmCluster) -> tuple[int, str | None]:
    r = cluster.step_resources
    return r.cpus_cpu_step, r.mem_cpu_step


def _gpu_mem(cluster: SlurmCluster, gpus: int) -> str | None:
    m = cluster.step_resources.mem_per_gpu
    return None if m is None else f"{mem_mb(m) * gpus}M"


def infra_steps(cluster: SlurmCluster, head: str) -> list[Step]:
    py = dynamo_python(cluster)
    cpus, mem = _cpu_mem(cluster)
    out = []
    if cluster.discovery == "etcd":
        p = cluster.ports.etcd
        cmd = (f"exec {shlex.quote(cluster.etcd_command)} --name dynamo --data-dir \"$DYN_RUN_DIR/etcd\" "
               f"--listen-client-urls \"http://$DYN_ADDR:{p}\" --advertise-client-urls \"http://$DYN_ADDR:{p}\" "
               f"--listen-peer-urls \"http://$DYN_ADDR:{p + 1}\" --initial-advertise-peer-urls \"http://$DYN_ADDR:{p + 1}\" "
               f"--initial-cluster \"dynamo=http://$DYN_ADDR:{p + 1}\"")
        out.append(Step("etcd", f"etcd (discovery) on {head}", TIER_INFRA, (head,), 0, command=cmd, cpus=cpus, mem=mem,
                        ready=("tcp", "$DYN_HEAD_ADDR", str(p)), ready_what=f"etcd port {p}",
                        ready_deadline="DYN_DEADLINE_INFRA"))
    if cluster.nats:
        p = cluster.ports.nats
        cmd = f"exec {shlex.quote(cluster.nats_command)} -js -a \"$DYN_ADDR\" -p {p} -sd \"$DYN_RUN_DIR/nats\""
        out.append(Step("nats", f"NATS (event plane) on {head}", TIER_INFRA, (head,), 0, command=cmd, cpus=cpus,
                        mem=mem, ready=("tcp", "$DYN_HEAD_ADDR", str(p)), ready_what=f"NATS port {p}",
                        ready_deadline="DYN_DEADLINE_INFRA"))
    elif cluster.event_broker:
        y = cluster.ports.broker_xpub
        cmd = f"exec {shlex.quote(py)} \"$DYN_BIN/broker.py\" \"$DYN_ADDR\" \"$DYN_BROKER_XSUB\" \"$DYN_BROKER_XPUB\""
        out.append(Step("broker", f"ZMQ event broker on {head}", TIER_INFRA, (head,), 0, command=cmd, cpus=cpus,
                        mem=mem, ready=("tcp", "$DYN_HEAD_ADDR", "$DYN_BROKER_XPUB"),
                        ready_what=f"broker port {y}" if y else "broker port",
                        ready_deadline="DYN_DEADLINE_INFRA"))
    return out


def frontend_step(graph: DynamoGraph, cluster: SlurmCluster, head: str) -> Step:
    fe = graph.frontend
    assert fe is not None
    py = dynamo_python(cluster)
    cmd, args = frontend_command(fe, python=py)
    env = {**graph.env, **fe.env}
    cpus, mem = _cpu_mem(cluster)
    name = f"{fe.name}-0"
    return Step(name, f"{fe.name} (HTTP :{fe.port}) on {head}", TIER_FRONTEND, (head,), 0,
                command=_env_cmd(env, _join(cmd + args)), cpus=cpus, mem=mem, component=fe.name, role="frontend",
                ready=("tcp", "$DYN_HEAD_ADDR", str(fe.port)), ready_what=f"frontend HTTP port {fe.port}",
                ready_deadline="DYN_DEADLINE_FRONTEND", port=fe.port)


def _mocker_argv(graph: DynamoGraph, w: Worker, options: RunOptions, py: str) -> list[str]:
    assert graph.model is not None
    argv = [py, "-m", "dynamo.mocker", "--model-path", options.model_path or graph.model.id,
            "--model-name", graph.model.name, "--speedup-ratio", f"{options.speedup_ratio:g}"]
    if w.role != "agg":
        argv += ["--disaggregation-mode", w.role]
    return argv


def _multinode(graph: DynamoGraph, w: Worker, rp: ReplicaPlacement, argv: list[str], mocker: bool) -> str:
    """One srun task per node; the engine's own multi-node bootstrap, branched on SLURM_NODEID."""
    n = len(rp.nodes)
    if mocker:
        # the mocker simulates the whole replica in one process and has no multi-node mode: node
        # rank 0 runs it (one registered instance per replica, as rank 0 of a real engine is), the
        # other ranks hold their GPUs until the step is stopped
        return f"if [ \"$SLURM_NODEID\" = 0 ]; then exec {_join(argv)}; else exec sleep infinity; fi"
    if graph.backend == "sglang":
        return (_join(argv) + f" --dist-init-addr \"$DYN_LEADER_ADDR:{SGLANG_DIST_PORT}\" --nnodes {n} "
                "--node-rank \"$SLURM_NODEID\"")
    if graph.backend == "vllm":
        # what the Dynamo operator does for vLLM TP×PP beyond one node: a Ray cluster per replica
        return ("if [ \"$SLURM_NODEID\" = 0 ]; then "
                f"ray start --head --port={RAY_PORT} --node-ip-address=\"$DYN_ADDR\" && "
                f"{_join(argv)} --distributed-executor-backend ray; "
                f"else exec ray start --address=\"$DYN_LEADER_ADDR:{RAY_PORT}\" --node-ip-address=\"$DYN_ADDR\" --block; fi")
    raise PlanError(Problem(f"workers[{graph.worker_names().index(rp.component)}].nodes",
                            f"{rp.label} spans {n} nodes; the Slurm target has no multi-node launch for "
                            f"{graph.backend} yet (TRT-LLM needs MPI across the step's tasks)",
                            "keep each replica within one node, or use the Kubernetes target"))


def worker_steps(graph: DynamoGraph, cluster: SlurmCluster, placement: Placement, options: RunOptions) -> list[Step]:
    py = dynamo_python(cluster)
    out = []
    for rp in placement.replicas:
        w = graph.worker(rp.component)
        explicit = w.command is not None or w.args is not None or not w.generate_command
        mocker = options.engine == "mocker" and not explicit
        if mocker:
            argv = _mocker_argv(graph, w, options, py)
        else:
            cmd, args = worker_command(graph, w, python=py)
            argv = cmd + args
            if not argv:
                raise ConfigError(f"{rp.component} has no command", f"workers[{graph.worker_names().index(rp.component)}]",
                                  "give the worker a command, or let it generate one")
        env = {**graph.env, **w.env}
        gpn = rp.gpus_per_node
        step_env_prefix = {}
        if len(rp.nodes) > 1 and not explicit:
            # one task per node, branching on SLURM_NODEID; the leader's host resolved by step.sh
            exports = " ".join(f"export {k}={shlex.quote(v)};" for k, v in sorted(env.items()))
            command = f"{exports} {_multinode(graph, w, rp, argv, mocker)}".strip()
            step_env_prefix["DYN_LEADER_HOST"] = f"${{DYN_NODE[{rp.nodes[0]}]}}"
        else:
            command = _env_cmd(env, _join(argv))
        gpus_text = "; ".join(f"{n} GPU {','.join(map(str, g))}" for n, g in rp.gpus)
        out.append(Step(rp.step, f"{rp.label} ({w.role}, {w.gpu_count} GPU) on {gpus_text}", TIER_WORKER,
                        rp.nodes, gpn, planned=rp.gpus, command=command,
                        cpus=cluster.step_resources.cpus_per_gpu * max(gpn, 1), mem=_gpu_mem(cluster, gpn),
                        component=rp.component, role=w.role, env_prefix=step_env_prefix))
    return out


def benchmark_step(graph: DynamoGraph, cluster: SlurmCluster, head: str, options: RunOptions) -> Step | None:
    b = options.benchmark
    if b is None:
        return None
    assert graph.model is not None and graph.frontend is not None
    tokenizer = b.tokenizer or options.model_path or graph.model.id
    argv = [*b.command, "profile", "--model", graph.model.name, "--endpoint-type", "chat",
            "--concurrency", str(b.concurrency), "--request-count", str(b.request_count),
            "--synthetic-input-tokens-mean", str(b.isl), "--synthetic-input-tokens-stddev", "0",
            "--output-tokens-mean", str(b.osl), "--tokenizer", tokenizer, "--use-server-token-count",
            "--ui", "none"]
    if b.streaming:
        argv.append("--streaming")
    argv += b.extra_args
    cmd = (_join(argv) + f" --url \"http://$DYN_HEAD_ADDR:{graph.frontend.port}\""
           " --artifact-dir \"$DYN_RUN_DIR/aiperf\"")
    # aiperf 0.13 cannot load a local tokenizer with HF_HUB_OFFLINE=1 (shared/notes/dynamo-local.md §4);
    # its dataset memory maps go to the run dir, not the node's /tmp
    env = " ".join(f"{k}=\"{v}\"" for k, v in sorted(aiperf_env("$DYN_RUN_DIR/aiperf").items()))
    cpus, mem = _cpu_mem(cluster)
    return Step("benchmark", f"aiperf on {head}", TIER_BENCH, (head,), 0,
                command=f"unset HF_HUB_OFFLINE; export {env}; exec {cmd}", cpus=cpus, mem=mem, role="benchmark",
                container="bench" if b.image else "graph")


def expected_components(placement: Placement) -> dict[str, list[str]]:
    """{Dynamo component: [step names]} the graph-ready probe waits for (backend / prefill)."""
    out: dict[str, list[str]] = {}
    for rp in placement.replicas:
        out.setdefault(component_for_role(rp.role), []).append(rp.step)
    return dict(sorted(out.items()))

"""A graph + a SlurmCluster → ONE self-contained sbatch script.

Layout of the script: a header with the allocation map and the #SBATCH lines from the plan;
settings; node names → hosts; the supervisor functions and the helper files it writes into the
run directory (step wrapper, broker, probe command + the shared probes); then the steps in
dependency order — infrastructure, frontend, worker replicas (in GPU order, each waiting until
Slurm has bound its GPUs so the next one gets the next indices), graph readiness, the optional
benchmark — and finally serving until cancelled. Byte-identical output for equal input.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ...errors import ConfigError
from ...graph.model import DynamoGraph
from ..probe_file import DEFAULT as NO_EXTRA_PROBES, ProbeFile
from ..probes import ProbeSet
from . import jobprobe as _jobprobe
from .cluster import SlurmCluster
from .options import RunOptions
from .placement import AllocationMap, Placement, place
from .runtime import BROKER_PY, FUNCTIONS_SH, STEP_SH
from .steps import (TIER_BENCH, TIER_INFRA, TIER_WORKER, Step, benchmark_step, expected_components,
                    frontend_step, infra_steps, worker_steps)

EOF_MARK = "DYNAMO_IAC_EOF"
# Shared library files copied into the job so the probes run without this package installed.
LIBRARY = (("dynamo_iac/__init__.py", None), ("dynamo_iac/errors.py", ("dynamo_iac", "errors.py")),
           ("dynamo_iac/targets/__init__.py", None), ("dynamo_iac/targets/probes.py", ("dynamo_iac.targets", "probes.py")))
EMBED_RE = re.compile(r"(cat >\"\$DYN_BIN/dynamo_iac/[^\"]+\" <<'" + EOF_MARK + r"'\n)(.*?)(\n" + EOF_MARK + r"\n)", re.S)


@dataclass
class SlurmJob:
    graph: DynamoGraph
    cluster: SlurmCluster
    options: RunOptions
    placement: Placement
    steps: list[Step]
    script: str
    warnings: list[str] = field(default_factory=list)

    @property
    def job_name(self) -> str:
        return self.options.job_name or self.graph.name

    def write(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.script)
        p.chmod(0o755)
        return p


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("dynamo-iac")
    except Exception:   # not installed (running from a checkout)
        return "0+unknown"


def _heredoc(path: str, text: str) -> list[str]:
    if f"\n{EOF_MARK}\n" in f"\n{text}\n":
        raise ConfigError(f"{path} contains the heredoc marker {EOF_MARK}", "script", "rename the marker")
    return [f"cat >{path} <<'{EOF_MARK}'", text.rstrip("\n"), EOF_MARK]


def _library_text(src: tuple[str, str] | None) -> str:
    if src is None:
        return "# embedded by dynamo-iac: only the probes and errors modules are present\n"
    return resources.files(src[0]).joinpath(src[1]).read_text()


def redact_embedded(script: str) -> str:
    """The script with the copies of shared library files replaced by their sha256 (golden tests)."""
    return EMBED_RE.sub(lambda m: m.group(1) + "# sha256 " + hashlib.sha256(m.group(2).encode()).hexdigest()
                        + m.group(3), script)


def output_dir(cluster: SlurmCluster) -> str:
    """The cluster's output_dir as an absolute path: a relative one is taken from the directory
    `dynamo-iac slurm render|submit|sweep` runs in (as sbatch takes relative paths from its
    submit directory), so the script, its #SBATCH --output and `submit` agree on one place."""
    return os.path.abspath(os.path.expanduser(cluster.output_dir))


def model_path(options: RunOptions) -> str | None:
    """--model-path as an absolute path, a relative one taken from where render runs (as output_dir)."""
    return os.path.abspath(os.path.expanduser(options.model_path)) if options.model_path else None


def _gpu_flag(cluster: SlurmCluster, n: int) -> str:
    if cluster.gpu_directive == "gres":
        return f"--gres=gpu:{cluster.gpu_type}:{n}" if cluster.gpu_type and n else f"--gres=gpu:{n}"
    return f"--gpus-per-node={cluster.gpu_type}:{n}" if cluster.gpu_type and n else f"--gpus-per-node={n}"


def map_lines(placement: Placement) -> list[str]:
    """The allocation map as aligned text rows: node, GPU, component (sflow's dry-run map)."""
    rows = placement.rows()
    w0 = max(len(r[0]) for r in rows)
    return [f"{n:<{w0}}  {('GPU ' + g) if g != '-' else 'cpu':<6}  {c}" for n, g, c in rows]


def _sbatch_header(job: str, graph: DynamoGraph, cluster: SlurmCluster, placement: Placement,
                   options: RunOptions) -> list[str]:
    used = placement.used_nodes
    lines = [f"#SBATCH --job-name={job}"]
    if cluster.partition:
        lines.append(f"#SBATCH --partition={cluster.partition}")
    if cluster.account:
        lines.append(f"#SBATCH --account={cluster.account}")
    lines.append(f"#SBATCH --time={cluster.time}")
    lines.append(f"#SBATCH --nodes={len(used)}")
    if cluster.pinned:
        lines.append(f"#SBATCH --nodelist={','.join(used)}")
    lines.append("#SBATCH --ntasks-per-node=1")
    if cluster.gpus_per_node:
        lines.append(f"#SBATCH {_gpu_flag(cluster, cluster.gpus_per_node)}")
    if cluster.exclusive:
        lines += ["#SBATCH --exclusive", "#SBATCH --mem=0"]
    lines.append(f"#SBATCH --output={output_dir(cluster)}/%x-%j.out")
    lines += [f"#SBATCH {f}" for f in cluster.sbatch_flags]
    return lines


def _container_lines(graph: DynamoGraph, cluster: SlurmCluster, options: RunOptions) -> list[str]:
    c = cluster.container
    if c is None:
        return ["DYN_CONTAINER=()", "DYN_BENCH_CONTAINER=()"]
    image = c.image or graph.runtime_image()
    mounts = ",".join(['$DYN_RUN_DIR:$DYN_RUN_DIR', *c.mounts])
    flags = [f"--container-image={shlex.quote(image)}", f"--container-name={c.name}",
             f"--container-mounts=\"{mounts}\""]
    if c.writable:
        flags.append("--container-writable")
    if not c.mount_home:
        flags.append("--no-container-mount-home")
    out = ["DYN_CONTAINER=(", *[f"  {f}" for f in flags], ")"]
    b = options.benchmark
    if b is not None and b.image:
        bflags = [f"--container-image={shlex.quote(b.image)}", f"--container-mounts=\"{mounts}\"",
                  "--no-container-mount-home"]
        out += ["DYN_BENCH_CONTAINER=(", *[f"  {f}" for f in bflags], ")"]
    else:
        out.append("DYN_BENCH_CONTAINER=(\"${DYN_CONTAINER[@]}\")")
    return out


def _srun_lines(step: Step, cluster: SlurmCluster, index: int) -> list[str]:
    n = len(step.nodes)
    nodelist = ",".join(f"${{DYN_NODE[{x}]}}" for x in step.nodes)
    flags = [f"--job-name={step.name}", f"--nodes={n}", f"--ntasks={n}", "--ntasks-per-node=1",
             f"--nodelist=\"{nodelist}\""]
    if step.gpus_per_node:
        flags += [_gpu_flag(cluster, step.gpus_per_node), "--exact"]
    else:
        # CPU-only steps share the node with the GPU steps instead of waiting for free CPUs
        flags += ["--gpus-per-node=0" if cluster.gpu_directive != "gres" or not cluster.gpus_per_node
                  else "--gres=gpu:0", "--overlap"]
    flags.append(f"--cpus-per-task={step.cpus}")
    if step.mem:
        flags.append(f"--mem={step.mem}")
    if n > 1:
        flags.append("--kill-on-bad-exit=1")
    flags += cluster.srun_flags
    container = {"graph": "\"${DYN_CONTAINER[@]}\"", "bench": "\"${DYN_BENCH_CONTAINER[@]}\"", "none": ""}[step.container]
    planned = ";".join(f"${{DYN_NODE[{node}]}}={','.join(map(str, g))}" for node, g in step.planned) or "-"
    prefix = " ".join(f"{k}=\"{v}\"" for k, v in sorted(step.env_prefix.items()))
    lines = [f"# --- {index}. {step.title}"]
    head = f"{prefix} srun" if prefix else "srun"
    body = [head + " " + " ".join(flags[:5])]
    body.append("  " + " ".join(flags[5:]))
    if container:
        body.append("  " + container)
    body.append(f"  bash \"$DYN_BIN/step.sh\" {step.name} \"{planned}\" {shlex.quote(step.command)}")
    body.append(f"  >>\"$DYN_RUN_DIR/logs/{step.name}.log\" 2>&1 &")
    lines += [b + " \\" for b in body[:-1]] + [body[-1]]
    lines.append(f"dyn_started {step.name} $! {step.tier}")
    return lines


def step_probes(steps: list[Step], cluster: SlurmCluster, probes: ProbeFile) -> list[dict]:
    """Every step's probes (probes.ProbeSet entries) for jobprobe.py: log paths relative to the
    run dir, hosts as allocation-map node names (the script maps them to hosts)."""
    entries: list[dict] = []
    for st in steps:
        if st.tier == TIER_BENCH:
            continue
        kind = {TIER_WORKER: "worker", TIER_INFRA: "infra"}.get(st.tier, "frontend")
        entries += probes.entries(st.name, st.component or st.name, kind, host=st.nodes[0], port=st.port,
                                  log=f"logs/{st.name}.log", deadline=cluster.deadlines.ready)
    ProbeSet(entries)        # binds every probe now: a bad one is an error at render, not in the job
    return entries


def render(graph: DynamoGraph, cluster: SlurmCluster, options: RunOptions | None = None,
           allocation: AllocationMap | None = None, probes: ProbeFile = NO_EXTRA_PROBES) -> SlurmJob:
    """`probes`: extra readiness/failure probes per component (targets/probe_file.py)."""
    options = options or RunOptions()
    if graph.frontend is None:
        raise ConfigError("the graph has no frontend", "frontend", "add Frontend() — the Slurm job serves through it")
    if graph.model is None and options.engine == "mocker":
        raise ConfigError("the mocker needs the graph's model name", "model", "set model=Model(...)")
    if options.engine == "mocker" and not options.model_path:
        raise ConfigError("the mocker needs a model directory (config.json + tokenizer)", "run.model_path",
                          "pass --model-path DIR on a filesystem every node sees (write one with "
                          "`dynamo-iac local modeldir DIR`)")
    placement = place(graph, cluster, allocation)
    warnings = list(placement.warnings)
    if options.model_path:
        options = options.model_copy(update={"model_path": model_path(options)})
        if not os.path.isdir(options.model_path):
            warnings.append(f"--model-path {options.model_path} is not a directory on this machine; it must be "
                            "one on the batch host and every node")
    if graph.frontend.replicas > 1:
        warnings.append(f"frontend.replicas={graph.frontend.replicas}: the Slurm job runs one frontend")
    if graph.planner is not None:
        warnings.append("the planner component is not started on Slurm (it scales Kubernetes deployments)")
    head = placement.head
    steps = [*infra_steps(cluster, head), frontend_step(graph, cluster, head),
             *worker_steps(graph, cluster, placement, options)]
    bench = benchmark_step(graph, cluster, head, options)
    if bench is not None:
        steps.append(bench)
    probes.check([graph.frontend.name, *graph.worker_names()])
    job = options.job_name or graph.name
    script = _script(graph, cluster, options, placement, steps, job, step_probes(steps, cluster, probes))
    return SlurmJob(graph, cluster, options, placement, steps, script, warnings)


def _script(graph: DynamoGraph, cluster: SlurmCluster, options: RunOptions, placement: Placement,
            steps: list[Step], job: str, probes: list[dict]) -> str:
    used = placement.used_nodes
    d = cluster.deadlines
    engine = "mocker" if options.engine == "mocker" else graph.backend
    L: list[str] = ["#!/bin/bash",
                    f"# dynamo-iac {_version()}: graph '{graph.name}' on Slurm cluster '{cluster.name}' "
                    f"({engine} engine, {graph.total_gpus()} GPUs on {len(used)} node(s)).",
                    "# Generated by `dynamo-iac slurm render`; re-render instead of editing by hand.",
                    "#",
                    f"# Allocation map (node → GPU → component; plan: {placement.source}):"]
    L += [f"#   {row}" for row in map_lines(placement)]
    L.append("#")
    L += _sbatch_header(job, graph, cluster, placement, options)
    L += ["set -uo pipefail", ""]

    out_expr = shlex.quote(output_dir(cluster))
    run_default = shlex.quote(options.run_dir) if options.run_dir else f"$DYN_JOB_OUT/{job}-$SLURM_JOB_ID"
    L += ["# ------------------------------------------------------------------ settings",
          f"DYN_JOB_OUT={out_expr}",
          f"DYN_RUN_DIR=\"${{DYN_RUN_DIR:-{run_default}}}\"",
          "DYN_BIN=\"$DYN_RUN_DIR/bin\"",
          f"DYN_PROBE_PY={shlex.quote(cluster.probe_python)}",
          f"DYN_PROBE_INTERVAL={cluster.probe_interval:g}",
          f"DYN_DEADLINE_PLACEMENT={d.placement:g}",
          f"DYN_DEADLINE_INFRA={d.infra:g}",
          f"DYN_DEADLINE_FRONTEND={d.frontend:g}",
          f"DYN_DEADLINE_READY={d.ready:g}",
          f"DYN_DEADLINE_STOP={int(d.stop)}",
          f"DYN_DEADLINE_BENCHMARK={int(d.benchmark)}",
          f"DYN_DEADLINE_JOB={cluster.time_limit_s or 0}   # the time limit: the failure watch ends there",
          "mkdir -p \"$DYN_BIN\" \"$DYN_RUN_DIR/logs\" \"$DYN_RUN_DIR/placement\" \"$DYN_RUN_DIR/kv\"",
          "",
          "# ------------------------------------------------------------------ nodes",
          "mapfile -t DYN_HOSTS < <(scontrol show hostnames \"$SLURM_JOB_NODELIST\")",
          f"if [ \"${{#DYN_HOSTS[@]}}\" -lt {len(used)} ]; then",
          f"  echo \"dynamo-iac: the plan needs {len(used)} nodes, the job got ${{#DYN_HOSTS[@]}}\" >&2; exit 1",
          "fi"]
    if cluster.pinned:
        L.append("declare -A DYN_NODE=(" + " ".join(f"[{n}]={n}" for n in used) + ")")
    else:
        L.append("declare -A DYN_NODE=(" + " ".join(f"[{n}]=\"${{DYN_HOSTS[{i}]}}\"" for i, n in enumerate(used)) + ")")
    L += [f"DYN_HEAD=\"${{DYN_NODE[{placement.head}]}}\""]

    L += ["", "# ------------------------------------------------------------------ supervisor", FUNCTIONS_SH.rstrip("\n")]
    L += ["DYN_HEAD_ADDR=$(dyn_addr \"$DYN_HEAD\")", ""]

    L += ["# ------------------------------------------------------------------ environment of every step",
          "export DYN_RUN_DIR DYN_BIN DYN_HEAD_ADDR PYTHONUNBUFFERED=1",
          f"export DYN_HTTP_BIND={shlex.quote(cluster.bind)}"]
    if cluster.discovery == "file":
        L.append("export DYN_DISCOVERY_BACKEND=file DYN_FILE_KV=\"$DYN_RUN_DIR/kv\"")
    else:
        L.append(f"export DYN_DISCOVERY_BACKEND=etcd ETCD_ENDPOINTS=\"http://$DYN_HEAD_ADDR:{cluster.ports.etcd}\"")
    if cluster.nats:
        L.append(f"export DYN_EVENT_PLANE=nats NATS_SERVER=\"nats://$DYN_HEAD_ADDR:{cluster.ports.nats}\"")
    else:
        L.append("export DYN_EVENT_PLANE=zmq")
        if cluster.event_broker:
            ports = cluster.ports
            # unset ports: a pair derived from the job id (10000-29999), distinct for co-located jobs
            xsub = ports.broker_xsub or "$(( 10000 + SLURM_JOB_ID % 10000 * 2 ))"
            xpub = ports.broker_xpub or (ports.broker_xsub + 1 if ports.broker_xsub else "$(( DYN_BROKER_XSUB + 1 ))")
            L.append(f"DYN_BROKER_XSUB={xsub}")
            L.append(f"export DYN_BROKER_XSUB DYN_BROKER_XPUB={xpub}")
            L.append("export DYN_ZMQ_BROKER_URL=\"xsub=tcp://$DYN_HEAD_ADDR:$DYN_BROKER_XSUB , "
                     "xpub=tcp://$DYN_HEAD_ADDR:$DYN_BROKER_XPUB\"")
    if options.engine == "mocker":
        # as the local target: a mocker run needs nothing from the Hub (frontend included)
        L.append("export HF_HUB_OFFLINE=1")
    for k, v in sorted(cluster.env.items()):
        L.append(f"export {k}={shlex.quote(v)}")
    L += _container_lines(graph, cluster, options)
    L.append("")

    L += ["# ------------------------------------------------------------------ helper files (run dir)"]
    L += _heredoc("\"$DYN_BIN/step.sh\"", STEP_SH)
    L += _heredoc("\"$DYN_BIN/broker.py\"", BROKER_PY)
    L += _heredoc("\"$DYN_BIN/jobprobe.py\"", Path(_jobprobe.__file__).read_text())
    L += _heredoc("\"$DYN_BIN/probes.json\"", json.dumps(probes, indent=1, sort_keys=True))
    L.append("mkdir -p \"$DYN_BIN/dynamo_iac/targets\"")
    for dest, src in LIBRARY:
        L += _heredoc(f"\"$DYN_BIN/{dest}\"", _library_text(src))
    L.append("")

    L += ["trap dyn_stop EXIT",
          "trap 'exit 143' TERM",
          "trap 'exit 130' INT",
          "dyn_event started - \"job $SLURM_JOB_ID on ${DYN_HOSTS[*]}\"",
          "cp -- \"$0\" \"$DYN_RUN_DIR/job.sbatch\" 2>/dev/null   # what ran, next to its logs",
          ""]

    i = 0
    if cluster.container is not None:
        i += 1
        hosts = ",".join(f"${{DYN_NODE[{n}]}}" for n in used)
        L += [f"# --- {i}. import the image once per node (pyxis named container)",
              f"srun --job-name=image-import --nodes={len(used)} --ntasks={len(used)} --ntasks-per-node=1 "
              f"--nodelist=\"{hosts}\" \\",
              f"  {'--gpus-per-node=0' if cluster.gpu_directive != 'gres' else '--gres=gpu:0'} --overlap "
              "--cpus-per-task=1 \"${DYN_CONTAINER[@]}\" true \\",
              "  >>\"$DYN_RUN_DIR/logs/image-import.log\" 2>&1 &",
              "dyn_started image-import $! 0",
              "dyn_run_step image-import \"$DYN_DEADLINE_PLACEMENT\"",
              ""]

    launched_gpu: list[Step] = []       # GPU steps launched, not yet confirmed on their GPUs
    components = expected_components(placement)
    deferred: list[str] = []            # the frontend's probe runs while the workers start
    for step in steps:
        if step.tier == TIER_BENCH:
            continue
        if step.tier == TIER_WORKER:
            # slurmd gives the lowest free GPUs: the previous steps on these nodes must hold theirs first
            for prev in [p for p in launched_gpu if set(p.nodes) & set(step.nodes)]:
                L.append(_placement_wait(prev))
                launched_gpu.remove(prev)
        i += 1
        L += _srun_lines(step, cluster, i)
        if step.ready:
            wait = (f"dyn_poll {step.name} {shlex.quote(step.ready_what)} \"${step.ready_deadline}\" dyn_"
                    + " ".join(_arg(a) for a in step.ready))
            # etcd/NATS gate everything after them (clients need them at start); the ZMQ broker
            # (publishers reconnect) and the frontend do not gate the workers
            gate = step.tier == TIER_INFRA and step.name != "broker"
            (L if gate else deferred).append(wait)
        if step.tier == TIER_WORKER:
            launched_gpu.append(step)
        L.append("")
    assert graph.model is not None and graph.frontend is not None
    url = f"http://$DYN_HEAD_ADDR:{graph.frontend.port}"
    inst = " ".join(f"{c}={len(s)}" for c, s in components.items())
    blame = " ".join([f"frontend={graph.frontend.name}-0", *(f"{c}={','.join(s)}" for c, s in components.items())])
    # the graph probe starts with the steps (its interpreter start-up overlaps theirs); the cheap
    # bash checks below run meanwhile, and any step exiting stops both
    hosts = " ".join(f"--host \"{n}=${{DYN_NODE[{n}]}}\"" for n in used)
    L += ["# the steps' failure probes (fatal log lines, declared ones) and declared readiness probes",
          f"DYN_PROBE_ARGS=(--probes \"$DYN_BIN/probes.json\" --run-dir \"$DYN_RUN_DIR\" {hosts})",
          "# --- graph readiness: the frontend lists the model AND every worker is registered",
          f"dyn_probe_start graph {shlex.quote('graph ready')} \"$DYN_DEADLINE_READY\" \"${{DYN_PROBE_ARGS[@]}}\" "
          f"graph \"{url}\" "
          f"{shlex.quote(graph.model.name)} {inst} --steps {blame}", ""]
    if deferred:
        L += ["# the broker and the frontend answer on their ports (probed while the workers start)", *deferred, ""]
    if launched_gpu:
        L.append("# every worker runs on the GPUs the allocation map gives it (step.sh checks, exit 97 if not)")
        L += [_placement_wait(p) for p in launched_gpu]
        L.append("")
    L += ["dyn_probe_wait",
          "dyn_watch_start   # failure probes keep running until the job ends",
          f"echo \"{url}\" >\"$DYN_RUN_DIR/endpoint\"",
          f"dyn_event endpoint - \"{url}\"",
          ""]
    bench = next((s for s in steps if s.tier == TIER_BENCH), None)
    if bench is not None:
        i += 1
        L += _srun_lines(bench, cluster, i)
        L += ["dyn_run_step benchmark \"$DYN_DEADLINE_BENCHMARK\"", ""]
    if options.serve_after_ready:
        L += ["# serve until `dynamo-iac slurm cancel` / scancel or the time limit; any step exiting fails the job",
              "dyn_serve"]
    else:
        L += ["# done: the EXIT trap stops every step", "exit 0"]
    return "\n".join(L) + "\n"


def _arg(a: str) -> str:
    return f"\"{a}\"" if "$" in a else shlex.quote(a)


def _placement_wait(step: Step) -> str:
    return (f"dyn_poll {step.name} {shlex.quote('GPU binding')} \"$DYN_DEADLINE_PLACEMENT\" "
            f"dyn_files \"$DYN_RUN_DIR/placement\" {step.name}. {len(step.nodes)}")

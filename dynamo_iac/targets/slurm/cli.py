"""`dynamo-iac slurm render|submit|status|cancel|sweep` (mounted by dynamo_iac.cli as `slurm`)."""
from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from ... import yamlio
from ...errors import ConfigError, DynamoIacError

app = typer.Typer(help="Run a graph as ONE sbatch job: steps pinned by the allocation map, probes with "
                       "deadlines, fail-fast with a report, cleanup on exit.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _esc(text: Any) -> str:
    """Text from files, logs and errors printed verbatim: `[replica]` is not Rich markup."""
    from rich.markup import escape

    return escape(str(text))


def _errors(fn: Callable) -> Callable:
    """Bad input → `path: message (fix: …)` lines and exit 1, never a traceback (also when this
    app is invoked on its own, as the tests do)."""
    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        try:
            return fn(*a, **kw)
        except DynamoIacError as e:
            from ...cli import report_error

            report_error(e)
            raise typer.Exit(1) from None
    return wrapper


# RunOptions/BenchmarkOptions fields → the flags that set them (errors name what the user typed)
OPTION_FLAGS = {"request_count": "--bench-requests", "concurrency": "--bench-concurrency", "isl": "--bench-isl",
                "osl": "--bench-osl", "command": "--aiperf", "speedup_ratio": "--speedup-ratio",
                "model_path": "--model-path", "engine": "--engine"}


def _options(engine: str, model_path: Optional[str], speedup: float, bench: bool, bench_concurrency: int,
             bench_requests: int, bench_isl: int, bench_osl: int, aiperf: Optional[str], keep_serving: Optional[bool],
             job_name: Optional[str] = None):
    from pydantic import ValidationError

    from .options import BenchmarkOptions, RunOptions

    if engine not in ("graph", "mocker"):
        raise ConfigError(f"--engine {engine!r} is not supported", "--engine", "use graph or mocker")
    try:
        b = None
        if bench:
            b = BenchmarkOptions(concurrency=bench_concurrency, request_count=bench_requests, isl=bench_isl,
                                 osl=bench_osl, command=aiperf.split() if aiperf else ["aiperf"])
        return RunOptions(engine=engine, model_path=model_path, speedup_ratio=speedup, benchmark=b,
                          keep_serving=keep_serving, job_name=job_name)
    except ValidationError as e:
        from ...errors import Problem

        raise ConfigError([Problem(OPTION_FLAGS.get(str(x["loc"][-1]), ".".join(map(str, x["loc"]))), x["msg"],
                                   "check the command-line value") for x in e.errors()]) from None


def _check_model_path(options, cluster) -> None:
    """A --model-path missing here is only a warning (it is the nodes' path, render's warning says
    so), unless the cluster's nodes ARE this machine: then it is missing for the job too."""
    import os

    from . import jobs
    from .script import model_path

    mp = model_path(options)
    if mp and not os.path.isdir(mp) and jobs.nodes_are_this_machine(
            cluster.nodes if cluster.pinned else None, cluster.partition):
        raise ConfigError(f"{mp} is not a directory, and the cluster's nodes run on this machine", "--model-path",
                          "write one with `dynamo-iac local modeldir DIR`, or fix the path")


def _load(graph: str, cluster: Path):
    from ...graph import load_graph
    from .cluster import load_cluster

    return load_graph(graph), load_cluster(cluster)


def _print_map(job, con=None) -> None:
    from rich.table import Table

    con = con or _console()
    pl = job.placement
    c = job.cluster
    t = Table(title=f"allocation map — {job.graph.name} on {c.name} ({len(pl.used_nodes)} of {c.node_count} nodes × "
                    f"{c.gpus_per_node} GPUs, plan: {pl.source})", title_justify="left")
    t.add_column("node")
    t.add_column("GPU", justify="right")
    t.add_column("component")
    t.add_column("srun step")
    steps = {rp.label: rp.step for rp in pl.replicas}
    cpu_steps = {}      # node → its CPU-only steps (frontend, broker, etcd/NATS, benchmark)
    for s in job.steps:
        if not s.gpus_per_node:
            cpu_steps.setdefault(s.nodes[0], []).append(s.name)
    prev = None
    for node, gpu, comp in pl.rows():
        step = ", ".join(cpu_steps.get(node, [])) if gpu == "-" else steps.get(comp, "")
        t.add_row(node if node != prev else "", "cpu" if gpu == "-" else gpu, _esc(comp), step)
        prev = node
    con.print(t)
    for w in job.warnings:
        con.print(f"[yellow]warning:[/yellow] {_esc(w)}")


# common options ------------------------------------------------------------------------------
ENGINE = typer.Option("graph", "--engine", help="graph: the graph's engine; mocker: dynamo.mocker for every worker")
MODEL_PATH = typer.Option(None, "--model-path", help="model directory the workers load (required with --engine mocker)")
SPEEDUP = typer.Option(100.0, "--speedup-ratio", help="dynamo.mocker --speedup-ratio")
BENCH = typer.Option(False, "--bench", help="run an aiperf step after readiness; results in <run dir>/aiperf")
BENCH_C = typer.Option(1, "--bench-concurrency")
BENCH_N = typer.Option(10, "--bench-requests")
BENCH_ISL = typer.Option(64, "--bench-isl")
BENCH_OSL = typer.Option(16, "--bench-osl")
AIPERF = typer.Option(None, "--aiperf", help="aiperf command on the nodes (default: aiperf)")
KEEP = typer.Option(None, "--keep-serving/--exit-after-ready", help="default: serve unless --bench")
CLUSTER = typer.Option(..., "--cluster", "-c", help="SlurmCluster YAML file")
PROBES = typer.Option(None, "--probes", help="YAML file of extra readiness/failure probes per component "
                                             "(the same file `dynamo-iac local up --probes` reads)")
ALLOCATION = typer.Option(None, "--allocation", help="allocation map YAML/JSON {node: {GPU: Component[replica]}} "
                                                     "(default: the capacity planner's map)")


def _allocation(path: Optional[Path]):
    if path is None:
        return None
    from .placement import load_allocation

    data = yamlio.load_file(path, "--allocation", "allocation file")
    return load_allocation(data.get("allocation", data) if isinstance(data, dict) else data, str(path))


@app.command("render")
@_errors
def render_cmd(graph: str = typer.Argument(..., help="graph file (YAML, DGD) or python module:attr"),
               cluster: Path = CLUSTER,
               out: Optional[Path] = typer.Option(None, "-o", "--out", help="write the script here ('-': stdout)"),
               engine: str = ENGINE, model_path: Optional[str] = MODEL_PATH, speedup: float = SPEEDUP,
               bench: bool = BENCH, bench_concurrency: int = BENCH_C, bench_requests: int = BENCH_N,
               bench_isl: int = BENCH_ISL, bench_osl: int = BENCH_OSL, aiperf: Optional[str] = AIPERF,
               keep_serving: Optional[bool] = KEEP, allocation: Optional[Path] = ALLOCATION,
               probes: Optional[Path] = PROBES,
               as_json: bool = typer.Option(False, "--json", help="print the allocation map as JSON")) -> None:
    """Render GRAPH for the cluster: print the allocation map (node → GPU → component), write the sbatch script."""
    from ..probe_file import load_probes
    from .script import render

    g, c = _load(graph, cluster)
    opts = _options(engine, model_path, speedup, bench, bench_concurrency, bench_requests, bench_isl, bench_osl,
                    aiperf, keep_serving)
    _check_model_path(opts, c)
    job = render(g, c, opts, _allocation(allocation), load_probes(probes))
    if str(out) == "-":
        sys.stdout.write(job.script)
        return
    if as_json:
        sys.stdout.write(json.dumps({"graph": g.name, "cluster": c.name, "nodes": job.placement.used_nodes,
                                     "allocation": {n: {str(k): v for k, v in m.items()}
                                                    for n, m in job.placement.allocation.items()},
                                     "steps": [s.name for s in job.steps], "warnings": job.warnings},
                                    indent=2, sort_keys=True) + "\n")
    else:
        _print_map(job)
    if out is not None:
        job.write(out)
        if not as_json:
            _console().print(f"wrote {out}")


def _follow(job_id: int, run_dir: Optional[Path], timeout: float, until: str) -> int:
    from . import jobs

    con = _console()
    t0 = time.monotonic()
    seen = [0]

    def show(st) -> None:
        for e in st.events[seen[0]:]:
            if e.kind in ("launched", "ready", "failed", "done", "endpoint", "stopping", "stopped", "started"):
                what = f"{e.step} " if e.step != "-" else ""
                con.print(f"[dim]{time.monotonic() - t0:6.2f}s[/dim] {e.kind:<9} {_esc(what + e.detail)}")
        seen[0] = len(st.events)
        if not st.events:
            con.print(f"[dim]{time.monotonic() - t0:6.2f}s[/dim] job {job_id} {st.state} {st.reason}")

    st = jobs.follow(job_id, run_dir, until=until, timeout=timeout, on_change=show)
    if st.failure:
        con.print(f"[red]job {job_id} failed[/red] ({st.state}):\n{_esc(st.failure.rstrip())}")
        return 1
    if until == "ready" and st.ready:
        con.print(f"[green]ready[/green]: job {job_id}, endpoint {st.endpoint} (run dir {st.run_dir})")
        return 0
    if st.finished:
        ok = st.state == "COMPLETED"
        con.print(f"job {job_id} ended: {st.state} (exit {st.exit_code})")
        return 0 if ok else 1
    con.print(f"[red]job {job_id} not ready after {timeout:g} s[/red] (state {st.state} {st.reason}); "
              f"`dynamo-iac slurm status {job_id}` or cancel it")
    return 1


@app.command("submit")
@_errors
def submit_cmd(graph: str = typer.Argument(..., help="graph file / module:attr, or an already rendered .sbatch"),
               cluster: Optional[Path] = typer.Option(None, "--cluster", "-c", help="SlurmCluster YAML (not for .sbatch)"),
               engine: str = ENGINE, model_path: Optional[str] = MODEL_PATH, speedup: float = SPEEDUP,
               bench: bool = BENCH, bench_concurrency: int = BENCH_C, bench_requests: int = BENCH_N,
               bench_isl: int = BENCH_ISL, bench_osl: int = BENCH_OSL, aiperf: Optional[str] = AIPERF,
               keep_serving: Optional[bool] = KEEP, allocation: Optional[Path] = ALLOCATION,
               probes: Optional[Path] = PROBES,
               timeout: float = typer.Option(900, "--timeout", help="stop following after this many seconds"),
               wait: bool = typer.Option(False, "--wait", help="follow until the job ends (default: until ready)"),
               follow: bool = typer.Option(True, "--follow/--no-follow")) -> None:
    """sbatch the graph, then follow every step's state, readiness and the endpoint."""
    from . import jobs
    from .script import render

    run_dir = None
    if graph.endswith((".sbatch", ".sh")):
        script = Path(graph)
        if not script.is_file():
            raise ConfigError(f"{graph} does not exist", "script", "render it first with `dynamo-iac slurm render -o`")
    else:
        if cluster is None:
            raise ConfigError("--cluster is required to submit a graph", "--cluster", "pass the SlurmCluster YAML")
        from ..probe_file import load_probes

        g, c = _load(graph, cluster)
        opts = _options(engine, model_path, speedup, bench, bench_concurrency, bench_requests, bench_isl, bench_osl,
                        aiperf, keep_serving)
        _check_model_path(opts, c)
        job = render(g, c, opts, _allocation(allocation), load_probes(probes))
        _print_map(job)
        out = Path(c.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        script = job.write(out / f"{job.job_name}.sbatch")
    job_id = jobs.submit(script)
    _console().print(f"submitted job {job_id} ({script})")
    if not follow:
        return
    raise typer.Exit(_follow(job_id, run_dir, timeout, "end" if wait else "ready"))


@app.command("status")
@_errors
def status_cmd(job_id: int = typer.Argument(...),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """The job's state, every step's state and readiness, the endpoint and any failure report."""
    from rich.table import Table

    from . import jobs

    st = jobs.status(job_id)
    if st.state == "UNKNOWN" and not st.events:
        raise jobs.no_such_job(job_id)
    phases = st.step_phase()
    if as_json:
        sys.stdout.write(json.dumps({"job_id": job_id, "state": st.state, "reason": st.reason,
                                     "exit_code": st.exit_code, "run_dir": str(st.run_dir) if st.run_dir else None,
                                     "endpoint": st.endpoint, "steps": {n: {"slurm": st.steps.get(n), "phase": phases.get(n)}
                                                                        for n in sorted(set(st.steps) | set(phases))},
                                     "failure": st.failure}, indent=2, sort_keys=True) + "\n")
        return
    con = _console()
    con.print(f"job {job_id}: [bold]{st.state}[/bold] {st.reason if st.reason != 'None' else ''}"
              f"{'  endpoint ' + st.endpoint if st.endpoint else ''}")
    t = Table("step", "slurm state", "phase")
    for n in sorted(set(st.steps) | set(phases)):
        t.add_row(n, st.steps.get(n, "-"), phases.get(n, "-"))
    con.print(t)
    if st.run_dir:
        con.print(f"run dir {st.run_dir}")
    if st.failure:
        con.print(f"[red]{_esc(st.failure.rstrip())}[/red]")


@app.command("cancel")
@_errors
def cancel_cmd(job_id: int = typer.Argument(...),
               timeout: float = typer.Option(30, "--timeout", help="seconds to wait for the job to leave the queue")) -> None:
    """Cancel the job (SIGTERM to every step, the script's cleanup) and wait until it has left the queue."""
    from . import jobs

    st = jobs.cancel(job_id, wait=timeout)
    if jobs.in_queue(job_id):
        _console(stderr=True).print(f"[red]job {job_id} is still in the queue after {timeout:g} s[/red] ({st.state})")
        raise typer.Exit(1)
    _console().print(f"job {job_id} cancelled: {st.state}; no step left in the queue")


@app.command("sweep")
@_errors
def sweep_cmd(graph: str = typer.Argument(...), cluster: Path = CLUSTER,
              sets: list[str] = typer.Option([], "--set", help="PATH=v1,v2,… (cartesian over every --set)"),
              csv_file: Optional[Path] = typer.Option(None, "--csv", help="one point per row; header = paths"),
              out: Path = typer.Option(Path("sweep"), "-o", "--out", help="directory for scripts and summary.csv"),
              submit: bool = typer.Option(False, "--submit", help="sbatch every valid point"),
              wait: bool = typer.Option(False, "--wait", help="with --submit: follow every job to its end and "
                                                               "collect results (ready time, aiperf metrics)"),
              timeout: float = typer.Option(3600, "--timeout", help="with --wait: seconds for all points to "
                                            "finish; points still queued or running then fail the sweep (exit 1)"),
              keep_unfinished: bool = typer.Option(False, "--keep-unfinished", help="with --wait: leave the jobs "
                                                   "that have not finished by --timeout queued (default: cancel "
                                                   "them)"),
              engine: str = ENGINE, model_path: Optional[str] = MODEL_PATH, speedup: float = SPEEDUP,
              bench: bool = BENCH, bench_concurrency: int = BENCH_C, bench_requests: int = BENCH_N,
              bench_isl: int = BENCH_ISL, bench_osl: int = BENCH_OSL, aiperf: Optional[str] = AIPERF,
              probes: Optional[Path] = PROBES) -> None:
    """One sbatch script per sweep point (cartesian --set or --csv rows), optional submit, summary CSV."""
    from . import jobs
    from . import sweep as sw

    if bool(sets) == bool(csv_file):
        raise ConfigError("give either --set (one or more) or --csv", "sweep", "e.g. --set workers[0].replicas=1,2")
    points = sw.cartesian(sw.parse_sets(sets)) if sets else sw.read_csv_points(csv_file)  # type: ignore[arg-type]
    g, c = _load(graph, cluster)
    opts = _options(engine, model_path, speedup, bench, bench_concurrency, bench_requests, bench_isl, bench_osl,
                    aiperf, False)   # a sweep point ends after readiness (and its benchmark)
    _check_model_path(opts, c)
    from ..probe_file import load_probes

    pts = sw.build(g, c, points, opts, out, load_probes(probes))
    con = _console()
    for p in pts:
        con.print(f"{p.name}: {'[red]' + _esc(p.error) + '[/red]' if p.error else p.script}")
    if submit:
        for p in pts:
            if p.script is not None:
                p.job_id = jobs.submit(p.script)
                con.print(f"{p.name}: submitted job {p.job_id}")
    unfinished: list = []
    if submit and wait:
        end = time.monotonic() + timeout
        for p in pts:
            if p.job_id is not None:
                st = jobs.follow(p.job_id, until="end", timeout=max(end - time.monotonic(), 1))
                timed_out = None
                if not st.finished:
                    unfinished.append(p)
                    timed_out = (timeout, not keep_unfinished)
                    if not keep_unfinished:
                        jobs.cancel(p.job_id)
                sw.collect(p, st, timed_out)
                con.print(f"{p.name}: job {p.job_id} {_esc(p.result.get('state'))}")
    path = sw.write_summary(pts, out / "summary.csv")
    con.print(f"wrote {path} ({len(pts)} points, {sum(1 for p in pts if p.error)} invalid)")
    if unfinished:
        what = "left queued (--keep-unfinished)" if keep_unfinished else "cancelled"
        err = _console(stderr=True)
        err.print(f"[red]error:[/red] {len(unfinished)} point(s) did not finish within --timeout {timeout:g} s, "
                  f"{what}: " + ", ".join(_esc(f"{p.name} (job {p.job_id})") for p in unfinished))
        err.print("    [green]fix:[/green] raise --timeout, or check the jobs with `dynamo-iac slurm status JOB`")
    if unfinished or all(p.error for p in pts):
        raise typer.Exit(1)

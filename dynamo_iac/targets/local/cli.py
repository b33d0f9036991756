"""`dynamo-iac local up|status|down|bench GRAPH` — the graph as real Dynamo processes on this machine.

GRAPH is a graph YAML file, a DGD manifest, a python `module:attr`, or (for status, down and
bench) the run directory itself. The run directory defaults to `.run/local/<graph name>`
(root overridable with DYNAMO_IAC_RUN_ROOT), so `status` and `down` work from any shell.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

from ...errors import ConfigError
from .launch import STOP_GRACE
from .modeldir import DEFAULT_VOCAB_SIZE

app = typer.Typer(help="Run a graph as real Dynamo processes on this machine (frontend + workers, "
                       "loopback only, file-based discovery).", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)

RUN_DIR_HELP = "run directory (default: .run/local/<graph name>)"


def _out():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _resolve(graph: str, run_dir: Optional[Path]) -> Path:
    from .runner import default_run_dir
    from .state import STATE_FILE

    if run_dir is not None:
        return run_dir
    p = Path(graph)
    if p.is_dir():
        if (p / STATE_FILE).is_file():
            return p
        raise ConfigError(f"{p} is a directory without {STATE_FILE}", "GRAPH",
                          "pass a graph file, module:attr, or the run directory of a local run")
    from ...graph import load_graph

    return default_run_dir(load_graph(graph).name)


def _print_state(state: dict[str, Any], with_probe: bool = False) -> None:
    from rich.markup import escape       # names, notes and log lines are printed verbatim
    from rich.table import Table

    con = _out()
    st = state.get("status")
    colour = {"ready": "green", "failed": "red", "lost": "red", "stopped": "yellow"}.get(st, "cyan")
    head = f"[bold]{escape(str(state.get('graph')))}[/bold] ({state.get('engine')}): [{colour}]{st}[/{colour}]"
    if state.get("ready_seconds") is not None:
        head += f" — ready in {state['ready_seconds']:.2f} s"
    con.print(head)
    if state.get("urls"):
        con.print(f"  model [bold]{state.get('model')}[/bold] at {', '.join(state['urls'])}")
    t = Table(box=None, pad_edge=False, show_edge=False)
    for col in ("process", "kind", "role", "pid", "alive", "exit", "log"):
        t.add_column(col)
    for p in state.get("processes", []):
        alive = p.get("alive")
        t.add_row(p["name"], p["kind"], p.get("role") or "", str(p.get("pid") or ""),
                  "" if alive is None else ("yes" if alive else "no"),
                  "" if p.get("returncode") is None else str(p["returncode"]), p.get("log", ""))
    con.print(t)
    for n in state.get("notes", []):
        con.print(f"  [yellow]note:[/yellow] {escape(n)}")
    if with_probe:
        for c in state.get("probe", []):
            mark = "[green]ok[/green]" if c["ok"] else "[red]not ready[/red]"
            con.print(f"  probe {escape(c['url'])}: {mark} — {escape(str(c['detail']))}")
    f = state.get("failure")
    if f:
        con.print(f"  [red]failure:[/red] {escape(str(f.get('message')))}")


def _json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


@app.command("up")
def up_cmd(
    graph: str = typer.Argument(..., help="graph file (YAML / DGD manifest) or python module:attr"),
    engine: str = typer.Option("mocker", "--engine", help="mocker: dynamo.mocker stands in for every worker "
                               "engine (no GPU); real: the graph's own engine command lines"),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help=RUN_DIR_HELP),
    port: Optional[int] = typer.Option(None, "--port",
                                       help="frontend HTTP port (default: the graph's; 0 = a free one)"),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="readiness deadline in seconds "
                                            "(default 60 for mocker, 1800 for real)"),
    speedup_ratio: float = typer.Option(1.0, "--speedup-ratio", help="mocker: simulated engine speed-up"),
    mocker_arg: list[str] = typer.Option([], "--mocker-arg", help="extra dynamo.mocker argument, repeatable "
                                         "(e.g. --mocker-arg=--num-gpu-blocks-override=1024)"),
    stop_grace: float = typer.Option(STOP_GRACE, "--stop-grace", help="seconds from SIGTERM to SIGKILL for each "
                                     "group of processes (workers, frontends, broker) when stopping; a failure "
                                     "returns within --timeout + this (+ as much again per group that ignores "
                                     "SIGTERM)"),
    probes: Optional[Path] = typer.Option(None, "--probes", help="YAML file of extra readiness/failure probes "
                                          "per component (the same file `dynamo-iac slurm --probes` reads)"),
    attach: bool = typer.Option(False, "--attach", help="stay attached after ready; Ctrl-C stops the graph"),
    as_json: bool = typer.Option(False, "--json", help="print the run state as JSON"),
) -> None:
    """Start the graph and return once it is ready (the frontend lists the model and every worker is
    registered). On failure everything is stopped and the failing component is named with its log."""
    from ...graph import load_graph
    from ..probe_file import load_probes
    from .runner import down, up

    g = load_graph(graph)
    run = up(g, run_dir=run_dir, engine=engine, port=port, timeout=timeout, speedup_ratio=speedup_ratio,
             mocker_args=tuple(mocker_arg), stop_grace=stop_grace, probes=load_probes(probes))
    state = run.status()
    if as_json:
        _json(state)
    else:
        _print_state(state)
        _out().print(f"  stop with: dynamo-iac local down {run.run_dir}")
    if not attach:
        return
    import signal

    def _interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)     # `kill` of an attached `up` stops the graph too
    signal.signal(signal.SIGINT, _interrupt)      # even where a shell started it with SIGINT ignored
    try:
        while True:
            from .state import read_state

            st = read_state(run.run_dir) or {}
            if st.get("status") in ("failed", "stopped"):
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        down(run.run_dir)
        return
    from .runner import LocalRunError, failure_problem

    final = read_state(run.run_dir) or {}
    if final.get("status") == "failed":
        raise LocalRunError([failure_problem(final)], final)


@app.command("status")
def status_cmd(
    graph: str = typer.Argument(..., help="graph file / module:attr, or the run directory"),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help=RUN_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the run state as JSON"),
) -> None:
    """Show a local run: every process, whether it lives, and a fresh readiness probe. Exit 0 only when ready."""
    from .runner import status

    state = status(_resolve(graph, run_dir))
    if as_json:
        _json(state)
    else:
        _print_state(state, with_probe=True)
    ok = state.get("status") == "ready" and all(c["ok"] for c in state.get("probe", []))
    raise typer.Exit(0 if ok else 1)


@app.command("down")
def down_cmd(
    graph: str = typer.Argument(..., help="graph file / module:attr, or the run directory"),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help=RUN_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the final state as JSON"),
) -> None:
    """Stop a local run: workers, then frontends, then the broker; anything left is killed."""
    from .runner import down

    state = down(_resolve(graph, run_dir))
    if as_json:
        _json(state)
        return
    left = state.get("killed_by_down") or []
    _out().print(f"{state.get('graph')}: {state.get('status')}"
                 + (f" (had to stop {', '.join(left)} directly)" if left else ""))


@app.command("bench")
def bench_cmd(
    graph: str = typer.Argument(..., help="graph file / module:attr, or the run directory"),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help=RUN_DIR_HELP),
    requests: int = typer.Option(20, "--requests", help="number of requests"),
    concurrency: int = typer.Option(2, "--concurrency", help="concurrent requests"),
    isl: int = typer.Option(64, "--isl", help="input tokens per request"),
    osl: int = typer.Option(16, "--osl", help="output tokens per request"),
    endpoint: str = typer.Option("chat", "--endpoint", help="chat | completions"),
    start: bool = typer.Option(False, "--up", help="start the graph (mocker) first and stop it afterwards"),
    as_json: bool = typer.Option(False, "--json", help="print the figures as JSON"),
) -> None:
    """Benchmark a running local graph with aiperf: TTFT, ITL and throughput."""
    from .bench import bench

    run = None
    if start:
        from ...graph import load_graph
        from .runner import up

        run = up(load_graph(graph), run_dir=run_dir, port=0)
        target = run.run_dir
    else:
        target = _resolve(graph, run_dir)
    try:
        res = bench(target, requests=requests, concurrency=concurrency, isl=isl, osl=osl, endpoint=endpoint)
    finally:
        if run is not None:
            run.down()
    if as_json:
        _json(res.to_dict())
        return
    con = _out()
    con.print(f"aiperf: {res.requests} requests, {res.errors} errors, {res.duration_s:.2f} s "
              f"(artifacts: {res.artifact_dir})")
    con.print(f"  TTFT    avg {res.ttft_ms_avg:8.2f} ms   p50 {res.ttft_ms_p50:8.2f} ms   "
              f"p99 {res.ttft_ms_p99:8.2f} ms")
    con.print(f"  ITL     avg {res.itl_ms_avg:8.2f} ms   p99 {res.itl_ms_p99:8.2f} ms")
    con.print(f"  latency avg {res.request_latency_ms_avg:8.2f} ms")
    con.print(f"  throughput {res.request_throughput:.2f} req/s, {res.output_token_throughput:.1f} output tok/s")


@app.command("modeldir")
def modeldir_cmd(
    directory: Path = typer.Argument(..., help="directory to write (created; identical files are left alone)"),
    name: str = typer.Option("tiny", "--name", help="model name written into its config (the served name is "
                             "the graph's)"),
    vocab_size: int = typer.Option(DEFAULT_VOCAB_SIZE, "--vocab-size", help="tokenizer vocabulary (> 2000: the mocker "
                                   "emits token ids 1000-1999)"),
) -> None:
    """Write the tiny model directory dynamo.mocker loads (config.json + a generated tokenizer, no
    weights, nothing downloaded): what `dynamo-iac slurm render|submit --engine mocker --model-path DIR`
    needs on a shared filesystem. `local up` writes one into its run directory by itself."""
    from .modeldir import FILES, write_model_dir

    root = write_model_dir(directory, name=name, vocab_size=vocab_size)
    _out().print(f"wrote {root.resolve()} ({', '.join(FILES)})")

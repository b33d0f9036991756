"""`dynamo-iac local bench`: aiperf against a running local graph; TTFT, ITL and throughput.

aiperf runs from its own venv (aiperf 0.13 pins pydantic 2.14.3; ai-dynamo 1.6 needs <=2.13.5).
Two aiperf quirks are handled here: with HF_HUB_OFFLINE=1 it cannot load a tokenizer from a
local directory (its offline branch treats the path as a hub repo id), so the variable is
removed for it; and it writes its dataset as `aiperf_mmap_<id>/` under TMPDIR (and a reuse cache
under ~/.cache/aiperf), so `aiperf_env` points both into the run's own bench directory (the Slurm
aiperf step uses it too) and a private TMPDIR, removed afterwards, takes the rest (a short one:
aiperf puts ZMQ IPC sockets there, and a socket path may not exceed 107 bytes). Token counts come from the server (`--use-server-token-count`): the
mocker's random token ids do not round-trip through re-tokenization.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ...errors import ConfigError, DynamoIacError
from .runtime import find_python
from .state import group_members, read_state


@dataclass(frozen=True)
class BenchResult:
    requests: int
    errors: int
    ttft_ms_avg: float
    ttft_ms_p50: float
    ttft_ms_p99: float
    itl_ms_avg: float
    itl_ms_p99: float
    request_latency_ms_avg: float
    request_throughput: float          # requests/s
    output_token_throughput: float     # tokens/s
    duration_s: float                  # aiperf's benchmark duration
    wall_s: float                      # the whole aiperf process
    artifact_dir: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _metric(data: dict, name: str, stat: str) -> float:
    v = (data.get(name) or {}).get(stat)
    return float(v) if isinstance(v, (int, float)) else float("nan")


def parse_export(path: Path, wall: float) -> BenchResult:
    data = json.loads(path.read_text())
    errors = sum(int(e.get("count", 1)) for e in data.get("error_summary") or [] if isinstance(e, dict))
    return BenchResult(
        requests=int(_metric(data, "request_count", "avg")) if data.get("request_count") else 0,
        errors=errors,
        ttft_ms_avg=_metric(data, "time_to_first_token", "avg"),
        ttft_ms_p50=_metric(data, "time_to_first_token", "p50"),
        ttft_ms_p99=_metric(data, "time_to_first_token", "p99"),
        itl_ms_avg=_metric(data, "inter_token_latency", "avg"),
        itl_ms_p99=_metric(data, "inter_token_latency", "p99"),
        request_latency_ms_avg=_metric(data, "request_latency", "avg"),
        request_throughput=_metric(data, "request_throughput", "avg"),
        output_token_throughput=_metric(data, "output_token_throughput", "avg"),
        duration_s=_metric(data, "benchmark_duration", "avg"),
        wall_s=round(wall, 3),
        artifact_dir=str(path.parent),
    )


def aiperf_env(bench_dir: str) -> dict[str, str]:
    """aiperf's dataset memory maps and their cache inside `bench_dir` instead of /tmp and ~/.cache
    (aiperf 0.13 settings AIPERF_DATASET_MMAP_BASE_PATH / _MMAP_CACHE_DIR)."""
    return {"AIPERF_DATASET_MMAP_BASE_PATH": f"{bench_dir}/mmap",
            "AIPERF_DATASET_MMAP_CACHE_DIR": f"{bench_dir}/mmap-cache"}


def aiperf_command(aiperf_python: str, *, url: str, model: str, tokenizer: str, artifact_dir: Path,
                   requests: int, concurrency: int, isl: int, osl: int, endpoint: str, streaming: bool,
                   seed: int = 0) -> list[str]:
    cmd = [aiperf_python, "-m", "aiperf", "profile", "--model", model, "--url", url, "--endpoint-type", endpoint,
           "--concurrency", str(concurrency), "--request-count", str(requests),
           "--isl", str(isl), "--isl-stddev", "0", "--osl", str(osl), "--tokenizer", tokenizer,
           "--use-server-token-count", "--random-seed", str(seed), "--ui", "none",
           "--artifact-dir", str(artifact_dir)]
    if streaming:
        cmd.insert(cmd.index("--concurrency"), "--streaming")
    return cmd


def bench(run_dir: str | Path, *, requests: int = 20, concurrency: int = 2, isl: int = 64, osl: int = 16,
          endpoint: str = "chat", streaming: bool = True, timeout: float = 600.0,
          aiperf_python: str | None = None) -> BenchResult:
    """Run aiperf against the ready graph of `run_dir`."""
    for name, v, low in (("--requests", requests, 1), ("--concurrency", concurrency, 1), ("--isl", isl, 1),
                         ("--osl", osl, 1)):
        if v < low:
            raise ConfigError(f"must be >= {low}, got {v}", name, f"e.g. {name} 16")
    if endpoint not in ("chat", "completions"):
        raise ConfigError(f"unknown endpoint type {endpoint!r}", "--endpoint", "use chat or completions")
    state = read_state(run_dir)
    if not state or state.get("status") != "ready":
        raise ConfigError(f"no ready local graph in {run_dir} (status: {(state or {}).get('status', 'none')})",
                          "run_dir", "start it with `dynamo-iac local up GRAPH` first, or pass --up")
    py = aiperf_python or find_python("aiperf")
    out = Path(run_dir) / "bench" / time.strftime("%Y%m%d-%H%M%S")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    tmp = tempfile.mkdtemp(prefix="aiperf-")
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(TMPDIR=tmp, MPLCONFIGDIR=tmp, **aiperf_env(str(out)))
    cmd = aiperf_command(py, url=state["urls"][0], model=state["model"], tokenizer=state["tokenizer"],
                         artifact_dir=out, requests=requests, concurrency=concurrency, isl=isl, osl=osl,
                         endpoint=endpoint, streaming=streaming)
    t0 = time.monotonic()
    try:
        with open(out / "aiperf.out", "wb") as log:
            # own session: aiperf runs its services as child processes; a timeout stops them all
            p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
            try:
                p.wait(timeout)
            except BaseException:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                raise
            finally:
                for pid in group_members(p.pid):      # services aiperf left behind
                    os.kill(pid, signal.SIGKILL)
    except subprocess.TimeoutExpired:
        raise DynamoIacError(f"aiperf did not finish within {timeout:g} s", "bench",
                             f"read {out / 'aiperf.out'}; lower --requests") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(out / "mmap", ignore_errors=True)    # this run's dataset copy; the cache stays
    wall = time.monotonic() - t0
    export = out / "profile_export_aiperf.json"
    if p.returncode != 0 or not export.is_file():
        tail = "\n".join((out / "aiperf.out").read_text(errors="replace").splitlines()[-25:])
        raise DynamoIacError(f"aiperf exited with code {p.returncode}\n{tail}", "bench", f"read {out / 'aiperf.out'}")
    return parse_export(export, wall)

"""Time-to-ready of a local graph (frontend + 1, 2, 4 mocker workers) against a bare process start.

"Ready" is what `dynamo-iac local up` returns on: the frontend lists the model on /v1/models AND
/health shows every worker registered. Measured from the `local.up()` call (plan, supervisor
start, every process start, registration) to its return. The baseline, measured in the same run,
is the start of a bare `python -m dynamo.frontend --help` (and `dynamo.mocker --help`): the
slowest single process start. Target: ready <= 1.5 x slowest single start + 1 s.
Each figure is the median of `repeats` runs. Last line: one JSON object with the figures.

    python benchmarks/local_ready.py [repeats]
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dynamo_iac.graph import DynamoGraph, Model, Worker  # noqa: E402
from dynamo_iac.targets import local  # noqa: E402
from dynamo_iac.targets.local.runtime import find_python  # noqa: E402

WORKERS = (1, 2, 4)


def bare_start(py: str, module: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([py, "-m", module, "--help"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def time_to_ready(n: int, run_root: Path) -> tuple[float, float, float]:
    """(seconds from up() to ready, the supervisor's own spawn-to-ready, seconds to stop)."""
    g = DynamoGraph(name=f"ready-{n}", model=Model("Qwen/Qwen3-0.6B", served_name="tiny"),
                    workers=[Worker(role="agg", replicas=n)])
    t0 = time.perf_counter()
    run = local.up(g, run_dir=run_root / g.name, port=0)
    ready = time.perf_counter() - t0
    inner = run.state["ready_seconds"]
    t1 = time.perf_counter()
    final = run.down()
    stop = time.perf_counter() - t1
    assert final["status"] == "stopped", final
    return ready, inner, stop


def main(repeats: int = 3) -> None:
    py = find_python("dynamo")
    bare_start(py, "dynamo.frontend")          # warm the page cache once, as every later start is
    fe = statistics.median(bare_start(py, "dynamo.frontend") for _ in range(repeats))
    mk = statistics.median(bare_start(py, "dynamo.mocker") for _ in range(repeats))
    slowest = max(fe, mk)
    target = 1.5 * slowest + 1.0
    print(f"bare start: dynamo.frontend --help {fe:.3f} s, dynamo.mocker --help {mk:.3f} s")
    print(f"target: ready <= 1.5 x {slowest:.3f} + 1 = {target:.3f} s")
    ready: dict[str, float] = {}
    inner: dict[str, float] = {}
    stop: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="dynamo-iac-ready-") as tmp:
        for n in WORKERS:
            runs = [time_to_ready(n, Path(tmp)) for _ in range(repeats)]
            ready[str(n)] = round(statistics.median(r[0] for r in runs), 3)
            inner[str(n)] = round(statistics.median(r[1] for r in runs), 3)
            stop[str(n)] = round(statistics.median(r[2] for r in runs), 3)
            print(f"{n} worker(s): ready in {ready[str(n)]:.3f} s (processes spawned → ready "
                  f"{inner[str(n)]:.3f} s), stopped in {stop[str(n)]:.3f} s "
                  f"[{'ok' if ready[str(n)] <= target else 'OVER TARGET'}]")
    print(json.dumps({
        "bare_frontend_help_s": round(fe, 3), "bare_mocker_help_s": round(mk, 3),
        "slowest_single_start_s": round(slowest, 3), "target_s": round(target, 3),
        "ready_s": ready, "spawn_to_ready_s": inner, "stop_s": stop, "repeats": repeats,
        "meets_target": all(v <= target for v in ready.values()),
    }, sort_keys=True))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)

"""Parameter sweeps: one graph (and cluster) per point → one sbatch script per point + a summary CSV.

Points come from a cartesian product of `--set PATH=v1,v2,…` or from the rows of a CSV whose
header names the paths. A path addresses a graph field (`workers[0].parallelism.tp`,
`workers[DecodeWorker].replicas`, `frontend.router_mode`) or, with a `cluster.` prefix, a cluster
field (`cluster.nodes`). Values are YAML scalars (2, true, kv). A point whose graph or plan is
invalid is kept in the summary with its error instead of stopping the sweep.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ... import yamlio
from ...errors import ConfigError, DynamoIacError
from ...graph.model import DynamoGraph
from ..probe_file import DEFAULT as NO_EXTRA_PROBES, ProbeFile
from .cluster import SlurmCluster
from .options import RunOptions
from .script import SlurmJob, render

SEGMENT_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[[^\]]+\])*)")


@dataclass
class Point:
    index: int
    values: dict[str, Any]
    name: str
    job: SlurmJob | None = None
    error: str | None = None
    script: Path | None = None
    job_id: int | None = None
    result: dict[str, Any] = field(default_factory=dict)


def parse_value(text: str) -> Any:
    try:
        v = yamlio.load(text)
    except yaml.YAMLError:
        return text
    return v if isinstance(v, (int, float, bool, str)) or v is None else text


def parse_sets(sets: list[str]) -> dict[str, list[Any]]:
    axes: dict[str, list[Any]] = {}
    for s in sets:
        path, sep, values = s.partition("=")
        if not sep or not path.strip() or not values.strip():
            raise ConfigError(f"--set {s!r} is not PATH=v1,v2,…", "--set", "e.g. --set workers[0].replicas=1,2")
        if path.strip() in axes:
            raise ConfigError(f"--set names {path.strip()!r} twice", "--set", "list all its values in one --set")
        axes[path.strip()] = [parse_value(v.strip()) for v in values.split(",")]
    return axes


def cartesian(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]


def read_csv_points(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ConfigError(f"CSV file {str(path)!r} does not exist", "--csv", "check the path")
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    if not rows:
        raise ConfigError(f"{path} has a header but no rows (or is empty)", "--csv", "add one row per point")
    out = []
    for i, row in enumerate(rows, start=2):
        if None in row:
            raise ConfigError(f"{path}:{i}: more cells than header columns", "--csv", "fix the row")
        out.append({k.strip(): parse_value(v.strip()) for k, v in row.items() if k and v is not None and v.strip() != ""})
    return out


def _set_path(data: dict, path: str, value: Any, what: str) -> None:
    """Set `value` at a dotted path with [index] / [name] selectors inside plain data."""
    cur: Any = data
    parts = path.split(".")
    for pi, part in enumerate(parts):
        m = SEGMENT_RE.fullmatch(part)
        if not m:
            raise ConfigError(f"{path!r}: {part!r} is not a field name", path, "use e.g. workers[0].replicas")
        key, selectors = m.group(1), re.findall(r"\[([^\]]+)\]", m.group(2) or "")
        last = pi == len(parts) - 1 and not selectors
        if not isinstance(cur, dict):
            raise ConfigError(f"{path!r}: {'.'.join(parts[:pi]) or what} is not an object", path, "check the path")
        if last:
            cur[key] = value
            return
        if key not in cur or cur[key] is None:
            if selectors:
                raise ConfigError(f"{path!r}: {what} has no {key!r}", path, "check the path")
            cur[key] = {}
        cur = cur[key]
        for si, sel in enumerate(selectors):
            if not isinstance(cur, list):
                raise ConfigError(f"{path!r}: {key} is not a list", path, "drop the [..] selector")
            if sel.isdigit():
                idx = int(sel)
                if idx >= len(cur):
                    raise ConfigError(f"{path!r}: index {idx} out of range ({len(cur)} items)", path, "use a valid index")
            else:
                names = [x.get("name") for x in cur if isinstance(x, dict)]
                if sel not in names:
                    raise ConfigError(f"{path!r}: no item named {sel!r} in {key}", path,
                                      f"use one of {', '.join(str(n) for n in names)}")
                idx = names.index(sel)
            if pi == len(parts) - 1 and si == len(selectors) - 1:
                cur[idx] = value
                return
            cur = cur[idx]


def apply_point(graph: DynamoGraph, cluster: SlurmCluster, values: dict[str, Any]) -> tuple[DynamoGraph, SlurmCluster]:
    g = graph.model_dump(mode="json")
    c = cluster.model_dump(mode="json")
    for path, value in values.items():
        if path.startswith("cluster."):
            _set_path(c, path[len("cluster."):], value, "the cluster")
        else:
            _set_path(g, path, value, "the graph")
    return DynamoGraph.from_dict(g), SlurmCluster.from_dict(c)


def point_name(index: int, values: dict[str, Any]) -> str:
    parts = [f"p{index:03d}"]
    for path, v in values.items():
        # workers[0].gpus → workers0_gpus; cluster.nodes → nodes
        tag = re.sub(r"\[([^\]]+)\]", r"\1", path.removeprefix("cluster.")).replace(".", "_")
        parts.append(f"{tag}{v}")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(parts))[:80]


def build(graph: DynamoGraph, cluster: SlurmCluster, points: list[dict[str, Any]], options: RunOptions,
          out_dir: Path, probes: ProbeFile = NO_EXTRA_PROBES) -> list[Point]:
    out_dir.mkdir(parents=True, exist_ok=True)
    result = []
    for i, values in enumerate(points):
        name = point_name(i, values)
        pt = Point(i, values, name)
        try:
            g, c = apply_point(graph, cluster, values)
            job_name = f"{g.name}-{name}"[:64]
            pt.job = render(g, c, options.model_copy(update={"job_name": job_name}), probes=probes)
            pt.script = pt.job.write(out_dir / f"{name}.sbatch")
        except DynamoIacError as e:
            pt.error = str(e).replace("\n", "; ")
        except Exception as e:     # a library bug on one point's values must not end the whole sweep
            pt.error = f"internal error ({type(e).__name__}: {e}); please report it with these values"
        result.append(pt)
    return result


AIPERF_METRICS = {"ttft_ms": ("time_to_first_token", "avg"), "itl_ms": ("inter_token_latency", "avg"),
                  "request_throughput": ("request_throughput", "avg"),
                  "output_token_throughput": ("output_token_throughput", "avg")}


def collect(point: Point, status: Any, timed_out: tuple[float, bool] | None = None) -> None:
    """Fill point.result from the job's status and its aiperf export (if any). `timed_out`:
    (the sweep's --timeout, whether the job was cancelled) for a job that had not finished."""
    r: dict[str, Any] = {"state": status.state}
    if timed_out is not None:
        limit, cancelled = timed_out
        r["state"] = f"UNFINISHED ({status.state}{', cancelled' if cancelled else ', left queued'})"
        r["failure"] = f"not finished within the sweep's --timeout {limit:g} s"
    started = next((e.t for e in status.events if e.kind == "started"), None)
    ready = next((e.t for e in status.events if e.kind == "endpoint"), None)
    if started is not None and ready is not None:
        r["ready_s"] = round(ready - started, 3)
    if status.failure and "failure" not in r:
        r["failure"] = status.failure.splitlines()[0]
    if status.run_dir is not None:
        r["run_dir"] = str(status.run_dir)
        f = Path(status.run_dir) / "aiperf" / "profile_export_aiperf.json"
        if f.is_file():
            try:
                data = json.loads(f.read_text())
            except ValueError:
                data = {}
            for col, (metric, stat) in AIPERF_METRICS.items():
                v = data.get(metric)
                if isinstance(v, dict) and stat in v:
                    r[col] = v[stat]
    point.result = r


def write_summary(points: list[Point], path: Path) -> Path:
    params = list(dict.fromkeys(k for p in points for k in p.values))
    extra = list(dict.fromkeys(k for p in points for k in p.result))
    cols = ["point", *params, "script", "error", "job_id", *extra]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for p in points:
        w.writerow([p.name, *[p.values.get(k, "") for k in params], str(p.script or ""), p.error or "",
                    p.job_id if p.job_id is not None else "", *[p.result.get(k, "") for k in extra]])
    path.write_text(buf.getvalue())
    return path

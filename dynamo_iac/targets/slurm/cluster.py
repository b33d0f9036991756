"""SlurmCluster: what a Slurm cluster offers a graph, read from a strict YAML file.

The graph says WHAT runs; this file says WHERE (partition, account, nodes, GPUs per node), in
WHICH runtime (a pyxis/enroot image, or an interpreter on the nodes) and HOW the steps find each
other (file discovery on a shared directory, or etcd). Every bad field raises ConfigError naming
its path and the fix.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ... import yamlio
from ...errors import ConfigError, Problem

# sbatch --time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED/INFINITE.
TIME_RE = re.compile(r"^(\d+|\d+:\d{2}|\d+:\d{2}:\d{2}|\d+-\d+|\d+-\d+:\d{2}|\d+-\d+:\d{2}:\d{2}|UNLIMITED|INFINITE)$")
NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MEM_RE = re.compile(r"^(\d+)([KMGT]?)$")
# Flags the renderer owns: set through the named field instead, so the plan and the script agree.
OWNED_SBATCH_FLAGS = {
    "--nodes": "nodes", "-N": "nodes", "--nodelist": "nodes", "-w": "nodes",
    "--gpus-per-node": "gpus_per_node", "--gres": "gpus_per_node", "--gpus": "gpus_per_node", "-G": "gpus_per_node",
    "--partition": "partition", "-p": "partition", "--account": "account", "-A": "account",
    "--time": "time", "-t": "time", "--exclusive": "exclusive", "--job-name": "(the graph name)",
    "-J": "(the graph name)", "--output": "output_dir", "-o": "output_dir", "--error": "output_dir",
    "-e": "output_dir", "--container-image": "container.image", "--ntasks": "(one task per step)",
    "-n": "(one task per step)",
}
OWNED_SRUN_FLAGS = {
    "--nodes", "-N", "--nodelist", "-w", "--ntasks", "-n", "--gpus-per-node", "--gres", "--gpus", "-G",
    "--job-name", "-J", "--overlap", "--exact", "--cpus-per-task", "-c", "--mem", "--container-image",
    "--container-name", "--container-mounts", "--output", "-o", "--error", "-e",
}


def mem_mb(text: str) -> int:
    """Slurm memory size ("512", "200G", "1T") → MB, the unit --mem defaults to."""
    m = MEM_RE.match(text.strip().upper())
    if not m:
        raise ValueError(f"{text!r} is not a Slurm memory size (e.g. 512M, 200G)")
    n, unit = int(m.group(1)), m.group(2) or "M"
    return {"K": max(n // 1024, 1), "M": n, "G": n * 1024, "T": n * 1024 * 1024}[unit]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Container(_Strict):
    """pyxis/enroot: every step runs in this image (one named container per node, imported once)."""

    runtime: Literal["pyxis"] = "pyxis"
    image: str | None = Field(None, description="image reference; default: the graph's Dynamo runtime image")
    mounts: list[str] = Field(default_factory=list, description="extra SRC:DST[:ro] mounts; the run dir is added")
    writable: bool = True
    mount_home: bool = False
    name: str = Field("dynamo", pattern=r"^[A-Za-z0-9_-]+$", description="pyxis --container-name")

    @field_validator("mounts")
    @classmethod
    def _mounts(cls, v: list[str]) -> list[str]:
        for m in v:
            parts = m.split(":")
            if len(parts) not in (2, 3) or not all(parts[:2]) or not parts[0].startswith("/"):
                raise ValueError(f"mount {m!r} must be /src:/dst or /src:/dst:ro")
        return v


class StepResources(_Strict):
    """CPUs and memory each srun step asks for (GPUs come from the allocation map)."""

    cpus_per_gpu: int = Field(1, ge=1, description="srun -c for GPU steps = this × GPUs on the node")
    cpus_cpu_step: int = Field(1, ge=1, description="srun -c for CPU-only steps (frontend, broker, bench)")
    mem_per_gpu: str | None = Field(None, description="host memory per GPU, e.g. 200G (--mem per step)")
    mem_cpu_step: str | None = Field(None, description="--mem of CPU-only steps, e.g. 8G")

    @field_validator("mem_per_gpu", "mem_cpu_step")
    @classmethod
    def _mem(cls, v: str | None) -> str | None:
        if v is not None:
            mem_mb(v)
        return v


class Deadlines(_Strict):
    """Enforced: when one passes, the job stops with a report naming the step (seconds)."""

    placement: float = Field(300, gt=0, description="srun → the step's task runs on its GPUs (image import included)")
    frontend: float = Field(120, gt=0, description="frontend step started → its HTTP port answers")
    ready: float = Field(900, gt=0, description="workers launched → model listed and every worker registered")
    infra: float = Field(60, gt=0, description="broker/etcd/nats step started → its port answers")
    stop: float = Field(20, gt=0, description="graceful stop (SIGTERM) before SIGKILL")
    benchmark: float = Field(1800, gt=0, description="aiperf step wall time")


class Ports(_Strict):
    # unset: derived from the job id in the script, so two jobs sharing a node do not collide
    broker_xsub: int | None = Field(None, ge=1024, le=65534)
    broker_xpub: int | None = Field(None, ge=1024, le=65535)
    etcd: int = Field(2379, ge=1024, le=65535)
    nats: int = Field(4222, ge=1024, le=65535)


class SlurmCluster(_Strict):
    name: str = Field("slurm", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="label for maps and reports")
    partition: str | None = None
    account: str | None = None
    time: str = Field("01:00:00", description="sbatch --time")
    nodes: int | list[str] = Field(description="node count, or the node names to pin (--nodelist)")
    gpus_per_node: int = Field(ge=1, le=64, description="GPUs on each node (the planner places workers on them)")
    gpu_directive: Literal["gpus-per-node", "gres"] = "gpus-per-node"
    gpu_type: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$", description="typed gres, e.g. h100")
    exclusive: bool = True
    container: Container | None = None
    python: str = Field("python3", description="Dynamo interpreter on the nodes when no container is used")
    probe_python: str = Field("python3", description="interpreter on the batch host that runs the probes")
    discovery: Literal["file", "etcd"] = "file"
    etcd_command: str = "etcd"
    nats: bool = Field(False, description="start nats-server and use NATS for the event plane")
    nats_command: str = "nats-server"
    event_broker: bool = Field(True, description="a ZMQ XSUB/XPUB broker step, so publishers connect instead of binding 0.0.0.0")
    bind: str = Field("node", description="'node' = each step binds its node's address; or a literal IP such as 0.0.0.0")
    output_dir: str = Field("dynamo-iac-runs", description="where run dirs go; must be shared by all nodes")
    sbatch_flags: list[str] = Field(default_factory=list, description="extra #SBATCH lines, e.g. --qos=high")
    srun_flags: list[str] = Field(default_factory=list, description="extra flags on every srun step, e.g. --mpi=pmix")
    env: dict[str, str] = Field(default_factory=dict, description="env for every step")
    step_resources: StepResources = Field(default_factory=StepResources)
    deadlines: Deadlines = Field(default_factory=Deadlines)
    probe_interval: float = Field(1.0, gt=0, le=60)
    ports: Ports = Field(default_factory=Ports)

    @field_validator("time")
    @classmethod
    def _time(cls, v: str) -> str:
        if not TIME_RE.match(v):
            raise ValueError(f"{v!r} is not an sbatch time limit (use e.g. 30, 04:00:00, 1-00:00:00)")
        return v

    @field_validator("nodes")
    @classmethod
    def _nodes(cls, v: int | list[str]) -> int | list[str]:
        if isinstance(v, int):
            if not 1 <= v <= 4096:
                raise ValueError(f"node count {v} must be between 1 and 4096")
            return v
        if not v:
            raise ValueError("node list is empty")
        for n in v:
            if not NODE_RE.match(n):
                raise ValueError(f"{n!r} is not a node name")
        if len(set(v)) != len(v):
            raise ValueError("node names repeat")
        return v

    @field_validator("bind")
    @classmethod
    def _bind(cls, v: str) -> str:
        if v != "node" and not re.match(r"^[0-9.]+$|^[0-9a-fA-F:]+$", v):
            raise ValueError(f"{v!r} is neither 'node' nor an IP address")
        return v

    @field_validator("sbatch_flags")
    @classmethod
    def _sbatch_flags(cls, v: list[str]) -> list[str]:
        for f in v:
            _check_flag(f, OWNED_SBATCH_FLAGS)
        return v

    @field_validator("srun_flags")
    @classmethod
    def _srun_flags(cls, v: list[str]) -> list[str]:
        for f in v:
            _check_flag(f, {k: "(set by the renderer per step)" for k in OWNED_SRUN_FLAGS})
        return v

    @model_validator(mode="after")
    def _ports(self) -> "SlurmCluster":
        used = [p for p in (self.ports.broker_xsub, self.ports.broker_xpub, self.ports.etcd, self.ports.nats)
                if p is not None]
        if len(set(used)) != len(used):
            raise ValueError("ports: broker_xsub, broker_xpub, etcd and nats must differ")
        return self

    # ------------------------------------------------------------------ derived
    @property
    def node_count(self) -> int:
        return self.nodes if isinstance(self.nodes, int) else len(self.nodes)

    @property
    def node_names(self) -> list[str]:
        """Names in the allocation map: the pinned names, or logical n0..nK resolved at run time."""
        if isinstance(self.nodes, list):
            return list(self.nodes)
        return [f"n{i}" for i in range(self.nodes)]

    @property
    def time_limit_s(self) -> int | None:
        """The sbatch time limit in seconds (None: UNLIMITED/INFINITE)."""
        t = self.time
        if t in ("UNLIMITED", "INFINITE"):
            return None
        days, _, rest = t.rpartition("-")
        parts = [int(x) for x in rest.split(":")]
        if days:                    # D-HH[:MM[:SS]]
            h, m, sec = (parts + [0, 0])[:3]
        elif len(parts) == 3:       # HH:MM:SS
            h, m, sec = parts
        else:                       # MM[:SS]
            h, (m, sec) = 0, (parts + [0])[:2]
        return ((int(days or 0) * 24 + h) * 60 + m) * 60 + sec

    @property
    def pinned(self) -> bool:
        return isinstance(self.nodes, list)

    @classmethod
    def from_dict(cls, data: Any, source: str = "cluster") -> "SlurmCluster":
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of SlurmCluster fields, got {type(data).__name__}",
                              "cluster", "write name, partition, nodes, gpus_per_node … as a YAML mapping")
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise ConfigError(_problems(e, source)) from None


UNION_TAGS = ("int", "list[str]", "str", "function-after[_nodes(), union[int,list[str]]]")


def _check_flag(flag: str, owned: dict[str, str]) -> None:
    if not flag.startswith("-"):
        raise ValueError(f"{flag!r} is not a flag (start it with - or --)")
    name = flag.split("=", 1)[0].split(" ", 1)[0]
    if name in owned:
        raise ValueError(f"{name} is set by the renderer; use {owned[name]} instead")


def _problems(e: ValidationError, source: str) -> list[Problem]:
    import difflib

    out = []
    for err in e.errors():
        loc = ""
        for part in err["loc"]:
            if part in UNION_TAGS:      # `nodes: int | list[str]` names its branch; users do not
                continue
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        path = f"cluster.{loc}" if loc else "cluster"
        msg = err["msg"].removeprefix("Value error, ")
        fix = ""
        if err["type"] == "extra_forbidden":
            name = str(err["loc"][-1])
            fields = _fields_at(err["loc"][:-1])
            close = difflib.get_close_matches(name, fields, n=1)
            msg = "unknown field"
            fix = f"did you mean {close[0]!r}?" if close else f"remove it (known: {', '.join(sorted(fields))})"
        elif err["type"] == "missing":
            fix = "add it to the cluster file"
        out.append(Problem(f"{source}: {path}" if source != "cluster" else path, msg, fix))
    # `nodes: int | list[str]` fails once per branch: say it once, in the user's terms
    nodes_path = f"{source}: cluster.nodes" if source != "cluster" else "cluster.nodes"
    type_errors = [p for p in out if p.path == nodes_path and p.message.startswith("Input should be")]
    if len(type_errors) > 1:
        out = [p for p in out if p not in type_errors]
        out.append(Problem(nodes_path, "must be a node count or a list of node names",
                           "write e.g. `nodes: 2` or `nodes: [gpu-001, gpu-002]`"))
    seen: set[tuple[str, str]] = set()
    uniq = []
    for p in out:
        if (p.path, p.message) not in seen:
            seen.add((p.path, p.message))
            uniq.append(p)
    return uniq


def _fields_at(loc: tuple) -> list[str]:
    model: type[BaseModel] = SlurmCluster
    for part in loc:
        f = model.model_fields.get(str(part))
        if f is None:
            break
        ann = f.annotation
        for cand in (ann, *getattr(ann, "__args__", ())):
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                model = cand
                break
    return list(model.model_fields)


def load_cluster(path: str | Path) -> SlurmCluster:
    data = yamlio.load_file(path, "cluster", "cluster file")
    return SlurmCluster.from_dict(data, source=str(path))

"""Command lines of Dynamo processes, per backend — shared by every target (k8s, Slurm, local).

Flags follow the upstream examples in shared/reference/dynamo-examples:
  vllm:   python3 -m dynamo.vllm   --model M --tensor-parallel-size N --disaggregation-mode prefill
          --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'
  sglang: python3 -m dynamo.sglang --model-path M --tp N [--dp N --enable-dp-attention] [--ep-size N]
          --disaggregation-mode prefill --disaggregation-transfer-backend nixl
  trtllm: python3 -m dynamo.trtllm --model-path M --tensor-parallel-size N --disaggregation-mode prefill
"""
from __future__ import annotations

import json

from .model import DynamoGraph, Frontend, Worker

MODULE = {"vllm": "dynamo.vllm", "sglang": "dynamo.sglang", "trtllm": "dynamo.trtllm"}


def kv_transfer_config(backends: tuple[str, ...] | None = None) -> str:
    cfg: dict = {"kv_connector": "NixlConnector", "kv_role": "kv_both"}
    if backends:
        cfg["kv_connector_extra_config"] = {"backends": list(backends)}
    return json.dumps(cfg, separators=(",", ":"))


def worker_command(graph: DynamoGraph, worker: Worker, *, kv_backends: tuple[str, ...] | None = None,
                   python: str = "python3") -> tuple[list[str], list[str]]:
    """(command, args) of one worker replica. Explicit command/args on the worker win."""
    if worker.command is not None or worker.args is not None or not worker.generate_command:
        return list(worker.command or []), list(worker.args or [])
    assert graph.model is not None   # graph.check() guarantees it
    b, m, par = graph.backend, graph.model, worker.parallelism
    args: list[str] = []
    served = m.served_name or m.id
    if b == "vllm":
        args += ["--model", m.id, "--served-model-name", served]
        if m.revision:
            args += ["--revision", m.revision]
        args += ["--tensor-parallel-size", str(worker.tp)]
        if par and par.pp > 1:
            args += ["--pipeline-parallel-size", str(par.pp)]
        if par and par.dp > 1:
            args += ["--data-parallel-size", str(par.dp)]
        if par and par.ep > 1:
            args += ["--enable-expert-parallel"]
        if worker.role != "agg":
            args += ["--disaggregation-mode", worker.role, "--kv-transfer-config", kv_transfer_config(kv_backends)]
    elif b == "sglang":
        args += ["--model-path", m.id, "--served-model-name", served, "--tp", str(worker.tp)]
        if m.revision:
            args += ["--revision", m.revision]
        if par and par.pp > 1:
            args += ["--pp-size", str(par.pp)]
        if par and par.dp > 1:
            args += ["--dp", str(par.dp)]
            if par.dp_attention:
                args += ["--enable-dp-attention"]
        if par and par.ep > 1:
            args += ["--ep-size", str(par.ep)]
        if worker.role != "agg":
            args += ["--disaggregation-mode", worker.role, "--disaggregation-transfer-backend", "nixl"]
    else:  # trtllm
        args += ["--model-path", m.id, "--served-model-name", served, "--tensor-parallel-size", str(worker.tp)]
        if par and par.pp > 1:
            args += ["--pipeline-parallel-size", str(par.pp)]
        if par and par.ep > 1:
            args += ["--expert-parallel-size", str(par.ep)]
        if worker.role != "agg":
            args += ["--disaggregation-mode", worker.role]
    args += worker.engine_args
    return [python, "-m", MODULE[b]], args


def frontend_command(frontend: Frontend, *, python: str = "python3") -> tuple[list[str], list[str]]:
    if frontend.command is not None or frontend.args is not None or not frontend.generate_command:
        return list(frontend.command or []), list(frontend.args or [])
    args = ["--http-port", str(frontend.port)]
    if frontend.router_mode != "round-robin":
        args += ["--router-mode", frontend.router_mode]
    return [python, "-m", "dynamo.frontend"], args

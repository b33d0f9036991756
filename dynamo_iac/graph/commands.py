"""Command lines of Dynamo processes, per backend — shared by every target (k8s, Slurm, local).

Flags follow the upstream examples in shared/reference/dynamo-examples:
  vllm:   python3 -m dynamo.vllm   --model M --tensor-parallel-size N --disaggregation-mode prefill
          --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'
  sglang: python3 -m dynamo.sglang --model-path M --tp N [--dp N --enable-dp-attention] [--ep-size N]
          --trust-remote-code --skip-tokenizer-init
          --disaggregation-mode prefill --disaggregation-transfer-backend nixl
          --disaggregation-bootstrap-port 12345 --host 0.0.0.0
  trtllm: python3 -m dynamo.trtllm --model-path M --tensor-parallel-size N --disaggregation-mode prefill
  planner: python3 -m dynamo.planner --config '{"environment": "kubernetes", "backend": B, ...}'
tests/test_graph_commands.py checks every upstream example's command against these, per backend × role.
"""
from __future__ import annotations

import json

from .model import DynamoGraph, Frontend, Planner, Worker

MODULE = {"vllm": "dynamo.vllm", "sglang": "dynamo.sglang", "trtllm": "dynamo.trtllm"}
# Every upstream sglang example sets these: Dynamo's frontend tokenizes (the worker gets token ids).
SGLANG_COMMON = ("--trust-remote-code", "--skip-tokenizer-init")
# Disaggregated sglang workers: the prefill pod's bootstrap server must listen on the pod IP, not
# loopback, or decode pods cannot reach it (upstream ai-dynamo/dynamo PR #3666); the port is the
# one the upstream examples/backends/sglang/deploy manifests use.
SGLANG_BOOTSTRAP_PORT = 12345
SGLANG_DISAGG = ("--disaggregation-transfer-backend", "nixl",
                 "--disaggregation-bootstrap-port", str(SGLANG_BOOTSTRAP_PORT), "--host", "0.0.0.0")


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
        args += SGLANG_COMMON
        if worker.role != "agg":
            args += ["--disaggregation-mode", worker.role, *SGLANG_DISAGG]
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


def planner_command(graph: DynamoGraph, planner: Planner, *, python: str = "python3") -> tuple[list[str], list[str]]:
    """The SLA planner as the upstream disagg_planner examples run it: one JSON --config, with the
    environment and backend filled in and the planner's `config` keys on top."""
    if planner.command is not None or planner.args is not None or not planner.generate_command:
        return list(planner.command or []), list(planner.args or [])
    cfg = {"environment": "kubernetes", "backend": graph.backend, **planner.config}
    return [python, "-m", "dynamo.planner"], ["--config", json.dumps(cfg)]

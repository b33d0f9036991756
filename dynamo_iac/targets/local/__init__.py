"""Local target: a graph as real Dynamo processes on this machine (frontend, workers, a ZMQ broker),
file-based discovery in a per-run directory, everything on 127.0.0.1.

    from dynamo_iac.targets import local
    with local.up(graph, port=0) as run:       # returns once the graph is ready
        ...  # OpenAI-compatible API at run.url, model run.model
    # leaving the block stops every process

Imports stay lazy: the supervisor that `up` starts imports this package on every run.
"""
from __future__ import annotations

from typing import Any

_EXPORTS = {
    "up": "runner", "status": "runner", "down": "runner", "Run": "runner", "LocalRunError": "runner",
    "default_run_dir": "runner", "build_plan": "launch", "LaunchPlan": "launch", "bench": "bench",
    "BenchResult": "bench", "write_model_dir": "modeldir", "find_python": "runtime",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(name)

"""L3 patterns: one call builds a whole graph; the L2 objects it returns stay editable."""
from __future__ import annotations

from typing import Any

from ..graph.model import Backend, DynamoGraph, Frontend, Model, Parallelism, RouterMode, Worker


def _model(model: Model | str) -> Model:
    return model if isinstance(model, Model) else Model(id=model)


def _worker(w: Worker | None, role: str, tp: int) -> Worker:
    if w is None:
        return Worker(role=role, parallelism=Parallelism(tp=tp))
    return w.model_copy(update={"role": role}) if w.role != role else w


def aggregated(name: str, model: Model | str, *, backend: Backend = "vllm", worker: Worker | None = None,
               tp: int = 1, replicas: int = 1, router: RouterMode = "round-robin", **graph: Any) -> DynamoGraph:
    """Frontend + `replicas` aggregated workers (prefill and decode in one engine)."""
    w = _worker(worker, "agg", tp)
    if worker is None or "replicas" not in worker.model_fields_set:
        w = w.model_copy(update={"replicas": replicas})
    return DynamoGraph(name=name, backend=backend, model=_model(model),
                       frontend=graph.pop("frontend", None) or Frontend(router_mode=router), workers=[w], **graph)


def disaggregated(name: str, model: Model | str, *, backend: Backend = "vllm", prefill: Worker | None = None,
                  decode: Worker | None = None, tp: int = 1, router: RouterMode = "kv", **graph: Any) -> DynamoGraph:
    """Frontend (KV-aware router by default) + prefill workers + decode workers exchanging KV over NIXL."""
    return DynamoGraph(name=name, backend=backend, model=_model(model),
                       frontend=graph.pop("frontend", None) or Frontend(router_mode=router),
                       workers=[_worker(prefill, "prefill", tp), _worker(decode, "decode", tp)], **graph)


def multinode(name: str, model: Model | str, *, gpus: int, tp: int | None = None, pp: int = 1,
              backend: Backend = "vllm", replicas: int = 1, **graph: Any) -> DynamoGraph:
    """One large aggregated worker spanning nodes (TP×PP = gpus); the target decides the node count."""
    tp = tp or gpus // pp
    w = Worker(role="agg", parallelism=Parallelism(tp=tp, pp=pp), gpus=gpus, replicas=replicas)
    return DynamoGraph(name=name, backend=backend, model=_model(model), workers=[w], **graph)


__all__ = ["aggregated", "disaggregated", "multinode"]

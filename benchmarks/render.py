"""Render + validate 1,000 graphs (both the CRD schema and admission rules) and print graphs/s.
Target: >= 500 graphs/s on a 2-core machine, excluding the one-time schema load.
Last line: one JSON object with the figures."""
from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dynamo_iac.graph import DynamoGraph, Frontend, Model, Parallelism, Worker  # noqa: E402
from dynamo_iac.targets.k8s.validate import validate_manifest  # noqa: E402


def random_graph(rng: random.Random, i: int) -> DynamoGraph:
    backend = rng.choice(["vllm", "sglang", "trtllm"])
    disagg = rng.random() < 0.6
    tp = rng.choice([1, 2, 4, 8])
    if disagg:
        workers = [Worker(role="prefill", parallelism=Parallelism(tp=tp), replicas=rng.randint(1, 4)),
                   Worker(role="decode", parallelism=Parallelism(tp=rng.choice([1, 2, 4, 8])),
                          replicas=rng.randint(1, 4))]
    else:
        workers = [Worker(role="agg", name=f"w{k}", parallelism=Parallelism(tp=tp)) for k in range(rng.randint(1, 6))]
    return DynamoGraph(name=f"g{i}", backend=backend, model=Model(f"org/model-{i % 7}"),
                       frontend=Frontend(router_mode=rng.choice(["kv", "round-robin"])), workers=workers)


def main(n: int = 1000) -> None:
    crd_dir = ROOT.parent / "shared" / "reference" / "dynamo-crds"
    t0 = time.perf_counter()
    validate_manifest(random_graph(random.Random(0), 0).to_dgd(), crd_dir=crd_dir)   # one-time schema load
    load_s = time.perf_counter() - t0
    rng = random.Random(42)
    graphs = [random_graph(rng, i) for i in range(n)]
    t0 = time.perf_counter()
    invalid = 0
    for i, g in enumerate(graphs):
        api = "v1beta1" if i % 2 == 0 else "v1alpha1"
        invalid += bool(validate_manifest(g.to_dgd(api), crd_dir=crd_dir))
    dt = time.perf_counter() - t0
    rate = n / dt
    print(f"schema load (one-time): {load_s * 1000:.0f} ms")
    print(f"rendered + validated {n} graphs in {dt:.2f} s: {rate:.0f} graphs/s (target >= 500); invalid: {invalid}")
    print(json.dumps({"graphs": n, "seconds": round(dt, 3), "graphs_per_second": round(rate, 1),
                      "schema_load_ms": round(load_s * 1000, 1), "invalid": invalid, "target_per_second": 500,
                      "meets_target": rate >= 500 and invalid == 0}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)

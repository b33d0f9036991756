"""Plan 1,000 random graphs (up to 64 worker replicas and 512 GPUs each) and print the total time
(target < 1 s on a 2-core machine) and nodes used ÷ lower bound where the bound is achievable
(target 1.00). Last line: one JSON object with the figures."""
from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynamo_iac.graph import DynamoGraph, Model, Worker  # noqa: E402
from dynamo_iac.hardware.catalog import load  # noqa: E402
from dynamo_iac.hardware.pool import GpuPool  # noqa: E402
from dynamo_iac.plan import plan  # noqa: E402
from dynamo_iac.plan.capacity import node_lower_bound  # noqa: E402

INSTANCES = ["p5.48xlarge", "Standard_ND96isr_H100_v5", "a3-ultragpu-8g", "g6e.12xlarge", "p4d.24xlarge"]


def random_graph(rng: random.Random, i: int) -> DynamoGraph:
    budget_gpus, budget_replicas = 512, 64
    sizes = [1, 2, 4, 8, 16] if rng.random() < 0.8 else [1, 2, 3, 4, 6, 8]
    disagg = rng.random() < 0.5
    workers = []
    roles = ["prefill", "decode"] if disagg else ["agg"] * rng.randint(1, 6)
    for k, role in enumerate(roles):
        g = rng.choice(sizes)
        reps = max(1, min(rng.randint(1, 16), budget_replicas // len(roles), budget_gpus // (g * len(roles))))
        workers.append(Worker(role=role, name=f"{role}{k}", gpus=g, replicas=reps))
    return DynamoGraph(name=f"g{i}", model=Model("m/x"), workers=workers)


def main(n: int = 1000) -> None:
    rng = random.Random(7)
    cat = load()
    cases = []
    for i in range(n):
        inst = rng.choice(INSTANCES)
        g = random_graph(rng, i)
        if any(w.gpu_count > cat.get(inst).gpus and w.gpu_count % cat.get(inst).gpus for w in g.workers):
            inst = "p5.48xlarge"
        cases.append((g, GpuPool(name="p", instance_type=inst, nodes=1, max_nodes=1024)))
    t0 = time.perf_counter()
    plans = [plan(g, [pool], catalog=cat) for g, pool in cases]
    dt = time.perf_counter() - t0
    ratios = []
    for (g, pool), p in zip(cases, plans):
        lb = node_lower_bound(g, cat.get(pool.instance_type))
        cap = cat.get(pool.instance_type).gpus
        sizes = sorted({w.gpu_count for w in g.workers if w.gpu_count <= cap})
        # the bound ceil(GPUs / node) is achievable when every size divides the next and the node
        if all(b % a == 0 for a, b in zip(sizes, sizes[1:])) and all(cap % x == 0 for x in sizes):
            ratios.append(p.total_nodes() / lb)
    ratio = max(ratios)
    print(f"planned {n} graphs in {dt:.3f} s (target < 1 s)")
    print(f"nodes used / lower bound where achievable: max {ratio:.2f} over {len(ratios)} graphs (target 1.00)")
    print(json.dumps({"graphs": n, "seconds": round(dt, 4), "target_seconds": 1.0,
                      "max_nodes_over_lower_bound": round(ratio, 4), "graphs_with_achievable_bound": len(ratios),
                      "meets_target": dt < 1.0 and ratio == 1.0}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)

"""Wall time of `dynamo-iac plan -s aws-p5-disagg` next to a bare `python -c "import pulumi_aws"`,
in the same run, and their ratio (target <= 2.0). Best of 5 runs each (the minimum: other load
only ever adds time).

The bare import is lazy (pulumi_aws resolves submodules on first use), so it is not the floor:
a program that registers the stack's resources must import pulumi_aws.ec2/eks/iam/efs and
pulumi_kubernetes core/helm, whose package __init__s load every class of the module. That import
is timed too, as the real floor; plan's own work (config, planner, graph render, offline engine,
policies, manifest checks) is the difference.

The Dynamo CRD's schema is parsed once per CRD content and cached as JSON in the user's cache
dir (targets/k8s/schema_cache.py); the headline figure is the warm run every plan after the first
pays. The cold figure (a fresh, empty cache dir for each run) is printed beside it.
`plan` pauses Python's cyclic garbage collector while it plans and freezes what is left alive
(preview/gcpause.py: the SDK classes would be re-scanned by every collection, at exit too; peak
memory is the same), so the SDK-classes floor is also timed that way, the like-for-like comparison.
Last line: one JSON object with the figures."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def best_of(cmd: list[str], runs: int = 5, cold: bool = False) -> float:
    best = float("inf")
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "NO_COLOR": "1", **({"XDG_CACHE_HOME": cache} if cold else {})}
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    with tempfile.TemporaryDirectory() as out:
        plan = [sys.executable, "-m", "dynamo_iac.cli", "plan", "-s", "aws-p5-disagg", "--out", out]
        plan_s = best_of(plan)
        cold_s = best_of(plan, cold=True)
    import_s = best_of([sys.executable, "-c", "import pulumi_aws"])
    # what any program that registers these resources must load (the SDKs resolve classes lazily,
    # so the bare import above loads almost nothing)
    classes = ("import pulumi_aws as a, pulumi_kubernetes as k; "
               "a.ec2.Vpc, a.ec2.LaunchTemplate, a.eks.NodeGroup, a.iam.Role, a.efs.FileSystem; "
               "k.helm.v3.Release, k.core.v1.Secret, k.apiextensions.CustomResource")
    classes_s = best_of([sys.executable, "-c", classes])
    classes_nogc_s = best_of([sys.executable, "-c", "import gc; gc.disable(); " + classes + "; gc.freeze()"])
    ratio = plan_s / import_s
    print(f"dynamo-iac plan -s aws-p5-disagg: {plan_s:.2f} s (cold CRD schema cache: {cold_s:.2f} s)")
    print(f"python -c 'import pulumi_aws':     {import_s:.2f} s")
    print(f"import of the SDK classes the stack registers: {classes_s:.2f} s "
          f"({classes_nogc_s:.2f} s with the cyclic GC paused and frozen, as plan runs)")
    print(f"ratio: {ratio:.2f} (target <= 2.0); plan / SDK-classes import (GC paused in both): "
          f"{plan_s / classes_nogc_s:.2f}")
    print(json.dumps({"plan_seconds": round(plan_s, 3), "plan_cold_cache_seconds": round(cold_s, 3),
                      "import_pulumi_aws_seconds": round(import_s, 3),
                      "import_sdk_classes_seconds": round(classes_s, 3),
                      "import_sdk_classes_gc_paused_seconds": round(classes_nogc_s, 3), "ratio": round(ratio, 2),
                      "ratio_to_sdk_classes": round(plan_s / classes_nogc_s, 2), "target_ratio": 2.0,
                      "meets_target": ratio <= 2.0}))


if __name__ == "__main__":
    main()

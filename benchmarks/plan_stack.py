"""Wall time of `dynamo-iac plan -s aws-p5-disagg` next to a bare `python -c "import pulumi_aws"`,
in the same run, and their ratio (target <= 2.0). Best of 3 runs each.
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


def best_of(cmd: list[str], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**os.environ, "NO_COLOR": "1"})
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    with tempfile.TemporaryDirectory() as out:
        plan_s = best_of([sys.executable, "-m", "dynamo_iac.cli", "plan", "-s", "aws-p5-disagg", "--out", out])
    import_s = best_of([sys.executable, "-c", "import pulumi_aws"])
    ratio = plan_s / import_s
    print(f"dynamo-iac plan -s aws-p5-disagg: {plan_s:.2f} s")
    print(f"python -c 'import pulumi_aws':     {import_s:.2f} s")
    print(f"ratio: {ratio:.2f} (target <= 2.0)")
    print(json.dumps({"plan_seconds": round(plan_s, 3), "import_pulumi_aws_seconds": round(import_s, 3),
                      "ratio": round(ratio, 2), "target_ratio": 2.0, "meets_target": ratio <= 2.0}))


if __name__ == "__main__":
    main()

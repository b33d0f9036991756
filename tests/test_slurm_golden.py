"""One graph, two targets: the p5-like Slurm script matches its golden file, and the very same
graph object renders a DGD that the real CRD schema accepts.

Regenerate the golden file after an intended change: UPDATE_GOLDEN=1 pytest tests/test_slurm_golden.py
(the copies of shared library files embedded in the script are compared by hash, so edits to
targets/probes.py do not churn the golden file; the hash is checked against the source instead).
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess

import yaml

from dynamo_iac.graph import load_graph
from dynamo_iac.targets.slurm import RunOptions, load_cluster, render
from dynamo_iac.targets.slurm.script import redact_embedded

from conftest import CRDS, ROOT, needs_shared

FIX = ROOT / "tests" / "fixtures" / "slurm"
GOLDEN = ROOT / "tests" / "golden" / "slurm_p5_disagg.sbatch"


def _p5_job():
    graph = load_graph(str(FIX / "p5-disagg.yaml"))
    return graph, render(graph, load_cluster(FIX / "p5-cluster.yaml"), RunOptions())


def test_p5_script_matches_golden_and_same_graph_renders_valid_dgd():
    graph, job = _p5_job()
    text = redact_embedded(job.script)
    text = re.sub(r"^# dynamo-iac \S+:", "# dynamo-iac <version>:", text, count=1, flags=re.M)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "rendered script differs from tests/golden/slurm_p5_disagg.sbatch"

    # the same graph object → a DGD with the same components and GPU counts, which the operator
    # admits: its webhook rules always; the CRD schema and CEL rules where ../shared has the CRDs
    from dynamo_iac.targets.k8s.admission import admission_problems
    from dynamo_iac.targets.k8s.validate import validate_manifest

    dgd = graph.to_dgd("v1beta1")
    comps = {c["name"]: c for c in dgd["spec"]["components"]}
    assert set(comps) == {"Frontend", "PrefillWorker", "DecodeWorker"}
    assert comps["PrefillWorker"]["replicas"] == 2 and comps["DecodeWorker"]["replicas"] == 1
    gpus = {n: int(lim["nvidia.com/gpu"]) for n, c in comps.items()
            if "nvidia.com/gpu" in (lim := c["podTemplate"]["spec"]["containers"][0].get("resources", {}).get("limits", {}))}
    assert gpus == {w.name: w.gpu_count for w in graph.workers}
    assert graph.to_yaml("v1beta1") == graph.to_yaml("v1beta1")
    for api in ("v1beta1", "v1alpha1"):
        manifest = graph.to_dgd(api)
        assert admission_problems(manifest) == [], api
        if CRDS.is_dir():
            assert validate_manifest(manifest, crd_dir=CRDS) == [], api
    # the admission check is live: an unpinned image on the same DGD is refused, naming the field
    broken = graph.to_dgd("v1beta1")
    broken["spec"]["components"][0]["podTemplate"]["spec"]["containers"][0]["image"] = "nvcr.io/x/vllm-runtime:latest"
    assert [p.path for p in admission_problems(broken)] == ["spec.components[0].podTemplate.spec.containers[0].image"]


@needs_shared
def test_p5_dgd_passes_the_real_crd_schema():
    import jsonschema

    graph, _ = _p5_job()
    for api in ("v1beta1", "v1alpha1"):
        dgd = graph.to_dgd(api)
        crd = yaml.safe_load((CRDS / "nvidia.com_dynamographdeployments.yaml").read_text())
        version = next(v for v in crd["spec"]["versions"] if v["name"] == api)
        jsonschema.validate(dgd, version["schema"]["openAPIV3Schema"])
    try:
        problems = graph.validate(crd_dir=CRDS)
    except ImportError:       # the k8s validator is optional in this build
        problems = []
    assert problems == []


def test_p5_script_content():
    _, job = _p5_job()
    s = job.script
    assert s.startswith("#!/bin/bash\n")
    # header from the plan: 2 nodes × 8 GPUs, exclusive, the cluster's flags
    for line in ("#SBATCH --nodes=2", "#SBATCH --gpus-per-node=h100:8", "#SBATCH --partition=gpu",
                 "#SBATCH --account=inference", "#SBATCH --time=04:00:00", "#SBATCH --exclusive", "#SBATCH --qos=high"):
        assert line + "\n" in s
    # one srun step per replica, pinned to its node and GPU count, in GPU order
    names = re.findall(r"^(?:\S+=\S+ )?srun --job-name=(\S+)", s, flags=re.M)
    assert names == ["image-import", "broker", "Frontend-0", "DecodeWorker-0", "PrefillWorker-0", "PrefillWorker-1"]
    assert '"${DYN_NODE[n1]}=0,1,2,3"' in s and '"${DYN_NODE[n1]}=4,5,6,7"' in s
    assert '"${DYN_NODE[n0]}=0,1,2,3,4,5,6,7"' in s
    assert s.count("--gpus-per-node=h100:4 --exact --cpus-per-task=48 --mem=819200M") == 2
    assert "--gpus-per-node=h100:8 --exact --cpus-per-task=96 --mem=1638400M" in s
    # PrefillWorker-1 shares n0 with PrefillWorker-0: it starts only after -0 holds GPUs 0-3
    i0 = s.index("files \"$DYN_RUN_DIR/placement\" PrefillWorker-0.")
    assert i0 < s.index("srun --job-name=PrefillWorker-1")
    # pyxis: image from the Dynamo release table, run dir mounted, named container
    assert "--container-image=nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.2.0" in s
    assert '--container-mounts="$DYN_RUN_DIR:$DYN_RUN_DIR,/fsx/hf-cache:/root/.cache/huggingface"' in s
    # the worker command is the graph's vLLM command line
    assert "python3 -m dynamo.vllm --model Qwen/Qwen3-32B" in s and "--disaggregation-mode prefill" in s
    assert "--router-mode kv" in s
    # embedded probes are byte copies of the shared module
    src = (ROOT / "dynamo_iac" / "targets" / "probes.py").read_text()
    digest = hashlib.sha256(src.rstrip("\n").encode()).hexdigest()
    assert f"# sha256 {digest}" in redact_embedded(s)


def test_rendered_scripts_are_valid_bash(tmp_path):
    _, job = _p5_job()
    p = job.write(tmp_path / "job.sbatch")
    r = subprocess.run(["bash", "-n", str(p)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_render_is_deterministic():
    _, a = _p5_job()
    _, b = _p5_job()
    assert a.script == b.script

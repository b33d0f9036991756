"""DynamoDeployment's optional model-download Job, field by field under the recording mock monitor:
pinned image, the `hf download` of the model id / revision into the cache mount, the HF token
from the platform's Secret (never a literal), the model-cache PVC, retry policy, CPU-only
placement; and the DGD created only after it (Pulumi awaits the Job's completion)."""
from __future__ import annotations

import pytest

from dynamo_iac import patterns, versions
from dynamo_iac.errors import DynamoIacError
from dynamo_iac.graph import Images, Model, ModelCache, Parallelism, Worker
from dynamo_iac.hardware.pool import GpuPool
from dynamo_iac.preview.engine import run_program

pytestmark = pytest.mark.mocks
REVISION = "9216db5781bf21249d130ec9da846c4624c16137"
P5 = GpuPool(name="h100", instance_type="p5.48xlarge", nodes=2, zones=["us-east-1a"])


def graph(model: Model, **kw):
    return patterns.disaggregated("qwen3-32b", model, prefill=Worker(parallelism=Parallelism(tp=4)),
                                  decode=Worker(parallelism=Parallelism(tp=4)), **kw)


CACHED = graph(Model("Qwen/Qwen3-32B", revision=REVISION, cache=ModelCache(mount_path="/models", pvc="weights")))


def stack(g, hf_token=True, **kw):
    def program():
        import pulumi

        from dynamo_iac.components.aws import AwsGpuCluster
        from dynamo_iac.components.deployment import DynamoDeployment
        from dynamo_iac.components.platform import GpuPlatform

        c = AwsGpuCluster("prod", region="us-east-1", pools=[P5])
        p = GpuPlatform("platform", cluster=c, graphs=[g],
                        hf_token=pulumi.Output.secret("hf_sentinel") if hf_token else None)
        DynamoDeployment("qwen3", graph=g, platform=p, pool=P5, model_download=True, **kw)
    return run_program(program, project="t", stack="t")


def only(rec, t):
    (r,) = [r for r in rec.resources if r.type == t]
    return r


def test_download_job_fields_exactly():
    rec = stack(CACHED)
    job = only(rec, "kubernetes:batch/v1:Job")
    assert job.inputs["metadata"] == {"name": "qwen3-32b-model-download", "namespace": "dynamo"}
    assert job.inputs["spec"] == {"backoffLimit": 3, "template": {"spec": {
        "restartPolicy": "Never",
        "containers": [{
            "name": "download",
            "image": versions.release().image("vllm"),            # the workers' release, pinned in versions.yaml
            "command": ["hf", "download", "Qwen/Qwen3-32B", "--revision", REVISION],
            "env": [{"name": "HF_HOME", "value": "/models"}],
            "envFrom": [{"secretRef": {"name": "hf-token-secret"}}],
            "volumeMounts": [{"name": "weights", "mountPath": "/models"}],
            "resources": {"requests": {"cpu": "2", "memory": "4Gi"}}}],
        "volumes": [{"name": "weights", "persistentVolumeClaim": {"claimName": "weights"}}]}}}
    # CPU-only: no GPU toleration and no GPU request, so the tainted GPU pools never take it
    spec = job.inputs["spec"]["template"]["spec"]
    assert "tolerations" not in spec and "nvidia.com/gpu" not in str(spec)
    assert job.secret_paths == [] and "hf_sentinel" not in str(rec.resources)


def test_download_job_uses_the_graphs_image_override_its_secret_and_no_revision():
    g = graph(Model("Qwen/Qwen3-32B", cache=ModelCache()), images=Images(runtime="nvcr.io/acme/vllm:1.2.0-custom"),
              hf_token_secret="my-hf")
    job = only(stack(g, hf_token=False), "kubernetes:batch/v1:Job")
    (c,) = job.inputs["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "nvcr.io/acme/vllm:1.2.0-custom"
    assert c["command"] == ["hf", "download", "Qwen/Qwen3-32B"]
    assert c["envFrom"] == [{"secretRef": {"name": "my-hf"}}]       # the user's own Secret, as the workers'
    public = graph(Model("Qwen/Qwen3-32B", cache=ModelCache()), hf_token_secret=None)
    (c,) = only(stack(public, hf_token=False), "kubernetes:batch/v1:Job").inputs["spec"]["template"]["spec"][
        "containers"]
    assert "envFrom" not in c and "HF_TOKEN" not in str(c)          # no token anywhere: a public model


def test_the_dgd_waits_for_the_download_and_the_download_for_the_kept_pvc():
    rec = stack(CACHED)
    job, pvc = only(rec, "kubernetes:batch/v1:Job"), only(rec, "kubernetes:core/v1:PersistentVolumeClaim")
    dgd = only(rec, "kubernetes:nvidia.com/v1beta1:DynamoGraphDeployment")
    assert job.urn in dgd.dependencies and pvc.urn in job.dependencies
    assert pvc.protect and pvc.retain_on_delete
    assert pvc.inputs["metadata"]["name"] == "weights"


def test_download_is_awaited_longer_than_pulumis_default():
    import pulumi

    from dynamo_iac.components.deployment import DOWNLOAD_TIMEOUT, download_opts

    pvc = pulumi.Output.from_input("pvc")          # stands in for the PVC resource (not prompt)
    opts = download_opts(pulumi.ResourceOptions(), pvc, DOWNLOAD_TIMEOUT)
    assert opts.depends_on == [pvc]
    assert (opts.custom_timeouts.create, opts.custom_timeouts.update) == ("2h", "2h")
    assert download_opts(pulumi.ResourceOptions(), pvc, "45m").custom_timeouts.create == "45m"


@pytest.mark.parametrize("model,path,api", [
    (Model("Qwen/Qwen3-32B"), "model.cache", "v1beta1"),
    # a v1alpha1 DGD creates its own PVC, only when it is created itself: after the Job
    (Model("Qwen/Qwen3-32B", cache=ModelCache(create=True, storage_class="efs-sc")), "model.cache", "v1alpha1"),
    (Model("/models/qwen3", cache=ModelCache()), "model.id", "v1beta1"),
])
def test_a_download_with_nowhere_to_go_is_refused(model, path, api):
    with pytest.raises(DynamoIacError) as e:
        stack(graph(model), api=api)
    assert [p.path for p in e.value.problems] == [path]


def test_create_true_on_v1beta1_the_component_creates_the_pvc():
    """v1beta1 DGDs cannot create PVCs: the component does (protected, retained, with the cache's
    class), the DGD only mounts it, and the download Job may fill it."""
    g = graph(Model("Qwen/Qwen3-32B", cache=ModelCache(create=True, storage_class="efs-sc", size="200Gi")))
    rec = stack(g)
    (pvc,) = [r for r in rec.resources if r.type == "kubernetes:core/v1:PersistentVolumeClaim"]
    assert pvc.protect and pvc.retain_on_delete
    assert pvc.inputs["spec"]["storageClassName"] == "efs-sc"
    assert pvc.inputs["spec"]["resources"]["requests"]["storage"] == "200Gi"
    (job,) = [r for r in rec.resources if r.type == "kubernetes:batch/v1:Job"]
    assert pvc.urn in job.dependencies
    (dgd,) = [r for r in rec.resources if r.type.endswith(":DynamoGraphDeployment")]
    assert "pvcs" not in dgd.inputs["spec"] and job.urn in dgd.dependencies

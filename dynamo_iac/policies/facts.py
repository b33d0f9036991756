"""Facts about Dynamo deployments that the rules enforce, each with where it comes from.

Hardware facts (GPUs per node, fabric, prices) are NOT here: they live in the hardware catalog.
Versions (chart ↔ DGD API, Kubernetes minimum) come from dynamo_iac/data/versions.yaml.
Sources: shared/notes/dynamo-deploy-facts.md (§ and doc line ranges), shared/notes/policy-catalog.md
(row numbers), shared/notes/dynamo-crds-and-chart.md.
"""
from __future__ import annotations

import re

# Extended resources of the RDMA device plugins (deploy-facts §4.2, §4.6, §5.2; targets/k8s/fabrics)
EFA_RESOURCE = "vpc.amazonaws.com/efa"
RDMA_PREFIXES = ("rdma/", "networking.gke.io.networks/rdma")
RDMA_EXACT = (EFA_RESOURCE,)


def is_rdma_resource(name: str) -> bool:
    return name in RDMA_EXACT or name.startswith(RDMA_PREFIXES)


def fabric_of_resource(name: str) -> str | None:
    """efa | infiniband | roce for an RDMA resource name."""
    if name == EFA_RESOURCE:
        return "efa"
    if name.startswith("rdma/"):
        return "infiniband"
    if name.startswith("networking.gke.io.networks/rdma"):
        return "roce"
    return None


# NIXL backend selection per engine (deploy-facts §4.2 "Backend selection" [L8860–8869])
NIXL_BACKEND_ENV = {"sglang": "SGLANG_DISAGGREGATION_NIXL_BACKEND", "trtllm": "TRTLLM_NIXL_KVCACHE_BACKEND"}
# EFA needs these in the worker env (deploy-facts §4.2 "Required EFA env" [L8870–8881])
EFA_REQUIRED_ENV = {"FI_PROVIDER": "efa", "FI_EFA_USE_DEVICE_RDMA": "1"}
# shared memory the engines need (policy-catalog #9; deploy-facts §5.2 [L5488, L11140])
MIN_SHM_GI = {"vllm": 16, "trtllm": 80}
# env names that carry credentials (HF token, NGC key, registry/cloud credentials)
CREDENTIAL_ENV = re.compile(
    r"(^|_)(TOKEN|PASSWORD|PASSWD|SECRET|API_KEY|APIKEY|ACCESS_KEY|SECRET_ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)$"
    r"|^HF_TOKEN$|^HUGGING_FACE_HUB_TOKEN$|^NGC_API_KEY$", re.I)
# Helm value keys that carry credentials
CREDENTIAL_KEY = re.compile(r"(password|passwd|token|secret|apikey|api_key|accesskey|privatekey|credentials?)$", re.I)
# label the operator puts on every pod of a component (policy-catalog #39; crds-and-chart §4)
COMPONENT_LABEL = "nvidia.com/dynamo-component"
DGD_LABEL = "nvidia.com/dynamo-graph-deployment-name"
HOSTNAME_KEY = "kubernetes.io/hostname"
ZONE_KEY = "topology.kubernetes.io/zone"
# Platform chart values (crds-and-chart §2.2)
GROVE_KEYS = ("global.grove.install", "global.grove.enabled")
LWS_KEYS = ("global.lws.install", "global.lws.enabled")
KAI_KEYS = ("global.kai-scheduler.install", "global.kai-scheduler.enabled")
VOLCANO_KEYS = ("global.volcano-scheduler.enabled",)
REMOVED_PLATFORM_KEYS = ("nats.enabled", "etcd.enabled", "grove.enabled", "kai-scheduler.enabled")
PROMETHEUS_ENDPOINT = "dynamo-operator.dynamo.metrics.prometheusEndpoint"
# kube-prometheus-stack must select every PodMonitor (policy-catalog #20; deploy-facts [L2580–2585])
KPS_NIL_USES_HELM = "prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues"
# Shadow-engine failover needs Kubernetes >= 1.34 and DRA (policy-catalog #45; deploy-facts §6.4)
FAILOVER_MIN_K8S = "1.34"
# Default queue the platform chart creates for KAI (crds-and-chart §2.2)
KAI_DEFAULT_QUEUES = ("dynamo", "dynamo-default")
KAI_QUEUE_ANNOTATION = "nvidia.com/kai-scheduler-queue"
KAI_QUEUE_TYPE = "kubernetes:scheduling.run.ai/v2:Queue"
# Registries our components pull from by default: NGC (Dynamo, GPU/Network Operator), the
# Kubernetes and AWS public registries (device plugins), Docker Hub official images, and Google's
# GKE GPUDirect-RDMA images (components/gke_rdma.py: the gIB NCCL installer and GKE's pause)
DEFAULT_ALLOWED_REGISTRIES = ("nvcr.io/nvidia", "registry.k8s.io", "public.ecr.aws", "docker.io/library",
                              "ghcr.io/ai-dynamo", "ghcr.io/mellanox", "us-docker.pkg.dev/gce-ai-infra",
                              "gke.gcr.io")
# Dynamo multinode on vLLM/SGLang/TRT-LLM needs Grove or LWS (deploy-facts §3.1 [L2470, L3137])
ENABLE_GROVE_ANNOTATION = "nvidia.com/enable-grove"

"""GKE's NCCL RDMA installer: the DaemonSet that puts the gIB NCCL plugin on A3 Ultra / A4 nodes.

GKE's RoCE machine types (the catalog's fabric kind `roce` on GCP) need it: it fills the host's
/home/kubernetes/bin/gib (and the gIB NCCL libraries into /home/kubernetes/bin/nvidia/lib64), which
the roce overlay (targets/k8s/fabrics/roce.py) mounts into every worker. GKE's docs have users
`kubectl apply` upstream's gpudirect-rdma/nccl-rdma-installer.yaml; here it is the same DaemonSet
as a typed resource, images pinned in data/versions.yaml, so nothing is fetched at run time.

Differences from upstream, and why: it runs on our RoCE pools only (upstream: every node with the
accelerator label), and tolerates exactly the taints of those pools (upstream: every taint).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from .. import versions
from ..hardware.model import InstanceType
from ..hardware.pool import GpuPool
from ..targets.k8s.fabrics import roce
from ..targets.k8s.overlay import merge_tolerations, pool_taints, tolerations_for
from .common import POOL_LABEL

NAME = "nccl-rdma-installer"
NAMESPACE = "kube-system"          # system-node-critical pods are admitted there by default on GKE
ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
CLOUD = "gcp"
GPUS_PER_NODE_SYSCTL = 8           # upstream silences martian logs on gpu0rdma0 … gpu7rdma0


def rdma_pools(pools: Sequence[GpuPool], instances: Mapping[str, InstanceType]) -> list[GpuPool]:
    """The pools whose nodes need the installer: GKE machine types with the RoCE fabric."""
    return [p for p in pools if instances[p.name].fabric.kind == roce.KIND and instances[p.name].cloud == CLOUD]


def daemonset(pools: Sequence[GpuPool], instances: Mapping[str, InstanceType]) -> dict[str, Any]:
    """metadata and spec of the installer DaemonSet for these RDMA pools (plain data)."""
    names = sorted(p.name for p in pools)
    accelerators = {instances[n].extra.get("accelerator_type") for n in names}
    match = [{"key": POOL_LABEL, "operator": "In", "values": names}]
    if None not in accelerators:          # as upstream: only on the GPUs the plugin is built for
        match.append({"key": ACCELERATOR_LABEL, "operator": "In", "values": sorted(map(str, accelerators))})
    tolerations = merge_tolerations(*(tolerations_for(pool_taints(CLOUD, p, instances[p.name]))
                                      for p in sorted(pools, key=lambda p: p.name)))
    labels = {"k8s-app": NAME}
    host = "/usr/local/home/kubernetes/bin"
    sysctl = "\n".join(f"sysctl -w net.ipv4.conf.gpu{i}rdma0.log_martians=0" for i in range(GPUS_PER_NODE_SYSCTL))
    return {
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": {"name": NAME, **labels}},
                "spec": {
                    "priorityClassName": "system-node-critical",
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": match}]}}},
                    "tolerations": [dict(t) for t in tolerations],
                    "hostNetwork": True,
                    "hostPID": True,
                    "volumes": [
                        {"name": "library-dir-host",
                         "hostPath": {"path": "/home/kubernetes/bin/nvidia/lib64", "type": "DirectoryOrCreate"}},
                        {"name": "gib", "hostPath": {"path": "/home/kubernetes/bin/gib"}}],
                    "initContainers": [
                        {"name": "disable-log-martian", "image": versions.image(f"{NAME}-sysctl").ref,
                         "command": ["/bin/sh"], "args": ["-c", sysctl + "\n"],
                         "securityContext": {"privileged": True}},
                        {"name": NAME, "image": versions.image(NAME).ref,
                         "resources": {"requests": {"cpu": "150m"}},
                         "securityContext": {"privileged": True},
                         "volumeMounts": [{"name": "library-dir-host", "mountPath": f"{host}/nvidia/lib64"},
                                          {"name": "gib", "mountPath": f"{host}/gib"}],
                         "command": ["/bin/sh", "-c"],
                         "args": ["set -ex\n"
                                  "/scripts/container_entry.sh install --install-nccl\n"
                                  f"cp -r /var/lib/gib/lib64/. {host}/nvidia/lib64\n"
                                  f"cp -r /var/lib/gib/. {host}/gib\n"
                                  'echo "installation finishes"\n']}],
                    "containers": [{"name": "pause", "image": versions.image(f"{NAME}-pause").ref}],
                },
            },
        },
    }

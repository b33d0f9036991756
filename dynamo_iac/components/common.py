"""Shared by the cluster, platform and deployment components: naming, Kubernetes providers,
what a cluster hands to the platform, and lazy imports (one cloud never loads another's SDK)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from ..errors import ConfigError

POOL_LABEL = "dynamo-iac/pool"
GPU_TAINT_KEY = "nvidia.com/gpu"


def component_type(kind: str, name: str) -> str:
    """Type token of our components, e.g. dynamo:aws:GpuCluster, dynamo:k8s:GpuPlatform."""
    return f"dynamo:{kind}:{name}"


def child_opts(parent: pulumi.Resource, provider: Any = None, **kw: Any) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, provider=provider, **kw)


def provider_from_kubeconfig(name: str, path: str | None, context: str | None = None,
                             opts: pulumi.ResourceOptions | None = None) -> Any:
    """A k8s Provider for an existing cluster (byo). The kubeconfig content is a secret."""
    import pulumi_kubernetes as k8s

    where = path or os.environ.get("KUBECONFIG") or "~/.kube/config"
    file = Path(os.path.expanduser(where.split(os.pathsep)[0]))
    if file.is_file():
        content: Any = pulumi.Output.secret(file.read_text())
    elif pulumi.runtime.is_dry_run():
        # previewing without the cluster's credentials (offline plan): the value is unknown
        content = pulumi.Output.secret(f"(kubeconfig from {where})")
    else:
        raise ConfigError(f"kubeconfig {str(file)!r} does not exist", "cluster.kubeconfig",
                          "point dynamo-iac:cluster.kubeconfig (or $KUBECONFIG) at your cluster's kubeconfig")
    return k8s.Provider(name, kubeconfig=content, context=context, opts=opts)


@dataclass(frozen=True)
class PlatformHints:
    """What a cluster needs from GpuPlatform (plain data; each cloud fills its own)."""

    gpu_operator_values: dict[str, Any] = field(default_factory=dict)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    depends_on: tuple[pulumi.Resource, ...] = ()

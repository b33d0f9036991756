"""Shared by the cluster, platform and deployment components: naming, Kubernetes providers,
what a cluster hands to the platform, and lazy imports (one cloud never loads another's SDK)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from ..errors import ConfigError, Problem
from ..targets.k8s.overlay import PROVIDER_TAINTS, pool_taints, tolerations_for  # noqa: F401  (re-exported)

POOL_LABEL = "dynamo-iac/pool"
# Kubernetes label syntax ("Labels and Selectors"): name and value ≤ 63 characters, alphanumeric
# at both ends, '-', '_', '.' inside (a value may be empty); an optional DNS-subdomain prefix/
LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def label_problems(labels: dict[str, str], path: str) -> list[Problem]:
    """Node labels the Kubernetes API (and so EKS / AKS / GKE) would reject."""
    out = []
    for key, value in sorted(labels.items()):
        prefix, _, name = key.rpartition("/")
        if not LABEL_NAME.match(name) or (prefix and (len(prefix) > 253 or not LABEL_PREFIX.match(prefix))):
            out.append(Problem(f"{path}[{key}]", f"{key!r} is not a valid Kubernetes label key",
                               "use [prefix/]name: a name of ≤ 63 letters, digits, '-', '_', '.' starting and "
                               "ending alphanumeric, and an optional DNS-subdomain prefix"))
        if not isinstance(value, str) or (value and not LABEL_NAME.match(value)):
            out.append(Problem(f"{path}[{key}]", f"value {value!r} is not a valid Kubernetes label value",
                               "use ≤ 63 letters, digits, '-', '_', '.', starting and ending alphanumeric "
                               "(or an empty value)"))
    return out


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


def cidr_problems(blocks: dict[str, str], inside: dict[str, str] | None = None) -> list[Problem]:
    """IPv4 CIDR blocks (path → block) that parse and do not overlap; `inside`: path → the path of
    the block it must lie in (a subnet in its VNet)."""
    import ipaddress

    nets: dict[str, Any] = {}
    out = []
    for path, block in blocks.items():
        try:
            nets[path] = ipaddress.IPv4Network(block)
        except ValueError as e:
            out.append(Problem(path, f"{block!r} is not an IPv4 CIDR block ({e})", "use e.g. 10.0.0.0/16"))
    inside = inside or {}
    paths = sorted(nets)
    for i, a in enumerate(paths):
        for b in paths[i + 1:]:
            if nets[a].overlaps(nets[b]) and inside.get(a) != b and inside.get(b) != a:
                out.append(Problem(a, f"{blocks[a]} overlaps {b} ({blocks[b]})", "use disjoint address blocks"))
    for path, parent in sorted(inside.items()):
        if path in nets and parent in nets and not nets[path].subnet_of(nets[parent]):
            out.append(Problem(path, f"{blocks[path]} is not inside {parent} ({blocks[parent]})",
                               f"pick a block inside {blocks[parent]}"))
    return out


@dataclass(frozen=True)
class PlatformHints:
    """What a cluster needs from GpuPlatform (components/platform.py) — plain data.

    gpu_operator_values: merged into the GPU Operator chart values;
    namespace_labels: labels of namespaces the platform creates (namespace → labels), e.g. the
      privileged pod-security level the GPU / Network Operator's DaemonSets need;
    namespace_quotas: ResourceQuota specs the platform creates in its namespaces (namespace →
      spec), e.g. GKE's admission of system-*-critical pods outside kube-system;
    depends_on: resources the GPU Operator must wait for (node groups, NicClusterPolicy);
    operator_driver_pools: GPU pools whose NVIDIA driver only the GPU Operator installs.
    """

    gpu_operator_values: dict[str, Any] = field(default_factory=dict)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    namespace_quotas: dict[str, dict[str, Any]] = field(default_factory=dict)
    depends_on: tuple[pulumi.Resource, ...] = ()
    operator_driver_pools: tuple[str, ...] = ()

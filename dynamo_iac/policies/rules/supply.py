"""Rules on what the stack pulls and how it handles credentials: image pinning, registries,
secrets never in plain text."""
from __future__ import annotations

import re
from typing import Any, Iterator

from pydantic import Field

from ..dgd import DGD_TYPES, is_dgd, view
from ..facts import CREDENTIAL_ENV, CREDENTIAL_KEY, DEFAULT_ALLOWED_REGISTRIES
from ..k8s import (RELEASE, SECRET, WORKLOAD_TYPES, containers, helm_images, metadata_name, namespace_of,
                   pod_spec)
from ..model import Context, Finding, NotApplicable, Resource, Rule, RuleConfig, StackView
from ..values import SEMVER_TAG, Obj, as_arr, as_obj, normalized_image, plain, split_image
from .common import dgds, images_of, short, where

CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
IMAGE_TYPES = (*DGD_TYPES, *WORKLOAD_TYPES)
# tags that upstream examples use as placeholders (`:my-tag`) and friends
PLACEHOLDER_TAG = re.compile(r"^(my-?tag|tag|your-?tag|changeme|replace-?me|xxx+|todo|<.*>|\$\{?.*\}?)$", re.I)


# ------------------------------------------------------------------------------------ pinning
def _unpinned(image: str) -> tuple[str, str] | None:
    """(what is wrong, fix) when an image reference is not pinned to a real tag or a digest."""
    _, _, tag, digest = split_image(image)
    if tag and PLACEHOLDER_TAG.match(tag):
        return f"carries the placeholder tag {tag!r}", "pin a real release tag, e.g. :1.2.0"
    if tag == "latest" or (tag is None and digest is None):
        return (f"is not pinned ({'latest' if tag else 'no tag'}): every pull may run different code",
                "pin a release tag (or a digest)")
    return None


def check_image_pinned(r: Resource, ctx: Context) -> Iterator[Finding]:
    if r.type == RELEASE:
        for path, image, chart_default in helm_images(r):
            bad = None if chart_default else _unpinned(image)
            if bad:
                yield Finding(f"Helm release {short(r.urn)} ({path}): image {image} {bad[0]}",
                              f"{bad[1]}, or drop the override: the chart's default tag is pinned by the chart version")
        return
    dgd = is_dgd(r)
    for who, path, image, comp in images_of(r):
        if not isinstance(image, str):
            continue
        _, _, tag, _ = split_image(image)
        what = f"{who} ({path})"
        bad = _unpinned(image)
        if bad:
            yield Finding(f"{what}: image {image} {bad[0]}", bad[1])
        elif dgd and comp is not None and not (tag and SEMVER_TAG.match(tag)):
            if comp.peek("runtimeVersionOverride"):
                continue
            yield Finding(f"{what}: image {image} has no semver tag; the Dynamo operator admits only semver "
                          f"tags unless runtimeVersionOverride is set",
                          "use a semver tag such as :1.2.0, or set runtimeVersionOverride on the component")


IMAGE_PINNED = Rule(
    "image-pinned",
    "Images are pinned: DGD main containers to semver tags (as the operator admits), everything else, Helm "
    "chart values overrides included, to a tag or digest; never latest or a placeholder tag.",
    "mandatory", "resource", check_image_pinned, (*IMAGE_TYPES, RELEASE),
    refs=("crds-and-chart §3 webhook", "DESIGN facts"))


class RegistryConfig(RuleConfig):
    allowed_registries: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_REGISTRIES),
        description="image prefixes (registry[/path]) allowed; Docker Hub short names count as docker.io/library")


def check_registry(r: Resource, ctx: Context) -> Iterator[Finding]:
    allowed = [a.rstrip("/") for a in ctx.config.allowed_registries]
    for who, path, image, _ in images_of(r):
        if not isinstance(image, str):
            continue
        norm = normalized_image(image)
        if not any(norm == a or norm.startswith(a + "/") for a in allowed):
            yield Finding(f"{who} ({path}): image {image} ({norm}) is not from an allowed registry "
                          f"({', '.join(allowed)})",
                          "mirror the image into an allowed registry, or add its prefix to allowedRegistries")


REGISTRY = Rule(
    "image-registry-allowed",
    "Every container image comes from an allowed registry (configurable: allowedRegistries).",
    "mandatory", "resource", check_registry, IMAGE_TYPES, RegistryConfig)


# ------------------------------------------------------------------------------------ secrets
def _env_plaintext(entries: list[tuple[str, Obj, str]], what: str) -> Iterator[Finding]:
    for name, e, path in entries:
        if CREDENTIAL_ENV.search(name) and e.peek("value") not in (None, ""):
            yield Finding(f"{what}: env {name} holds a literal value ({path}): the credential is stored in plain "
                          f"text in the object (and readable with kubectl get -o yaml)",
                          "reference a Kubernetes Secret (envFrom secretRef / valueFrom.secretKeyRef / envFromSecret)")


def _container_env(c: Obj) -> list[tuple[str, Obj, str]]:
    out = []
    arr = as_arr(c.peek("env"), f"{c.path}.env")
    for i, e in enumerate(arr.raw):
        if isinstance(e, dict) and isinstance(e.get("name"), str):
            out.append((e["name"], Obj(e, f"{arr.path}[{i}]"), f"{arr.path}[{i}]"))
    return out


_NOT_A_CREDENTIAL = ("secretname", "secretref", "tokenpath", "secret_name", "existingsecret")


def _credential_values(o: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, key) of every literal string in a values tree whose key names a credential."""
    if isinstance(o, dict):
        for k, v in o.items():
            p = f"{path}.{k}"
            if isinstance(v, str) and v and CREDENTIAL_KEY.search(str(k)) and \
                    not str(k).lower().endswith(_NOT_A_CREDENTIAL):
                yield p, str(k)
            else:
                yield from _credential_values(v, p)
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from _credential_values(v, f"{path}[{i}]")


def check_secrets(r: Resource, ctx: Context) -> Iterator[Finding]:
    if is_dgd(r):
        d = view(r)
        seen: set[str] = set()
        for c in d.components:
            entries = [(n, e, c.env_paths[n]) for n, e in c.env.items()]
            for _, cont in c.containers:
                if cont is not c.main:
                    entries += _container_env(cont)
            for f in _env_plaintext(entries, where(d, c)):
                if f.message not in seen:
                    seen.add(f.message)
                    yield f
    elif r.type in WORKLOAD_TYPES:
        spec = pod_spec(r)
        if spec is not None:
            for cont in containers(spec):
                yield from _env_plaintext(_container_env(cont), f"{r.type.rsplit(':', 1)[-1]} {metadata_name(r)}")
    elif r.type == CONFIG_MAP:
        data = as_obj(r.props.peek("data"), "data")
        for k in sorted(data):
            if CREDENTIAL_ENV.search(k) and data.peek(k) not in (None, ""):
                yield Finding(f"ConfigMap {metadata_name(r)}: data.{k} holds a credential in plain text",
                              "move it into a Secret (pods read it with envFrom secretRef)")
    elif r.type == RELEASE:
        if r.secret_paths is None:
            return          # the real engine does not tell policies which inputs are secrets
        for path, key in _credential_values(plain(r.props.peek("values")), "values"):
            if r.is_secret(path) is False:
                yield Finding(f"Helm release {short(r.urn)}: {path} looks like a credential ({key}) and is not a "
                              f"Pulumi secret: it is stored in plain text in the stack state",
                              "pass it as pulumi.Output.secret(...) or reference an existing Kubernetes Secret")


SECRETS = Rule(
    "secrets-not-plaintext",
    "Credentials (HF token, registry and cloud keys) live in Kubernetes Secrets and Pulumi secrets, "
    "never as literal env values or plain stack state.",
    "mandatory", "resource", check_secrets, (*DGD_TYPES, *WORKLOAD_TYPES, CONFIG_MAP, RELEASE),
    refs=("policy-catalog #28",))


def check_config_secrets(stack: StackView, ctx: Context) -> Iterator[Finding]:
    from ...stacks.config import is_credential_key

    if stack.config is None or stack.config_secure is None:
        raise NotApplicable("which stack config values are encrypted is not visible here")
    for key in sorted(stack.config):
        if is_credential_key(key) and key not in stack.config_secure and stack.config[key] not in (None, ""):
            where_ = stack.config_file or "the stack file"
            yield Finding(f"stack config {key} holds a credential in plain text in {where_}",
                          f"remove it and run: pulumi config set --secret {key} <value>")


CONFIG_SECRETS = Rule(
    "config-secrets-encrypted",
    "Credentials in the stack config (e.g. dynamo-iac:hfToken) are encrypted (`secure:`), never plain text. "
    "Offline only: CrossGuard does not tell a policy which config values are `secure:`, so under the Pulumi "
    "CLI this rule reports not evaluated.",
    "mandatory", "stack", check_config_secrets)


class SecretRefConfig(RuleConfig):
    external_secrets: list[str] = Field(
        default_factory=list,
        description="Secrets that exist in the cluster outside this stack, as namespace/name or name")


def check_secret_refs(stack: StackView, ctx: Context) -> Iterator[Finding]:
    declared: dict[tuple[str | None, str], Resource] = {}
    for s in stack.of_type(SECRET):
        declared[(namespace_of(s), metadata_name(s))] = s
    external = set(ctx.config.external_secrets)
    for d in dgds(stack):
        ns = namespace_of(d.resource)
        for c in d.components:
            refs = set(c.env_from_secrets)
            for e in c.env.values():
                ref = as_obj(as_obj(e.peek("valueFrom")).peek("secretKeyRef"))
                if isinstance(ref.peek("name"), str) and ref.peek("optional") is not True:
                    refs.add(ref.peek("name"))
            for name in sorted(refs):
                if name in external or f"{ns}/{name}" in external:
                    continue
                hit = declared.get((ns, name)) or next((s for (n2, nm), s in declared.items() if nm == name and
                                                        (ns is None or n2 is None)), None)
                if hit is None:
                    where_ns = f" in namespace {ns}" if ns else ""
                    yield Finding(f"{where(d, c)} reads Secret {name!r}{where_ns}, which this stack does not create: "
                                  f"the pods fail with CreateContainerConfigError",
                                  "create it (e.g. set dynamo-iac:hfToken with --secret), or list it under "
                                  "externalSecrets if it exists in the cluster", d.urn)
                    continue
                if name == "hf-token-secret" or "hf" in name.lower():
                    keys = set()
                    for key in ("stringData", "data"):
                        v = hit.props.peek(key)
                        if isinstance(v, Obj):
                            keys |= set(v)
                    if keys and "HF_TOKEN" not in keys:
                        yield Finding(f"Secret {name!r} has keys {', '.join(sorted(keys))} but no HF_TOKEN: Hugging "
                                      f"Face downloads of gated models fail", "store the token under the key HF_TOKEN",
                                      hit.urn)


SECRET_REFS = Rule(
    "secret-references-exist",
    "Secrets a DGD reads (the HF token secret) exist in the stack or are declared external, and hold HF_TOKEN.",
    "mandatory", "stack", check_secret_refs, config=SecretRefConfig, refs=("policy-catalog #28",))


RULES = [IMAGE_PINNED, REGISTRY, SECRETS, CONFIG_SECRETS, SECRET_REFS]

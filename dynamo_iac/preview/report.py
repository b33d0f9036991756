"""What `dynamo-iac plan` shows and writes, from a StackRecord: the resource tree, the
Kubernetes manifests (every object the stack would apply, the DGD included) and plan.json.
Everything is sorted so that two runs produce byte-identical output."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .record import SECRET, UNKNOWN, RecordedResource, StackRecord

# What a manifest holds where the value is known only after apply (a file system's address …):
# never '' or null, which `kubectl apply --dry-run=server` would accept as a real value.
MANIFEST_UNKNOWN = "${known-after-apply}"

# Kubernetes resources whose inputs are an object to apply; helm releases and providers are not.
_NOT_MANIFESTS = re.compile(r"^kubernetes:(helm\.sh/|yaml/|kustomize/|index:Provider|pulumi:)|^pulumi:providers:")


def _short_type(t: str) -> str:
    return t.split(":")[-1] if t.count(":") >= 2 else t


def tree_lines(record: StackRecord) -> list[str]:
    """The resource tree as plain text lines, children sorted by (type, name)."""
    by_parent: dict[str | None, list[RecordedResource]] = {}
    urns = {r.urn for r in record.resources}
    for r in record.resources:
        parent = r.parent if r.parent in urns else None
        by_parent.setdefault(parent, []).append(r)
    for rs in by_parent.values():
        rs.sort(key=lambda r: (r.type, r.name))
    lines: list[str] = []

    def walk(parent: str | None, prefix: str) -> None:
        kids = by_parent.get(parent, [])
        for i, r in enumerate(kids):
            last = i == len(kids) - 1
            flags = "".join(f" [{f}]" for f, on in (("protect", r.protect), ("retain", r.retain_on_delete)) if on)
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{r.type}  {r.name}{flags}")
            walk(r.urn, prefix + ("   " if last else "│  "))

    walk(None, "")
    return lines


def _api_kind(type_token: str, inputs: dict[str, Any]) -> tuple[str, str]:
    if "apiVersion" in inputs and "kind" in inputs:
        return inputs["apiVersion"], inputs["kind"]
    # kubernetes:core/v1:Namespace → v1 / Namespace; kubernetes:batch/v1:Job → batch/v1 / Job
    _, gv, kind = type_token.split(":", 2)
    group, _, version = gv.rpartition("/")
    api = version if group in ("core", "") else f"{group}/{version}"
    return api, kind


def manifests(record: StackRecord) -> list[tuple[str, dict[str, Any]]]:
    """(file name, object) for every Kubernetes object the stack applies, sorted by file name."""
    out = []
    for r in record.resources:
        if not r.type.startswith("kubernetes:") or _NOT_MANIFESTS.match(r.type) or not r.custom:
            continue
        inputs = {k: v for k, v in r.inputs.items() if k not in ("apiVersion", "kind")}
        api, kind = _api_kind(r.type, r.inputs)
        obj = {"apiVersion": api, "kind": kind, **inputs}
        if kind == "Secret":   # a secret map whose shape is unknown offline: keep the manifest valid
            for k in ("data", "stringData"):
                if isinstance(obj.get(k), str):
                    obj[k] = {"redacted": obj[k]}
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if not isinstance(name, str) or name == UNKNOWN:
            meta["name"] = name = r.name
        ns = meta.get("namespace")
        stem = f"{kind.lower()}-{ns + '-' if isinstance(ns, str) else ''}{name}"
        out.append((re.sub(r"[^A-Za-z0-9_.-]+", "-", stem) + ".yaml", _placeholders(obj)))
    out.sort(key=lambda x: x[0])
    return out


def _placeholders(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholders(v) for v in value]
    return MANIFEST_UNKNOWN if value == UNKNOWN else value


def unknown_paths(value: Any, path: str = "") -> list[str]:
    """Where a manifest holds MANIFEST_UNKNOWN (dotted paths, list indices in brackets)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in unknown_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in unknown_paths(v, f"{path}[{i}]")]
    return [path] if value == MANIFEST_UNKNOWN else []


def manifest_unknowns(objs: list[tuple[str, dict[str, Any]]]) -> dict[str, list[str]]:
    """file → paths of values known only after apply (the file cannot be applied as it is)."""
    return {f"manifests/{fname}": paths for fname, obj in objs if (paths := unknown_paths(obj))}


def plan_json(record: StackRecord, *, capacity: dict | None, cost: dict | None,
              policy: list[dict] | None, manifest_files: list[str], checks: dict[str, Any],
              unknowns: dict[str, list[str]]) -> str:
    doc = {
        "stack": record.stack,
        "project": record.project,
        "config": record.config,
        "resources": [
            {"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent, "provider": r.provider,
             "dependencies": sorted(r.dependencies), "protect": r.protect, "retain_on_delete": r.retain_on_delete,
             "replace_on_changes": sorted(r.replace_on_changes), "inputs": r.inputs}
            for r in sorted(record.resources, key=lambda r: r.urn)],
        "outputs": record.outputs,
        "capacity": capacity,
        "cost": cost,
        "policy": policy or [],
        "manifests": manifest_files,
        "manifest_unknowns": unknowns,
        "manifest_problems": checks.get("problems", []),
        "manifest_checks": {k: v for k, v in checks.items() if k != "problems"},
        "legend": {"unknown": UNKNOWN, "secret": SECRET, "unknown_in_manifests": MANIFEST_UNKNOWN},
    }
    return json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n"


def _write(path: Path, text: str) -> None:
    """Atomically: a reader (or a later failed run) never sees a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_outputs(out_dir: Path, record: StackRecord, objs: list[tuple[str, dict[str, Any]]],
                  unknowns: dict[str, list[str]], **plan_parts: Any) -> list[str]:
    """DIR/manifests/*.yaml (objs: manifests(record)) and DIR/plan.json, into a DIR plan has
    already made ready (manifests/ created, an earlier run's files removed)."""
    from ..targets.k8s.render import dump_yaml

    files = []
    for fname, obj in objs:
        _write(out_dir / "manifests" / fname, dump_yaml(obj))
        files.append(f"manifests/{fname}")
    _write(out_dir / "plan.json", plan_json(record, manifest_files=files, unknowns=unknowns, **plan_parts))
    return files

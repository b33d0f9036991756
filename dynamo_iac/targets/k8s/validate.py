"""Validate manifests: the CRD's openAPIV3Schema (with unknown fields reported, which the API
server would silently prune) and the operator's admission rules (CEL + webhook) for Dynamo
objects; Kubernetes' own schemas (kubernetes-validate) for core objects.

    validate_manifest(obj, crd_dir=None, schema_only=False) -> list[Problem]
    check_manifest(obj, ...) -> (problems, notes)     notes: what was not checked, and why

Null values are dropped first, as the API server does. metadata is checked as ObjectMeta.
Another operator's custom resource (no schema here) is a note, not an error.
"""
from __future__ import annotations

import difflib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ... import yamlio
from ...errors import ConfigError, Problem
from .merge import prune_nulls

KUBERNETES_VERSION = "1.31"
GROUP = "nvidia.com"


# ------------------------------------------------------------------------------------ CRD loading
def default_crd_dir() -> Path | None:
    env = os.environ.get("DYNAMO_IAC_CRD_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *Path.cwd().parents, *here.parents):
        cand = base / ".." / "shared" / "reference" / "dynamo-crds"
        if cand.is_dir():
            return cand.resolve()
        cand = base / "shared" / "reference" / "dynamo-crds"
        if cand.is_dir():
            return cand.resolve()
    return None




def _crd_files(crd_path: str, kind: str | None) -> list[Path]:
    path = Path(crd_path)
    if not path.is_dir():
        return [path]
    if kind:   # controller-gen names files <group>_<plural>.yaml: read just that one when it exists
        guess = sorted(path.glob(f"*_{kind.lower()}s.yaml"))
        if guess:
            return guess
    return sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))


def _extract(data: bytes, source: str = "") -> list[list]:
    """[apiVersion, kind, openAPIV3Schema] of every CRD version in one YAML file."""
    try:
        docs = list(yamlio.load_all(data))
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML ({e})", "--crd-dir", "point at CRD YAML files") from None
    out: list[list] = []
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        items = doc.get("items") if doc.get("kind") == "List" else [doc]
        for crd in items or []:
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd.get("spec") or {}
            group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
            for v in spec.get("versions") or []:
                schema = (v.get("schema") or {}).get("openAPIV3Schema")
                if schema and group and kind:
                    out.append([f"{group}/{v['name']}", kind, schema])
    return out


@lru_cache(maxsize=32)
def _crd_index(crd_path: str, kind: str | None = None) -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) → openAPIV3Schema for the CRDs in a dir (or a single exported CRD file);
    each file's extract is cached by content (schema_cache)."""
    from .schema_cache import cached

    index: dict[tuple[str, str], dict] = {}
    for f in _crd_files(crd_path, kind):
        for api, k, schema in cached(f.read_bytes(), lambda data, f=f: _extract(data, str(f))):
            index[(api, k)] = schema
    return index


def _translate(s: Any) -> Any:
    """Kubernetes structural schema → JSON Schema with unknown fields forbidden."""
    if not isinstance(s, dict):
        return s
    out: dict[str, Any] = {}
    for k, v in s.items():
        if k in ("x-kubernetes-validations", "x-kubernetes-list-map-keys", "x-kubernetes-list-type",
                 "x-kubernetes-map-type", "description", "format"):
            continue
        if k == "properties":
            out[k] = {pk: _translate(pv) for pk, pv in v.items()}
        elif k in ("items", "additionalProperties") and isinstance(v, dict):
            out[k] = _translate(v)
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = [_translate(x) for x in v]
        elif k == "not":
            out[k] = _translate(v)
        else:
            out[k] = v
    if s.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.pop("x-kubernetes-int-or-string", None)
        out["type"] = ["integer", "string"]
    if s.get("nullable"):
        t = out.get("type")
        if isinstance(t, str):
            out["type"] = [t, "null"]
    if s.get("x-kubernetes-embedded-resource"):
        out.setdefault("properties", {})
    if s.get("type") == "object" and "properties" in s and "additionalProperties" not in s \
            and not s.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    for k in ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource", "nullable",
              "x-kubernetes-int-or-string"):
        out.pop(k, None)
    return out


# ObjectMeta as the API server checks it for every object (the CRD schema leaves metadata open)
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
OBJECT_META = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": DNS1123_SUBDOMAIN},
        "generateName": {"type": "string"},
        "namespace": {"type": "string", "maxLength": 63, "pattern": DNS1123_LABEL},
        "labels": _STRING_MAP, "annotations": _STRING_MAP,
        "uid": {"type": "string"}, "resourceVersion": {"type": "string"}, "selfLink": {"type": "string"},
        "creationTimestamp": {"type": "string"}, "deletionTimestamp": {"type": "string"},
        "generation": {"type": "integer"}, "deletionGracePeriodSeconds": {"type": "integer"},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "managedFields": {"type": "array", "items": {"type": "object"}},
    },
}


def _raw_schema(crd_path: str, api: str, kind: str) -> dict | None:
    return _crd_index(crd_path, kind).get((api, kind)) or _crd_index(crd_path).get((api, kind))


@lru_cache(maxsize=32)
def _validator(crd_path: str, api: str, kind: str):
    import jsonschema

    schema = _raw_schema(crd_path, api, kind)
    if schema is None:
        return None
    schema = _translate(schema)
    schema.setdefault("properties", {})["metadata"] = OBJECT_META
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _schema_problems(obj: dict, validator: Any) -> tuple[list[Problem], bool]:
    """(problems, whether the structure is sound: only unknown fields, which are dropped)."""
    problems = []
    sound = True
    for err in sorted(validator.iter_errors(obj), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        base = _path(err.absolute_path)
        if err.validator == "additionalProperties":
            allowed = list((err.schema.get("properties") or {}).keys())
            extras = sorted(set(err.instance) - set(allowed)) if isinstance(err.instance, dict) else []
            for extra in extras:
                close = difflib.get_close_matches(extra, allowed, n=1)
                problems.append(Problem(f"{base}.{extra}" if base else extra,
                                        "unknown field (the API server would silently drop it)",
                                        f"did you mean {close[0]!r}?" if close else "remove it"))
            continue
        sound = False
        fix = "use lowercase letters, digits, '-' and '.'" if base in ("metadata.name", "metadata.namespace") \
            and err.validator == "pattern" else ""
        problems.append(Problem(base or "(root)", err.message, fix))
    return problems, sound


_METADATA_KEYS = ("metadata", "extraPodMetadata")   # ObjectMeta, pod templates, v1alpha1 pod metadata


def label_problems(obj: Any, path: str = "") -> list[Problem]:
    """Label and annotation syntax of every metadata block in the object (the object's own and its
    pod templates'), which the API server checks when it creates the pods or the object."""
    from ...graph.k8smeta import metadata_problems

    out: list[Problem] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            sub = f"{path}.{k}" if path else str(k)
            if k in _METADATA_KEYS and isinstance(v, dict):
                out += metadata_problems(sub, v.get("labels"), v.get("annotations"))
            out += label_problems(v, sub)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += label_problems(v, f"{path}[{i}]")
    return out


def _core_problems(obj: dict) -> list[Problem]:
    try:
        import kubernetes_validate
        from kubernetes_validate.utils import SchemaNotFoundError, ValidationError
    except ImportError:
        return [Problem("", f"cannot check {obj.get('kind')}: kubernetes-validate is not installed",
                        "pip install kubernetes-validate")]
    import jsonschema

    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except (ValidationError, jsonschema.ValidationError) as e:
        err = getattr(e, "caused_by", e)
        return [Problem(_path(err.absolute_path) or "(root)", err.message, "")]
    except SchemaNotFoundError:
        return [Problem("kind", f"no schema for {obj.get('apiVersion')}/{obj.get('kind')} (not a Dynamo CRD and "
                        f"not a Kubernetes {KUBERNETES_VERSION} kind)", "check apiVersion and kind")]
    return []


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def misspelt_group(obj: dict) -> Problem | None:
    """A Dynamo object whose apiVersion group is a typo (nvidia.comm, nvida.com) or that names a
    Dynamo kind under another group: an error, not another operator's resource."""
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    kind = str(obj.get("kind", ""))
    if group == GROUP:
        return None
    if _edit_distance(group.lower(), GROUP) <= 2 or (kind.startswith("Dynamo") and kind in _dynamo_kinds()):
        return Problem("apiVersion", f"unknown API group {group!r} for {kind}",
                       f"did you mean {GROUP}/{version or 'v1beta1'}?")
    return None


def _dynamo_kinds() -> set[str]:
    crd = default_crd_dir()
    kinds = {k for _, k in _crd_index(str(crd.resolve()))} if crd is not None and crd.exists() else set()
    return kinds | {"DynamoGraphDeployment", "DynamoGraphDeploymentRequest", "DynamoModel",
                    "DynamoComponentDeployment", "DynamoGraphDeploymentScalingAdapter"}


def is_foreign_custom_resource(obj: dict) -> bool:
    """A custom resource of another operator (NicClusterPolicy, ComputeDomain …): no schema here."""
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io") and group != GROUP and misspelt_group(obj) is None


def foreign_resource_note(obj: Any) -> str | None:
    """Why an object is not checked (another operator's custom resource), or None."""
    if isinstance(obj, dict) and is_foreign_custom_resource(obj):
        return f"not checked: no schema for {obj.get('apiVersion')}/{obj.get('kind')} (another operator's resource)"
    return None


def check_manifest(obj: Any, crd_dir: Path | str | None = None,
                   schema_only: bool = False) -> tuple[list[Problem], list[str]]:
    """(problems, notes): notes say what could not be checked; they never fail validation.
    Admission rules run only on a manifest whose structure the schema accepted."""
    if not isinstance(obj, dict):
        return [Problem("(root)", "a manifest must be a mapping", "pass one YAML document")], []
    obj = prune_nulls(obj)
    api, kind = obj.get("apiVersion"), obj.get("kind")
    for key, value in (("apiVersion", api), ("kind", kind)):
        if not value:
            return [Problem(key, "is required", "set apiVersion and kind")], []
        if not isinstance(value, str):
            return [Problem(key, f"must be a string, not {value!r}", "e.g. apiVersion: nvidia.com/v1beta1, "
                                                                     "kind: DynamoGraphDeployment")], []
    typo = misspelt_group(obj)
    if typo is not None:
        return [typo], []
    note = foreign_resource_note(obj)
    if note is not None:
        return [], [note]
    if not api.startswith("nvidia.com/"):
        return _core_problems(obj), []
    crd_path = Path(crd_dir) if crd_dir else default_crd_dir()
    if crd_path is None or not crd_path.exists():
        raise ConfigError("no Dynamo CRD to validate against", "--crd-dir",
                          "pass --crd-dir DIR, or export it: kubectl get crd dynamographdeployments.nvidia.com -o yaml")
    key = str(crd_path.resolve())
    validator = _validator(key, api, kind)
    if validator is None:
        known = sorted(f"{a} {k}" for a, k in _crd_index(key))
        fix = f"known: {', '.join(known)}" if known else \
            f"no CustomResourceDefinition found in {crd_path}: point --crd-dir at the Dynamo CRD YAMLs, or export one " \
            "with kubectl get crd dynamographdeployments.nvidia.com -o yaml"
        return [Problem("apiVersion", f"no CRD for {api} {kind} in {crd_path}", fix)], []
    problems, sound = _schema_problems(obj, validator)
    raw = _raw_schema(key, api, kind)
    if sound:   # list-map keys, set items, label syntax: what the API server checks beside the schema
        from .listtypes import list_type_problems

        problems += list_type_problems(obj, raw)
        problems += label_problems(obj)
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        problems.append(Problem("metadata.name", "is required", "name the object (a DNS-1123 name)"))
    notes: list[str] = []
    if not schema_only and sound:
        from .admission import admission_problems

        problems += admission_problems(obj, raw, notes)
    elif not schema_only:
        notes.append("admission rules not checked: fix the schema errors first")
    return problems, notes


def validate_manifest(obj: Any, crd_dir: Path | str | None = None, schema_only: bool = False) -> list[Problem]:
    """The problems of one manifest ([] when valid; another operator's resource is not checked)."""
    return check_manifest(obj, crd_dir, schema_only)[0]

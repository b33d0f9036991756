"""Validate manifests: the CRD's openAPIV3Schema (with unknown fields reported, which the API
server would silently prune) and the operator's admission rules (CEL + webhook) for Dynamo
objects; Kubernetes' own schemas (kubernetes-validate) for core objects.

    validate_manifest(obj, crd_dir=None, schema_only=False) -> list[Problem]

Null values are dropped first, as the API server does.
"""
from __future__ import annotations

import difflib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ...errors import ConfigError, Problem
from .merge import prune_nulls

KUBERNETES_VERSION = "1.31"


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


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)    # libyaml: the CRDs are megabytes


def _crd_files(crd_path: str, kind: str | None) -> list[Path]:
    path = Path(crd_path)
    if not path.is_dir():
        return [path]
    if kind:   # controller-gen names files <group>_<plural>.yaml: read just that one when it exists
        guess = sorted(path.glob(f"*_{kind.lower()}s.yaml"))
        if guess:
            return guess
    return sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))


@lru_cache(maxsize=32)
def _crd_index(crd_path: str, kind: str | None = None) -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) → openAPIV3Schema for the CRDs in a dir (or a single exported CRD file)."""
    index: dict[tuple[str, str], dict] = {}
    for f in _crd_files(crd_path, kind):
        try:
            docs = list(yaml.load_all(f.read_text(), Loader=_Loader))
        except yaml.YAMLError as e:
            raise ConfigError(f"{f}: not valid YAML ({e})", "--crd-dir", "point at CRD YAML files") from None
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
                        index[(f"{group}/{v['name']}", kind)] = schema
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


@lru_cache(maxsize=32)
def _validator(crd_path: str, api: str, kind: str):
    import jsonschema

    schema = _crd_index(crd_path, kind).get((api, kind)) or _crd_index(crd_path).get((api, kind))
    if schema is None:
        return None
    schema = _translate(schema)
    # metadata is validated by the API server, not the CRD schema
    props = schema.get("properties", {})
    props["metadata"] = {"type": "object"}
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _schema_problems(obj: dict, validator: Any) -> list[Problem]:
    problems = []
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
        problems.append(Problem(base or "(root)", err.message, ""))
    return problems


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


def is_foreign_custom_resource(obj: dict) -> bool:
    """A custom resource of another operator (NicClusterPolicy, GKENetworkParamSet …): no schema here."""
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io") and group != "nvidia.com"


def validate_manifest(obj: Any, crd_dir: Path | str | None = None, schema_only: bool = False) -> list[Problem]:
    if not isinstance(obj, dict):
        return [Problem("(root)", "a manifest must be a mapping", "pass one YAML document")]
    obj = prune_nulls(obj)
    api, kind = obj.get("apiVersion"), obj.get("kind")
    if not api or not kind:
        return [Problem("apiVersion" if not api else "kind", "is required", "set apiVersion and kind")]
    if not str(api).startswith("nvidia.com/"):
        return _core_problems(obj)
    crd_path = Path(crd_dir) if crd_dir else default_crd_dir()
    if crd_path is None or not crd_path.exists():
        raise ConfigError("no Dynamo CRD to validate against", "--crd-dir",
                          "pass --crd-dir DIR, or export it: kubectl get crd dynamographdeployments.nvidia.com -o yaml")
    validator = _validator(str(crd_path.resolve()), api, kind)
    if validator is None:
        known = sorted(f"{a} {k}" for a, k in _crd_index(str(crd_path.resolve())))
        return [Problem("apiVersion", f"no CRD for {api} {kind} in {crd_path}",
                        f"known: {', '.join(known)}")]
    problems = _schema_problems(obj, validator)
    if not schema_only:
        from .admission import admission_problems

        problems += admission_problems(obj)
    return problems

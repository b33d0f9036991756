"""Manifest checks of `dynamo-iac plan`: every object the stack would apply, checked with what is
available here — and what could not be checked said plainly, never silently passed.

- Dynamo objects (nvidia.com): the CRD schema when a CRD is available (--crd-dir, the
  DYNAMO_IAC_CRD_DIR env, or a checkout's ../shared reference), else the schema check is
  *skipped* and reported as such; the operator's admission rules run either way.
- Core Kubernetes objects: Kubernetes' own schemas (kubernetes-validate).
- Other operators' custom resources (NicClusterPolicy, GKE Network …): no schema here; each is
  reported as "not validated".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

CRD_HINT = ("pass --crd-dir DIR (a dir of CRD YAMLs, or one CRD exported with "
            "`kubectl get crd dynamographdeployments.nvidia.com -o yaml > dgd-crd.yaml`), or set DYNAMO_IAC_CRD_DIR")


@dataclass
class ManifestChecks:
    problems: list[str] = field(default_factory=list)             # "file: problem"
    not_validated: dict[str, str] = field(default_factory=dict)   # file → why it was not validated
    crd: str | None = None                                        # the CRD source used, None: skipped

    @property
    def crd_status(self) -> dict[str, Any]:
        if self.crd is not None:
            return {"status": "checked", "crd": self.crd}
        return {"status": "skipped", "reason": "no Dynamo CRD available", "enable": CRD_HINT}

    def to_dict(self) -> dict[str, Any]:
        return {"dynamo_crd_schema": self.crd_status, "not_validated": dict(sorted(self.not_validated.items())),
                "problems": list(self.problems)}


def resolve_crd(crd_dir: Path | None) -> Path | None:
    """The CRD file/dir to check Dynamo objects against; None when there is none (check skipped).
    An explicitly given path that does not exist is an error, not a skip."""
    import os

    from ..targets.k8s.validate import default_crd_dir

    if crd_dir is not None:
        return _given(crd_dir, "--crd-dir")
    env = os.environ.get("DYNAMO_IAC_CRD_DIR")
    if env:
        return _given(Path(env), "DYNAMO_IAC_CRD_DIR")
    found = default_crd_dir()
    return found.resolve() if found is not None and found.exists() else None


def _given(path: Path, where: str) -> Path:
    """A CRD path the user named: it must exist and hold a CustomResourceDefinition (checked
    here, before the stack runs, instead of failing every Dynamo manifest afterwards)."""
    if not path.exists():
        raise ConfigError(f"{path} does not exist", where, CRD_HINT)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
    if not any(b"CustomResourceDefinition" in f.read_bytes() for f in files):
        what = "holds no YAML/JSON files" if not files else "holds no CustomResourceDefinition"
        raise ConfigError(f"{path} {what}", where, CRD_HINT)
    return path.resolve()


def check_manifests(objs: list[tuple[str, dict]], crd: Path | None) -> ManifestChecks:
    from ..targets.k8s.validate import check_manifest

    out = ManifestChecks(crd=str(crd) if crd is not None else None)
    for fname, obj in objs:
        notes: list[str] = []
        if str(obj.get("apiVersion", "")).startswith("nvidia.com/") and crd is None:
            from ..targets.k8s.admission import admission_problems
            from ..targets.k8s.merge import prune_nulls

            # the CRD's schema and CEL rules need the CRD; the webhook's rules do not
            found = admission_problems(prune_nulls(obj), None, notes)
            notes.insert(0, "not validated against the Dynamo CRD schema or its CEL rules (no CRD); "
                            "the operator's webhook rules were checked")
        else:   # another operator's resource: no problems, check_manifest's "not checked" note
            found, notes = check_manifest(obj, crd_dir=crd)
        if notes:
            out.not_validated[fname] = "; ".join(notes)
        out.problems += [f"{fname}: {p}" for p in found]
    return out

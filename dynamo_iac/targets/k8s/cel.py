"""The CRDs' `x-kubernetes-validations` (CEL), evaluated on create.

Generic by construction: the rules are read from the CRD schema itself, walking it alongside the
object, and each rule's text is looked up in RULES, its Python translation. A CRD rule with no
translation here (a newer CRD exported from a cluster) is reported as a note, never skipped
silently; tests/test_validate_cel.py checks that every rule of the reference CRDs is translated
and has a passing and a failing example.

Transition rules (`oldSelf`) run on create with no old object, as the API server does: the
update-only ones always hold, `oldSelf.hasValue() || X` reduces to X.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ...errors import Problem
from ...graph.quantity import parse_quantity


@dataclass(frozen=True)
class Rule:
    check: Callable[[Any], "bool | list[str]"]   # True = holds; False = fails here; [subpaths] = fail there
    field: str = ""                              # where to report a failure, relative to the rule's node
    fix: str = ""


def _size(v: Any) -> int:
    return len(v) if isinstance(v, (list, dict, str)) else 0


def _num(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _min_available(s: dict) -> bool:
    mina, reps = _num(s.get("minAvailable")), _num(s.get("replicas"))
    if "minAvailable" not in s or reps == 0 or mina is None:
        return True
    return mina <= (reps if "replicas" in s and reps is not None else 1)


def _unique_names(comps: list) -> list[str]:
    seen: set[str] = set()
    dup = []
    for i, c in enumerate(comps):
        name = c.get("name") if isinstance(c, dict) else None
        if isinstance(name, str):
            if name.lower() in seen:
                dup.append(f"[{i}].name")
            seen.add(name.lower())
    return dup


def _shm(s: dict) -> bool:
    if s.get("disabled") is True:
        return True
    q = parse_quantity(s.get("size"))
    return q is not None and q > 0


def _image(s: dict) -> bool:
    return isinstance(s.get("image"), str) and s["image"] != ""


def _update_only(_: Any) -> bool:
    return True       # compares with the old object: nothing to check on create


def _gms(mode: str, key: str) -> Callable[[dict], bool]:
    return lambda s: _size(s.get(key)) == 0 or s.get("mode") == mode


_KV_ONE = ("(has(self.labelKey) && !has(self.clusterTopologyName)) || "
           "(!has(self.labelKey) && has(self.clusterTopologyName))")
_MIN_AVAILABLE = ("!has(self.minAvailable) || (has(self.replicas) && self.replicas == 0) || "
                  "self.minAvailable <= (has(self.replicas) ? self.replicas : 1)")
_MIN_AVAILABLE_FIX = "lower minAvailable or raise replicas"

RULES: dict[str, Rule] = {
    "oldSelf.hasValue() || !has(self.restart)": Rule(
        lambda s: "restart" not in s, "restart", "remove it; set restart.id after creation to trigger a restart"),
    "!has(oldSelf.minAvailable) || (has(self.minAvailable) && self.minAvailable == oldSelf.minAvailable)":
        Rule(_update_only),
    "!has(oldSelf.spec.identity) || self.spec.identity == oldSelf.spec.identity": Rule(_update_only),
    _MIN_AVAILABLE: Rule(_min_available, "minAvailable", _MIN_AVAILABLE_FIX),
    _KV_ONE: Rule(lambda s: ("labelKey" in s) != ("clusterTopologyName" in s), "",
                  "set exactly one of labelKey and clusterTopologyName"),
    "!has(self.enforcement) || self.enforcement != 'preferred' || has(self.preferredWeight)": Rule(
        lambda s: s.get("enforcement") != "preferred" or "preferredWeight" in s, "preferredWeight",
        "set preferredWeight (0..1) or use enforcement: required"),
    "!has(self.preferredWeight) || (has(self.enforcement) && self.enforcement == 'preferred')": Rule(
        lambda s: "preferredWeight" not in s or s.get("enforcement") == "preferred", "preferredWeight",
        "remove preferredWeight or set enforcement: preferred"),
    "!self.contains('/') || self.split('/')[0].size() <= 253": Rule(
        lambda s: not isinstance(s, str) or "/" not in s or len(s.split("/")[0]) <= 253, "",
        "shorten the label key's prefix to at most 253 characters"),
    "!has(self.create) || self.create == false || (has(self.size) && has(self.storageClass) && "
    "has(self.volumeAccessMode))": Rule(
        lambda s: s.get("create") is not True or all(k in s for k in ("size", "storageClass", "volumeAccessMode")),
        "", "set size, storageClass and volumeAccessMode, or create: false for an existing PVC"),
    "!has(self.job) || !has(self.checkpointRef) || size(self.checkpointRef) == 0": Rule(
        lambda s: "job" not in s or _size(s.get("checkpointRef")) == 0, "job", "remove job or checkpointRef"),
    "!has(self.extraClientContainers) || size(self.extraClientContainers) == 0 || self.mode == 'intraPod'":
        Rule(_gms("intraPod", "extraClientContainers"), "extraClientContainers", "set mode: intraPod"),
    "!has(self.extraClientContainers) || size(self.extraClientContainers) == 0 || self.mode == 'IntraPod'":
        Rule(_gms("IntraPod", "extraClientContainers"), "extraClientContainers", "set mode: IntraPod"),
    "!has(self.extraClientPods) || size(self.extraClientPods) == 0 || self.mode == 'interPod'":
        Rule(_gms("interPod", "extraClientPods"), "extraClientPods", "set mode: interPod"),
    "!has(self.extraClientPods) || size(self.extraClientPods) == 0 || self.mode == 'InterPod'":
        Rule(_gms("InterPod", "extraClientPods"), "extraClientPods", "set mode: InterPod"),
    "!has(self.extraClientPods) || size(self.extraClientPods) == 0": Rule(
        lambda s: _size(s.get("extraClientPods")) == 0, "extraClientPods", "remove extraClientPods"),
    "(has(self.disabled) && self.disabled) || (has(self.size) && quantity(self.size).isGreaterThan(quantity('0')))":
        Rule(_shm, "size", "set a size greater than 0 (e.g. 8Gi), or disabled: true"),
    "self.filter(c, has(c.type) && c.type == 'epp').size() <= 1": Rule(
        lambda s: sum(1 for c in s if isinstance(c, dict) and c.get("type") == "epp") <= 1, "",
        "keep one epp component"),
    "self.all(c1, !has(c1.name) || self.filter(c2, has(c2.name) && c2.name.lowerAscii() == "
    "c1.name.lowerAscii()).size() == 1)": Rule(_unique_names, "", "rename one of them"),
    "!has(self.eppConfig) || (has(self.type) && self.type == 'epp')": Rule(
        lambda s: "eppConfig" not in s or s.get("type") == "epp", "eppConfig", "remove it"),
    "has(self.configMapRef) != has(self.config)": Rule(
        lambda s: ("configMapRef" in s) != ("config" in s), "", "keep exactly one of configMapRef and config"),
    '!("nvidia.com/vllm-distributed-executor-backend" in self) || '
    'self["nvidia.com/vllm-distributed-executor-backend"].lowerAscii() in ["mp", "ray"]': Rule(
        lambda s: str(s.get("nvidia.com/vllm-distributed-executor-backend", "mp")).lower() in ("mp", "ray"),
        "nvidia.com/vllm-distributed-executor-backend", "use mp or ray"),
    'self.name == "main" || (has(self.image) && self.image != "")': Rule(
        lambda s: s.get("name") == "main" or _image(s), "image", "give the sidecar container an image"),
    'has(self.image) && self.image != ""': Rule(_image, "image", "give the init container an image"),
}

_TYPES = {"object": dict, "array": list, "string": str}


def _children(schema: dict, value: Any) -> Iterator[tuple[str, dict, Any]]:
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for k, v in value.items():
            sub = props.get(k) if k in props else schema.get("additionalProperties")
            if isinstance(sub, dict):
                yield (f".{k}", sub, v)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            yield (f"[{i}]", schema["items"], v)


def _join(base: str, rel: str) -> str:
    if not rel:
        return base
    return f"{base}{rel}" if rel.startswith("[") or not base else f"{base}.{rel.lstrip('.')}"


def cel_problems(obj: Any, schema: dict, notes: list[str] | None = None) -> list[Problem]:
    """Every x-kubernetes-validations rule of `schema` evaluated where it applies in `obj`."""
    out: list[Problem] = []
    missing: set[str] = set()

    def visit(s: dict, value: Any, path: str) -> None:
        want = _TYPES.get(s.get("type"))
        if want is not None and not isinstance(value, want):
            return             # wrong shape: the schema check reports it; CEL never runs on it
        for v in s.get("x-kubernetes-validations") or []:
            text = v.get("rule", "")
            rule = RULES.get(text)
            if rule is None:
                missing.add(text)
                continue
            result = rule.check(value)
            where = [rule.field] if result is False else ([] if result is True else result)
            for rel in where:
                out.append(Problem(_join(path, rel) or "(root)", v.get("message") or f"violates {text}", rule.fix))
        for step, sub, child in _children(s, value):
            visit(sub, child, (path + step).lstrip("."))

    visit(schema, obj, "")
    if notes is not None:
        notes += [f"not checked: CRD rule {text!r} (no translation in dynamo-iac)" for text in sorted(missing)]
    return out


def schema_rules(schema: Any, path: str = "") -> Iterator[tuple[str, dict]]:
    """(schema path, rule) for every x-kubernetes-validations entry of a CRD schema."""
    if not isinstance(schema, dict):
        return
    for v in schema.get("x-kubernetes-validations") or []:
        yield path, v
    for k, sub in (schema.get("properties") or {}).items():
        yield from schema_rules(sub, f"{path}.{k}")
    for key, mark in (("items", "[]"), ("additionalProperties", "{}")):
        if isinstance(schema.get(key), dict):
            yield from schema_rules(schema[key], path + mark)

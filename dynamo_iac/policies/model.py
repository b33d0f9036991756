"""What a rule is, what it reads and what it reports — the plain shapes shared by the offline
runner and the CrossGuard pack (policies/__main__.py adapts pulumi_policy's arguments to these)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable, Literal, Mapping

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from .values import Obj, UnknownValue, as_obj

Level = Literal["advisory", "mandatory", "disabled"]
LEVELS: tuple[str, ...] = ("advisory", "mandatory", "disabled")
Scope = Literal["resource", "stack"]


class RuleConfig(BaseModel):
    """Base of every rule's settings. Keys are camelCase (as in a Pulumi policy-pack config file);
    snake_case is accepted too. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class NoConfig(RuleConfig):
    pass


class NotApplicable(Exception):
    """A rule raises this when it cannot judge the target (e.g. the fact it needs is not visible
    here); reported as skipped, never as a violation — CrossGuard's args.not_applicable()."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Resource:
    """One resource as a rule sees it. `props` are the inputs with engine (camelCase) names.

    `retain_on_delete` and `secret_paths` are None when the caller cannot see them: the real
    engine does not pass them to CrossGuard, the offline engine does."""

    urn: str
    type: str
    name: str
    props: Obj
    parent: str | None = None
    protect: bool = False
    retain_on_delete: bool | None = None
    secret_paths: tuple[str, ...] | None = None
    dependencies: tuple[str, ...] = ()
    custom: bool = True

    def is_secret(self, path: str) -> bool | None:
        """Whether the input at path (dotted, e.g. "stringData.HF_TOKEN") was a Pulumi secret;
        None when unknowable here."""
        if self.secret_paths is None:
            return None
        norm = _norm_path(path)
        for s in self.secret_paths:
            sp = _norm_path(s)
            if norm == sp or norm.startswith(sp + ".") or sp == "":
                return True
        return False


def _norm_path(p: str) -> str:
    return p.replace("[", ".").replace("]", "").replace('"', "").strip(".")


@dataclass(frozen=True)
class Finding:
    """What a rule's check yields: a message, the fix, and (stack rules) the resource it is about."""

    message: str
    fix: str = ""
    urn: str | None = None


@dataclass(frozen=True, order=True)
class Violation:
    level: str            # mandatory | advisory
    rule: str
    urn: str              # "" = the stack as a whole
    message: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"level": self.level, "rule": self.rule, "urn": self.urn, "message": self.message, "fix": self.fix}


class Catalog:
    """Lazy, memoised access to the hardware catalog (dynamo_iac.hardware.catalog): the only
    source of GPUs per node, fabric and prices. An unknown instance type gives None."""

    def __init__(self, loader: Callable[[], Any] | None = None):
        self._loader = loader
        self._cat: Any = None
        self._memo: dict[str, Any] = {}

    def get(self, name: Any) -> Any:
        if not isinstance(name, str) or not name:
            return None
        if name not in self._memo:
            if self._cat is None:
                if self._loader is not None:
                    self._cat = self._loader()
                else:
                    from ..hardware import catalog as catalog_mod

                    self._cat = catalog_mod.load()
            from ..errors import DynamoIacError

            try:
                self._memo[name] = self._cat.get(name)
            except DynamoIacError:
                self._memo[name] = None
        return self._memo[name]


@dataclass
class StackView:
    """Everything a stack rule reads. `outputs` / `config` are None when not visible (a real
    CrossGuard run shows stack outputs only as the root stack's properties, and config only
    as decrypted values)."""

    resources: list[Resource]
    outputs: Mapping[str, Any] | None = None
    config: Mapping[str, Any] | None = None          # raw stack config "ns:key" → value
    config_secure: frozenset[str] | None = None     # keys stored as `secure:` (None = unknowable)
    config_file: str | None = None                  # the stack file's name (Pulumi.<stack>.yaml), if known

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources if r.type in types]

    @cached_property
    def by_urn(self) -> dict[str, Resource]:
        return {r.urn: r for r in self.resources}

    def ancestors(self, r: Resource) -> list[Resource]:
        out, seen = [], set()
        cur = r.parent
        while cur and cur in self.by_urn and cur not in seen:
            seen.add(cur)
            out.append(self.by_urn[cur])
            cur = self.by_urn[cur].parent
        return out

    def descendants(self, r: Resource) -> list[Resource]:
        kids: dict[str, list[Resource]] = {}
        for x in self.resources:
            if x.parent:
                kids.setdefault(x.parent, []).append(x)
        out, todo = [], [r.urn]
        while todo:
            for k in kids.get(todo.pop(), []):
                out.append(k)
                todo.append(k.urn)
        return out


@dataclass
class Context:
    """Per-evaluation context handed to a check: the rule's validated settings and the catalog."""

    config: Any
    catalog: Catalog = field(default_factory=Catalog)


ResourceCheck = Callable[[Resource, Context], Iterable[Finding]]
StackCheck = Callable[[StackView, Context], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    name: str                      # kebab-case, unique; the CrossGuard policy name
    description: str
    level: Level                   # default enforcement level (overridable per stack)
    scope: Scope
    check: Callable[..., Iterable[Finding]]
    types: tuple[str, ...] = ()    # resource rules: the resource types it reads (empty = all)
    config: type[RuleConfig] = NoConfig
    refs: tuple[str, ...] = ()     # where the fact comes from: policy-catalog rows, docs

    def applies_to(self, type_: str) -> bool:
        return not self.types or type_ in self.types or any(
            t.endswith("*") and type_.startswith(t[:-1]) for t in self.types)

    def config_schema(self) -> dict[str, dict[str, Any]]:
        """JSON-schema properties of the rule's settings (for PolicyConfigSchema), camelCase keys."""
        schema = self.config.model_json_schema(by_alias=True)
        props = {}
        for k, v in schema.get("properties", {}).items():
            v = {kk: vv for kk, vv in v.items() if kk != "title"}
            props[k] = v
        return props

    def evaluate(self, target: Resource | StackView, ctx: Context) -> tuple[list[Finding], str | None]:
        """(findings, skipped reason). A read of an unknown value skips the rule for this target,
        as CrossGuard does during preview."""
        try:
            return list(self.check(target, ctx)), None
        except UnknownValue as e:
            return [], str(e)
        except NotApplicable as e:
            return [], e.reason


def props_of(inputs: Mapping[str, Any]) -> Obj:
    return as_obj(inputs)

"""The offline runner: the same rules as the CrossGuard pack, over the resources the offline
engine recorded (a StackRecord), without the Pulumi CLI.

    report = evaluate_record(record, settings)      # → PolicyReport
    report.failed                                   # a mandatory violation exists
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from ..preview.record import SECRET, UNKNOWN, RecordedResource, StackRecord
from .model import Catalog, Context, Resource, Rule, StackView, Violation
from .settings import PolicySettings
from .values import UNKNOWN as UNKNOWN_MARK, Obj


@dataclass(frozen=True, order=True)
class Skipped:
    rule: str
    urn: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "urn": self.urn, "reason": self.reason}


@dataclass
class PolicyReport:
    stack: str
    violations: list[Violation] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    rules: list[tuple[str, str]] = field(default_factory=list)     # (rule, effective level) that ran

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    @property
    def advisory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "advisory"]

    @property
    def failed(self) -> bool:
        return bool(self.mandatory)

    def to_dict(self) -> dict[str, Any]:
        return {"stack": self.stack,
                "summary": {"rules": len(self.rules), "mandatory": len(self.mandatory),
                            "advisory": len(self.advisory), "skipped": len(self.skipped)},
                "violations": [v.to_dict() for v in self.violations],
                "skipped": [s.to_dict() for s in self.skipped],
                "rules": [{"rule": n, "level": lvl} for n, lvl in self.rules]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


_LEVEL_ORDER = {"mandatory": 0, "advisory": 1}


def _marks(value: Any) -> Any:
    """Recorded inputs → rule inputs: the engine's "(known after apply)" text becomes the UNKNOWN
    marker (so a rule cannot compare it by accident); secrets stay as their mask."""
    if isinstance(value, dict):
        return {k: _marks(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_marks(v) for v in value]
    if value == UNKNOWN:
        return UNKNOWN_MARK
    return value


def from_recorded(r: RecordedResource) -> Resource:
    return Resource(urn=r.urn, type=r.type, name=r.name, props=Obj(_marks(r.inputs)), parent=r.parent,
                    protect=r.protect, retain_on_delete=r.retain_on_delete, secret_paths=tuple(r.secret_paths),
                    dependencies=tuple(r.dependencies), custom=r.custom)


def evaluate(stack: StackView, settings: PolicySettings | None = None, rules: Sequence[Rule] | None = None,
             catalog: Catalog | None = None, name: str = "") -> PolicyReport:
    """Run every enabled rule: resource rules on each resource of their types, stack rules once."""
    from .rules import RULES

    rules = list(RULES if rules is None else rules)
    settings = settings or PolicySettings()
    catalog = catalog or Catalog()
    report = PolicyReport(stack=name)
    seen: set[Violation] = set()
    for rule in rules:
        level = settings.level(rule)
        if level == "disabled":
            continue
        report.rules.append((rule.name, level))
        ctx = Context(config=settings.config(rule), catalog=catalog)
        targets: Iterable[Resource | StackView]
        if rule.scope == "resource":
            targets = [r for r in stack.resources if rule.applies_to(r.type)]
        else:
            targets = [stack]
        for t in targets:
            findings, skipped = rule.evaluate(t, ctx)
            default_urn = t.urn if isinstance(t, Resource) else ""
            if skipped:
                report.skipped.append(Skipped(rule.name, default_urn, skipped))
            for f in findings:
                v = Violation(level, rule.name, f.urn if f.urn is not None else default_urn, f.message, f.fix)
                if v not in seen:
                    seen.add(v)
                    report.violations.append(v)
    report.violations.sort(key=lambda v: (_LEVEL_ORDER.get(v.level, 9), v.rule, v.urn, v.message))
    report.skipped.sort()
    return report


def stack_view(record: StackRecord, raw_config: Mapping[str, Any] | None = None,
               config_file: str | None = None) -> StackView:
    """A StackRecord as rules see it. raw_config: the stack file's `config:` mapping (keys
    "ns:key"); `secure:` values are masked and remembered as secure. config_file: its name."""
    from ..stacks.config import is_secure

    config, secure = None, None
    if raw_config is not None:
        config, secure_keys = {}, set()
        for k, v in raw_config.items():
            if is_secure(v):
                secure_keys.add(str(k))
                config[str(k)] = SECRET
            else:
                config[str(k)] = v
        secure = frozenset(secure_keys)
    return StackView(resources=[from_recorded(r) for r in record.resources], outputs=dict(record.outputs),
                     config=config, config_secure=secure, config_file=config_file)


def settings_for(raw_config: Mapping[str, Any] | None, record: StackRecord | None, source: str,
                 rules: Sequence[Rule]) -> PolicySettings:
    """The stack's `dynamo-iac:policy` settings (from the raw stack file, else the record's config)."""
    from .settings import KEY

    raw = None
    if raw_config is not None and KEY in raw_config:
        raw = raw_config[KEY]
    elif record is not None and isinstance(record.config.get("policy"), Mapping):
        raw = record.config["policy"]
    return PolicySettings.parse(raw, source, rules)


def evaluate_record(record: StackRecord, settings: PolicySettings | None = None,
                    raw_config: Mapping[str, Any] | None = None, rules: Sequence[Rule] | None = None,
                    catalog: Catalog | None = None, config_file: str | None = None) -> PolicyReport:
    """Policy report of one offline run. Settings default to the stack's own `dynamo-iac:policy`;
    config_file: the stack file's name (default Pulumi.<stack>.yaml)."""
    from .rules import RULES

    rules = list(RULES if rules is None else rules)
    config_file = config_file or f"Pulumi.{record.stack}.yaml"
    if settings is None:
        settings = settings_for(raw_config, record, config_file, rules)
    return evaluate(stack_view(record, raw_config, config_file), settings, rules, catalog, name=record.stack)


def evaluate_stack(stack: str, config_file: Any = None, root: Any = None) -> PolicyReport:
    """`dynamo-iac policy -s STACK`: run the stack's program offline, then the rules. Settings:
    the stack's `dynamo-iac:policy`, overridden by config_file (same format, JSON or YAML)."""
    from pathlib import Path

    from ..preview.stack import run_stack
    from ..stacks.config import read_stack_file
    from .rules import RULES

    _, raw, path = read_stack_file(stack, root)
    settings = settings_for(raw, None, path.name, RULES)
    if config_file is not None:
        settings = settings.merged(PolicySettings.load_file(Path(config_file), RULES))
    run = run_stack(stack, root)
    return evaluate_record(run.record, settings, raw_config=raw, config_file=path.name)

"""Policy settings of a stack: the `dynamo-iac:policy` mapping in `stacks/Pulumi.<stack>.yaml`.

The format is Pulumi's policy-pack config format, so one file serves `dynamo-iac policy --config`
and `pulumi preview --policy-pack policies/ --policy-pack-config`:

    dynamo-iac:policy:
      all: advisory                      # optional: level of every rule without its own
      cost-budget:                       # a rule: its level and/or its settings (camelCase)
        enforcementLevel: mandatory
        maxUsdPerHour: 250
      image-registry-allowed:
        allowedRegistries: [nvcr.io/nvidia]
      kai-volcano-exclusive: disabled    # a rule: just a level

Levels: advisory | mandatory | disabled. Each rule's settings are its pydantic `RuleConfig`.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from pydantic import ValidationError

from .. import yamlio
from ..errors import ConfigError, Problem
from .model import LEVELS, Level, Rule, RuleConfig

KEY = "dynamo-iac:policy"
ENFORCEMENT = "enforcementLevel"


@dataclass(frozen=True)
class RuleSettings:
    level: Level | None = None
    props: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicySettings:
    default_level: Level | None = None
    rules: Mapping[str, RuleSettings] = field(default_factory=dict)

    # ------------------------------------------------------------------ parsing
    @classmethod
    def parse(cls, raw: Any, source: str, rules: Sequence[Rule]) -> "PolicySettings":
        """Validate a settings mapping; every problem names its path (`source: dynamo-iac:policy.<rule>.<key>`)."""
        if raw is None:
            return cls()
        where = f"{source}: {KEY}"
        if isinstance(raw, str):           # Pulumi passes structured config as JSON text
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ConfigError(f"not valid JSON: {e}", where,
                                  "write a mapping of rule name → level or settings") from None
        if not isinstance(raw, Mapping):
            raise ConfigError(f"must be a mapping, got {type(raw).__name__}", where,
                              "write a mapping of rule name → level or settings")
        by_name = {r.name: r for r in rules}
        problems: list[Problem] = []
        default: Level | None = None
        out: dict[str, RuleSettings] = {}
        for key in sorted(raw, key=str):
            value = raw[key]
            path = f"{where}.{key}"
            if key == "all":
                lvl = _level(value, path, problems)
                default = lvl if lvl else default
                continue
            rule = by_name.get(str(key))
            if rule is None:
                close = difflib.get_close_matches(str(key), sorted(by_name), n=1)
                problems.append(Problem(path, "no such policy rule",
                                        f"did you mean {close[0]!r}?" if close else
                                        "list the rules with `dynamo-iac policy --list`"))
                continue
            if isinstance(value, str):
                lvl = _level(value, path, problems)
                out[rule.name] = RuleSettings(lvl, {})
                continue
            if not isinstance(value, Mapping):
                problems.append(Problem(path, f"must be a level or a mapping, got {type(value).__name__}",
                                        f"write `{key}: mandatory` or `{key}: {{{ENFORCEMENT}: advisory, ...}}`"))
                continue
            lvl = _level(value[ENFORCEMENT], f"{path}.{ENFORCEMENT}", problems) if ENFORCEMENT in value else None
            props = {k: v for k, v in value.items() if k != ENFORCEMENT}
            try:
                rule.config.model_validate(props)
            except ValidationError as e:
                problems += _config_problems(e, path, rule)
                continue
            out[rule.name] = RuleSettings(lvl, props)
        if problems:
            raise ConfigError(problems)
        return cls(default, out)

    @classmethod
    def load_file(cls, path: Path, rules: Sequence[Rule]) -> "PolicySettings":
        """A settings file: JSON (Pulumi's --policy-pack-config) or YAML, optionally nested under
        `dynamo-iac:policy` (or a whole `config:` section of a stack file)."""
        import yaml

        try:
            text = path.read_text()
        except OSError as e:
            raise ConfigError(f"cannot read: {e.strerror}", str(path), "pass an existing JSON or YAML file") from None
        try:
            doc = yamlio.load(text)         # YAML is a superset of JSON
        except yaml.YAMLError as e:
            raise ConfigError(f"not valid JSON/YAML: {e}", str(path), "fix the syntax") from None
        if isinstance(doc, Mapping) and isinstance(doc.get("config"), Mapping):
            doc = doc["config"]
        if isinstance(doc, Mapping) and KEY in doc:
            doc = doc[KEY]
        return cls.parse(doc or {}, path.name, rules)

    # ------------------------------------------------------------------ use
    def level(self, rule: Rule) -> Level:
        rs = self.rules.get(rule.name)
        if rs and rs.level:
            return rs.level
        return self.default_level or rule.level

    def config(self, rule: Rule) -> RuleConfig:
        rs = self.rules.get(rule.name)
        return rule.config.model_validate(dict(rs.props) if rs else {})

    def merged(self, other: "PolicySettings") -> "PolicySettings":
        """These settings overridden by other's (a level replaces a level; settings merge key by key)."""
        rules = dict(self.rules)
        for name, rs in other.rules.items():
            base = rules.get(name, RuleSettings())
            rules[name] = RuleSettings(rs.level or base.level, {**base.props, **rs.props})
        return PolicySettings(other.default_level or self.default_level, rules)

    def initial_config(self, rules: Sequence[Rule]) -> dict[str, dict[str, Any]]:
        """The pack's initial config (enforcement levels as strings; the pack maps them to
        pulumi_policy.EnforcementLevel). `all` is expanded per rule, since PolicyPack's
        initial config has no pack-wide key."""
        out: dict[str, dict[str, Any]] = {}
        for r in rules:
            rs = self.rules.get(r.name)
            entry: dict[str, Any] = dict(rs.props) if rs else {}
            lvl = (rs.level if rs else None) or self.default_level
            if lvl:
                entry[ENFORCEMENT] = lvl
            if entry:
                out[r.name] = entry
        return out


def _level(value: Any, path: str, problems: list[Problem]) -> Level | None:
    if isinstance(value, str) and value in LEVELS:
        return value  # type: ignore[return-value]
    if value == "remediate":
        problems.append(Problem(path, "no rule of this pack remediates", f"use one of {', '.join(LEVELS)}"))
    else:
        problems.append(Problem(path, f"invalid enforcement level {value!r}", f"use one of {', '.join(LEVELS)}"))
    return None


def _config_problems(e: ValidationError, path: str, rule: Rule) -> list[Problem]:
    out = []
    fields = sorted(rule.config.model_json_schema(by_alias=True).get("properties", {}))
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        fix = ""
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
            close = difflib.get_close_matches(str(err["loc"][-1]), fields, n=1)
            fix = (f"did you mean {close[0]!r}?" if close else
                   (f"settings of {rule.name}: {', '.join(fields)}" if fields else f"{rule.name} has no settings; "
                    f"only {ENFORCEMENT}"))
        out.append(Problem(f"{path}.{loc}", msg, fix))
    return out


def settings_schema(rules: Sequence[Rule]) -> dict[str, Any]:
    """JSON Schema of the whole `dynamo-iac:policy` mapping (for editors and docs)."""
    level = {"type": "string", "enum": list(LEVELS)}
    props: dict[str, Any] = {"all": level}
    for r in rules:
        obj = {"type": "object", "additionalProperties": False,
               "properties": {ENFORCEMENT: level, **r.config_schema()}, "description": r.description}
        props[r.name] = {"oneOf": [level, obj]}
    return {"type": "object", "additionalProperties": False, "properties": props}

"""The rules as a CrossGuard policy pack (pulumi_policy), for `pulumi preview --policy-pack policies/`.

pulumi_policy hands a resource policy `ResourceValidationArgs(resource_type, props, urn, name, opts,
provider, config)` and a stack policy `StackValidationArgs(resources=[PolicyResource…], config)`;
this module adapts both into the plain `Resource` / `StackView` the rules take, so the same
functions run here and in the offline runner. PolicyPack itself is constructed only in
policies/__main__.py, because its constructor starts a gRPC server and never returns.

Per-stack settings: the engine starts the pack with the stack's config in PULUMI_CONFIG, so the
stack's `dynamo-iac:policy` mapping becomes the pack's initial config (levels and rule settings);
`--policy-pack-config` still overrides it, as usual.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Sequence

from .model import Catalog, Context, Finding, Resource, Rule, StackView
from .settings import ENFORCEMENT, KEY, PolicySettings
from .values import UNKNOWN, Obj, UnknownValue

PACK_NAME = "dynamo-iac"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def _unproxy(v: Any) -> Any:
    """pulumi_policy's unknown-checking proxies → plain data with our UNKNOWN marker (the proxies
    keep the engine's unknown sentinels as raw strings underneath)."""
    from pulumi_policy.proxy import _is_unknown  # the SDK's own sentinel test

    if type(v).__name__ in ("_DictProxy", "_ListProxy"):
        v = v["__target"]
    if isinstance(v, Mapping):
        return {k: _unproxy(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_unproxy(x) for x in v]
    if isinstance(v, str) and _is_unknown(v):
        return UNKNOWN
    return v


def _plain(props: Any) -> Obj:
    raw = _unproxy(props)
    return Obj(raw if isinstance(raw, Mapping) else {})


def resource_from_args(args: Any) -> Resource:
    """ResourceValidationArgs → Resource. retainOnDelete and which inputs are secrets are not
    sent to analyzers, so they stay None (rules then skip what they cannot see)."""
    opts = getattr(args, "opts", None)
    return Resource(urn=args.urn, type=args.resource_type, name=args.name, props=_plain(args.props),
                    parent=getattr(opts, "parent", None) or None, protect=bool(getattr(opts, "protect", False)),
                    retain_on_delete=None, secret_paths=None)


def resource_from_policy_resource(r: Any) -> Resource:
    opts = getattr(r, "opts", None)
    parent = getattr(r, "parent", None)
    return Resource(urn=r.urn, type=r.resource_type, name=r.name, props=_plain(r.props),
                    parent=getattr(parent, "urn", None), protect=bool(getattr(opts, "protect", False)),
                    retain_on_delete=None, secret_paths=None,
                    dependencies=tuple(getattr(d, "urn", "") for d in getattr(r, "dependencies", []) or []))


def stack_config_from_env() -> dict[str, Any]:
    """The stack's config as the engine passed it to the pack (PULUMI_CONFIG), structured values decoded."""
    import pulumi.runtime

    out: dict[str, Any] = {}
    for k, v in pulumi.runtime.get_config_env().items():
        if isinstance(v, str) and v[:1] in "[{":
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                pass
        out[k] = v
    return out


def stack_from_args(args: Any, config: Mapping[str, Any] | None = None) -> StackView:
    resources = [resource_from_policy_resource(r) for r in args.resources]
    outputs = None
    for r in resources:
        if r.type == ROOT_STACK_TYPE:
            outputs = dict(r.props.raw)
    return StackView(resources=[r for r in resources if r.type != ROOT_STACK_TYPE], outputs=outputs,
                     config=dict(config) if config is not None else None, config_secure=None)


def _message(f: Finding) -> str:
    return f"{f.message}\nfix: {f.fix}" if f.fix else f.message


def _rule_config(rule: Rule, args: Any) -> Any:
    raw = dict(args.get_config() or {}) if hasattr(args, "get_config") else {}
    raw.pop(ENFORCEMENT, None)
    raw = {k: v for k, v in raw.items() if v is not None}
    return rule.config.model_validate(raw)


def _reraise_unknown(e: UnknownValue) -> Exception:
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

    path = e.path.replace("[", ".").replace("]", "").split(".")
    return UnknownValueError(UNKNOWN_STRING_VALUE, [p for p in path if p])


def resource_validation(rule: Rule, catalog: Catalog | None = None) -> Callable[[Any, Any], None]:
    from .model import NotApplicable

    def validate(args: Any, report_violation: Callable[..., None]) -> None:
        if not rule.applies_to(args.resource_type):
            return
        res = resource_from_args(args)
        ctx = Context(config=_rule_config(rule, args), catalog=catalog or Catalog())
        try:
            findings = list(rule.check(res, ctx))
        except UnknownValue as e:
            raise _reraise_unknown(e) from None
        except NotApplicable as e:
            args.not_applicable(e.reason)
            return
        for f in findings:
            report_violation(_message(f), None)

    return validate


def stack_validation(rule: Rule, catalog: Catalog | None = None,
                     config: Callable[[], Mapping[str, Any]] | None = None) -> Callable[[Any, Any], None]:
    from .model import NotApplicable

    def validate(args: Any, report_violation: Callable[..., None]) -> None:
        stack = stack_from_args(args, config() if config else None)
        ctx = Context(config=_rule_config(rule, args), catalog=catalog or Catalog())
        try:
            findings = list(rule.check(stack, ctx))
        except UnknownValue as e:
            raise _reraise_unknown(e) from None
        except NotApplicable as e:
            args.not_applicable(e.reason)
            return
        for f in findings:
            report_violation(_message(f), f.urn or None)

    return validate


def build_policies(rules: Sequence[Rule] | None = None, catalog: Catalog | None = None,
                   config: Callable[[], Mapping[str, Any]] | None = None) -> list[Any]:
    """One pulumi_policy policy per rule, same name, description, default level and settings schema."""
    from pulumi_policy import (EnforcementLevel, PolicyConfigSchema, ResourceValidationPolicy,
                               StackValidationPolicy)

    from .rules import RULES

    out = []
    for rule in (RULES if rules is None else rules):
        schema = rule.config_schema()
        kw: dict[str, Any] = dict(name=rule.name, description=rule.description,
                                  enforcement_level=EnforcementLevel(rule.level),
                                  config_schema=PolicyConfigSchema(schema) if schema else None)
        if rule.scope == "resource":
            out.append(ResourceValidationPolicy(validate=resource_validation(rule, catalog), **kw))
        else:
            out.append(StackValidationPolicy(validate=stack_validation(rule, catalog, config), **kw))
    return out


def initial_config(settings: PolicySettings, rules: Sequence[Rule]) -> dict[str, Any]:
    """Stack settings → PolicyPack(initial_config=…): levels as EnforcementLevel, settings as given."""
    from pulumi_policy import EnforcementLevel

    out: dict[str, Any] = {}
    for name, entry in settings.initial_config(rules).items():
        entry = dict(entry)
        if ENFORCEMENT in entry:
            entry[ENFORCEMENT] = EnforcementLevel(entry[ENFORCEMENT])
        out[name] = entry
    return out


def pack_args(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything policies/__main__.py passes to PolicyPack(...). config: the stack config
    (default: what the engine passed in PULUMI_CONFIG)."""
    from .rules import RULES

    cfg = stack_config_from_env() if config is None else dict(config)
    settings = PolicySettings.parse(cfg.get(KEY), "stack config", RULES)
    catalog = Catalog()
    return {
        "name": PACK_NAME,
        "description": "dynamo-iac: GPU serving stacks (NVIDIA Dynamo on EKS / AKS / GKE) — capacity, fabric, "
                       "images, secrets, platform versions, cost",
        "policies": build_policies(RULES, catalog, config=lambda: cfg),
        "initial_config": initial_config(settings, RULES) or None,
    }

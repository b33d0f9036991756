"""Policy rules for GPU serving stacks, shared by the CrossGuard pack (policies/__main__.py) and
the offline runner (`dynamo-iac policy -s STACK`, and the policy report of `dynamo-iac plan`).

    from dynamo_iac.policies import RULES, evaluate_record
    report = evaluate_record(record)          # record: a preview StackRecord
    report.failed                             # a mandatory violation exists

A rule is a plain function over a `Resource` (resource rules) or a `StackView` (stack rules) that
yields `Finding`s; `Rule` adds its name, description, default level (advisory | mandatory,
overridable per stack in `dynamo-iac:policy`) and the pydantic model of its settings.
"""
from .model import Finding, NotApplicable, Resource, Rule, StackView, Violation
from .rules import RULES
from .runner import PolicyReport, evaluate, evaluate_record
from .settings import PolicySettings

__all__ = ["RULES", "Finding", "NotApplicable", "PolicyReport", "PolicySettings", "Resource", "Rule", "StackView",
           "Violation", "evaluate", "evaluate_record"]

"""The one list of rules: the CrossGuard pack (policies/__main__.py) and the offline runner
(`dynamo-iac policy`, `dynamo-iac plan`) both take it from here. Order = report order."""
from __future__ import annotations

from ..model import Rule
from . import capacity, cluster, graph, platform, storage, supply

RULES: list[Rule] = [*cluster.RULES, *graph.RULES, *platform.RULES, *supply.RULES, *storage.RULES,
                     *capacity.RULES]

_names = [r.name for r in RULES]
assert len(set(_names)) == len(_names), "duplicate rule names"


def rule(name: str) -> Rule:
    for r in RULES:
        if r.name == name:
            return r
    raise KeyError(name)
